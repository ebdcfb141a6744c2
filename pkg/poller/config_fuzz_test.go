package poller

import (
	"os"
	"regexp"
	"strings"
	"testing"
)

// FuzzParseConfig feeds arbitrary documents to the configuration parser.
// It must never panic, and every problem it reports must name its line.
func FuzzParseConfig(f *testing.F) {
	if b, err := os.ReadFile("../../examples/poller.yml"); err == nil {
		f.Add(b)
	}
	for _, s := range []string{
		configBase,
		configBase + "sharding:\n  mode: dynamic\n  ttl: 100ms\n",
		configBase + "nats:\n  token: t\n  creds_file: x\n  tls: {cert_file: c}\n",
		"inventory:\n  files: {a: b}\npolling: [1]\n",
		"nats:\n  url: 'nats://a:1,ws://b'\n  stream: {max_age: 1m, duplicate_window: 2m}\n",
		"a: &x [*x]\n",
		"",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		cfg, err := ParseConfig(b)
		if err != nil {
			requireLines(t, err)
			return
		}
		if err := cfg.Validate(); err != nil {
			t.Fatalf("accepted a configuration its Validate rejects: %v", err)
		}
	})
}

var lineRE = regexp.MustCompile(`line \d+`)

// requireLines fails unless every line of err's message names a line of
// the document.
func requireLines(t *testing.T, err error) {
	t.Helper()
	for _, l := range strings.Split(err.Error(), "\n") {
		if !lineRE.MatchString(l) {
			t.Fatalf("a problem without its line: %q (in %q)", l, err)
		}
	}
}
