package inventory

import (
	"os"
	"regexp"
	"strconv"
	"strings"
	"testing"

	yamlv3 "go.yaml.in/yaml/v3"
)

var namesLine = regexp.MustCompile(`line \d+`)

// requireLines fails unless every line of err's message names a line of
// the document.
func requireLines(t *testing.T, err error) {
	t.Helper()
	for _, l := range strings.Split(err.Error(), "\n") {
		if !namesLine.MatchString(l) {
			t.Fatalf("a problem without its line: %q (in %q)", l, err)
		}
	}
}

// FuzzParseCredentials: a credentials document never panics the parser,
// every problem names its line, and no password appears in an error.
func FuzzParseCredentials(f *testing.F) {
	if b, err := os.ReadFile("../../examples/credentials.yml"); err == nil {
		f.Add(b)
	}
	for _, s := range []string{
		"lab:\n  username: u\n  password: s3cr3t\n",
		"lab:\n  username: u\n  password: s3cr3t\n  password_file: /p\nx: {user: y}\n",
		"- a\n",
		"\"dc.east\": {username: u, password_file: /p}\n",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		c, err := parseCredentials(b)
		if err != nil {
			requireLines(t, err)
			msg := yamlTag.ReplaceAllString(err.Error(), "") // a tag is syntax, not a value
			for _, pw := range passwords(b) {
				if strings.Contains(msg, pw) {
					t.Fatalf("password %q in an error: %v", pw, err)
				}
			}
			return
		}
		for _, n := range c.Names() {
			if u, _, err := c.Lookup(n); err == nil && u == "" {
				t.Fatalf("accepted %q without a user name", n)
			}
		}
	})
}

var yamlTag = regexp.MustCompile(`cannot unmarshal \S+`)

// passwords are the values of the document's password keys, and the
// values of its top-level keys (a password written in place of an entry),
// four bytes or longer and not part of a key (keys are named in errors).
func passwords(b []byte) []string {
	var root yamlv3.Node
	if yamlv3.Unmarshal(b, &root) != nil || len(root.Content) == 0 {
		return nil
	}
	keys := map[string]bool{}
	var out []string
	var walk func(n *yamlv3.Node, top bool)
	walk = func(n *yamlv3.Node, top bool) {
		if n.Kind != yamlv3.MappingNode {
			return
		}
		for i := 0; i+1 < len(n.Content); i += 2 {
			k, v := n.Content[i], n.Content[i+1]
			keys[k.Value] = true
			if v.Kind == yamlv3.ScalarNode && (top || k.Value == "password") {
				out = append(out, v.Value)
			}
			walk(v, false)
		}
	}
	walk(root.Content[0], true)
	var pw []string
next:
	for _, v := range out {
		if len(v) < 4 {
			continue
		}
		for k := range keys {
			// Named as a key (an error path shows it as key: or "key":),
			// not leaked as a value.
			if strings.Contains(k+": ", v) || strings.Contains(strconv.Quote(k)+": ", v) {
				continue next
			}
		}
		pw = append(pw, v)
	}
	return pw
}

// FuzzParseEntry: an entry of the gateway's inventory KV bucket.
func FuzzParseEntry(f *testing.F) {
	f.Add([]byte("id: a\naddress: 10.0.0.1\nlabels: {rack: r1}\n"))
	f.Add([]byte("id: a\nprotocol: snmp\ninterval: 1ms\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		e, err := ParseEntry(b)
		if err != nil {
			requireLines(t, err)
			return
		}
		if e.ID == "" || e.Address == "" || e.Interval < MinInterval {
			t.Fatalf("accepted an invalid entry: %+v", e)
		}
	})
}
