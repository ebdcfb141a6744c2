package e2e

import (
	"context"
	"fmt"
	"log/slog"
	"net/netip"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"github.com/stretchr/testify/require"

	"github.com/bmcstream/bmcstream/internal/testbed"
	"github.com/bmcstream/bmcstream/pkg/bmcsim/fleet"
	"github.com/bmcstream/bmcstream/pkg/gateway"
	"github.com/bmcstream/bmcstream/pkg/poller"
)

// sinkYAML is one remote_write entry with short batching and backoff, so
// what is sent arrives within a test's patience.
func sinkYAML(name, url string) string {
	return fmt.Sprintf(`
  - name: %s
    url: %s
    queue_config:
      batch_send_deadline: 100ms
      min_backoff: 10ms
      max_backoff: 200ms
`, name, url)
}

// startGatewayInProcess runs a gateway with one Prometheus sink until the
// test ends.
func startGatewayInProcess(t *testing.T, natsURL, invFile, writeURL, extra string) (*gateway.Gateway, *prometheus.Registry) {
	t.Helper()
	cfg, err := gateway.ParseConfig([]byte(fmt.Sprintf(`
nats:
  url: %s
inventory:
  files: [%s]
%s
remote_write:%s`, natsURL, invFile, extra, sinkYAML("prom", writeURL))))
	require.NoError(t, err)
	reg := prometheus.NewRegistry()
	gw, err := gateway.New(cfg, gateway.Options{Registerer: reg, Version: "test", ShutdownTimeout: 5 * time.Second})
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() { errc <- gw.Run(ctx) }()
	t.Cleanup(func() { cancel(); require.NoError(t, <-errc) })
	require.Eventually(t, gw.Ready, 20*time.Second, 20*time.Millisecond)
	return gw, reg
}

func mustGather(t *testing.T, reg *prometheus.Registry) []*dto.MetricFamily {
	t.Helper()
	mfs, err := reg.Gather()
	require.NoError(t, err)
	return mfs
}

// simbed is a simulated fleet, its inventory files and an embedded NATS.
type simbed struct {
	fleet    *fleet.Fleet
	invFile  string
	credFile string
	nats     *server.Server
	interval time.Duration
}

// newSimbed starts n simulated BMCs from first on (each test its own
// block of loopback addresses) and a NATS server with JetStream.
func newSimbed(t *testing.T, first string, n int, protocols string, interval time.Duration) *simbed {
	t.Helper()
	cfg := fleet.DefaultConfig
	cfg.Count = n
	cfg.Protocols = protocols
	cfg.FirstAddress = netip.MustParseAddr(first)
	sim := testbed.StartSimFleet(t, cfg, interval)
	return &simbed{fleet: sim.Fleet, invFile: sim.InvFile, credFile: sim.CredFile, nats: testbed.StartNATS(t), interval: interval}
}

// pollerConfig is a poller's configuration for the bed, extra appended.
func (tb *simbed) pollerConfig(t *testing.T, id, extra string) *poller.Config {
	t.Helper()
	cfg, err := poller.ParseConfig([]byte(fmt.Sprintf(`
poller_id: %s
nats:
  url: %s
inventory:
  files: [%s]
  credentials_file: %s
%s`, id, tb.nats.ClientURL(), tb.invFile, tb.credFile, extra)))
	require.NoError(t, err)
	return cfg
}

// runPoller runs an in-process poller until the returned stop is called
// (at the latest when the test ends).
func runPoller(t *testing.T, cfg *poller.Config) (*poller.Poller, *prometheus.Registry, func()) {
	t.Helper()
	reg := prometheus.NewRegistry()
	p, err := poller.New(cfg, poller.Options{ShutdownTimeout: 5 * time.Second, Registerer: reg, NewSource: poller.DefaultSources(cfg, slog.New(slog.DiscardHandler))})
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- p.Run(ctx) }()
	require.Eventually(t, p.Ready, 20*time.Second, 20*time.Millisecond)
	var once sync.Once
	stop := func() {
		once.Do(func() {
			cancel()
			require.NoError(t, <-done)
		})
	}
	t.Cleanup(stop)
	return p, reg, stop
}

func buildGateway(t *testing.T) string {
	return testbed.Build(t, "github.com/bmcstream/bmcstream/cmd/gateway")
}

// ctxFor is a context that ends after d or with the test.
func ctxFor(t *testing.T, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}
