package gateway

import (
	"testing"
	"time"

	"github.com/prometheus/common/model"
	"github.com/stretchr/testify/require"

	"github.com/bmcstream/bmcstream/pkg/bus"
)

func TestParseConfigDefaults(t *testing.T) {
	t.Parallel()
	cfg, err := ParseConfig([]byte(`
remote_write:
  - name: prom
    url: http://127.0.0.1:9090/api/v1/write
`))
	require.NoError(t, err)
	require.Equal(t, bus.ModeJetStream, cfg.NATS.Mode)
	require.Equal(t, "BMC_RAW", cfg.NATS.Stream.Name)
	require.Equal(t, DefaultConsumerConfig, cfg.Consumer)
	require.Equal(t, model.Duration(30*time.Second), cfg.RemoteWrite[0].RemoteTimeout)
	require.Equal(t, 2000, cfg.RemoteWrite[0].QueueConfig.MaxSamplesPerSend)
}

func TestParseConfigErrors(t *testing.T) {
	t.Parallel()
	const sink = "remote_write:\n  - name: prom\n    url: http://127.0.0.1:9090/api/v1/write\n"
	for _, tc := range []struct {
		name, doc string
		want      []string
	}{
		{"unknown top-level key", sink + "inventroy:\n  files: []\n", []string{"line 4", "inventroy"}},
		{"unknown nested key", "nats:\n  url: nats://x\n  moed: core\n" + sink, []string{"line 3", "moed"}},
		{"unknown sink key", "remote_write:\n  - name: prom\n    url: http://x\n    queue:\n      shards: 2\n", []string{"line 4", "queue"}},
		{"bad duration", sink + "consumer:\n  ack_wait: soon\n", []string{"line 5", "soon"}},
		{"wrong type", sink + "consumer:\n  fetch_batch: many\n", []string{"line 5"}},
		{"no sinks", "nats:\n  url: nats://x\n", []string{"remote_write: at least one sink"}},
		{"duplicate sink", sink + "  - name: prom\n    url: http://y\n", []string{`remote_write[1].name: "prom" is used twice`}},
		{"bad sink name", "remote_write:\n  - name: a.b\n    url: http://x\n", []string{"names a NATS consumer"}},
		{"bad mode", "nats:\n  mode: kafka\n" + sink, []string{"nats.mode"}},
		{"small ack wait", sink + "consumer:\n  ack_wait: 10ms\n", []string{"consumer.ack_wait"}},
		{"embedded without store", "nats:\n  embedded:\n    enabled: true\n" + sink, []string{"nats.embedded.store_dir"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ParseConfig([]byte(tc.doc))
			require.Error(t, err)
			for _, w := range tc.want {
				require.ErrorContains(t, err, w)
			}
		})
	}
}

func TestNewRejectsMissingInventory(t *testing.T) {
	t.Parallel()
	cfg, err := ParseConfig([]byte("inventory:\n  files: [/nonexistent/inv.yml]\nremote_write:\n  - name: p\n    url: http://x\n"))
	require.NoError(t, err)
	_, err = New(cfg, Options{})
	require.ErrorContains(t, err, "/nonexistent/inv.yml")
}

// The shipped example must stay valid.
func TestExampleConfig(t *testing.T) {
	t.Parallel()
	cfg, err := LoadConfig("../../examples/gateway.yml")
	require.NoError(t, err)
	require.Len(t, cfg.RemoteWrite, 2)
	require.Equal(t, "dc-east", cfg.RemoteWrite[1].OrgID)
	_, err = New(cfg, Options{})
	require.NoError(t, err)
}
