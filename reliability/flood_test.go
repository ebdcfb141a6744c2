package reliability

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/stretchr/testify/require"

	"github.com/bmcstream/bmcstream/pkg/bus"
	"github.com/bmcstream/bmcstream/pkg/pipeline"
	v1 "github.com/bmcstream/bmcstream/proto/bmcstream/v1"
)

// flood is the unknown-BMC flood's size: Snapshots spread over IDs ids
// the inventory does not list, Rounds times, each round forgotten
// (ForgetAfter) before the next.
type flood struct {
	IDs, Snapshots, Rounds int
	ForgetAfter            time.Duration
}

// currentFlood is 5 000 snapshots over 2 000 ids, three times, in the long
// form; the short form floods 400 ids with 1 000 snapshots, three times.
// forget_after is five of the fleet's intervals or more, so a fleet BMC's
// late poll on a loaded machine does not get it forgotten.
func currentFlood(sc scale) flood {
	if sc.Name == "long" {
		return flood{IDs: 2000, Snapshots: 5000, Rounds: 3, ForgetAfter: time.Minute}
	}
	return flood{IDs: 400, Snapshots: 1000, Rounds: 3, ForgetAfter: 10 * time.Second}
}

// floodMargin is how far above its baseline the gateway's heap in use may
// stay once a flood is forgotten: 16 MiB, a quarter of the baseline, or a
// tenth of what the flood's state took (peak above baseline), whichever is
// more. Allocator spans and map buckets are not all handed back, and the
// fleet's own state moves with its polls; a flood kept, even in part,
// would be far above it.
func floodMargin(baseline, peak float64) float64 {
	return max(16<<20, baseline/4, (peak-baseline)/10)
}

// TestScenarioUnknownBMCFlood floods the gateway binary with snapshots of
// BMCs missing from its inventory, as a holder of a poller credential or a
// misconfigured poller can, while the simulated fleet is polled as usual.
// With max_unknown_bmcs above the flood's ids, the gateway keeps their
// state (the worst an operator allows) and, forget_after after the flood,
// releases it: its heap in use returns to within floodMargin of the
// baseline after every round, and the counters say how many BMCs were
// tracked and forgotten. Then, restarted with reject_unknown_bmcs, it
// refuses the same flood outright: every snapshot counted, none kept, its
// heap flat.
func TestScenarioUnknownBMCFlood(t *testing.T) {
	t.Parallel()
	// Block 149: the soak takes 140 and 141.
	b := newBed(t, bedOptions{Block: 149, Sinks: []string{"prom"}})
	fl := currentFlood(b.sc)
	// The flood's knobs go into the inventory section of the bed's
	// gateway configuration.
	setInventoryKeys := func(keys string) {
		cfg, err := os.ReadFile(b.gatewayCfg)
		require.NoError(t, err)
		i := strings.Index(string(cfg), "\nconsumer:")
		require.Positive(t, i)
		out := string(cfg[:i]) + "\n" + keys + string(cfg[i:])
		require.NoError(t, os.WriteFile(b.gatewayCfg, []byte(out), 0o600))
	}
	setInventoryKeys(fmt.Sprintf("  max_unknown_bmcs: %d\n  forget_after: %s", fl.IDs, fl.ForgetAfter))
	b.start()
	// The fleet flowing, so there is a snapshot to copy and a baseline.
	b.waitPolls(b.started, b.pollsIn(b.sc.Run), b.fleetIDs(), "prom")

	ctx, cancel := context.WithTimeout(context.Background(), time.Hour)
	defer cancel()
	js := b.js()
	template := floodTemplate(t, ctx, js, b)
	sinks := []string{"prom", "automation"}
	gw := func() string { return scrape(t, b.gateway) }
	unknownTracked := func(body string) float64 {
		return metricSum(body, "bmcstream_gateway_bmcs_tracked", `known="false"`)
	}

	baseline := b.settledHeap(ctx, 0)
	t.Logf("flood of %d snapshots over %d unknown ids, %d rounds, forget_after %s; heap in use %.1f MiB before",
		fl.Snapshots, fl.IDs, fl.Rounds, fl.ForgetAfter, baseline/(1<<20))
	var peaks, afters, margins []float64
	var forgetTook []time.Duration
	for r := range fl.Rounds {
		w := b.watchGateway(ctx)
		t0 := time.Now()
		last := publishFlood(t, ctx, js, template, fl, r)
		t1 := time.Now()
		b.waitConsumed(ctx, sinks, last)
		consumed := time.Now()
		require.Eventually(t, func() bool { return unknownTracked(gw()) == 0 },
			fl.ForgetAfter+time.Minute, 100*time.Millisecond, "round %d: the flood's BMCs were never forgotten", r+1)
		forgetTook = append(forgetTook, time.Since(consumed))
		tracked, peak := w.stop()
		margin := floodMargin(baseline, peak)
		after := b.settledHeap(ctx, baseline+margin)
		t.Logf("round %d: published in %s, consumed %s later; at most %.0f unknown BMCs tracked, heap in use up to %.1f MiB; %.1f MiB once forgotten (%s after consumed), margin %.1f MiB",
			r+1, t1.Sub(t0).Round(100*time.Millisecond), consumed.Sub(t1).Round(100*time.Millisecond), tracked, peak/(1<<20), after/(1<<20), forgetTook[r].Round(100*time.Millisecond), margin/(1<<20))
		// Every id was tracked by each consumer until forget_after.
		require.Equal(t, float64(fl.IDs*len(sinks)), tracked, "round %d: unknown BMCs tracked at most", r+1)
		require.Greater(t, peak-baseline, margin, "round %d: the flood's state is not measurable above the margin", r+1)
		require.LessOrEqual(t, after, baseline+margin, "round %d: heap in use after the flood was forgotten", r+1)
		peaks, afters, margins = append(peaks, peak), append(afters, after), append(margins, margin)
	}
	body := gw()
	for _, sink := range sinks {
		m := `sink="` + sink + `"`
		// At least the flood's: a fleet BMC whose polls stalled for
		// forget_after on a loaded machine is rightly forgotten too.
		require.GreaterOrEqual(t, metricSum(body, "bmcstream_gateway_bmcs_forgotten_total", m, `reason="inactive"`), float64(fl.IDs*fl.Rounds), sink)
		require.Equal(t, float64(fl.Snapshots*fl.Rounds), metricSum(body, "bmcstream_gateway_unknown_bmc_snapshots_total", m), sink)
		require.Zero(t, metricSum(body, "bmcstream_gateway_snapshots_total", m, `result="unknown_bmc_limit"`), sink)
	}
	require.Eventually(t, func() bool {
		return metricSum(gw(), "bmcstream_gateway_bmcs_tracked", `sink="prom"`, `known="true"`) == float64(b.sc.BMCs)
	}, time.Minute, 200*time.Millisecond, "the fleet's BMCs, polling, are kept")

	// reject_unknown_bmcs: the same flood keeps nothing.
	stop(t, b.gateway)
	setInventoryKeys("  reject_unknown_bmcs: true")
	b.startGateway()
	require.Eventually(t, func() bool {
		return metricSum(gw(), "bmcstream_gateway_bmcs_tracked", `sink="prom"`, `known="true"`) == float64(b.sc.BMCs)
	}, time.Minute, 200*time.Millisecond, "the restarted gateway tracks the fleet")
	rejBase := b.settledHeap(ctx, 0)
	w := b.watchGateway(ctx)
	last := publishFlood(t, ctx, js, template, fl, fl.Rounds)
	b.waitConsumed(ctx, sinks, last)
	rejTracked, rejPeak := w.stop()
	require.Zero(t, rejTracked, "state kept for an unknown BMC during the refused flood")
	body = gw()
	for _, sink := range sinks {
		m := `sink="` + sink + `"`
		require.Equal(t, float64(fl.Snapshots), metricSum(body, "bmcstream_gateway_snapshots_total", m, `result="unknown_bmc"`), sink)
		require.Zero(t, metricSum(body, "bmcstream_gateway_unknown_bmc_snapshots_total", m), sink)
	}
	require.Zero(t, unknownTracked(body))
	rejMargin := floodMargin(rejBase, rejBase)
	t.Logf("reject_unknown_bmcs: heap in use %.1f MiB before, peak %.1f MiB during the flood", rejBase/(1<<20), rejPeak/(1<<20))
	// The peak includes the garbage of decoding the flood between
	// collections; what is kept is nothing.
	require.LessOrEqual(t, b.settledHeap(ctx, rejBase+rejMargin), rejBase+rejMargin, "heap in use after a refused flood")
	b.finish()

	fmtMiB := func(vs []float64) string {
		parts := make([]string, len(vs))
		for i, v := range vs {
			parts[i] = fmt.Sprintf("%.0f", v/(1<<20))
		}
		return strings.Join(parts, ", ")
	}
	report(t, row{
		Scenario: fmt.Sprintf("8. unknown BMC flood: %d snapshots over %d ids not in the inventory, %d times", fl.Snapshots, fl.IDs, fl.Rounds),
		Load:     loadOf(b, fmt.Sprintf("max_unknown_bmcs %d, forget_after %s", fl.IDs, fl.ForgetAfter)),
		Result: fmt.Sprintf("per consumer: %d ids tracked per round, %d forgotten (inactive) in all; with reject_unknown_bmcs: %d snapshots refused, 0 tracked",
			fl.IDs, fl.IDs*fl.Rounds, fl.Snapshots),
		Notes: fmt.Sprintf("gateway heap in use %.0f MiB before; %s MiB holding each round's state; %s MiB once forgotten (margins %s MiB), forgotten %s after each round; reject_unknown_bmcs: %.0f MiB before, %.0f MiB peak while refusing",
			baseline/(1<<20), fmtMiB(peaks), fmtMiB(afters), fmtMiB(margins), durations(forgetTook), rejBase/(1<<20), rejPeak/(1<<20)),
	})
}

func durations(ds []time.Duration) string {
	parts := make([]string, len(ds))
	for i, d := range ds {
		parts[i] = d.Round(100 * time.Millisecond).String()
	}
	return strings.Join(parts, ", ")
}

// floodTemplate is a snapshot the fleet's poller published: the flood
// looks like real BMCs, with as many sensors.
func floodTemplate(t *testing.T, ctx context.Context, js jetstream.JetStream, b *bed) *v1.Snapshot {
	t.Helper()
	stream, err := js.Stream(ctx, bus.DefaultStreamConfig.Name)
	require.NoError(t, err)
	m, err := stream.GetLastMsgForSubject(ctx, bus.RawSubject(b.sim.Fleet.Members[0].BMC.ID))
	require.NoError(t, err)
	var s v1.Snapshot
	require.NoError(t, pipeline.Decode(m.Data, &s))
	require.NotEmpty(t, s.Readings)
	return &s
}

// publishFlood publishes one round: fl.Snapshots snapshots over fl.IDs
// ids, each id's poll times a second apart and newer than any earlier
// round's. It returns the stream sequence the flood was stored up to.
func publishFlood(t *testing.T, ctx context.Context, js jetstream.JetStream, template *v1.Snapshot, fl flood, round int) uint64 {
	t.Helper()
	var failed sync.Map
	pub, err := jetstream.New(jsConn(js), jetstream.WithPublishAsyncMaxPending(1024),
		jetstream.WithPublishAsyncErrHandler(func(_ jetstream.JetStream, m *nats.Msg, err error) { failed.Store(m.Subject, err) }))
	require.NoError(t, err)
	perID := (fl.Snapshots + fl.IDs - 1) / fl.IDs
	start := time.Now().Add(-time.Duration(perID+1) * time.Second).Truncate(time.Second)
	s := *template
	s.PollerId = "flood"
	for j := range fl.Snapshots {
		s.BmcId = fmt.Sprintf("flood-%04d", j%fl.IDs)
		k := j / fl.IDs
		at := start.Add(time.Duration(k) * time.Second)
		s.PollStartMs, s.PollEndMs = at.UnixMilli(), at.UnixMilli()+200
		s.Sequence = uint64(round*perID + k + 1)
		data, err := s.Marshal()
		require.NoError(t, err)
		msg := &nats.Msg{Subject: bus.RawSubject(s.BmcId), Data: data,
			Header: nats.Header{nats.MsgIdHdr: []string{bus.MsgID(s.PollerId, s.PollerEpoch, s.BmcId, s.Sequence)}}}
		_, err = pub.PublishMsgAsync(msg, jetstream.WithStallWait(time.Minute))
		require.NoError(t, err)
	}
	select {
	case <-pub.PublishAsyncComplete():
	case <-time.After(5 * time.Minute):
		t.Fatal("the flood was not stored in time")
	}
	failed.Range(func(k, v any) bool {
		t.Fatalf("flood publish on %v: %v", k, v)
		return false
	})
	stream, err := js.Stream(ctx, bus.DefaultStreamConfig.Name)
	require.NoError(t, err)
	info, err := stream.Info(ctx)
	require.NoError(t, err)
	return info.State.LastSeq
}

// jsConn is the connection of a JetStream context.
func jsConn(js jetstream.JetStream) *nats.Conn { return js.Conn() }

// waitConsumed waits until the named consumers have acked everything up to
// stream sequence seq (the fleet goes on publishing, so there is always
// something newer in flight).
func (b *bed) waitConsumed(ctx context.Context, sinks []string, seq uint64) {
	t := b.t
	js := b.js()
	for _, name := range sinks {
		var last string
		require.Eventually(t, func() bool {
			c, err := js.Consumer(ctx, bus.DefaultStreamConfig.Name, "bmcstream-gateway-"+name)
			if err != nil {
				last = err.Error()
				return false
			}
			info, err := c.Info(ctx)
			if err != nil {
				last = err.Error()
				return false
			}
			last = fmt.Sprintf("acked up to %d of %d", info.AckFloor.Stream, seq)
			return info.AckFloor.Stream >= seq
		}, 10*time.Minute, 200*time.Millisecond, "consumer %s never caught up: %s", name, last)
	}
}

// heapNow is the gateway's heap in use: the lowest of n scrapes 200 ms
// apart, so a collection that just ran is likely among them.
func (b *bed) heapNow(ctx context.Context, n int) float64 {
	low := 0.0
	for i := range n {
		if i > 0 {
			select {
			case <-ctx.Done():
				return low
			case <-time.After(200 * time.Millisecond):
			}
		}
		body, err := scrapeErr(b.gateway.Addr)
		if err != nil {
			continue
		}
		if v := metricSum(body, "go_memstats_heap_inuse_bytes"); v > 0 && (low == 0 || v < low) {
			low = v
		}
	}
	return low
}

// settledHeap is the gateway's heap in use after collections: the lowest
// over 5 s of scrapes. With a goal above 0 it waits (at most 3 min: the Go
// runtime collects at least every 2 min) until that lowest is at or under
// the goal, and returns the last figure either way.
func (b *bed) settledHeap(ctx context.Context, goal float64) float64 {
	deadline := time.Now().Add(3 * time.Minute)
	for {
		v := b.heapNow(ctx, 25)
		if goal <= 0 || v <= goal || time.Now().After(deadline) || ctx.Err() != nil {
			return v
		}
	}
}

// scrapeErr returns a program's /metrics body, or an error.
func scrapeErr(addr string) (string, error) {
	c := http.Client{Timeout: 10 * time.Second}
	resp, err := c.Get("http://" + addr + "/metrics")
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	return string(body), err
}

// gatewayWatch scrapes the gateway every 200 ms and keeps the most unknown
// BMCs tracked and the highest heap in use it saw.
type gatewayWatch struct {
	mu            sync.Mutex
	tracked, heap float64
	cancel        context.CancelFunc
	done          chan struct{}
}

func (b *bed) watchGateway(ctx context.Context) *gatewayWatch {
	w := &gatewayWatch{done: make(chan struct{})}
	ctx, w.cancel = context.WithCancel(ctx)
	addr := b.gateway.Addr
	go func() {
		defer close(w.done)
		for ctx.Err() == nil {
			if body, err := scrapeErr(addr); err == nil {
				w.mu.Lock()
				w.tracked = max(w.tracked, metricSum(body, "bmcstream_gateway_bmcs_tracked", `known="false"`))
				w.heap = max(w.heap, metricSum(body, "go_memstats_heap_inuse_bytes"))
				w.mu.Unlock()
			}
			select {
			case <-ctx.Done():
			case <-time.After(200 * time.Millisecond):
			}
		}
	}()
	return w
}

// stop ends the watch and returns the most unknown BMCs tracked and the
// highest heap in use seen.
func (w *gatewayWatch) stop() (tracked, heap float64) {
	w.cancel()
	<-w.done
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.tracked, w.heap
}
