package pipeline

import (
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"testing"
	"time"

	"github.com/prometheus/prometheus/model/value"
	"github.com/prometheus/prometheus/prompb"
	"github.com/stretchr/testify/require"

	"github.com/bmcstream/bmcstream/pkg/series"
	v1 "github.com/bmcstream/bmcstream/proto/bmcstream/v1"
)

const (
	protoRedfish = v1.Protocol_PROTOCOL_REDFISH
	protoIPMI    = v1.Protocol_PROTOCOL_IPMI
)

func TestDedupAccept(t *testing.T) {
	type step struct {
		poller string
		t      int64
		proto  v1.Protocol
		want   bool
		leader string
	}
	for _, tc := range []struct {
		name     string
		failover time.Duration
		steps    []step
		stats    DedupStats
	}{
		{
			name:     "leader sticks while it polls",
			failover: 90 * time.Second,
			steps: []step{
				{"a", 1_000, protoRedfish, true, "a"},
				{"b", 1_001, protoRedfish, false, "a"},
				{"a", 61_000, protoRedfish, true, "a"},
				{"b", 61_001, protoRedfish, false, "a"},
				{"b", 121_001, protoRedfish, false, "a"}, // a late, not quiet long enough
				{"a", 121_500, protoRedfish, true, "a"},
			},
			stats: DedupStats{NotLeader: 3},
		},
		{
			name:     "failover after the quiet time and not before",
			failover: 90 * time.Second,
			steps: []step{
				{"a", 1_000, protoRedfish, true, "a"},
				{"b", 61_000, protoRedfish, false, "a"},
				{"b", 91_000, protoRedfish, false, "a"}, // quiet for exactly 90 s
				{"b", 91_001, protoRedfish, true, "b"},
				{"a", 91_500, protoRedfish, false, "b"}, // the old leader is back: follower now
				{"b", 151_001, protoRedfish, true, "b"},
				{"a", 241_001, protoRedfish, false, "b"},
				{"a", 241_002, protoRedfish, true, "a"}, // b quiet > 90 s
			},
			stats: DedupStats{NotLeader: 4, Failovers: 2},
		},
		{
			name:     "redelivered and older snapshots",
			failover: 90 * time.Second,
			steps: []step{
				{"a", 1_000, protoRedfish, true, "a"},
				{"a", 2_000, protoRedfish, true, "a"},
				{"a", 2_000, protoRedfish, false, "a"},
				{"a", 1_500, protoRedfish, false, "a"},
				{"a", 3_000, protoRedfish, true, "a"},
			},
			stats: DedupStats{StaleSequence: 2},
		},
		{
			name:     "both protocols of one poll in the same millisecond",
			failover: 90 * time.Second,
			steps: []step{
				{"a", 1_000, protoRedfish, true, "a"},
				{"a", 1_000, protoIPMI, true, "a"},
				{"a", 1_000, protoRedfish, false, "a"},
				{"b", 1_000, protoIPMI, false, "a"},
			},
			stats: DedupStats{NotLeader: 1, StaleSequence: 1},
		},
		{
			name:     "zero failover takes any newer snapshot",
			failover: 0,
			steps: []step{
				{"a", 1_000, protoRedfish, true, "a"},
				{"b", 1_001, protoRedfish, true, "b"},
				{"a", 1_001, protoRedfish, false, "b"},
				{"a", 1_002, protoRedfish, true, "a"},
			},
			stats: DedupStats{NotLeader: 1, Failovers: 2},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d := NewDedup(tc.failover)
			for i, s := range tc.steps {
				snap := &v1.Snapshot{BmcId: "srv-1", PollerId: s.poller, PollStartMs: s.t, Protocol: s.proto}
				require.Equal(t, s.want, d.Accept(snap), "step %d: %+v", i, s)
				leader, ok := d.Leader("srv-1")
				require.True(t, ok)
				require.Equal(t, s.leader, leader, "step %d", i)
			}
			require.Equal(t, tc.stats, d.Stats)
			// Another BMC is independent.
			require.True(t, d.Accept(&v1.Snapshot{BmcId: "srv-2", PollerId: "b", PollStartMs: 1}))
		})
	}
}

// sample builds a sample of series name{bmc=..., extra...}.
func seriesSample(bmc, name string, t int64, v float64, extra ...string) series.Sample {
	ls := []prompb.Label{{Name: "__name__", Value: name}, {Name: "bmc", Value: bmc}}
	for i := 0; i+1 < len(extra); i += 2 {
		ls = append(ls, prompb.Label{Name: extra[i], Value: extra[i+1]})
	}
	series.Sort(ls)
	return series.Sample{Series: series.New(ls), T: t, V: v}
}

func staleMarker() float64 { return math.Float64frombits(value.StaleNaN) }

func TestDedupFilter(t *testing.T) {
	a := func(ts int64, v float64) series.Sample { return seriesSample("srv-1", "a", ts, v) }
	b := func(ts int64, v float64) series.Sample { return seriesSample("srv-1", "b", ts, v) }
	// c collides with a: same hash, other labels.
	c := func(ts int64, v float64) series.Sample {
		s := seriesSample("srv-1", "c", ts, v)
		s.Series = &series.Series{Labels: s.Series.Labels, Hash: a(0, 0).Series.Hash, Slot: -1}
		return s
	}
	for _, tc := range []struct {
		name    string
		batches [][]series.Sample
		want    []string
		dropped uint64
	}{
		{
			name:    "newer samples pass",
			batches: [][]series.Sample{{a(1, 1), b(1, 1)}, {a(2, 2), b(3, 3)}},
			want:    []string{`a{bmc="srv-1"} 1 @1`, `b{bmc="srv-1"} 1 @1`, `a{bmc="srv-1"} 2 @2`, `b{bmc="srv-1"} 3 @3`},
		},
		{
			name:    "same time and older are dropped",
			batches: [][]series.Sample{{a(5, 1)}, {a(5, 2), a(4, 3), b(4, 4)}, {a(6, 5)}},
			want:    []string{`a{bmc="srv-1"} 1 @5`, `b{bmc="srv-1"} 4 @4`, `a{bmc="srv-1"} 5 @6`},
			dropped: 2,
		},
		{
			name:    "duplicate series within one snapshot",
			batches: [][]series.Sample{{a(5, 1), a(5, 2)}},
			want:    []string{`a{bmc="srv-1"} 1 @5`},
			dropped: 1,
		},
		{
			name:    "staleness markers pass when newer",
			batches: [][]series.Sample{{a(5, 1)}, {a(5, staleMarker()), a(6, staleMarker())}, {a(7, 2)}},
			want:    []string{`a{bmc="srv-1"} 1 @5`, `a{bmc="srv-1"} stale @6`, `a{bmc="srv-1"} 2 @7`},
			dropped: 1,
		},
		{
			name:    "hash collision keeps both series apart",
			batches: [][]series.Sample{{a(5, 1), c(3, 2)}, {c(4, 3), a(4, 4)}, {c(4, 5)}},
			want:    []string{`a{bmc="srv-1"} 1 @5`, `c{bmc="srv-1"} 2 @3`, `c{bmc="srv-1"} 3 @4`},
			dropped: 2,
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d := NewDedup(time.Minute)
			var got []string
			for _, batch := range tc.batches {
				// In place, as the gateway does.
				got = append(got, renderOrdered(d.Filter(batch[:0], "srv-1", batch))...)
			}
			require.Equal(t, tc.want, got)
			require.Equal(t, tc.dropped, d.Stats.DroppedSamples)
		})
	}
}

// renderOrdered renders samples in their order; stale markers as "stale".
func renderOrdered(ss []series.Sample) []string {
	var out []string
	for _, s := range ss {
		v := fmt.Sprintf("%g", s.V)
		if value.IsStaleNaN(s.V) {
			v = "stale"
		}
		var lbl []string
		for _, l := range s.Series.Labels.Prom() {
			if l.Name != "__name__" {
				lbl = append(lbl, fmt.Sprintf("%s=%q", l.Name, l.Value))
			}
		}
		out = append(out, fmt.Sprintf("%s{%s} %s @%d", s.Series.Labels.Get("__name__"), joinComma(lbl), v, s.T))
	}
	return out
}

func joinComma(ss []string) string {
	out := ""
	for i, s := range ss {
		if i > 0 {
			out += ","
		}
		out += s
	}
	return out
}

func TestDedupForget(t *testing.T) {
	d := NewDedup(time.Minute)
	require.True(t, d.Accept(&v1.Snapshot{BmcId: "srv-1", PollerId: "a", PollStartMs: 100}))
	require.Len(t, d.Filter(nil, "srv-1", []series.Sample{seriesSample("srv-1", "x", 100, 1)}), 1)
	require.Len(t, d.Filter(nil, "srv-2", []series.Sample{seriesSample("srv-2", "x", 100, 1)}), 1)
	bmcs, n := d.Len()
	require.Equal(t, 2, bmcs)
	require.Equal(t, 2, n)

	d.Forget("srv-1")
	_, ok := d.Leader("srv-1")
	require.False(t, ok)
	bmcs, n = d.Len()
	require.Equal(t, 1, bmcs)
	require.Equal(t, 1, n)
	// A new start: any poller, any time.
	require.True(t, d.Accept(&v1.Snapshot{BmcId: "srv-1", PollerId: "b", PollStartMs: 50}))
	require.Len(t, d.Filter(nil, "srv-1", []series.Sample{seriesSample("srv-1", "x", 50, 1)}), 1)
	// srv-2 kept its state.
	require.Empty(t, d.Filter(nil, "srv-2", []series.Sample{seriesSample("srv-2", "x", 100, 1)}))
}

func TestDedupFilterBeforeAccept(t *testing.T) {
	d := NewDedup(time.Minute)
	// Markers for a BMC Dedup has not accepted a snapshot of yet.
	require.Len(t, d.Filter(nil, "srv-1", []series.Sample{seriesSample("srv-1", "x", 100, staleMarker())}), 1)
	require.True(t, d.Accept(&v1.Snapshot{BmcId: "srv-1", PollerId: "a", PollStartMs: 200}))
	require.Zero(t, d.Stats.Failovers)
	require.False(t, d.Accept(&v1.Snapshot{BmcId: "srv-1", PollerId: "b", PollStartMs: 201}))
}

func TestDedupForgetsQuietSeries(t *testing.T) {
	d := NewDedup(time.Minute)
	hour := DedupHorizon.Milliseconds()
	t0 := int64(1_700_000_000_000)
	d.Filter(nil, "srv-1", []series.Sample{seriesSample("srv-1", "old", t0, 1), seriesSample("srv-1", "up", t0, 1)})
	for ts := t0 + 60_000; ts <= t0+2*hour+60_000; ts += 60_000 {
		d.Filter(nil, "srv-1", []series.Sample{seriesSample("srv-1", "up", ts, 1)})
	}
	_, n := d.Len()
	require.Equal(t, 1, n, "a series quiet for over an hour is forgotten")
}

func TestSeriesSetRemove(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	var s seriesSet[int]
	want := map[string]int{}
	// Three hashes for 200 series: long collision chains.
	lbl := func(i int) *series.Series {
		return &series.Series{Labels: series.FromStrings("i", fmt.Sprint(i)), Hash: uint64(i % 3), Slot: -1}
	}
	for i := range 200 {
		// Three hashes for 200 series: long collision chains.
		s.add(lbl(i), i)
		want[fmt.Sprint(i)] = i
	}
	for round := range 150 {
		j := rng.IntN(len(s.entries))
		delete(want, s.entries[j].ser.Labels.Get("i"))
		s.remove(j)
		if round%10 == 0 {
			k := 1000 + round
			s.add(lbl(k), k)
			want[fmt.Sprint(k)] = k
		}
		require.Len(t, s.entries, len(want))
		for i := range 1200 {
			idx := s.find(lbl(i))
			v, ok := want[fmt.Sprint(i)]
			if !ok {
				require.Equal(t, -1, idx, "series %d was removed", i)
				continue
			}
			require.GreaterOrEqual(t, idx, 0, "series %d", i)
			require.Equal(t, v, s.entries[idx].val)
		}
	}
}

// TestDedupInterleavedHA runs an HA pair through the gateway's stages, with
// the two pollers' snapshots interleaved in the stream out of poll order,
// the leader dying and coming back, and readings carrying their own
// timestamps. Every series must come out strictly increasing in time.
func TestDedupInterleavedHA(t *testing.T) {
	const interval = 10_000
	rng := rand.New(rand.NewPCG(7, 11))
	type msg struct {
		pub  int64
		snap *v1.Snapshot
	}
	var stream []msg
	t0 := int64(1_700_000_000_000)
	for _, bmc := range []string{"srv-1", "srv-2", "srv-3"} {
		for _, p := range []struct {
			id     string
			offset int64
		}{{"poller-a", 0}, {"poller-b", 3_000}} {
			for k := int64(0); k < 60; k++ {
				start := t0 + k*interval + p.offset + rng.Int64N(2_000)
				if p.id == "poller-a" && k >= 20 && k < 35 || p.id == "poller-b" && (k == 0 || k >= 45) {
					// poller-b starts second; poller-a is down for 150 s,
					// then poller-b stops for good.
					continue
				}
				snap := &v1.Snapshot{
					BmcId: bmc, PollerId: p.id, Protocol: protoRedfish, PollStartMs: start, PollEndMs: start + 300, Up: k%17 != 5,
				}
				if snap.Up {
					snap.Readings = []v1.Reading{
						{Name: "CPU1 Temp", Kind: v1.Kind_KIND_TEMPERATURE, Unit: "Cel", Value: 40 + float64(k%5), Health: v1.Health_HEALTH_OK},
						// The BMC's own timestamp lags and repeats.
						{Name: "Inlet", Kind: v1.Kind_KIND_TEMPERATURE, Unit: "Cel", Value: 21, TimestampMs: start - start%20_000},
					}
					if k%7 == 3 {
						snap.Readings = snap.Readings[:1] // Inlet missing: goes stale
					}
				}
				// Publication is delayed by up to 8 s, so the stream mixes
				// the pollers out of poll order.
				stream = append(stream, msg{pub: start + rng.Int64N(8_000), snap: snap})
			}
		}
	}
	slices.SortStableFunc(stream, func(a, b msg) int { return int(a.pub - b.pub) })

	d := NewDedup(25 * time.Second)
	st := NewStaleness()
	last := map[string]int64{}
	accepted := map[string]int{}
	var out []series.Sample
	for _, m := range stream {
		if !d.Accept(m.snap) {
			continue
		}
		accepted[m.snap.PollerId]++
		out = miniNormalise(out[:0], m.snap)
		out = st.Observe(out, m.snap, out)
		out = d.Filter(out[:0], m.snap.BmcId, out)
		for _, s := range out {
			key := s.Series.Labels.String()
			prev, ok := last[key]
			require.True(t, !ok || s.T > prev, "%v: %d after %d", s.Series.Labels, s.T, prev)
			last[key] = s.T
		}
	}
	require.Equal(t, uint64(6), d.Stats.Failovers, "a→b and back, per BMC")
	for _, bmc := range []string{"srv-1", "srv-2", "srv-3"} {
		leader, _ := d.Leader(bmc)
		require.Equal(t, "poller-a", leader)
	}
	require.Positive(t, d.Stats.NotLeader)
	require.Positive(t, d.Stats.DroppedSamples, "repeated Inlet timestamps")
	require.Greater(t, accepted["poller-a"], 3*25)
	require.Greater(t, accepted["poller-b"], 3*15)
}

// miniNormalise stands in for the normaliser, so these stages' tests do
// not follow its changes: bmc_up, and bmc_temperature_celsius{sensor} per
// reading at the reading's own time if it has one.
func miniNormalise(dst []series.Sample, s *v1.Snapshot) []series.Sample {
	up := 0.0
	if s.Up {
		up = 1
	}
	dst = append(dst, seriesSample(s.BmcId, "bmc_up", s.PollStartMs, up))
	for _, r := range s.Readings {
		t := s.PollStartMs
		if r.TimestampMs > 0 {
			t = r.TimestampMs
		}
		dst = append(dst, seriesSample(s.BmcId, "bmc_temperature_celsius", t, r.Value, "sensor", r.Name))
	}
	return dst
}

func TestDedupFilterDoesNotAllocate(t *testing.T) {
	d := NewDedup(time.Minute)
	samples := seriesBenchSamples("srv-1", 150)
	ts := int64(1000)
	allocs := testing.AllocsPerRun(100, func() {
		ts++
		for i := range samples {
			samples[i].T = ts
		}
		_ = d.Filter(samples[:0], "srv-1", samples)
	})
	require.Zero(t, allocs)
}

// seriesBenchSamples returns n series of one BMC shaped like normalised ones.
func seriesBenchSamples(bmc string, n int) []series.Sample {
	out := make([]series.Sample, 0, n)
	for i := range n {
		out = append(out, seriesSample(bmc, "bmc_temperature_celsius", 0, 40,
			"context", "cpu", "rack", "i5", "sensor", fmt.Sprintf("Sensor %d", i), "site", "ctc"))
	}
	return out
}

func BenchmarkDedupFilter(b *testing.B) {
	const bmcs, perBMC = 1000, 150
	d := NewDedup(time.Minute)
	snaps := make([][]series.Sample, bmcs)
	ids := make([]string, bmcs)
	for i := range snaps {
		ids[i] = fmt.Sprintf("10.0.%d.%d", i/256, i%256)
		snaps[i] = seriesBenchSamples(ids[i], perBMC)
	}
	buf := make([]series.Sample, 0, perBMC)
	ts := int64(1_700_000_000_000)
	for i := range snaps { // warm up: measure the steady state
		buf = d.Filter(buf[:0], ids[i], snaps[i])
	}
	var n int
	b.ReportAllocs()
	for b.Loop() {
		i := n % bmcs
		if i == 0 {
			ts += 60_000
		}
		snap := snaps[i]
		for j := range snap {
			snap[j].T = ts
		}
		d.Accept(&v1.Snapshot{BmcId: ids[i], PollerId: "a", PollStartMs: ts})
		buf = d.Filter(buf[:0], ids[i], snap)
		n++
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(n*perBMC), "ns/sample")
}

// TestDedupHandoverWithoutHAPair: pollers running with replication factor 1
// hand a BMC over (one left or joined); the new poller leads from its first
// snapshot instead of being refused for the failover time, and an older or
// redelivered snapshot is still refused.
func TestDedupHandoverWithoutHAPair(t *testing.T) {
	d := NewDedup(30 * time.Second)
	snap := func(poller string, at int64, rf uint32) *v1.Snapshot {
		return &v1.Snapshot{BmcId: "b1", PollerId: poller, PollStartMs: at, Protocol: protoRedfish, ReplicationFactor: rf}
	}
	require.True(t, d.Accept(snap("a", 1_000, 1)))
	require.True(t, d.Accept(snap("a", 3_000, 1)))
	require.True(t, d.Accept(snap("b", 5_000, 1)), "a handover is accepted at once")
	leader, _ := d.Leader("b1")
	require.Equal(t, "b", leader)
	require.False(t, d.Accept(snap("a", 4_000, 1)), "older than the last accepted")
	require.False(t, d.Accept(snap("b", 5_000, 1)), "redelivered")
	require.Equal(t, uint64(1), d.Stats.Failovers)
	// An HA pair (rf 2, or unstated) keeps the failover time.
	require.False(t, d.Accept(snap("c", 6_000, 2)))
	require.False(t, d.Accept(snap("c", 7_000, 0)))
	require.Equal(t, uint64(2), d.Stats.NotLeader)
}
