package pipeline

import (
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/prometheus/prometheus/model/value"
	"github.com/stretchr/testify/require"

	"github.com/bmcstream/bmcstream/pkg/series"
	v1 "github.com/bmcstream/bmcstream/proto/bmcstream/v1"
)

func TestStalenessObserve(t *testing.T) {
	type poll struct {
		proto       v1.Protocol
		up, partial bool
		t           int64
		series      []string
		markers     []string // series that get a marker at t
	}
	polled := func(t int64, ss ...string) poll { return poll{proto: protoRedfish, up: true, t: t, series: ss} }
	for _, tc := range []struct {
		name  string
		polls []poll
	}{
		{
			name: "a sensor disappears: one marker, then it comes back",
			polls: []poll{
				polled(1000, "bmc_up", "a", "b"),
				{proto: protoRedfish, up: true, t: 2000, series: []string{"bmc_up", "a"}, markers: []string{"b"}},
				polled(3000, "bmc_up", "a"),
				polled(4000, "bmc_up", "a", "b"),
				polled(5000, "bmc_up", "a", "b"),
			},
		},
		{
			name: "a BMC goes down: its sensors end once, bmc_up goes on",
			polls: []poll{
				polled(1000, "bmc_up", "a", "b"),
				{proto: protoRedfish, t: 2000, series: []string{"bmc_up"}, markers: []string{"a", "b"}},
				{proto: protoRedfish, t: 3000, series: []string{"bmc_up"}},
				polled(4000, "bmc_up", "a", "b"),
			},
		},
		{
			name: "a partial poll marks nothing stale",
			polls: []poll{
				polled(1000, "bmc_up", "a", "b"),
				{proto: protoRedfish, up: true, partial: true, t: 2000, series: []string{"bmc_up", "a", "c"}},
				{proto: protoRedfish, up: true, t: 3000, series: []string{"bmc_up", "a"}, markers: []string{"b", "c"}},
			},
		},
		{
			name: "both protocols: a series ends when neither has it",
			polls: []poll{
				polled(1000, "bmc_up", "shared", "only_redfish"),
				{proto: protoIPMI, up: true, t: 1500, series: []string{"bmc_up", "shared", "only_ipmi"}},
				polled(2000, "bmc_up", "shared", "only_redfish"),
				{proto: protoIPMI, up: true, t: 2500, series: []string{"bmc_up", "shared", "only_ipmi"}},
				// IPMI stops answering: only its own series end.
				{proto: protoIPMI, t: 3500, series: []string{"bmc_up"}, markers: []string{"only_ipmi"}},
				// Then Redfish: the shared series ends too.
				{proto: protoRedfish, t: 4000, series: []string{"bmc_up"}, markers: []string{"only_redfish", "shared"}},
			},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			st := NewStaleness()
			for i, p := range tc.polls {
				snap := &v1.Snapshot{BmcId: "srv-1", Protocol: p.proto, Up: p.up, Partial: p.partial, PollStartMs: p.t}
				var in []series.Sample
				for _, name := range p.series {
					in = append(in, seriesSample("srv-1", name, p.t, 1))
				}
				out := st.Observe(in, snap, in)
				require.Equal(t, renderOrdered(in), renderOrdered(out[:len(in)]), "poll %d: samples kept", i)
				var want []string
				for _, name := range p.markers {
					want = append(want, fmt.Sprintf(`%s{bmc="srv-1"} stale @%d`, name, p.t))
				}
				got := renderOrdered(out[len(in):])
				slices.Sort(got)
				require.Equal(t, want, got, "poll %d", i)
			}
		})
	}
}

func TestStalenessForget(t *testing.T) {
	st := NewStaleness()
	for _, id := range []string{"srv-2", "srv-1"} {
		snap := &v1.Snapshot{BmcId: id, Up: true, PollStartMs: 60_000}
		st.Observe(nil, snap, []series.Sample{seriesSample(id, "bmc_up", 60_000, 1), seriesSample(id, "a", 60_000, 1)})
	}
	require.Equal(t, []string{"srv-1", "srv-2"}, st.BMCs())
	last, ok := st.LastSeen("srv-1")
	require.True(t, ok)
	require.Equal(t, int64(60_000), last)

	got := renderOrdered(st.Forget(nil, "srv-1", last+1))
	slices.Sort(got)
	require.Equal(t, []string{`a{bmc="srv-1"} stale @60001`, `bmc_up{bmc="srv-1"} stale @60001`}, got)
	require.Equal(t, []string{"srv-2"}, st.BMCs())
	_, ok = st.LastSeen("srv-1")
	require.False(t, ok)
	require.Empty(t, st.Forget(nil, "srv-1", last+2), "forgotten once")
}

func TestStalenessHashCollision(t *testing.T) {
	st := NewStaleness()
	a := seriesSample("srv-1", "a", 1, 1)
	b := seriesSample("srv-1", "b", 1, 1)
	b.Series = &series.Series{Labels: b.Series.Labels, Hash: a.Series.Hash, Slot: -1}
	snap := func(t int64) *v1.Snapshot { return &v1.Snapshot{BmcId: "srv-1", Up: true, PollStartMs: t} }
	require.Empty(t, st.Observe(nil, snap(1), []series.Sample{a, b}))
	require.Empty(t, st.Observe(nil, snap(2), []series.Sample{b, a}))
	require.Equal(t, []string{`a{bmc="srv-1"} stale @3`}, renderOrdered(st.Observe(nil, snap(3), []series.Sample{b})))
	require.Equal(t, []string{`b{bmc="srv-1"} stale @4`}, renderOrdered(st.Observe(nil, snap(4), nil)))
}

// promView answers an instant query for every series at time at, the way
// Prometheus' engine does: the newest sample in the lookback window
// (at-5m, at] wins, and a staleness marker there means "no value".
func promView(samples []series.Sample, at int64) []string {
	const lookback = int64(5 * time.Minute / time.Millisecond)
	newest := map[uint64]series.Sample{}
	for _, s := range samples {
		if s.T <= at && s.T > at-lookback {
			if cur, ok := newest[s.Series.Hash]; !ok || s.T > cur.T {
				newest[s.Series.Hash] = s
			}
		}
	}
	var out []string
	for _, s := range newest {
		if value.IsStaleNaN(s.V) {
			continue
		}
		out = append(out, fmt.Sprintf("%s{sensor=%q} %g", s.Series.Labels.Get("__name__"), s.Series.Labels.Get("sensor"), s.V))
	}
	slices.Sort(out)
	return out
}

// TestStalenessAsPrometheusSeesIt runs a BMC through the stages (a stand-in
// normaliser, Staleness and Dedup), and checks what a Prometheus holding the written samples would
// answer over time: a sensor that disappears ends at the poll that lost it,
// a BMC that goes down keeps bmc_up only, and a BMC that leaves the
// inventory ends right after its last poll, where without markers every
// series would linger for the five minutes of lookback.
func TestStalenessAsPrometheusSeesIt(t *testing.T) {
	const minute = 60_000
	t0 := int64(1_700_000_000_000)
	reading := func(name string, v float64) v1.Reading {
		return v1.Reading{Name: name, Kind: v1.Kind_KIND_TEMPERATURE, Unit: "Cel", Value: v}
	}
	polls := []*v1.Snapshot{
		{Up: true, Readings: []v1.Reading{reading("CPU1", 40), reading("CPU2", 41)}},
		{Up: true, Readings: []v1.Reading{reading("CPU1", 42)}}, // CPU2 gone
		{Up: false},
		{Up: true, Readings: []v1.Reading{reading("CPU1", 43)}},
	}
	st := NewStaleness()
	d := NewDedup(3 * time.Minute)
	var written, buf []series.Sample
	for i, snap := range polls {
		snap.BmcId, snap.PollerId, snap.Protocol = "srv-1", "a", protoRedfish
		snap.PollStartMs = t0 + int64(i)*minute
		require.True(t, d.Accept(snap))
		buf = miniNormalise(buf[:0], snap)
		buf = st.Observe(buf, snap, buf)
		buf = d.Filter(buf[:0], "srv-1", buf)
		written = append(written, buf...)
	}
	last, _ := st.LastSeen("srv-1")
	written = d.Filter(written, "srv-1", st.Forget(nil, "srv-1", last+1))
	d.Forget("srv-1")

	noMarkers := slices.DeleteFunc(slices.Clone(written), func(s series.Sample) bool { return value.IsStaleNaN(s.V) })
	at := func(min float64) int64 { return t0 + int64(min*minute) }
	const (
		cpu1at40 = `bmc_temperature_celsius{sensor="CPU1"} 40`
		cpu1at42 = `bmc_temperature_celsius{sensor="CPU1"} 42`
		cpu1at43 = `bmc_temperature_celsius{sensor="CPU1"} 43`
		cpu2at41 = `bmc_temperature_celsius{sensor="CPU2"} 41`
		up1      = `bmc_up{sensor=""} 1`
		up0      = `bmc_up{sensor=""} 0`
	)
	for _, tc := range []struct {
		min            float64
		want           []string
		withoutMarkers []string
	}{
		{0.5, []string{cpu1at40, cpu2at41, up1}, []string{cpu1at40, cpu2at41, up1}},
		// CPU2 is gone from the poll at 1 min.
		{1.5, []string{cpu1at42, up1}, []string{cpu1at42, cpu2at41, up1}},
		// The BMC is down at 2 min.
		{2.5, []string{up0}, []string{cpu1at42, cpu2at41, up0}},
		// It answers at 3 min, then leaves the inventory.
		{3, []string{cpu1at43, up1}, []string{cpu1at43, cpu2at41, up1}},
		{3.01, nil, []string{cpu1at43, cpu2at41, up1}},
		{5.5, nil, []string{cpu1at43, up1}},
		{7.5, nil, []string{cpu1at43, up1}},
		{8.5, nil, nil},
	} {
		require.Equal(t, tc.want, promView(written, at(tc.min)), "at %g min", tc.min)
		require.Equal(t, tc.withoutMarkers, promView(noMarkers, at(tc.min)), "without markers, at %g min", tc.min)
	}
}

func TestStalenessObserveDoesNotAllocate(t *testing.T) {
	st := NewStaleness()
	samples := seriesBenchSamples("srv-1", 150)
	snap := &v1.Snapshot{BmcId: "srv-1", Up: true}
	dst := make([]series.Sample, 0, 200)
	allocs := testing.AllocsPerRun(100, func() {
		snap.PollStartMs++
		// Every other poll loses ten series, which come back the next.
		in := samples
		if snap.PollStartMs%2 == 0 {
			in = samples[10:]
		}
		dst = st.Observe(dst[:0], snap, in)
	})
	require.Zero(t, allocs)
}

func BenchmarkStalenessObserve(b *testing.B) {
	const bmcs, perBMC = 1000, 150
	st := NewStaleness()
	snaps := make([][]series.Sample, bmcs)
	ids := make([]string, bmcs)
	for i := range snaps {
		ids[i] = fmt.Sprintf("10.0.%d.%d", i/256, i%256)
		snaps[i] = seriesBenchSamples(ids[i], perBMC)
	}
	dst := make([]series.Sample, 0, perBMC)
	snap := &v1.Snapshot{Up: true, PollStartMs: 1_700_000_000_000}
	for i := range snaps { // warm up: measure the steady state
		snap.BmcId = ids[i]
		dst = st.Observe(dst[:0], snap, snaps[i])
	}
	var n int
	b.ReportAllocs()
	for b.Loop() {
		i := n % bmcs
		if i == 0 {
			snap.PollStartMs += 60_000
		}
		snap.BmcId = ids[i]
		dst = st.Observe(dst[:0], snap, snaps[i])
		n++
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(n*perBMC), "ns/sample")
}
