package gateway_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/bmcstream/bmcstream/internal/synth"
	"github.com/bmcstream/bmcstream/internal/testbed"
	"github.com/bmcstream/bmcstream/pkg/bus"
)

// TestReplicasSharePartitions runs two gateway processes on one
// partitioned stream: the first takes every partition, the second joins and
// takes about half (handed over without overlap: the first drains them
// before releasing their leases), then the second is killed with SIGKILL
// while snapshots keep coming, and its partitions move back to the first
// after the lease TTL and the ack wait. Prometheus, which refuses
// out-of-order samples, must end with every poll of every BMC: nothing
// lost, nothing reordered by two replicas reading one partition.
func TestReplicasSharePartitions(t *testing.T) {
	t.Parallel()
	const partitions = 8
	bed := newBinaryBed(t)
	bin, prom, srv, pub, js := bed.bin, bed.prom, bed.srv, bed.pub, bed.js
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	sc := bus.DefaultStreamConfig
	sc.Partitions = partitions
	_, err := bus.EnsureStream(ctx, js, sc)
	require.NoError(t, err)

	fleet := synth.NewFleet(40)
	inv := writeInventory(t, fleet)
	config := func(id string) string {
		p := filepath.Join(t.TempDir(), id+".yml")
		require.NoError(t, os.WriteFile(p, []byte(fmt.Sprintf(`
nats:
  url: %s
  stream: {partitions: %d}
replicas: {id: %s, ttl: 2s}
consumer: {ack_wait: 3s}
inventory:
  files: [%s]
remote_write:%s`, srv.ClientURL(), partitions, id, inv, sinkYAML("prom", prom.WriteURL()))), 0o600))
		return p
	}
	held := func(gw *testbed.Program) int {
		m, err := scrapeGatewayErr("http://" + gw.Addr + "/metrics")
		if err != nil {
			return -1
		}
		return int(m.counter("bmcstream_gateway_partitions_held"))
	}

	times := pollTimes(9, 2*time.Second)
	publish := func(polls ...int) {
		for _, k := range polls {
			for i := range fleet.BMCs {
				require.NoError(t, pub.Publish(ctx, fleet.Snapshot(i, times[k], "poller-a", 1, uint64(k+1))))
			}
		}
	}

	a := startGateway(t, bin, config("gw-a"))
	require.Eventually(t, func() bool { return held(a) == partitions }, 30*time.Second, 100*time.Millisecond, "the only replica takes every partition")
	publish(0, 1, 2)

	b := startGateway(t, bin, config("gw-b"))
	var ha, hb int
	require.Eventually(t, func() bool {
		ha, hb = held(a), held(b)
		return ha > 0 && hb > 0 && ha+hb == partitions
	}, 30*time.Second, 100*time.Millisecond, "the partitions are shared: a %d, b %d", ha, hb)
	t.Logf("two replicas: a holds %d partitions, b %d", ha, hb)
	publish(3, 4, 5)
	require.Eventually(t, func() bool {
		m, err := scrapeGatewayErr("http://" + b.Addr + "/metrics")
		return err == nil && m.counter("bmcstream_gateway_samples_total", "sink", "prom") > 0
	}, 30*time.Second, 100*time.Millisecond, "the second replica writes its partitions' samples")

	require.NoError(t, b.Cmd.Process.Signal(syscall.SIGKILL))
	_ = b.Cmd.Wait()
	publish(6, 7, 8)
	start := time.Now()
	require.Eventually(t, func() bool { return held(a) == partitions }, 30*time.Second, 100*time.Millisecond, "the killed replica's partitions move")
	t.Logf("the killed replica's %d partitions moved after %s", hb, time.Since(start).Round(100*time.Millisecond))

	stream, err := js.Stream(ctx, bus.DefaultStreamConfig.Name)
	require.NoError(t, err)
	for p := range partitions {
		cons, err := stream.Consumer(ctx, "bmcstream-gateway-prom-p"+strconv.Itoa(p))
		require.NoError(t, err)
		var info *jetstream.ConsumerInfo
		require.Eventually(t, func() bool {
			info, err = cons.Info(ctx)
			return err == nil && info.NumPending == 0 && info.NumAckPending == 0
		}, time.Minute, 100*time.Millisecond, "partition %d: %+v", p, info)
	}

	// Every poll of every BMC, at its time, exactly once.
	for _, s := range func() []testbed.Series {
		var got []testbed.Series
		complete := func() bool {
			got, err = prom.RawSamples(ctx, `bmc_up`, 10*time.Minute, time.Now())
			return err == nil && len(got) == len(fleet.BMCs) && func() bool {
				for _, s := range got {
					if len(s.Samples) != len(times) {
						return false
					}
				}
				return true
			}()
		}
		if !assert.Eventually(t, complete, 20*time.Second, 200*time.Millisecond, "every BMC's nine polls in Prometheus") {
			// Say what is missing and what the surviving replica counted.
			for _, s := range got {
				if len(s.Samples) != len(times) {
					t.Logf("bmc %s: %d of %d polls: %v", s.Labels["bmc"], len(s.Samples), len(times), s.Samples)
				}
			}
			if m, err := scrapeGatewayErr("http://" + a.Addr + "/metrics"); err == nil {
				for _, name := range []string{"bmcstream_gateway_snapshots_total", "bmcstream_gateway_dedup_snapshots_rejected_total", "bmcstream_remote_write_samples_dropped_total", "bmcstream_remote_write_requests_total"} {
					for i, ls := range m.families[name] {
						t.Logf("replica a: %s%v %v", name, ls, m.values[name][i])
					}
				}
			}
			t.FailNow()
		}
		return got
	}() {
		for k, at := range times {
			require.Equal(t, at.UnixMilli(), s.Samples[k].T, "bmc %s", s.Labels["bmc"])
		}
	}
	// Roll-ups are partial per partition and say so (sum, max and count
	// without (partition) give the rack's). The partitions the first
	// replica kept all along have had theirs written.
	parts := map[string]bool{}
	require.Eventually(t, func() bool {
		got, err := prom.RawSamples(ctx, `bmc_rack_bmcs_reporting`, 10*time.Minute, time.Now())
		if err != nil {
			return false
		}
		for _, s := range got {
			require.Contains(t, s.Labels, "partition", "roll-up %v", s.Labels)
			parts[s.Labels["partition"]] = true
		}
		return len(parts) >= 2
	}, 30*time.Second, 500*time.Millisecond, "roll-ups of several partitions")
}
