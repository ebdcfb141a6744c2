package gateway

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// gwBase is a valid configuration whose keys are on lines 1 to 5; cases
// append to it from line 6, or write their own sink list.
const gwBase = `inventory:
  files: [inv.yml]
remote_write:
  - name: prom
    url: http://127.0.0.1:9090/api/v1/write
`

// gwSink starts a document with inventory and one sink (lines 1 to 5) to
// which a case adds sink keys from line 6.
const gwSink = gwBase

// TestInvalidConfigTable has one case per kind of invalid gateway
// configuration. Each must fail LoadConfig with an error naming the YAML
// path of the offending key and its line, as "line N: path".
func TestInvalidConfigTable(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		doc  string
		want string   // "line N: path"
		also []string // further substrings of the message
	}{
		// Decoding.
		{"unknown top-level key", gwBase + "inventroy:\n  files: []\n", "line 6: inventroy: unknown key", nil},
		{"unknown nested key", gwBase + "nats:\n  url: nats://x:4222\n  moed: core\n", "line 8: nats.moed: unknown key", nil},
		{"unknown sink key", gwSink + "    queue:\n      shards: 2\n", "line 6: remote_write[0].queue: unknown key", nil},
		{"unknown queue key", gwSink + "    queue_config:\n      shard: 2\n", "line 7: remote_write[0].queue_config.shard: unknown key", nil},
		{"unknown key of the second sink", gwSink + "  - name: vm\n    url: http://127.0.0.1:8428/api/v1/write\n    tenant: x\n", "line 8: remote_write[1].tenant: unknown key", nil},
		{"key given twice", gwBase + "consumer:\n  fetch_batch: 1\n  fetch_batch: 2\n", "line 8: consumer.fetch_batch", nil},
		{"wrong type: word for a number", gwBase + "consumer:\n  fetch_batch: many\n", "line 7: consumer.fetch_batch", []string{"cannot unmarshal"}},
		{"wrong type: list for a number", gwBase + "consumer:\n  max_ack_pending: [1]\n", "line 7: consumer.max_ack_pending", []string{"cannot unmarshal !!seq"}},
		{"wrong type: word for a bool", gwBase + "automation:\n  enabled: sometimes\n", "line 7: automation.enabled", nil},
		{"wrong type: map for the sink list", "remote_write:\n  name: prom\n", "line 2: remote_write", []string{"cannot unmarshal !!map"}},
		{"bad duration", gwBase + "consumer:\n  ack_wait: soon\n", "line 7: consumer.ack_wait", []string{`"soon"`}},
		{"bad sink duration", gwSink + "    remote_timeout: 30 seconds\n", "line 6: remote_write[0].remote_timeout", nil},
		{"bad queue duration", gwSink + "    queue_config:\n      min_backoff: fast\n", "line 7: remote_write[0].queue_config.min_backoff", nil},
		{"unparsable sink url", "remote_write:\n  - name: prom\n    url: ':/x'\n", "line 3: remote_write[0].url", nil},
		{"unparsable sink url with a password", "remote_write:\n  - name: prom\n    url: 'http://u:pw-value@ho st/x'\n", "line 3: remote_write[0].url", []string{"u:<secret>@"}},

		// Zero or negative where positive is needed.
		{"zero max ack pending", gwBase + "consumer:\n  max_ack_pending: 0\n", "line 7: consumer.max_ack_pending: must be at least 1", nil},
		{"zero fetch batch", gwBase + "consumer:\n  fetch_batch: 0\n", "line 7: consumer.fetch_batch: must be at least 1", nil},
		{"short ack wait", gwBase + "consumer:\n  ack_wait: 10ms\n", "line 7: consumer.ack_wait: must be at least 1s", nil},
		{"zero remote timeout", gwSink + "    remote_timeout: 0s\n", "line 6: remote_write[0].remote_timeout: must be positive", nil},
		{"zero shards", gwSink + "    queue_config:\n      shards: -1\n", "line 7: remote_write[0].queue_config.shards", nil},
		{"zero capacity", gwSink + "    queue_config:\n      capacity: -1\n", "line 7: remote_write[0].queue_config.capacity", nil},
		{"zero batch size", gwSink + "    queue_config:\n      max_samples_per_send: -1\n", "line 7: remote_write[0].queue_config.max_samples_per_send", nil},
		{"too many partitions", gwBase + "nats:\n  stream:\n    partitions: 5000\n", "line 8: nats.stream.partitions: must be 0 to 1024", nil},
		{"partitions in core mode", gwBase + "nats:\n  mode: core\n  stream:\n    partitions: 4\n", "line 9: nats.stream.partitions: partitions need nats.mode jetstream", nil},
		{"short replica ttl", gwBase + "replicas:\n  ttl: 100ms\n", "line 7: replicas.ttl: must be at least 1s", nil},
		{"bad replica id", gwBase + "replicas:\n  id: gw.1\n", "line 7: replicas.id", []string{"letters, digits"}},
		{"zero stream max age", gwBase + "nats:\n  stream:\n    max_age: 0s\n", "line 8: nats.stream.max_age", nil},
		{"too many replicas", gwBase + "nats:\n  stream:\n    replicas: 0\n", "line 8: nats.stream.replicas", nil},

		// Missing required fields.
		{"no sinks", "nats:\n  url: nats://x:4222\n", "line 1: remote_write: at least one sink is required", nil},
		{"empty sink list", "remote_write: []\n", "line 1: remote_write: at least one sink is required", nil},
		{"sink without url", "remote_write:\n  - name: prom\n", "line 2: remote_write[0].url: must be set", nil},
		{"sink without name", "remote_write:\n  - url: http://x:9090/api/v1/write\n", "line 2: remote_write[0].name: must be set", nil},
		{"empty rule file path", gwBase + "normalise:\n  rule_files: ['']\n", "line 7: normalise.rule_files[0]: empty path", nil},
		{"embedded without store", gwBase + "nats:\n  embedded:\n    enabled: true\n", "line 7: nats.embedded.store_dir: required", nil},

		// Bad URLs.
		{"sink url scheme", "remote_write:\n  - name: prom\n    url: ftp://x/api/v1/write\n", "line 3: remote_write[0].url: scheme \"ftp\"", nil},
		{"sink url without host", "remote_write:\n  - name: prom\n    url: 'http:///api/v1/write'\n", "line 3: remote_write[0].url", []string{"no host"}},
		{"nats url scheme", gwBase + "nats:\n  url: http://x:4222\n", "line 7: nats.url: server 1: scheme", nil},
		{"nats url port", gwBase + "nats:\n  url: nats://x:0\n", "line 7: nats.url: server 1: port", nil},

		// Bad values.
		{"bad nats mode", gwBase + "nats:\n  mode: kafka\n", "line 7: nats.mode", nil},
		{"bad sink name", "remote_write:\n  - name: a.b\n    url: http://x:9090/api/v1/write\n", "line 2: remote_write[0].name", []string{"names a NATS consumer"}},
		{"reserved sink name", "remote_write:\n  - name: automation\n    url: http://x:9090/api/v1/write\n", "line 2: remote_write[0].name", []string{"reserved"}},
		{"duplicate sink name", gwSink + "  - name: prom\n    url: http://y:9090/api/v1/write\n", "line 6: remote_write[1].name", []string{"used twice"}},
		{"bad consumer prefix", gwBase + "consumer:\n  name_prefix: a b\n", "line 7: consumer.name_prefix", nil},
		{"reserved header", gwSink + "    headers:\n      Content-Type: text/plain\n", "line 6: remote_write[0].headers", []string{"reserved"}},
		{"bad rollup label", gwBase + "rollup:\n  group_by: [bmc]\n", "line 7: rollup.group_by", nil},
		{"kv bucket over core nats", strings.Replace(gwBase, "[inv.yml]\n", "[inv.yml]\n  kv_bucket: inv\n", 1) + "nats:\n  mode: core\n", "line 3: inventory.kv_bucket", []string{"needs nats.mode jetstream"}},
		{"bad kv bucket name", strings.Replace(gwBase, "[inv.yml]\n", "[inv.yml]\n  kv_bucket: a.b\n", 1), "line 3: inventory.kv_bucket", nil},

		// Conflicting options.
		{"two nats auth methods", gwBase + "nats:\n  token: t0ken-value\n  nkey_seed_file: x.nk\n", "line 6: nats: set at most one of", nil},
		{"token and token file", gwBase + "nats:\n  token: t0ken-value\n  token_file: tok\n", "line 6: nats: token and token_file", nil},
		{"two sink auth methods", gwSink + "    basic_auth:\n      username: u\n      password: pw-value\n    authorization:\n      credentials: cr-value\n", "line 4: remote_write[0]", []string{"at most one of basic_auth, oauth2 & authorization"}},
		{"org id and its header", gwSink + "    org_id: a\n    headers:\n      X-Scope-OrgID: b\n", "line 7: remote_write[0].headers", []string{"conflicts with org_id"}},

		// Relabel and remote-write settings.
		{"bad relabel action", gwSink + "    write_relabel_configs:\n      - action: explode\n", "line 7: remote_write[0].write_relabel_configs[0].action", []string{"explode"}},
		{"bad relabel regex", gwSink + "    write_relabel_configs:\n      - source_labels: [sensor]\n        regex: '(unclosed'\n", "line 8: remote_write[0].write_relabel_configs[0].regex", nil},
		{"relabel without target", gwSink + "    write_relabel_configs:\n      - action: replace\n        source_labels: [a]\n", "line 7: remote_write[0].write_relabel_configs[0]", []string{"target_label"}},
		{"bad relabel label name", gwSink + "    write_relabel_configs:\n      - action: labeldrop\n        regex: x\n        source_labels: ['1a']\n", "line 7: remote_write[0].write_relabel_configs[0]", nil},

		// Referenced files.
		{"missing inventory file", strings.Replace(gwBase, "[inv.yml]", "[nope.yml]", 1), "line 2: inventory.files[0]", []string{"no such file"}},
		{"inventory file is a directory", strings.Replace(gwBase, "[inv.yml]", "[sub]", 1), "line 2: inventory.files[0]", []string{"is a directory"}},
		{"missing rule file", gwBase + "normalise:\n  rule_files: [rules.yml]\n", "line 7: normalise.rule_files[0]", []string{"no such file"}},
		{"missing nats creds file", gwBase + "nats:\n  creds_file: x.creds\n", "line 7: nats.creds_file", []string{"no such file"}},
		{"missing nats ca file", gwBase + "nats:\n  tls:\n    ca_file: ca.pem\n", "line 8: nats.tls.ca_file", []string{"no such file"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			require.NoError(t, os.WriteFile(filepath.Join(dir, "inv.yml"), []byte("bmcs:\n  - id: a\n    address: 127.0.0.1\n"), 0o600))
			require.NoError(t, os.Mkdir(filepath.Join(dir, "sub"), 0o700))
			p := filepath.Join(dir, "gateway.yml")
			require.NoError(t, os.WriteFile(p, []byte(tc.doc), 0o600))
			_, err := LoadConfig(p)
			require.Error(t, err)
			t.Log(err)
			require.ErrorContains(t, err, tc.want)
			for _, w := range tc.also {
				require.ErrorContains(t, err, w)
			}
			for _, l := range strings.Split(err.Error(), "\n") {
				require.Regexp(t, `line \d+: `, l)
			}
			for _, s := range []string{"t0ken-value", "pw-value", "cr-value"} {
				require.NotContains(t, err.Error(), s)
			}
		})
	}
}

// TestValidConfigBaseLoads keeps the table honest: its base loads.
func TestValidConfigBaseLoads(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	require.NoError(t, os.WriteFile(filepath.Join(dir, "inv.yml"), []byte("bmcs: []\n"), 0o600))
	p := filepath.Join(dir, "gateway.yml")
	require.NoError(t, os.WriteFile(p, []byte(gwBase), 0o600))
	_, err := LoadConfig(p)
	require.NoError(t, err)
}
