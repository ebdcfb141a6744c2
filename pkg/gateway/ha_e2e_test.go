package gateway_test

import (
	"context"
	"fmt"
	"log/slog"
	"net/netip"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/bmcstream/bmcstream/internal/testbed"
	"github.com/bmcstream/bmcstream/pkg/bmcsim/fleet"
	"github.com/bmcstream/bmcstream/pkg/poller"
)

// TestHAPollersIntoPrometheus runs two real pollers as an HA pair
// (replication factor 2) on a simulated fleet into the gateway and a real
// Prometheus: every series gets exactly one sample per poll, none is
// rejected as out of order, and when the leading poller stops the
// follower's samples are accepted after the failover time.
func TestHAPollersIntoPrometheus(t *testing.T) {
	if testing.Short() {
		t.Skip("runs pollers for several intervals")
	}
	const interval = time.Second
	prom := testbed.StartPrometheus(t)
	srv := natsServer(t)
	fcfg := fleet.DefaultConfig
	fcfg.Count = 4
	fcfg.Protocols = "redfish"
	fcfg.FirstAddress = netip.MustParseAddr("127.71.0.1")
	sim := testbed.StartSimFleet(t, fcfg, interval)
	invFile, credFile := sim.InvFile, sim.CredFile

	_, reg := startGatewayInProcess(t, srv.ClientURL(), invFile, prom.WriteURL(), "ha_tracker:\n  failover_timeout: 3s\n")
	run := func(id string) context.CancelFunc {
		cfg, err := poller.ParseConfig([]byte(fmt.Sprintf("poller_id: %s\nnats:\n  url: %s\ninventory:\n  files: [%s]\n  credentials_file: %s\nsharding:\n  mode: dynamic\n  ttl: 2s\n  replication_factor: 2\n",
			id, srv.ClientURL(), invFile, credFile)))
		require.NoError(t, err)
		p, err := poller.New(cfg, poller.Options{NewSource: poller.DefaultSources(cfg, slog.New(slog.DiscardHandler)), ShutdownTimeout: 5 * time.Second})
		require.NoError(t, err)
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() { done <- p.Run(ctx) }()
		var stopped bool
		stop := func() {
			if !stopped {
				stopped = true
				cancel()
				require.NoError(t, <-done)
			}
		}
		t.Cleanup(stop)
		return stop
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	perSeries := func(from, to time.Time) map[string]int {
		got, err := prom.RawSamples(ctx, `bmc_up`, to.Sub(from), to)
		require.NoError(t, err)
		out := map[string]int{}
		for _, s := range got {
			out[s.Labels["bmc"]] = len(s.Samples)
		}
		return out
	}
	// ha-a alone until every BMC's polls are written: it leads them all
	// (on a loaded machine ha-b could otherwise publish first for some).
	start := time.Now().Add(-time.Second)
	stopA := run("ha-a")
	require.Eventually(t, func() bool {
		got, err := prom.RawSamples(ctx, `bmc_up`, time.Since(start), time.Now())
		return err == nil && len(got) == fcfg.Count
	}, time.Minute, 200*time.Millisecond, "ha-a's polls of every BMC are written")
	run("ha-b")

	time.Sleep(4 * time.Second) // both pollers own every BMC
	from := time.Now()
	time.Sleep(6 * time.Second)
	to := time.Now()
	// Both pollers poll every BMC each second; Prometheus holds one sample
	// per poll: about 6, never about 12.
	for bmc, n := range perSeries(from, to) {
		require.InDelta(t, 6, n, 1, "bmc %s: one sample per poll", bmc)
	}
	for _, mf := range mustGather(t, reg) {
		if mf.GetName() == "bmcstream_remote_write_samples_dropped_total" {
			for _, m := range mf.GetMetric() {
				require.Zero(t, m.GetCounter().GetValue(), "nothing rejected by the receiver")
			}
		}
	}
	require.Positive(t, counterValue(t, reg, "bmcstream_gateway_dedup_snapshots_rejected_total", "reason", "not_leader", "sink", "prom"))

	// Stop one poller (whichever leads, the other carries on); after the
	// failover time the follower's polls are the ones written.
	stopA()
	time.Sleep(3*time.Second + 2*interval)
	from = time.Now()
	time.Sleep(5 * time.Second)
	for bmc, n := range perSeries(from, time.Now()) {
		require.InDelta(t, 5, n, 1, "bmc %s: the survivor's polls arrive", bmc)
	}
	// ha-a led every BMC; the survivor took over.
	require.Positive(t, counterValue(t, reg, "bmcstream_gateway_ha_failovers_total", "sink", "prom"))
}
