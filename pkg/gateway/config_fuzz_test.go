package gateway

import (
	"os"
	"regexp"
	"strings"
	"testing"
)

// FuzzParseConfig feeds arbitrary documents to the configuration parser.
// It must never panic, and every problem it reports must name its line.
func FuzzParseConfig(f *testing.F) {
	if b, err := os.ReadFile("../../examples/gateway.yml"); err == nil {
		f.Add(b)
	}
	for _, s := range []string{
		gwBase,
		gwSink + "    write_relabel_configs:\n      - action: replace\n        regex: '(x'\n",
		gwSink + "    basic_auth: {username: u, password: p}\n    authorization: {credentials: c}\n    headers: {X-Scope-OrgID: b}\n    org_id: a\n",
		gwSink + "    queue_config: {shards: 0, capacity: -1, min_backoff: 1x}\n",
		"remote_write:\n  name: prom\nconsumer: [1]\n",
		"nats:\n  embedded: {enabled: true}\n  url: 'http://x:0'\nrollup: {group_by: [bmc, '']}\n",
		"remote_write:\n  - name: a\n    url: 'http://u:p@x y/'\n",
		"",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		cfg, err := ParseConfig(b)
		if err != nil {
			for _, l := range strings.Split(err.Error(), "\n") {
				if !lineRE.MatchString(l) {
					t.Fatalf("a problem without its line: %q (in %q)", l, err)
				}
			}
			return
		}
		if err := cfg.Validate(); err != nil {
			t.Fatalf("accepted a configuration its Validate rejects: %v", err)
		}
	})
}

var lineRE = regexp.MustCompile(`line \d+`)
