package poller

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// configBase is a valid configuration; cases append to it (from line 4)
// or replace it.
const configBase = `inventory:
  files: [inv.yml]
  credentials_file: creds.yml
`

// TestInvalidConfigTable has one case per kind of invalid poller
// configuration. Each must fail LoadConfig with an error naming the YAML
// path of the offending key and its line, as "line N: path".
func TestInvalidConfigTable(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		doc  string
		// want is "line N: path" (path may be a prefix of the full key
		// path when the message continues it).
		want string
		// also are further substrings the message must hold.
		also []string
	}{
		// Decoding.
		{"unknown top-level key", configBase + "pollerid: a\n", "line 4: pollerid: unknown key", nil},
		{"unknown nested key", configBase + "polling:\n  max_concurent: 3\n", "line 5: polling.max_concurent: unknown key", nil},
		{"unknown key in a list of maps", configBase + "sharding:\n  mode: static\n  shrads: 2\n", "line 6: sharding.shrads", nil},
		{"key given twice", configBase + "polling:\n  max_concurrent: 3\n  max_concurrent: 4\n", "line 6: polling.max_concurrent", nil},
		{"wrong type: word for a number", configBase + "polling:\n  max_concurrent: many\n", "line 5: polling.max_concurrent", []string{"cannot unmarshal"}},
		{"wrong type: list for a block", configBase + "sharding: [static]\n", "line 4: sharding", []string{"cannot unmarshal !!seq"}},
		{"wrong type: map for a string", configBase + "poller_id:\n  a: b\n", "line 5: poller_id", []string{"cannot unmarshal !!map"}},
		{"wrong type: list for a list of strings", "inventory:\n  files: {a: b}\n", "line 2: inventory.files", []string{"cannot unmarshal !!map"}},
		{"number out of range", configBase + "nats:\n  stream:\n    max_msg_size: 5000000000\n", "line 6: nats.stream.max_msg_size", nil},
		{"bad duration", configBase + "polling:\n  request_timeout: fast\n", "line 5: polling.request_timeout", []string{`"fast"`}},
		{"negative duration", configBase + "polling:\n  max_backoff: -5m\n", "line 5: polling.max_backoff", nil},
		{"duration with a space", strings.Replace(configBase, "creds.yml\n", "creds.yml\n  watch_interval: 10 s\n", 1), "line 4: inventory.watch_interval", nil},

		// Validation: zero or negative where positive is needed.
		{"zero request timeout", configBase + "polling:\n  request_timeout: 0s\n", "line 5: polling.request_timeout: must be positive", nil},
		{"zero max backoff", configBase + "polling:\n  max_backoff: 0s\n", "line 5: polling.max_backoff: must be positive", nil},
		{"zero info interval", configBase + "polling:\n  info_interval: 0s\n", "line 5: polling.info_interval: must be positive", nil},
		{"zero max concurrent", configBase + "polling:\n  max_concurrent: 0\n", "line 5: polling.max_concurrent: must be at least 1", nil},
		{"negative publish buffer", configBase + "publish_buffer: -5\n", "line 4: publish_buffer: must be at least 1", nil},
		{"zero stream max age", configBase + "nats:\n  stream:\n    max_age: 0s\n", "line 6: nats.stream.max_age", nil},
		{"zero stream max message size", configBase + "nats:\n  stream:\n    max_msg_size: 0\n", "line 6: nats.stream.max_msg_size", nil},
		{"duplicate window beyond max age", configBase + "nats:\n  stream:\n    max_age: 1m\n    duplicate_window: 2m\n", "line 7: nats.stream.duplicate_window", nil},
		{"too many replicas", configBase + "nats:\n  stream:\n    replicas: 7\n", "line 6: nats.stream.replicas", nil},

		// Validation: missing required fields (placed on the enclosing key).
		{"no inventory at all", "nats:\n  url: nats://x:4222\n", "line 1: inventory.files: at least one file is required", nil},
		{"inventory without files", "inventory:\n  credentials_file: creds.yml\n", "line 1: inventory.files: at least one file is required", nil},
		{"empty inventory path", "inventory:\n  files: ['']\n", "line 2: inventory.files[0]: empty path", nil},
		{"empty document", "", "line 1: inventory.files", nil},
		{"no nats url", configBase + "nats:\n  url: ''\n", "line 5: nats.url: must be set", nil},

		// Validation: bad values.
		{"bad nats url", configBase + "nats:\n  url: 'nats://host:port'\n", "line 5: nats.url", nil},
		{"bad nats url scheme", configBase + "nats:\n  url: 'nats://a:4222,http://b:4222'\n", "line 5: nats.url: server 2: scheme", nil},
		{"bad nats port", configBase + "nats:\n  url: 'nats://a:99999'\n", "line 5: nats.url: server 1: port", nil},
		{"bad nats mode", configBase + "nats:\n  mode: kafka\n", "line 5: nats.mode", []string{`"kafka"`}},
		{"bad stream storage", configBase + "nats:\n  stream:\n    storage: disk\n", "line 6: nats.stream.storage", nil},
		{"bad poller id", configBase + "poller_id: a.b\n", "line 4: poller_id", nil},
		{"bad cipher suite", configBase + "ipmi:\n  cipher_suite: 1\n", "line 5: ipmi.cipher_suite: 1 is not one of 3, 17", nil},
		{"bad privilege", configBase + "ipmi:\n  privilege: root\n", "line 5: ipmi.privilege", nil},

		// Conflicting options.
		{"two nats auth methods", configBase + "nats:\n  token: t0ken-value\n  creds_file: x.creds\n", "line 4: nats: set at most one of", nil},
		{"password and password file", configBase + "nats:\n  user: u\n  password: pw-value\n  password_file: pw\n", "line 4: nats: password and password_file are mutually exclusive", nil},
		{"tls cert without key", configBase + "nats:\n  tls:\n    cert_file: c.pem\n", "line 5: nats.tls: cert_file and key_file go together", nil},
		{"dynamic sharding over core nats", configBase + "nats:\n  mode: core\nsharding:\n  mode: dynamic\n", "line 7: sharding.mode: dynamic needs nats.mode jetstream", nil},

		// Sharding.
		{"bad sharding mode", configBase + "sharding:\n  mode: ring\n", "line 5: sharding.mode", []string{`"ring"`}},
		{"shard out of range", configBase + "sharding:\n  shard: 2\n  shards: 2\n", "line 5: sharding.shard: shard 2 of 2", nil},
		{"negative shard", configBase + "sharding:\n  shard: -1\n  shards: 2\n", "line 5: sharding.shard", nil},
		{"zero shards", configBase + "sharding:\n  shards: 0\n", "line 5: sharding.shards: must be at least 1", nil},
		{"zero replication factor", configBase + "sharding:\n  replication_factor: 0\n", "line 5: sharding.replication_factor: must be at least 1", nil},
		{"replication factor above shards", configBase + "sharding:\n  shards: 2\n  replication_factor: 3\n", "line 6: sharding.replication_factor: 3 is more than the 2 shards", nil},
		{"short membership ttl", configBase + "sharding:\n  mode: dynamic\n  ttl: 100ms\n", "line 6: sharding.ttl: must be at least 1s", nil},
		{"bad membership bucket", configBase + "sharding:\n  mode: dynamic\n  bucket: a.b\n", "line 6: sharding.bucket", nil},

		// Referenced files (LoadConfig checks them).
		{"missing inventory file", strings.Replace(configBase, "[inv.yml]", "[inv.yml, nope.yml]", 1), "line 2: inventory.files[1]", []string{"no such file"}},
		{"inventory file is a directory", strings.Replace(configBase, "[inv.yml]", "[sub]", 1), "line 2: inventory.files[0]", []string{"is a directory"}},
		{"missing credentials file", strings.Replace(configBase, "creds.yml", "nope.yml", 1), "line 3: inventory.credentials_file", []string{"no such file"}},
		{"ca file is not PEM", configBase + "redfish:\n  ca_file: inv.yml\n", "line 5: redfish.ca_file", []string{"no PEM certificate"}},
		{"missing ca file", configBase + "redfish:\n  ca_file: nope.pem\n", "line 5: redfish.ca_file", []string{"no such file"}},
		{"missing nats creds file", configBase + "nats:\n  creds_file: x.creds\n", "line 5: nats.creds_file", []string{"no such file"}},
		{"missing nats tls key", configBase + "nats:\n  tls:\n    cert_file: inv.yml\n    key_file: nope.key\n", "line 7: nats.tls.key_file", []string{"no such file"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			require.NoError(t, os.WriteFile(filepath.Join(dir, "inv.yml"), []byte("bmcs:\n  - id: a\n    address: 127.0.0.1\n"), 0o600))
			require.NoError(t, os.WriteFile(filepath.Join(dir, "creds.yml"), []byte("lab:\n  username: u\n  password: p\n"), 0o600))
			require.NoError(t, os.Mkdir(filepath.Join(dir, "sub"), 0o700))
			p := filepath.Join(dir, "poller.yml")
			require.NoError(t, os.WriteFile(p, []byte(tc.doc), 0o600))
			_, err := LoadConfig(p)
			require.Error(t, err)
			t.Log(err)
			require.ErrorContains(t, err, tc.want)
			for _, w := range tc.also {
				require.ErrorContains(t, err, w)
			}
			// Every problem reported names a line, and no secret leaks.
			for _, l := range strings.Split(err.Error(), "\n") {
				require.Regexp(t, `line \d+: `, l)
			}
			require.NotContains(t, err.Error(), "t0ken-value")
			require.NotContains(t, err.Error(), "pw-value")
		})
	}
}

// TestValidConfigBaseLoads keeps the table honest: its base loads.
func TestValidConfigBaseLoads(t *testing.T) {
	dir := t.TempDir()
	require.NoError(t, os.WriteFile(filepath.Join(dir, "inv.yml"), []byte("bmcs: []\n"), 0o600))
	require.NoError(t, os.WriteFile(filepath.Join(dir, "creds.yml"), []byte("{}\n"), 0o600))
	p := filepath.Join(dir, "poller.yml")
	require.NoError(t, os.WriteFile(p, []byte(configBase), 0o600))
	cfg, err := LoadConfig(p)
	require.NoError(t, err)
	require.Equal(t, []string{filepath.Join(dir, "inv.yml")}, cfg.Inventory.Files)
	_ = fmt.Sprint(cfg)
}
