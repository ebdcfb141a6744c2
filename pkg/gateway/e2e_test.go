package gateway_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/require"

	"github.com/bmcstream/bmcstream/internal/synth"
	"github.com/bmcstream/bmcstream/internal/testbed"
	"github.com/bmcstream/bmcstream/pkg/bus"
	"github.com/bmcstream/bmcstream/pkg/bus/embedded"
	"github.com/bmcstream/bmcstream/pkg/gateway"
	"github.com/bmcstream/bmcstream/pkg/inventory"
)

func publisher(t *testing.T, url string) (*synth.Publisher, jetstream.JetStream) {
	t.Helper()
	nc, err := nats.Connect(url)
	require.NoError(t, err)
	t.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	require.NoError(t, err)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_, err = bus.EnsureStream(ctx, js, bus.DefaultStreamConfig)
	require.NoError(t, err)
	return &synth.Publisher{NC: nc, JS: js}, js
}

// binaryBed is what the tests of the gateway binary share: the binary, a
// real Prometheus, an embedded NATS server with the raw stream, and a
// publisher on it. It skips the test in -short mode.
type binaryBed struct {
	bin  string
	prom *testbed.Receiver
	srv  *server.Server
	pub  *synth.Publisher
	js   jetstream.JetStream
}

func newBinaryBed(t *testing.T) binaryBed {
	t.Helper()
	if testing.Short() {
		t.Skip("builds and runs the gateway binary")
	}
	b := binaryBed{bin: buildGateway(t), prom: testbed.StartPrometheus(t), srv: testbed.StartNATS(t)}
	b.pub, b.js = publisher(t, b.srv.ClientURL())
	return b
}

func writeInventory(t *testing.T, f synth.Fleet) string {
	t.Helper()
	b, err := inventory.Marshal(f.BMCs)
	require.NoError(t, err)
	p := filepath.Join(t.TempDir(), "inventory.yml")
	require.NoError(t, os.WriteFile(p, b, 0o600))
	return p
}

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

// pollTimes are the poll start times of a test: whole recent seconds, so
// receivers accept them and tests can recompute values.
func pollTimes(n int, every time.Duration) []time.Time {
	end := time.Now().Add(-5 * time.Second).Truncate(time.Second)
	out := make([]time.Time, n)
	for i := range n {
		out[i] = end.Add(-time.Duration(n-1-i) * every)
	}
	return out
}

func TestEndToEndPrometheusAndVictoriaMetrics(t *testing.T) {
	t.Parallel()
	prom := testbed.StartPrometheus(t)
	vm := testbed.StartVictoriaMetrics(t)
	srv := testbed.StartNATS(t)
	pub, js := publisher(t, srv.ClientURL())

	fleet := synth.NewFleet(5)
	cfg, err := gateway.ParseConfig([]byte(fmt.Sprintf(`
nats:
  url: %s
inventory:
  files: [%s]
remote_write:%s%s`, srv.ClientURL(), writeInventory(t, fleet), sinkYAML("prom", prom.WriteURL()), sinkYAML("vm", vm.WriteURL()))))
	require.NoError(t, err)
	reg := prometheus.NewRegistry()
	gw, err := gateway.New(cfg, gateway.Options{Registerer: reg, Version: "test", ShutdownTimeout: 5 * time.Second})
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() { errc <- gw.Run(ctx) }()
	defer func() {
		cancel()
		require.NoError(t, <-errc)
	}()
	require.Eventually(t, gw.Ready, 20*time.Second, 20*time.Millisecond)

	// A malformed message and a snapshot published on another BMC's subject
	// are counted and terminated; everything after them still flows.
	_, err = js.Publish(ctx, bus.RawSubject("garbage"), []byte("\xff\xfe not a snapshot"))
	require.NoError(t, err)
	liar, err := fleet.Snapshot(0, time.Now(), "p", 1, 999).Marshal()
	require.NoError(t, err)
	_, err = js.Publish(ctx, bus.RawSubject("sim-0001"), liar)
	require.NoError(t, err)

	times := pollTimes(3, 15*time.Second)
	for seq, at := range times {
		for i := range fleet.BMCs {
			require.NoError(t, pub.Publish(ctx, fleet.Snapshot(i, at, "poller-a", 1, uint64(seq+1))))
		}
	}

	for _, rcv := range []*testbed.Receiver{prom, vm} {
		rcv.WaitFor(ctx, t, `count(count_over_time(bmc_up[10m]) == 3)`, func(s []testbed.Series) bool {
			if len(s) > 0 {
				_ = rcv.Flush(ctx)
			}
			return len(s) == 1 && s[0].Samples[0].V == 5
		})
		got, err := rcv.RawSamples(ctx, `bmc_temperature_celsius{context="intake"}`, 10*time.Minute, time.Now())
		require.NoError(t, err)
		require.Len(t, got, len(fleet.BMCs))
		sort.Slice(got, func(a, b int) bool { return got[a].Labels["bmc"] < got[b].Labels["bmc"] })
		for i, s := range got {
			b := fleet.BMCs[i]
			require.Equal(t, map[string]string{
				"__name__": "bmc_temperature_celsius", "bmc": b.ID, "sensor": "intake", "context": "intake",
				"site": "lab", "room": "r1", "row": b.Labels["row"], "rack": b.Labels["rack"], "position": b.Labels["position"],
			}, s.Labels)
			require.Len(t, s.Samples, len(times))
			for k, at := range times {
				// The poll time, not the gateway's clock.
				require.Equal(t, at.UnixMilli(), s.Samples[k].T)
				require.Equal(t, synth.Inlet(i, at.UnixMilli()), s.Samples[k].V)
			}
		}
		power, err := rcv.RawSamples(ctx, `bmc_power_watts{bmc="sim-0003"}`, 10*time.Minute, time.Now())
		require.NoError(t, err)
		require.Len(t, power, 1)
		require.Equal(t, synth.Power(3, times[2].UnixMilli()), power[0].Samples[2].V)
	}

	for _, sink := range []string{"prom", "vm"} {
		require.Equal(t, 1.0, testbed.MustMetricValue(t, reg, "bmcstream_gateway_snapshots_total", "result", "malformed", "sink", sink))
		require.Equal(t, 1.0, testbed.MustMetricValue(t, reg, "bmcstream_gateway_snapshots_total", "result", "subject_mismatch", "sink", sink))
		require.Equal(t, 15.0, testbed.MustMetricValue(t, reg, "bmcstream_gateway_snapshots_total", "result", "ok", "sink", sink))
		// Nothing is left pending: bad messages were terminated, good ones acked.
		require.Eventually(t, func() bool {
			c, err := js.Consumer(ctx, "BMC_RAW", "bmcstream-gateway-"+sink)
			if err != nil {
				return false
			}
			info, err := c.Info(ctx)
			return err == nil && info.NumPending == 0 && info.NumAckPending == 0
		}, 10*time.Second, 50*time.Millisecond)
	}
}

// TestCoreNATSMode runs without JetStream: plain subscriptions, no acks,
// lowest latency. What is published while the gateway runs arrives.
func TestCoreNATSMode(t *testing.T) {
	t.Parallel()
	prom := testbed.StartPrometheus(t)
	srv, err := embedded.Start(bus.EmbeddedConfig{Listen: "127.0.0.1:0"}, false)
	require.NoError(t, err)
	t.Cleanup(srv.Shutdown)
	fleet := synth.NewFleet(3)
	cfg, err := gateway.ParseConfig([]byte(fmt.Sprintf(`
nats:
  url: %s
  mode: core
inventory:
  files: [%s]
remote_write:%s`, srv.ClientURL(), writeInventory(t, fleet), sinkYAML("prom", prom.WriteURL()))))
	require.NoError(t, err)
	gw, err := gateway.New(cfg, gateway.Options{Version: "test", ShutdownTimeout: 5 * time.Second})
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() { errc <- gw.Run(ctx) }()
	defer func() {
		cancel()
		require.NoError(t, <-errc)
	}()
	require.Eventually(t, gw.Ready, 10*time.Second, 10*time.Millisecond)
	nc, err := nats.Connect(srv.ClientURL())
	require.NoError(t, err)
	defer nc.Close()
	pub := &synth.Publisher{NC: nc}
	// The subscription is set up asynchronously after Ready: publish until
	// data shows up, then check the values of what arrived.
	at := pollTimes(1, time.Second)[0]
	require.Eventually(t, func() bool {
		for i := range fleet.BMCs {
			require.NoError(t, pub.Publish(ctx, fleet.Snapshot(i, at, "p", 1, 1)))
		}
		require.NoError(t, nc.Flush())
		got, err := prom.Query(ctx, "count(bmc_up)", time.Now())
		return err == nil && len(got) == 1 && got[0].Samples[0].V == 3
	}, 15*time.Second, 300*time.Millisecond)
	got, err := prom.RawSamples(ctx, `bmc_temperature_celsius{context="intake",bmc="sim-0002"}`, 5*time.Minute, time.Now())
	require.NoError(t, err)
	require.Len(t, got, 1)
	require.Equal(t, at.UnixMilli(), got[0].Samples[0].T)
	require.Equal(t, synth.Inlet(2, at.UnixMilli()), got[0].Samples[0].V)
}
