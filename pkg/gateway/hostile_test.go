package gateway_test

import (
	"context"
	"encoding/binary"
	"fmt"
	"math"
	"math/rand/v2"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"github.com/stretchr/testify/require"

	"github.com/bmcstream/bmcstream/internal/synth"
	"github.com/bmcstream/bmcstream/internal/testbed"
	"github.com/bmcstream/bmcstream/pkg/bus"
	"github.com/bmcstream/bmcstream/pkg/bus/embedded"
	v1 "github.com/bmcstream/bmcstream/proto/bmcstream/v1"
)

// hostileFloodMessages is the size of the flood phase; hostileFloodTime
// bounds its publishing.
const (
	hostileFloodMessages = 50_000
	hostileFloodTime     = 90 * time.Second
)

// TestHostilePublisher runs the gateway binary with a real Prometheus sink
// while good snapshots of five BMCs flow steadily, and a hostile publisher
// on bmc.v1.raw.> sends, in turn: messages up to the server's max_payload,
// garbage, snapshots of a newer schema and semantically broken ones, and a
// flood of 50 000 messages on thousands of subjects of BMCs missing from
// the inventory. The gateway must not crash, must keep delivering the good
// BMCs, must count every bad message by reason and terminate it (no
// pending or redelivered message is left on either consumer), and must
// stay within a memory bound.
func TestHostilePublisher(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the gateway binary under a flood")
	}
	// Not parallel: its memory bound and flood time are for a gateway
	// that has the machine to itself.
	prom := testbed.StartPrometheus(t)
	bin := buildGateway(t)
	// A server that lets clients publish 8 MiB, so that the stream's own
	// 1 MiB limit is what refuses large snapshots.
	srv, err := embedded.Start(bus.EmbeddedConfig{Listen: "127.0.0.1:0", StoreDir: t.TempDir(), MaxPayload: 8 << 20}, true)
	require.NoError(t, err)
	t.Cleanup(func() { srv.Shutdown(); srv.WaitForShutdown() })
	pub, js := publisher(t, srv.ClientURL())
	nc := pub.NC
	ctx, cancel := context.WithTimeout(context.Background(), 8*time.Minute)
	defer cancel()

	// sim-0000 to sim-0004 publish steadily; sim-0005 is in the inventory
	// for the newer-schema snapshot only.
	fleet := synth.NewFleet(6)
	config := filepath.Join(t.TempDir(), "gateway.yml")
	require.NoError(t, os.WriteFile(config, []byte(fmt.Sprintf(`
nats:
  url: %s
inventory:
  files: [%s]
consumer:
  ack_wait: 5s
remote_write:%s`, srv.ClientURL(), writeInventory(t, fleet), sinkYAML("prom", prom.WriteURL()))), 0o600))
	gw := startGateway(t, bin, config)
	metricsURL := "http://" + gw.Addr + "/metrics"

	// The good publisher: one snapshot per good BMC every 500 ms, at a
	// poll time that only grows.
	good := &goodPublisher{pub: pub, fleet: fleet, n: 5, start: time.Now().Add(-2 * time.Second).Truncate(time.Second)}
	goodCtx, stopGood := context.WithCancel(ctx)
	var goodDone sync.WaitGroup
	goodDone.Add(1)
	go func() {
		defer goodDone.Done()
		good.run(goodCtx, t)
	}()
	defer func() { stopGood(); goodDone.Wait() }()

	prom.WaitFor(ctx, t, `count(bmc_up{bmc=~"sim-000[0-4]"})`, func(s []testbed.Series) bool {
		return len(s) == 1 && s[0].Samples[0].V == 5
	})
	base := scrapeGateway(t, metricsURL)
	t.Logf("memory before: rss %.1f MiB, heap in use %.1f MiB", base.rss/(1<<20), base.heap/(1<<20))
	var peakRSS atomic.Uint64
	peakCtx, stopPeak := context.WithCancel(ctx)
	go func() {
		for peakCtx.Err() == nil {
			if m, err := scrapeGatewayErr(metricsURL); err == nil && uint64(m.rss) > peakRSS.Load() {
				peakRSS.Store(uint64(m.rss))
			}
			sleep(peakCtx, 200*time.Millisecond)
		}
	}()
	defer stopPeak()

	now := time.Now()
	snap := func(id string, mod func(*v1.Snapshot)) []byte {
		s := &v1.Snapshot{BmcId: id, Protocol: v1.Protocol_PROTOCOL_REDFISH, PollerId: "hostile", Sequence: 1,
			PollStartMs: now.UnixMilli(), PollEndMs: now.UnixMilli() + 100, Up: true,
			Readings: []v1.Reading{{Name: "Inlet Temp", Kind: v1.Kind_KIND_TEMPERATURE, Unit: "Cel", Context: "Intake", Value: 21}}}
		if mod != nil {
			mod(s)
		}
		b, err := s.Marshal()
		require.NoError(t, err)
		return b
	}
	send := func(subject string, data []byte) {
		t.Helper()
		_, err := js.Publish(ctx, subject, data)
		require.NoError(t, err, "publish on %s", subject)
	}
	want := map[string]float64{} // result → hostile snapshots per consumer

	// (a) Huge messages. The server takes up to 8 MiB, the client refuses
	// more; the stream refuses over 1 MiB; the gateway refuses what is
	// under 1 MiB but over a snapshot limit.
	_, err = js.Publish(ctx, bus.RawSubject("huge-1"), make([]byte, 9<<20))
	require.ErrorIs(t, err, nats.ErrMaxPayload)
	_, err = js.Publish(ctx, bus.RawSubject("huge-2"), make([]byte, 2<<20))
	require.Error(t, err, "the stream took a 2 MiB message")
	t.Logf("a 2 MiB message: %v", err)
	garbage := make([]byte, 1<<20-512)
	garbage[0] = 0x07 // wire type 7: never a valid tag
	send(bus.RawSubject("huge-3"), garbage)
	want["malformed"]++
	many := snap("huge-4", nil)
	for len(many) < 1<<20-512 {
		many = append(many, 13<<3|2, 0) // 500 000 empty readings
	}
	send(bus.RawSubject("huge-4"), many)
	send(bus.RawSubject("sim-0001"), snap("sim-0001", func(s *v1.Snapshot) { s.Readings[0].Name = strings.Repeat("n", 100<<10) }))
	long := strings.Repeat("b", 2000)
	send(bus.RawSubject(long), snap(long, nil))
	send(bus.RawSubject("huge-5"), snap("huge-5", func(s *v1.Snapshot) {
		s.Info = map[string]string{}
		for i := range 1000 {
			s.Info[fmt.Sprint("k", i)] = "v"
		}
	}))
	want["oversized"] += 4

	// (b) Garbage.
	rng := rand.New(rand.NewPCG(1, 2))
	for i := range 200 {
		b := make([]byte, 1+rng.IntN(2000))
		for j := range b {
			b[j] = byte(rng.Uint32())
		}
		b[0] = 0x07
		send(bus.RawSubject(fmt.Sprintf("garbage-%d", i)), b)
	}
	want["malformed"] += 200
	send(bus.RawSubject("empty"), nil)
	want["malformed"]++

	// (c) A newer schema (unknown fields everywhere) is a valid v1
	// snapshot and delivered; semantically broken ones are refused or
	// have their bad readings skipped.
	newer := snap("sim-0005", nil)
	newer = binary.AppendUvarint(newer, 100<<3|2)
	newer = binary.AppendUvarint(newer, 5)
	newer = append(newer, "extra"...)
	newer = binary.AppendUvarint(newer, 101<<3) // wire type 0: varint
	newer = binary.AppendUvarint(newer, 7)
	send(bus.RawSubject("sim-0005"), newer)
	send(bus.RawSubject("noid"), snap("", nil))
	send(bus.RawSubject("notime"), snap("notime", func(s *v1.Snapshot) { s.PollStartMs = 0 }))
	want["malformed"] += 2
	send(bus.RawSubject("future"), snap("future", func(s *v1.Snapshot) { s.PollStartMs = now.AddDate(1, 0, 0).UnixMilli() }))
	send(bus.RawSubject("past"), snap("past", func(s *v1.Snapshot) { s.PollStartMs = 1000 }))
	send(bus.RawSubject("maxtime"), snap("maxtime", func(s *v1.Snapshot) { s.PollStartMs = math.MaxInt64 }))
	want["bad_timestamp"] += 3
	send(bus.RawSubject("hostile-x"), snap("sim-0002", nil))
	send("bmc.v1.raw.~ZZ", snap("~ZZ", nil))
	want["subject_mismatch"] += 2
	send(bus.RawSubject("values"), snap("values", func(s *v1.Snapshot) {
		s.Readings = append(s.Readings,
			v1.Reading{Name: "CPU1 Temp", Kind: v1.Kind_KIND_TEMPERATURE, Unit: "Cel", Value: math.NaN()},
			v1.Reading{Name: "Fan1", Kind: v1.Kind_KIND_FAN, Unit: "RPM", Value: math.Inf(1)},
			v1.Reading{Name: "PSU1", Kind: v1.Kind_KIND_POWER, Unit: "kW", SensorType: "PowerSupplyInput", Value: 1e306,
				Thresholds: []v1.Threshold{{Kind: v1.ThresholdKind_THRESHOLD_UPPER_CRITICAL, Value: 1e305}}},
			v1.Reading{Name: "Tomorrow", Kind: v1.Kind_KIND_TEMPERATURE, Unit: "Cel", Value: 30, TimestampMs: now.Add(24 * time.Hour).UnixMilli()},
			v1.Reading{Name: "Weird", Kind: v1.Kind(99), Unit: "?", Value: 1, Health: v1.Health(42),
				Thresholds: []v1.Threshold{{Kind: v1.ThresholdKind(77), Value: 1}}})
		s.Protocol = v1.Protocol(7)
	}))

	// (d) The flood: 45 000 valid snapshots of 4 500 BMCs missing from the
	// inventory and 5 000 garbage messages, on as many subjects.
	var floodErrs atomic.Int64
	floodJS, err := jetstream.New(nc, jetstream.WithPublishAsyncMaxPending(2048),
		jetstream.WithPublishAsyncErrHandler(func(jetstream.JetStream, *nats.Msg, error) { floodErrs.Add(1) }))
	require.NoError(t, err)
	floodStart := time.Now()
	valid := 0
	for i := range hostileFloodMessages {
		var subject string
		var data []byte
		if i%10 == 9 {
			subject = bus.RawSubject(fmt.Sprintf("flood-garbage-%d", i))
			data = []byte{0x07, byte(i), byte(i >> 8)}
		} else {
			// Ten polls of each BMC, in order, the last a second ago.
			id, round := fmt.Sprintf("flood-%04d", valid%4500), valid/4500
			valid++
			at := now.Add(time.Duration(round-10) * time.Second)
			subject = bus.RawSubject(id)
			data = snap(id, func(s *v1.Snapshot) {
				s.Sequence = uint64(round + 1)
				s.PollStartMs, s.PollEndMs = at.UnixMilli(), at.UnixMilli()+50
			})
		}
		_, err := floodJS.PublishAsync(subject, data, jetstream.WithStallWait(hostileFloodTime))
		require.NoError(t, err)
		require.Less(t, time.Since(floodStart), hostileFloodTime, "publishing the flood")
	}
	select {
	case <-floodJS.PublishAsyncComplete():
	case <-time.After(hostileFloodTime):
		t.Fatal("the flood was not stored in time")
	}
	require.Zero(t, floodErrs.Load())
	want["malformed"] += hostileFloodMessages / 10
	floodPublished := time.Now()
	t.Logf("flood: %d messages published in %s", hostileFloodMessages, floodPublished.Sub(floodStart).Round(time.Millisecond))

	// Good BMCs keep arriving: the first good snapshot published after the
	// flood is in Prometheus within a bound.
	after := good.next()
	var lag time.Duration
	require.Eventually(t, func() bool {
		got, err := prom.RawSamples(ctx, `bmc_up{bmc="sim-0000"}`, time.Minute, time.Now())
		if err != nil || len(got) != 1 {
			return false
		}
		last := got[0].Samples[len(got[0].Samples)-1].T
		lag = time.Since(floodPublished)
		return last >= after.UnixMilli()
	}, 2*time.Minute, 200*time.Millisecond, "the good BMCs stopped arriving")
	t.Logf("a good snapshot published after the flood reached Prometheus %s after the flood was stored", lag.Round(time.Millisecond))

	// The good publisher stops first: a round it published after the
	// check below would not be in Prometheus yet.
	stopGood()
	goodDone.Wait()
	// Everything is consumed and nothing is left pending or redelivered.
	for _, name := range []string{"bmcstream-gateway-prom", "bmcstream-gateway-automation"} {
		cons, err := js.Consumer(ctx, "BMC_RAW", name)
		require.NoError(t, err)
		var info *jetstream.ConsumerInfo
		require.Eventually(t, func() bool {
			info, err = cons.Info(ctx)
			return err == nil && info.NumPending == 0 && info.NumAckPending == 0 && info.NumRedelivered == 0
		}, 3*time.Minute, 250*time.Millisecond, "consumer %s: %+v", name, info)
	}
	stopPeak()

	// Counted by reason, on both consumers.
	m := scrapeGateway(t, metricsURL)
	for _, sink := range []string{"prom", "automation"} {
		for result, n := range want {
			require.Equal(t, n, m.counter("bmcstream_gateway_snapshots_total", "sink", sink, "result", result), "%s %s", sink, result)
		}
		require.Equal(t, 3.0, m.counter("bmcstream_gateway_readings_skipped_total", "sink", sink, "reason", "invalid"), "%s: NaN, +Inf and 1e306 kW", sink)
		require.Equal(t, 1.0, m.counter("bmcstream_gateway_readings_skipped_total", "sink", sink, "reason", "bad_timestamp"), sink)
		// 4 500 BMCs missing from the inventory: state is kept for the
		// first inventory.max_unknown_bmcs (1000), the rest are refused.
		kept, refused := m.counter("bmcstream_gateway_unknown_bmc_snapshots_total", "sink", sink), m.counter("bmcstream_gateway_snapshots_total", "sink", sink, "result", "unknown_bmc_limit")
		require.GreaterOrEqual(t, kept+refused, float64(hostileFloodMessages*9/10), sink)
		require.GreaterOrEqual(t, refused, float64(3500*10), sink)
		require.Equal(t, 1000.0, m.counter("bmcstream_gateway_bmcs_tracked", "sink", sink, "known", "false"), sink)
	}
	// The 1e306 kW reading overflows in watts: invalid, not +Inf.
	inf, err := prom.Query(ctx, `bmc_psu_input_watts{bmc="values"}`, time.Now())
	require.NoError(t, err)
	require.Empty(t, inf)

	// The newer schema's snapshot was delivered like any other.
	got, err := prom.RawSamples(ctx, `bmc_temperature_celsius{bmc="sim-0005",sensor="intake"}`, 10*time.Minute, time.Now())
	require.NoError(t, err)
	require.Len(t, got, 1)
	require.Equal(t, 21.0, got[0].Samples[0].V)

	// Every good snapshot arrived, with its poll time.
	published := good.published()
	for i := range good.n {
		got, err := prom.RawSamples(ctx, fmt.Sprintf(`bmc_up{bmc=%q}`, fleet.BMCs[i].ID), time.Since(good.start)+time.Minute, time.Now())
		require.NoError(t, err)
		require.Len(t, got, 1)
		require.Len(t, got[0].Samples, published, "snapshots of %s in Prometheus", fleet.BMCs[i].ID)
	}

	// The process is alive and its memory bounded.
	require.Nil(t, gw.Cmd.ProcessState, "the gateway exited")
	resp, err := http.Get("http://" + gw.Addr + "/-/healthy")
	require.NoError(t, err)
	_ = resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode)
	peak := float64(peakRSS.Load())
	t.Logf("memory after: rss %.1f MiB (peak %.1f MiB), heap in use %.1f MiB; %d good snapshots per BMC delivered",
		m.rss/(1<<20), peak/(1<<20), m.heap/(1<<20), published)
	require.Less(t, peak, base.rss+768<<20, "peak RSS")
	require.Less(t, m.heap, 512.0*(1<<20), "heap in use after the flood")
}

// goodPublisher publishes the good BMCs' snapshots at a steady pace.
type goodPublisher struct {
	pub   *synth.Publisher
	fleet synth.Fleet
	n     int
	start time.Time

	mu    sync.Mutex
	count int
}

const goodEvery = 500 * time.Millisecond

func (g *goodPublisher) run(ctx context.Context, t *testing.T) {
	tick := time.NewTicker(goodEvery)
	defer tick.Stop()
	for {
		g.mu.Lock()
		k := g.count
		g.mu.Unlock()
		at := g.start.Add(time.Duration(k) * goodEvery)
		// A round is published whole, so that published() counts what
		// every BMC got: stopping takes effect between rounds.
		pctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
		for i := range g.n {
			if err := g.pub.Publish(pctx, g.fleet.Snapshot(i, at, "good", 1, uint64(k+1))); err != nil {
				cancel()
				t.Errorf("publish a good snapshot: %v", err)
				return
			}
		}
		cancel()
		g.mu.Lock()
		g.count++
		g.mu.Unlock()
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
	}
}

// next is the poll time of the next good snapshot to be published.
func (g *goodPublisher) next() time.Time {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.start.Add(time.Duration(g.count) * goodEvery)
}

func (g *goodPublisher) published() int {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.count
}

// gatewayMetrics is one scrape of the gateway's /metrics.
type gatewayMetrics struct {
	families  map[string][]map[string]string // name → label sets, in order
	values    map[string][]float64
	rss, heap float64
}

func (m gatewayMetrics) counter(name string, labels ...string) float64 {
	for i, ls := range m.families[name] {
		match := true
		for j := 0; j+1 < len(labels); j += 2 {
			if ls[labels[j]] != labels[j+1] {
				match = false
			}
		}
		if match {
			return m.values[name][i]
		}
	}
	return math.NaN()
}

func scrapeGateway(t *testing.T, url string) gatewayMetrics {
	t.Helper()
	m, err := scrapeGatewayErr(url)
	require.NoError(t, err)
	return m
}

func scrapeGatewayErr(url string) (gatewayMetrics, error) {
	m := gatewayMetrics{families: map[string][]map[string]string{}, values: map[string][]float64{}}
	resp, err := http.Get(url)
	if err != nil {
		return m, err
	}
	defer func() { _ = resp.Body.Close() }()
	parser := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := parser.TextToMetricFamilies(resp.Body)
	if err != nil {
		return m, err
	}
	for name, f := range fams {
		for _, mt := range f.GetMetric() {
			ls := map[string]string{}
			for _, l := range mt.GetLabel() {
				ls[l.GetName()] = l.GetValue()
			}
			v := mt.GetCounter().GetValue() + mt.GetGauge().GetValue() + mt.GetUntyped().GetValue()
			m.families[name] = append(m.families[name], ls)
			m.values[name] = append(m.values[name], v)
		}
	}
	m.rss = m.counter("process_resident_memory_bytes")
	m.heap = m.counter("go_memstats_heap_inuse_bytes")
	return m, nil
}

func sleep(ctx context.Context, d time.Duration) {
	select {
	case <-ctx.Done():
	case <-time.After(d):
	}
}

// TestAutomationTerminatesUnpublishable: a snapshot whose normalised
// readings exceed the server's max_payload as JSON can never be published
// on the automation stream. It is counted and terminated, not left in
// flight: before, it stayed unacked, and the keep-alive kept extending its
// ack wait, so it held a max_ack_pending slot for good.
func TestAutomationTerminatesUnpublishable(t *testing.T) {
	t.Parallel()
	prom := testbed.StartPrometheus(t)
	srv := testbed.StartNATS(t) // max_payload 1 MiB, as the stream
	pub, js := publisher(t, srv.ClientURL())
	fleet := synth.NewFleet(1)
	_, reg := startGatewayInProcess(t, srv.ClientURL(), writeInventory(t, fleet), prom.WriteURL(), "")
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()

	// 900 readings with 1000-byte names: under 1 MiB as protobuf, over it
	// as JSON (each name is a sensor label and a bmc_sensor_info name).
	s := fleet.Snapshot(0, time.Now().Add(-time.Second), "p", 1, 1)
	s.Readings = s.Readings[:0]
	for i := range 900 {
		s.Readings = append(s.Readings, v1.Reading{Name: fmt.Sprintf("%04d%s", i, strings.Repeat("x", 996)),
			Kind: v1.Kind_KIND_TEMPERATURE, Unit: "Cel", Context: "CPU", Value: 40})
	}
	require.NoError(t, pub.Publish(ctx, s))
	require.NoError(t, pub.Publish(ctx, fleet.Snapshot(0, time.Now(), "p", 1, 2)))

	cons, err := js.Consumer(ctx, "BMC_RAW", "bmcstream-gateway-automation")
	require.NoError(t, err)
	require.Eventually(t, func() bool {
		info, err := cons.Info(ctx)
		return err == nil && info.NumPending == 0 && info.NumAckPending == 0
	}, 30*time.Second, 100*time.Millisecond, "the automation consumer holds a message")
	require.Equal(t, 1.0, testbed.MustMetricValue(t, reg, "bmcstream_gateway_snapshots_total", "result", "unpublishable", "sink", "automation"))
	require.Equal(t, 1.0, testbed.MustMetricValue(t, reg, "bmcstream_gateway_snapshots_total", "result", "ok", "sink", "automation"))
	// The sink is not affected: both snapshots make samples.
	require.Eventually(t, func() bool {
		return testbed.MustMetricValue(t, reg, "bmcstream_gateway_snapshots_total", "result", "ok", "sink", "prom") == 2
	}, 30*time.Second, 100*time.Millisecond)
}
