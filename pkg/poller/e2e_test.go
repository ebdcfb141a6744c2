package poller

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
	"github.com/stretchr/testify/require"

	"github.com/bmcstream/bmcstream/internal/testbed"
	"github.com/bmcstream/bmcstream/pkg/bmcsim/fleet"
	v1 "github.com/bmcstream/bmcstream/proto/bmcstream/v1"
)

// simbed is a simulated fleet, its inventory files and an embedded NATS.
type simbed struct {
	fleet    *fleet.Fleet
	invFile  string
	credFile string
	nats     *server.Server
	interval time.Duration
}

var addrBlock sync.Mutex
var nextBlock = 50

// newTestbed starts n simulated BMCs on their own loopback addresses and a
// NATS server with JetStream.
func newTestbed(t *testing.T, n int, protocols string, interval time.Duration) *simbed {
	t.Helper()
	addrBlock.Lock()
	block := nextBlock
	nextBlock++
	addrBlock.Unlock()
	cfg := fleet.DefaultConfig
	cfg.Count = n
	cfg.Protocols = protocols
	cfg.FirstAddress = netip.MustParseAddr(fmt.Sprintf("127.%d.0.1", block))
	sim := testbed.StartSimFleet(t, cfg, interval)
	tb := &simbed{fleet: sim.Fleet, invFile: sim.InvFile, credFile: sim.CredFile, interval: interval}
	srv := startJetStream(t)
	tb.nats = srv
	return tb
}

func (tb *simbed) config(t *testing.T, id, extra string) *Config {
	t.Helper()
	cfg, err := ParseConfig([]byte(fmt.Sprintf(`
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

// runPoller runs an in-process poller until the returned stop is called.
func runPoller(t *testing.T, cfg *Config) (*Poller, *prometheus.Registry, func()) {
	t.Helper()
	reg := prometheus.NewRegistry()
	p, err := New(cfg, Options{ShutdownTimeout: 5 * time.Second, Registerer: reg, NewSource: DefaultSources(cfg, slog.New(slog.DiscardHandler))})
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

// fleetIDs returns the IDs of the testbed's simulated BMCs.
func (tb *simbed) fleetIDs() []string {
	ids := make([]string, 0, len(tb.fleet.Members))
	for _, m := range tb.fleet.Members {
		ids = append(ids, m.BMC.ID)
	}
	return ids
}

func TestPollsEveryOwnedBMC(t *testing.T) {
	t.Parallel()
	tb := newTestbed(t, 12, "both", 2*time.Second)
	rec := testbed.Record(t, tb.nats.ClientURL())
	start := time.Now()
	p, _, stop := runPoller(t, tb.config(t, "solo", ""))
	require.Eventually(t, func() bool {
		return len(rec.Pollers(start, time.Now())) == 12
	}, 10*time.Second, 100*time.Millisecond)
	// Two more polls of every BMC, on the sessions the first opened: the
	// slot after again and the one after that, an interval or more past it.
	again := time.Now()
	testbed.Eventually(t, 4*tb.interval, func() bool { return rec.PolledSince(tb.fleetIDs(), again.Add(tb.interval)) },
		"every BMC polled twice more")
	snaps := rec.Snapshots()
	var good, protos = 0, map[v1.Protocol]int{}
	for _, s := range snaps {
		if s.Up && len(s.Readings) > 0 {
			good++
		}
		protos[s.Protocol]++
		require.Equal(t, "solo", s.PollerId)
	}
	require.Positive(t, protos[v1.Protocol_PROTOCOL_REDFISH])
	require.Positive(t, protos[v1.Protocol_PROTOCOL_IPMI])
	require.Equal(t, len(snaps), good, "every poll of a healthy BMC is up with readings")
	require.Len(t, p.Statuses(), 12)
	require.Equal(t, 24, p.sessions(), "one session per BMC and protocol")
	stop()
	// Graceful shutdown logged out of every session.
	for _, m := range tb.fleet.Members {
		rs, is := tb.fleet.SessionCounts(m.BMC.ID)
		require.Zero(t, rs, m.BMC.ID)
		require.Zero(t, is, m.BMC.ID)
	}
}
