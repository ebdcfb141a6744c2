package e2e

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
	spansPrograms(t)
	const interval = time.Second
	prom := testbed.StartPrometheus(t)
	srv := testbed.StartNATS(t)
	fcfg := fleet.DefaultConfig
	fcfg.Count = 4
	fcfg.Protocols = "redfish"
	fcfg.FirstAddress = netip.MustParseAddr("127.71.0.1")
	sim := testbed.StartSimFleet(t, fcfg, interval)
	invFile, credFile := sim.InvFile, sim.CredFile

	rec := testbed.Record(t, srv.ClientURL())
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

	// pollsBy waits until every BMC has k polls by poller since from, and
	// returns when that was.
	pollsBy := func(poller string, from time.Time, k int) time.Time {
		testbed.Eventually(t, time.Minute, func() bool {
			got := rec.Pollers(from, time.Now())
			if len(got) < fcfg.Count {
				return false
			}
			for _, ps := range got {
				if ps[poller] < k {
					return false
				}
			}
			return true
		}, "%s polled every BMC %d times", poller, k)
		return time.Now()
	}
	// samplesIn waits until Prometheus holds at least min samples of every
	// BMC's bmc_up in [from, to] (the last polls of the window may still be
	// on their way), and returns how many it holds.
	samplesIn := func(from, to time.Time, min int) map[string]int {
		var got map[string]int
		testbed.Eventually(t, time.Minute, func() bool {
			got = perSeries(from, to)
			if len(got) < fcfg.Count {
				return false
			}
			for _, n := range got {
				if n < min {
					return false
				}
			}
			return true
		}, "every BMC's samples of [%v, %v] written", from, to)
		return got
	}

	// Both pollers own every BMC once ha-b polled each.
	pollsBy("ha-b", time.Now(), 1)
	from := time.Now()
	to := pollsBy("ha-b", from, 6)
	// Both pollers poll every BMC each second; Prometheus holds one sample
	// per poll: about 6, never about 12.
	for bmc, n := range samplesIn(from, to, 5) {
		require.InDelta(t, 6, n, 1, "bmc %s: one sample per poll", bmc)
	}
	for _, mf := range mustGather(t, reg) {
		if mf.GetName() == "bmcstream_remote_write_samples_dropped_total" {
			for _, m := range mf.GetMetric() {
				require.Zero(t, m.GetCounter().GetValue(), "nothing rejected by the receiver")
			}
		}
	}
	require.Positive(t, testbed.MustMetricValue(t, reg, "bmcstream_gateway_dedup_snapshots_rejected_total", "reason", "not_leader", "sink", "prom"))

	// Stop one poller (whichever leads, the other carries on); after the
	// failover time the follower's polls are the ones written.
	stopA()
	stopped := time.Now()
	samplesIn(stopped, time.Now().Add(time.Minute), 1) // the failover time passed for every BMC
	from = time.Now()
	to = pollsBy("ha-b", from, 5)
	for bmc, n := range samplesIn(from, to, 4) {
		require.InDelta(t, 5, n, 1, "bmc %s: the survivor's polls arrive", bmc)
	}
	// ha-a led every BMC; the survivor took over.
	require.Positive(t, testbed.MustMetricValue(t, reg, "bmcstream_gateway_ha_failovers_total", "sink", "prom"))
}
