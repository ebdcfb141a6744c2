package pipeline

import (
	"context"
	"fmt"
	"math"
	"net"
	"net/http/httptest"
	"net/url"
	"runtime"
	"slices"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/prometheus/prometheus/prompb"

	"github.com/bmcstream/bmcstream/internal/synth"
	"github.com/bmcstream/bmcstream/pkg/bmcsim/model"
	simredfish "github.com/bmcstream/bmcstream/pkg/bmcsim/redfish"
	"github.com/bmcstream/bmcstream/pkg/secret"
	"github.com/bmcstream/bmcstream/pkg/series"
	"github.com/bmcstream/bmcstream/pkg/sources"
	rfsource "github.com/bmcstream/bmcstream/pkg/sources/redfish"
	v1 "github.com/bmcstream/bmcstream/proto/bmcstream/v1"
)

// benchFleet is the gateway benchmarks' load (benchmarks/internal/gwfleet,
// which this package cannot import): one real Redfish poll of each bmcsim
// personality, replayed for n BMCs of 40 to 120 readings (numbered copies
// of the personality's sensors), values drifting per BMC and poll, with
// synth's inventory labels.
type benchFleet struct {
	templates []*v1.Snapshot
	bmcs      []string
	bases     [][]prompb.Label
}

func newBenchFleet(tb testing.TB, n int) *benchFleet {
	tb.Helper()
	ps := simPersonalities(tb)
	names := make([]string, 0, len(ps))
	for name := range ps {
		names = append(names, name)
	}
	slices.Sort(names)
	f := &benchFleet{}
	for _, name := range names {
		f.templates = append(f.templates, pollRedfishOnce(tb, name, ps[name]))
	}
	for _, b := range synth.NewFleet(n).BMCs {
		ls := []prompb.Label{{Name: "bmc", Value: b.ID}}
		for k, v := range b.Labels {
			ls = append(ls, prompb.Label{Name: k, Value: v})
		}
		series.Sort(ls)
		f.bmcs = append(f.bmcs, b.ID)
		f.bases = append(f.bases, ls)
	}
	return f
}

// pollRedfishOnce polls one virtual BMC of a personality over Redfish on
// loopback with a frozen clock.
func pollRedfishOnce(tb testing.TB, name string, p *model.Personality) *v1.Snapshot {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	b := model.NewBMC("tmpl-"+name, "r01", p, model.Room{Seed: 7}, simUser, simPassword)
	at := simInstant()
	now := func() time.Time { return at }
	h := simredfish.NewHandler(b, simredfish.Options{Now: now, IgnoreSensorLatency: true})
	srv := httptest.NewServer(h)
	defer func() { srv.Close(); _ = h.Close() }()
	u, err := url.Parse(srv.URL)
	if err != nil {
		tb.Fatal(err)
	}
	host, port, _ := net.SplitHostPort(u.Host)
	portN, _ := strconv.Atoi(port)
	tg := sources.Target{Host: host, Port: portN, Scheme: "http", Username: simUser, Password: secret.Secret(simPassword)}
	tr, err := rfsource.NewTransport(tg)
	if err != nil {
		tb.Fatal(err)
	}
	defer tr.CloseIdleConnections()
	src := rfsource.New(tg, rfsource.Options{Now: now, Transport: tr})
	s := &v1.Snapshot{}
	if err := src.Collect(ctx, s); err != nil {
		tb.Fatalf("poll personality %s: %v", name, err)
	}
	if err := src.Close(ctx); err != nil {
		tb.Fatal(err)
	}
	s.PollStartMs, s.PollEndMs = at.UnixMilli(), at.UnixMilli()+250
	return s
}

// snapshot is BMC i's poll number poll, 30 s apart, as gwfleet makes it.
func (f *benchFleet) snapshot(i, poll int) *v1.Snapshot {
	t := f.templates[i%len(f.templates)]
	s := *t
	ms := t.PollStartMs + int64(poll)*30_000 + int64(i%1000)*30
	s.BmcId, s.PollerId, s.Sequence = f.bmcs[i], "bench", uint64(poll+1)
	s.PollStartMs, s.PollEndMs = ms, ms+(t.PollEndMs-t.PollStartMs)
	n := 40 + (i*37)%81
	s.Readings = make([]v1.Reading, n)
	for k := range n {
		r := t.Readings[k%len(t.Readings)]
		if c := k / len(t.Readings); c > 0 {
			r.Name = fmt.Sprintf("%s #%d", r.Name, c)
			if r.Id != "" {
				r.Id = fmt.Sprintf("%s_%d", r.Id, c)
			}
		}
		if r.Value != 0 {
			d := 0.02 * math.Sin(float64(i*131+k*17+poll*7))
			r.Value = math.Round(r.Value*(1+d)*100) / 100
		}
		s.Readings[k] = r
	}
	return &s
}

// liveHeap is the heap in use after a full collection.
func liveHeap() uint64 {
	var ms runtime.MemStats
	runtime.GC()
	runtime.GC()
	runtime.ReadMemStats(&ms)
	return ms.HeapAlloc
}

// BenchmarkBMCStateMemory measures what the gateway's pipeline keeps per
// BMC: 2000 gwfleet-shaped BMCs polled 3 times through Normalise,
// Sources.Split, Staleness.Observe and Dedup.Accept/Filter, as a sink
// does; the live heap they hold afterwards (the normaliser's plans and
// series tables, the stages' per-series state), per BMC. The snapshots are
// garbage by then, as in the gateway.
func BenchmarkBMCStateMemory(b *testing.B) {
	const bmcs, polls = 2000, 3
	f := newBenchFleet(b, bmcs)
	var perBMC, seriesPerBMC float64
	for b.Loop() {
		before := liveHeap()
		n, err := NewNormaliser(NormaliserOptions{})
		if err != nil {
			b.Fatal(err)
		}
		src, stale, dd := NewSources(), NewStaleness(), NewDedup(time.Minute)
		var st Stats
		var buf []series.Sample
		for poll := range polls {
			for i := range bmcs {
				s := f.snapshot(i, poll)
				if !dd.Accept(s) {
					b.Fatalf("snapshot %d/%d not accepted", i, poll)
				}
				buf = n.Normalise(buf[:0], s, f.bases[i], &st)
				k, _ := src.Split(s, v1.Protocol_PROTOCOL_UNSPECIFIED, buf)
				buf = stale.Observe(buf[:k], s, buf[:k])
				buf = dd.Filter(buf[:0], s.BmcId, buf)
			}
		}
		buf = nil
		after := liveHeap()
		_, ns := dd.Len()
		perBMC = (float64(after) - float64(before)) / bmcs
		seriesPerBMC = float64(ns) / bmcs
		runtime.KeepAlive(n)
		runtime.KeepAlive(src)
		runtime.KeepAlive(stale)
		runtime.KeepAlive(dd)
	}
	b.ReportMetric(perBMC, "heapB/BMC")
	b.ReportMetric(seriesPerBMC, "series/BMC")
}

// BenchmarkFirstPoll measures a BMC's first poll on gwfleet-shaped
// snapshots: the plan built (classification, labels, the series table),
// then the samples emitted. Each iteration is another BMC of the fleet,
// forgotten first so its poll is a first one. "seen-model": other BMCs of
// the same model were planned before (most BMCs of a fleet: their plans
// are templates, and the own labels are interned); "new-model": no
// template, every reading classified (the first BMC of each model).
func BenchmarkFirstPoll(b *testing.B) {
	const bmcs = 200
	f := newBenchFleet(b, bmcs)
	snaps := make([]*v1.Snapshot, bmcs)
	for i := range snaps {
		snaps[i] = f.snapshot(i, 0)
	}
	for _, newModel := range []bool{false, true} {
		name := "seen-model"
		if newModel {
			name = "new-model"
		}
		b.Run(name, func(b *testing.B) {
			n, err := NewNormaliser(NormaliserOptions{})
			if err != nil {
				b.Fatal(err)
			}
			var st Stats
			var buf []series.Sample
			for i := range snaps { // warm: templates, interned labels
				buf = n.Normalise(buf[:0], snaps[i], f.bases[i], &st)
			}
			samples := 0
			b.ReportAllocs()
			i := 0
			cpu0 := processCPU()
			for b.Loop() {
				j := i % bmcs
				n.Forget(f.bmcs[j])
				if newModel {
					n.tmu.Lock()
					n.templates = nil
					n.tmu.Unlock()
				}
				buf = n.Normalise(buf[:0], snaps[j], f.bases[j], &st)
				samples += len(buf)
				i++
			}
			// CPU time, not wall time: the figure the target is about,
			// and the one that holds on a shared machine. It includes
			// the collector's.
			b.ReportMetric(float64(processCPU()-cpu0)/float64(i), "cpu-ns/op")
			b.ReportMetric(float64(samples)/float64(i), "samples/op")
		})
	}
}

// processCPU is the CPU time the process has used, user and system.
func processCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
