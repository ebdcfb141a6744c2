package gateway_test

import (
	"context"
	"fmt"
	"os"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/require"

	"github.com/bmcstream/bmcstream/internal/synth"
	"github.com/bmcstream/bmcstream/internal/testbed"
	"github.com/bmcstream/bmcstream/pkg/bus"
	"github.com/bmcstream/bmcstream/pkg/gateway"
	"github.com/bmcstream/bmcstream/pkg/inventory"
)

// startGatewayInProcess runs a gateway with one Prometheus sink.
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

// TestHAPairDeduplicated publishes every poll of every BMC from both pollers
// of an HA pair (a few milliseconds apart, as two pollers with the same
// schedule do). The receiver holds exactly one sample per series per poll,
// all from the leader, with no out-of-order rejection; when the leader
// stops, the follower's polls are accepted once the failover time passed.
func TestHAPairDeduplicated(t *testing.T) {
	t.Parallel()
	prom := testbed.StartPrometheus(t)
	srv := testbed.StartNATS(t)
	pub, _ := publisher(t, srv.ClientURL())
	fleet := synth.NewFleet(4)
	_, reg := startGatewayInProcess(t, srv.ClientURL(), writeInventory(t, fleet), prom.WriteURL(), "ha_tracker:\n  failover_timeout: 15s\n")
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()

	// Polls every 10 s: 6 with both pollers, then 4 with the follower only.
	times := pollTimes(10, 10*time.Second)
	for k, at := range times {
		for i := range fleet.BMCs {
			if k < 6 {
				require.NoError(t, pub.Publish(ctx, fleet.Snapshot(i, at, "poller-a", 1, uint64(k+1))))
			}
			require.NoError(t, pub.Publish(ctx, fleet.Snapshot(i, at.Add(7*time.Millisecond), "poller-b", 1, uint64(k+1))))
		}
	}
	prom.WaitFor(ctx, t, `count(count_over_time(bmc_up[10m]) >= 9)`, func(s []testbed.Series) bool {
		return len(s) == 1 && s[0].Samples[0].V == 4
	})
	got, err := prom.RawSamples(ctx, `bmc_up{bmc="sim-0002"}`, 10*time.Minute, time.Now())
	require.NoError(t, err)
	require.Len(t, got, 1)
	var ts []int64
	for _, p := range got[0].Samples {
		ts = append(ts, p.T)
	}
	// Leader a for polls 0-5; b is refused at poll 6 (a was heard 10 s
	// before, under the 15 s failover) and leads from poll 7 on.
	var want []int64
	for k, at := range times {
		switch {
		case k < 6:
			want = append(want, at.UnixMilli())
		case k >= 7:
			want = append(want, at.Add(7*time.Millisecond).UnixMilli())
		}
	}
	require.Equal(t, want, ts, "one sample per poll, from the leader")
	require.Equal(t, 4.0, testbed.MustMetricValue(t, reg, "bmcstream_gateway_ha_failovers_total", "sink", "prom"))
	require.Equal(t, float64(6*4+4), testbed.MustMetricValue(t, reg, "bmcstream_gateway_dedup_snapshots_rejected_total", "reason", "not_leader", "sink", "prom"))
	dropped, err := reg.Gather()
	require.NoError(t, err)
	for _, mf := range dropped {
		if mf.GetName() == "bmcstream_remote_write_samples_dropped_total" {
			for _, m := range mf.GetMetric() {
				require.Zero(t, m.GetCounter().GetValue(), "the receiver rejected nothing")
			}
		}
	}
}

// TestRemovedBMCGoesStale removes a BMC from the inventory and checks its
// series disappear from Prometheus at once (staleness markers), not after
// the five-minute lookback.
func TestRemovedBMCGoesStale(t *testing.T) {
	t.Parallel()
	prom := testbed.StartPrometheus(t)
	srv := testbed.StartNATS(t)
	pub, _ := publisher(t, srv.ClientURL())
	fleet := synth.NewFleet(3)
	invFile := writeInventory(t, fleet)
	gw, reg := startGatewayInProcess(t, srv.ClientURL(), invFile, prom.WriteURL(), "")
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	at := time.Now().Add(-2 * time.Second).Truncate(time.Second)
	for i := range fleet.BMCs {
		require.NoError(t, pub.Publish(ctx, fleet.Snapshot(i, at, "p", 1, 1)))
	}
	prom.WaitFor(ctx, t, `count(bmc_up)`, func(s []testbed.Series) bool { return len(s) == 1 && s[0].Samples[0].V == 3 })
	before, err := prom.Query(ctx, `count({bmc="sim-0001"})`, time.Time{})
	require.NoError(t, err)
	require.Positive(t, before[0].Samples[0].V)

	// sim-0001 is decommissioned.
	b, err := inventory.Marshal([]inventory.BMC{fleet.BMCs[0], fleet.BMCs[2]})
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(invFile, b, 0o600))
	require.NoError(t, gw.ReloadInventory())
	removed := time.Now()
	prom.WaitFor(ctx, t, `count({bmc=~"sim-.*"}) by (bmc)`, func(s []testbed.Series) bool {
		return len(s) == 2
	})
	t.Logf("series of the removed BMC gone from instant queries %s after the reload", time.Since(removed).Round(10*time.Millisecond))
	require.Less(t, time.Since(removed), 10*time.Second, "well within one poll interval, not the 5 min lookback")
	// The others are untouched.
	got, err := prom.Query(ctx, `count(bmc_up)`, time.Time{})
	require.NoError(t, err)
	require.Equal(t, 2.0, got[0].Samples[0].V)
	// Its state is released, on every consumer, and counted.
	for _, sink := range []string{"prom", "automation"} {
		require.Eventually(t, func() bool {
			return testbed.MetricValue(t, reg, "bmcstream_gateway_bmcs_forgotten_total", "reason", "removed", "sink", sink) == 1
		}, 10*time.Second, 20*time.Millisecond, sink)
		require.Equal(t, 2.0, testbed.MetricValue(t, reg, "bmcstream_gateway_bmcs_tracked", "known", "true", "sink", sink), sink)
	}
}

// TestInventoryFromKVBucket enriches from the NATS KV bucket: an entry put
// there labels a BMC the files do not know, and changing it relabels the
// BMC's next samples without a restart.
func TestInventoryFromKVBucket(t *testing.T) {
	t.Parallel()
	prom := testbed.StartPrometheus(t)
	srv := testbed.StartNATS(t)
	pub, js := publisher(t, srv.ClientURL())
	fleet := synth.NewFleet(2)
	invFile := writeInventory(t, synth.Fleet{BMCs: fleet.BMCs[:1]}) // sim-0001 only in the bucket
	gw, _ := startGatewayInProcess(t, srv.ClientURL(), invFile, prom.WriteURL(), "  kv_bucket: bmcstream_inventory\n")
	rackOf := func(id string) string {
		b, ok := gw.Inventory().Get(id)
		if !ok {
			return ""
		}
		return b.Labels["rack"]
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	kv, err := js.KeyValue(ctx, "bmcstream_inventory")
	require.NoError(t, err)
	put := func(rack string) {
		_, err := kv.Put(ctx, bus.EscapeToken("sim-0001"), []byte("id: sim-0001\naddress: 127.0.0.1\nlabels: {site: lab, rack: "+rack+"}\n"))
		require.NoError(t, err)
	}
	put("kv-a")
	// The bucket is watched asynchronously: the entry applies within moments.
	require.Eventually(t, func() bool { return rackOf("sim-0001") == "kv-a" }, 10*time.Second, 20*time.Millisecond)
	at := time.Now().Add(-20 * time.Second).Truncate(time.Second)
	require.Eventually(t, func() bool {
		return pub.Publish(ctx, fleet.Snapshot(1, at, "p", 1, 1)) == nil
	}, time.Second, 10*time.Millisecond)
	prom.WaitFor(ctx, t, `bmc_up{bmc="sim-0001",rack="kv-a"}`, func(s []testbed.Series) bool { return len(s) == 1 })

	put("kv-b")
	require.Eventually(t, func() bool { return rackOf("sim-0001") == "kv-b" }, 10*time.Second, 20*time.Millisecond)
	require.NoError(t, pub.Publish(ctx, fleet.Snapshot(1, at.Add(10*time.Second), "p", 1, 2)))
	prom.WaitFor(ctx, t, `bmc_up{bmc="sim-0001",rack="kv-b"}`, func(s []testbed.Series) bool { return len(s) == 1 })
}

// TestRackRollups checks the in-stream roll-ups land in Prometheus: a
// rack's power is the sum of its BMCs' chassis power, its intake the max.
func TestRackRollups(t *testing.T) {
	t.Parallel()
	prom := testbed.StartPrometheus(t)
	srv := testbed.StartNATS(t)
	pub, _ := publisher(t, srv.ClientURL())
	fleet := synth.NewFleet(3) // one rack
	startGatewayInProcess(t, srv.ClientURL(), writeInventory(t, fleet), prom.WriteURL(), "")
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	at := time.Now().Add(-5 * time.Second).Truncate(time.Second)
	var sum, hottest float64
	for i := range fleet.BMCs {
		require.NoError(t, pub.Publish(ctx, fleet.Snapshot(i, at, "p", 1, 1)))
		sum += synth.Power(i, at.UnixMilli())
		hottest = max(hottest, synth.Inlet(i, at.UnixMilli()))
	}
	got := prom.WaitFor(ctx, t, `bmc_rack_power_watts{site="lab",room="r1",row="row0",rack="rack00"}`, func(s []testbed.Series) bool { return len(s) == 1 })
	require.Equal(t, sum, got[0].Samples[0].V)
	got, err := prom.Query(ctx, `bmc_rack_intake_temperature_max_celsius{rack="rack00"}`, time.Time{})
	require.NoError(t, err)
	require.Len(t, got, 1)
	require.Equal(t, hottest, got[0].Samples[0].V)
	got, err = prom.Query(ctx, `bmc_rack_bmcs_reporting{rack="rack00"}`, time.Time{})
	require.NoError(t, err)
	require.Equal(t, 3.0, got[0].Samples[0].V)
}
