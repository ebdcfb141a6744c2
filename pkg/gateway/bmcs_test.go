package gateway_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/bmcstream/bmcstream/internal/synth"
	"github.com/bmcstream/bmcstream/internal/testbed"
	"github.com/bmcstream/bmcstream/pkg/gateway"
	v1 "github.com/bmcstream/bmcstream/proto/bmcstream/v1"
)

// unknownSnapshot is a poll of a BMC the inventory does not list: the
// synthetic fleet's first BMC under another id.
func unknownSnapshot(f synth.Fleet, id string, at time.Time, seq uint64) *v1.Snapshot {
	s := f.Snapshot(0, at, "p", 1, seq)
	s.BmcId = id
	return s
}

// TestUnknownBMCsBoundedAndForgotten runs a gateway keeping state for at
// most three BMCs missing from its inventory, forgetting BMCs after 2 s
// without a snapshot. Five unknown BMCs publish: three are kept (written
// with the bmc label only), two refused and counted; the two known BMCs are
// untouched. While the known BMCs keep publishing, the unknown ones stop:
// after forget_after they are forgotten (counted, their series ended with
// staleness markers), which frees room for new unknown BMCs. When every
// BMC stops, the known ones are forgotten too.
func TestUnknownBMCsBoundedAndForgotten(t *testing.T) {
	t.Parallel()
	prom := testbed.StartPrometheus(t)
	srv := testbed.StartNATS(t)
	pub, _ := publisher(t, srv.ClientURL())
	fleet := synth.NewFleet(2)
	_, reg := startGatewayInProcess(t, srv.ClientURL(), writeInventory(t, fleet), prom.WriteURL(),
		"  max_unknown_bmcs: 3\n  forget_after: 2s\nautomation:\n  enabled: false\n")
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	tracked := func(known string) float64 {
		return testbed.MetricValue(t, reg, "bmcstream_gateway_bmcs_tracked", "known", known, "sink", "prom")
	}
	result := func(r string) float64 {
		return testbed.MetricValue(t, reg, "bmcstream_gateway_snapshots_total", "result", r, "sink", "prom")
	}
	forgotten := func(reason string) float64 {
		return testbed.MetricValue(t, reg, "bmcstream_gateway_bmcs_forgotten_total", "reason", reason, "sink", "prom")
	}

	start := time.Now().Add(-time.Minute).Truncate(time.Second)
	seq := uint64(0)
	publishKnown := func(at time.Time) {
		seq++
		for i := range fleet.BMCs {
			require.NoError(t, pub.Publish(ctx, fleet.Snapshot(i, at, "p", 1, seq)))
		}
	}
	publishKnown(start)
	for i := range 5 {
		require.NoError(t, pub.Publish(ctx, unknownSnapshot(fleet, fmt.Sprintf("u-%d", i), start, 1)))
	}
	require.Eventually(t, func() bool { return result("ok")+result("unknown_bmc_limit") == 7 }, 30*time.Second, 20*time.Millisecond)
	require.Equal(t, 2.0, result("unknown_bmc_limit"), "the fourth and fifth unknown BMCs")
	require.Equal(t, 3.0, tracked("false"))
	require.Equal(t, 2.0, tracked("true"))
	got := prom.WaitFor(ctx, t, `count by (bmc) (bmc_up{bmc=~"u-.*"})`, func(s []testbed.Series) bool { return len(s) == 3 })
	var kept []string
	for _, s := range got {
		kept = append(kept, s.Labels["bmc"])
	}
	require.ElementsMatch(t, []string{"u-0", "u-1", "u-2"}, kept, "the first three are kept, in stream order")

	// The known BMCs go on polling; the unknown ones stopped.
	// They poll every 250 ms (a poll's timestamp a second on each time,
	// so each is newer than the last).
	at := start
	stopped := time.Now()
	tick := time.NewTicker(250 * time.Millisecond)
	defer tick.Stop()
	for forgotten(gatewayForgetInactive) < 3 {
		require.Less(t, time.Since(stopped), 30*time.Second, "unknown BMCs never forgotten")
		at = at.Add(time.Second)
		publishKnown(at)
		<-tick.C
	}
	require.Equal(t, 3.0, forgotten(gatewayForgetInactive))
	require.Equal(t, 0.0, tracked("false"))
	require.Equal(t, 2.0, tracked("true"), "the known BMCs polling are kept")
	require.GreaterOrEqual(t, time.Since(stopped), 2*time.Second, "forgotten before forget_after")
	// Their series ended at once (staleness markers), not after the lookback.
	prom.WaitFor(ctx, t, `count(bmc_up{bmc=~"u-.*"})`, func(s []testbed.Series) bool { return len(s) == 0 })

	// Room again: a new unknown BMC is kept.
	require.NoError(t, pub.Publish(ctx, unknownSnapshot(fleet, "u-9", at, 1)))
	require.Eventually(t, func() bool { return tracked("false") == 1 }, 30*time.Second, 20*time.Millisecond)
	require.Equal(t, 2.0, result("unknown_bmc_limit"))

	// Everything stops: the whole stream is quiet, every BMC is forgotten.
	require.Eventually(t, func() bool { return tracked("true")+tracked("false") == 0 }, 30*time.Second, 100*time.Millisecond)
	require.Equal(t, 6.0, forgotten(gatewayForgetInactive))
	prom.WaitFor(ctx, t, `count(bmc_up)`, func(s []testbed.Series) bool { return len(s) == 0 })
	// A BMC back after being forgotten starts afresh and is written.
	publishKnown(at.Add(time.Second))
	require.Eventually(t, func() bool { return tracked("true") == 2 }, 30*time.Second, 20*time.Millisecond)
	prom.WaitFor(ctx, t, `count(bmc_up)`, func(s []testbed.Series) bool { return len(s) == 1 && s[0].Samples[0].V == 2 })
}

// gatewayForgetInactive is the reason label of a BMC forgotten for
// inactivity.
const gatewayForgetInactive = "inactive"

// TestRejectUnknownBMCs refuses every snapshot of a BMC missing from the
// inventory, on every consumer: counted, terminated, never written, and no
// state kept; the known BMCs are delivered.
func TestRejectUnknownBMCs(t *testing.T) {
	t.Parallel()
	prom := testbed.StartPrometheus(t)
	srv := testbed.StartNATS(t)
	pub, js := publisher(t, srv.ClientURL())
	fleet := synth.NewFleet(2)
	_, reg := startGatewayInProcess(t, srv.ClientURL(), writeInventory(t, fleet), prom.WriteURL(), "  reject_unknown_bmcs: true\n")
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	at := time.Now().Add(-10 * time.Second).Truncate(time.Second)
	for i := range fleet.BMCs {
		require.NoError(t, pub.Publish(ctx, fleet.Snapshot(i, at, "p", 1, 1)))
	}
	for i := range 20 {
		require.NoError(t, pub.Publish(ctx, unknownSnapshot(fleet, fmt.Sprintf("u-%d", i), at, 1)))
	}
	for _, sink := range []string{"prom", "automation"} {
		require.Eventually(t, func() bool {
			return testbed.MetricValue(t, reg, "bmcstream_gateway_snapshots_total", "result", "unknown_bmc", "sink", sink) == 20
		}, 30*time.Second, 20*time.Millisecond, sink)
		require.Equal(t, 2.0, testbed.MetricValue(t, reg, "bmcstream_gateway_snapshots_total", "result", "ok", "sink", sink), sink)
		require.Equal(t, 0.0, testbed.MetricValue(t, reg, "bmcstream_gateway_bmcs_tracked", "known", "false", "sink", sink), sink)
		require.Equal(t, 2.0, testbed.MetricValue(t, reg, "bmcstream_gateway_bmcs_tracked", "known", "true", "sink", sink), sink)
		require.Equal(t, 0.0, testbed.MetricValue(t, reg, "bmcstream_gateway_unknown_bmc_snapshots_total", "sink", sink), sink)
		// Terminated: nothing pending or redelivered.
		cons, err := js.Consumer(ctx, "BMC_RAW", "bmcstream-gateway-"+sink)
		require.NoError(t, err)
		require.Eventually(t, func() bool {
			info, err := cons.Info(ctx)
			return err == nil && info.NumPending == 0 && info.NumAckPending == 0 && info.NumRedelivered == 0
		}, 30*time.Second, 50*time.Millisecond, sink)
	}
	prom.WaitFor(ctx, t, `count(bmc_up)`, func(s []testbed.Series) bool { return len(s) == 1 && s[0].Samples[0].V == 2 })
	got, err := prom.Query(ctx, `count({bmc=~"u-.*"})`, time.Time{})
	require.NoError(t, err)
	require.Empty(t, got, "an unknown BMC was written")
}

// TestBMCBoundsConfig checks the defaults and the validation of the
// per-BMC state options.
func TestBMCBoundsConfig(t *testing.T) {
	t.Parallel()
	base := "remote_write:\n  - name: prom\n    url: http://127.0.0.1:9/api/v1/write\n"
	cfg, err := gateway.ParseConfig([]byte(base))
	require.NoError(t, err)
	require.False(t, cfg.Inventory.RejectUnknownBMCs)
	require.Equal(t, 1000, cfg.Inventory.MaxUnknownBMCs)
	require.Equal(t, 10*time.Minute, time.Duration(cfg.Inventory.ForgetAfter))
	// Defaults hold when the section sets other keys.
	cfg, err = gateway.ParseConfig([]byte("inventory:\n  reject_unknown_bmcs: true\n" + base))
	require.NoError(t, err)
	require.True(t, cfg.Inventory.RejectUnknownBMCs)
	require.Equal(t, 1000, cfg.Inventory.MaxUnknownBMCs)
	require.Equal(t, 10*time.Minute, time.Duration(cfg.Inventory.ForgetAfter))
	cfg, err = gateway.ParseConfig([]byte("inventory:\n  max_unknown_bmcs: 0\n  forget_after: 1h\n" + base))
	require.NoError(t, err)
	require.Zero(t, cfg.Inventory.MaxUnknownBMCs)
	require.Equal(t, time.Hour, time.Duration(cfg.Inventory.ForgetAfter))

	for doc, want := range map[string]string{
		"inventory:\n  max_unknown_bmcs: -1\n": "inventory.max_unknown_bmcs: must not be negative",
		"inventory:\n  forget_after: 500ms\n":  "inventory.forget_after: must be at least 1s",
		"inventory:\n  forget_after: 0s\n":     "inventory.forget_after: must be at least 1s",
	} {
		_, err := gateway.ParseConfig([]byte(doc + base))
		require.Error(t, err, doc)
		require.True(t, strings.Contains(err.Error(), want), "%s: %v", doc, err)
	}
}

// TestHeldUpSinkForgetsNothing holds a sink up (Prometheus down) for well
// over forget_after while its BMCs keep publishing: on the gateway's clock
// every BMC looks quiet, but the consumer has their snapshots in hand, and
// in the stream they never stopped. Nothing is forgotten, no staleness
// marker is written, and every poll arrives once Prometheus is back.
func TestHeldUpSinkForgetsNothing(t *testing.T) {
	t.Parallel()
	prom := testbed.StartPrometheus(t)
	srv := testbed.StartNATS(t)
	pub, _ := publisher(t, srv.ClientURL())
	fleet := synth.NewFleet(2)
	_, reg := startGatewayInProcess(t, srv.ClientURL(), writeInventory(t, fleet), prom.WriteURL(),
		"  forget_after: 2s\nautomation:\n  enabled: false\n")
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	times := pollTimes(12, time.Second)
	publish := func(k int) {
		for i := range fleet.BMCs {
			require.NoError(t, pub.Publish(ctx, fleet.Snapshot(i, times[k], "p", 1, uint64(k+1))))
		}
	}
	publish(0)
	prom.WaitFor(ctx, t, `count(bmc_up)`, func(s []testbed.Series) bool { return len(s) == 1 && s[0].Samples[0].V == 2 })
	require.NoError(t, prom.Stop())
	// A poll every 500 ms: 5.5 s down in all, over twice forget_after.
	tick := time.NewTicker(500 * time.Millisecond)
	defer tick.Stop()
	for k := 1; k < len(times); k++ {
		publish(k)
		<-tick.C
	}
	require.NoError(t, prom.Start(ctx))
	// Checked as soon as the last snapshot is handled: once the stream is
	// quiet for forget_after, the BMCs are rightly forgotten.
	require.Eventually(t, func() bool {
		return testbed.MetricValue(t, reg, "bmcstream_gateway_snapshots_total", "result", "ok", "sink", "prom") == float64(2*len(times))
	}, time.Minute, 10*time.Millisecond)
	require.Zero(t, testbed.MetricValue(t, reg, "bmcstream_gateway_bmcs_forgotten_total", "reason", "inactive", "sink", "prom"))
	require.Zero(t, testbed.MetricValue(t, reg, "bmcstream_gateway_staleness_markers_total", "sink", "prom"))
	require.Equal(t, 2.0, testbed.MetricValue(t, reg, "bmcstream_gateway_bmcs_tracked", "known", "true", "sink", "prom"))
	for i := range fleet.BMCs {
		prom.WaitFor(ctx, t, fmt.Sprintf(`count_over_time(bmc_up{bmc=%q}[1m])`, fleet.BMCs[i].ID), func(s []testbed.Series) bool {
			return len(s) == 1 && s[0].Samples[0].V == float64(len(times))
		})
	}
	// Once the stream is quiet for forget_after, they are forgotten.
	require.Eventually(t, func() bool {
		return testbed.MetricValue(t, reg, "bmcstream_gateway_bmcs_forgotten_total", "reason", "inactive", "sink", "prom") == 2
	}, 30*time.Second, 50*time.Millisecond)
}
