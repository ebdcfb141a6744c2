package poller

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/bmcstream/bmcstream/pkg/inventory"
	"github.com/bmcstream/bmcstream/pkg/secret"
	"github.com/bmcstream/bmcstream/pkg/sources"
	v1 "github.com/bmcstream/bmcstream/proto/bmcstream/v1"
)

func TestExampleConfig(t *testing.T) {
	cfg, err := LoadConfig("../../examples/poller.yml")
	require.NoError(t, err)
	require.Equal(t, "static", cfg.Sharding.Mode)
	_, err = New(cfg, Options{NewSource: func(inventory.BMC, v1.Protocol, string, secret.Secret) (sources.Source, error) { return nil, nil }})
	require.NoError(t, err)
}

func TestConfigErrors(t *testing.T) {
	const base = "inventory:\n  files: [x.yml]\n"
	for _, tc := range []struct {
		name, doc string
		want      []string
	}{
		{"unknown key", base + "polling:\n  max_concurent: 3\n", []string{"line 4", "max_concurent"}},
		{"no inventory", "nats:\n  url: nats://x\n", []string{"inventory.files"}},
		{"bad shard", base + "sharding:\n  shard: 2\n  shards: 2\n", []string{"shard 2 of 2"}},
		{"bad mode", base + "sharding:\n  mode: ring\n", []string{`sharding.mode: "ring"`}},
		{"dynamic needs jetstream", base + "nats:\n  mode: core\nsharding:\n  mode: dynamic\n", []string{"needs nats.mode jetstream"}},
		{"bad suite", base + "ipmi:\n  cipher_suite: 1\n", []string{"ipmi.cipher_suite: 1"}},
		{"bad duration", base + "polling:\n  request_timeout: fast\n", []string{"line 4"}},
		{"bad id", base + "poller_id: a.b\n", []string{"poller_id"}},
		{"rf", base + "sharding:\n  replication_factor: 0\n", []string{"replication_factor"}},
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
