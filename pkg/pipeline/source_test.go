package pipeline

import (
	"fmt"
	"strings"
	"testing"

	"github.com/prometheus/prometheus/model/value"
	"github.com/stretchr/testify/require"

	"github.com/bmcstream/bmcstream/pkg/series"
	v1 "github.com/bmcstream/bmcstream/proto/bmcstream/v1"
)

// sourcePoll is one snapshot in the Sources tests. Series named "up" stand
// for bmc_up, which carries the snapshot's protocol as a label.
type sourcePoll struct {
	proto       v1.Protocol
	up, partial bool
	t           int64
	series      []string
	kept        []string     // the series that go on, in order
	change      SourceChange // what the snapshot changes
}

func (p sourcePoll) samples(bmc string) []series.Sample {
	var out []series.Sample
	for i, name := range p.series {
		out = append(out, sourceSample(bmc, name, p.proto, p.t, float64(i)))
	}
	return out
}

func sourceSample(bmc, name string, proto v1.Protocol, t int64, v float64) series.Sample {
	if name == "up" {
		return seriesSample(bmc, "bmc_up", t, v, "protocol", strings.ToLower(strings.TrimPrefix(proto.String(), "PROTOCOL_")))
	}
	return seriesSample(bmc, name, t, v)
}

// sampleNames names samples as sourcePoll does.
func sampleNames(ss []series.Sample) []string {
	var out []string
	for _, s := range ss {
		name := ""
		for _, l := range s.Series.Labels.Prom() {
			if l.Name == "__name__" {
				name = l.Value
			}
		}
		if name == "bmc_up" {
			name = "up"
		}
		out = append(out, name)
	}
	return out
}

func TestSourcesSplit(t *testing.T) {
	rf := func(t int64, ss ...string) sourcePoll {
		return sourcePoll{proto: protoRedfish, up: true, t: t, series: ss, kept: ss}
	}
	ipmi := func(t int64, series []string, kept ...string) sourcePoll {
		return sourcePoll{proto: protoIPMI, up: true, t: t, series: series, kept: kept}
	}
	ipmiAll := func(t int64, ss ...string) sourcePoll { return ipmi(t, ss, ss...) }
	rfDown := func(t int64, change SourceChange) sourcePoll {
		return sourcePoll{proto: protoRedfish, t: t, series: []string{"up"}, kept: []string{"up"}, change: change}
	}
	shared := []string{"up", "temp", "fan", "fault"}
	for _, tc := range []struct {
		name   string
		prefer v1.Protocol
		polls  []sourcePoll
		stats  SourcesStats
	}{
		{
			name:   "preferred up: the other feeds only what the preferred lacks",
			prefer: protoRedfish,
			polls: []sourcePoll{
				rf(1000, "up", "temp", "fan"),
				ipmi(1500, shared, "up", "fault"),
				rf(2000, "up", "temp", "fan"),
				ipmi(2500, shared, "up", "fault"),
			},
			stats: SourcesStats{PassedOver: 4},
		},
		{
			name:   "preferred down: the other takes over, and hands back when it is up",
			prefer: protoRedfish,
			polls: []sourcePoll{
				rf(1000, "up", "temp", "fan"),
				ipmi(1500, shared, "up", "fault"),
				rfDown(2000, SourceTakeover),
				ipmiAll(2500, shared...),
				rfDown(3000, SourceUnchanged),
				ipmiAll(3500, shared...),
				{proto: protoRedfish, up: true, t: 4000, series: []string{"up", "temp", "fan"}, kept: []string{"up", "temp", "fan"}, change: SourceHandback},
				ipmi(4500, shared, "up", "fault"),
			},
			stats: SourcesStats{Takeovers: 1, Handbacks: 1, PassedOver: 4},
		},
		{
			name:   "ipmi preferred",
			prefer: protoIPMI,
			polls: []sourcePoll{
				ipmiAll(1000, shared...),
				{proto: protoRedfish, up: true, t: 1500, series: []string{"up", "temp", "fan", "power"}, kept: []string{"up", "power"}},
				{proto: protoIPMI, t: 2000, series: []string{"up"}, kept: []string{"up"}, change: SourceTakeover},
				{proto: protoRedfish, up: true, t: 2500, series: []string{"up", "temp", "fan", "power"}, kept: []string{"up", "temp", "fan", "power"}},
			},
			stats: SourcesStats{Takeovers: 1, PassedOver: 2},
		},
		{
			name:   "the preferred stops producing a series: the other feeds it",
			prefer: protoRedfish,
			polls: []sourcePoll{
				rf(1000, "up", "temp", "fan"),
				ipmi(1500, shared, "up", "fault"),
				rf(2000, "up", "temp"),
				ipmi(2500, shared, "up", "fan", "fault"),
				// And takes it back when it has it again.
				rf(3000, "up", "temp", "fan"),
				ipmi(3500, shared, "up", "fault"),
			},
			stats: SourcesStats{PassedOver: 5},
		},
		{
			name:   "a partial poll of the preferred keeps its series",
			prefer: protoRedfish,
			polls: []sourcePoll{
				rf(1000, "up", "temp", "fan"),
				ipmi(1500, shared, "up", "fault"),
				{proto: protoRedfish, up: true, partial: true, t: 2000, series: []string{"up", "temp"}, kept: []string{"up", "temp"}},
				ipmi(2500, shared, "up", "fault"),
			},
			stats: SourcesStats{PassedOver: 4},
		},
		{
			name:   "restart mid-way: the other feeds all until the preferred's first snapshot, which is no handback",
			prefer: protoRedfish,
			polls: []sourcePoll{
				ipmiAll(1500, shared...),
				rf(2000, "up", "temp", "fan"),
				ipmi(2500, shared, "up", "fault"),
			},
			stats: SourcesStats{PassedOver: 2},
		},
		{
			name:   "restart while the preferred is down: no takeover to count, and it hands back when up",
			prefer: protoRedfish,
			polls: []sourcePoll{
				rfDown(2000, SourceUnchanged),
				ipmiAll(2500, shared...),
				{proto: protoRedfish, up: true, t: 3000, series: []string{"up", "temp"}, kept: []string{"up", "temp"}, change: SourceHandback},
				ipmi(3500, shared, "up", "fan", "fault"),
			},
			stats: SourcesStats{Handbacks: 1, PassedOver: 1},
		},
		{
			name:   "the preferred alone: going down and up moves nothing",
			prefer: protoRedfish,
			polls: []sourcePoll{
				rf(1000, "up", "temp"),
				rfDown(2000, SourceUnchanged),
				rf(3000, "up", "temp"),
			},
		},
		{
			name:   "the other alone: it feeds everything",
			prefer: protoRedfish,
			polls: []sourcePoll{
				ipmiAll(1000, shared...),
				ipmiAll(2000, shared...),
			},
		},
		{
			name:   "not polled over both: everything goes on",
			prefer: v1.Protocol_PROTOCOL_UNSPECIFIED,
			polls: []sourcePoll{
				rf(1000, "up", "temp"),
				ipmiAll(1500, shared...),
			},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ss := NewSources()
			for i, p := range tc.polls {
				snap := &v1.Snapshot{BmcId: "srv-1", Protocol: p.proto, Up: p.up, Partial: p.partial, PollStartMs: p.t}
				in := p.samples("srv-1")
				n, change := ss.Split(snap, tc.prefer, in)
				require.Equal(t, p.kept, sampleNames(in[:n]), "poll %d: kept", i)
				require.Len(t, in, len(p.series), "poll %d", i)
				require.ElementsMatch(t, p.series, sampleNames(in), "poll %d: nothing lost from the slice", i)
				require.Equal(t, p.change, change, "poll %d: change", i)
			}
			require.Equal(t, tc.stats, ss.Stats)
		})
	}
}

// TestSourcesChangeOfPreference: an inventory reload that changes prefer
// starts the BMC afresh.
func TestSourcesChangeOfPreference(t *testing.T) {
	ss := NewSources()
	snap := func(p v1.Protocol, t int64) *v1.Snapshot {
		return &v1.Snapshot{BmcId: "srv-1", Protocol: p, Up: true, PollStartMs: t}
	}
	temp := func(p v1.Protocol, t int64) []series.Sample {
		return []series.Sample{sourceSample("srv-1", "temp", p, t, 1)}
	}
	ss.Split(snap(protoRedfish, 1000), protoRedfish, temp(protoRedfish, 1000))
	n, _ := ss.Split(snap(protoIPMI, 1500), protoRedfish, temp(protoIPMI, 1500))
	require.Zero(t, n)
	n, _ = ss.Split(snap(protoIPMI, 2500), protoIPMI, temp(protoIPMI, 2500))
	require.Equal(t, 1, n)
	n, _ = ss.Split(snap(protoRedfish, 3000), protoIPMI, temp(protoRedfish, 3000))
	require.Zero(t, n)
}

// TestSourcesWithStalenessAndDedup runs the gateway's order of stages over
// a BMC polled over both protocols, the preferred one going down and coming
// back, and checks what reaches the sinks: every series gets its samples
// from one protocol at a time, at most one per poll interval, none is
// dropped as out of order, and a series handed over is never marked stale.
func TestSourcesWithStalenessAndDedup(t *testing.T) {
	const interval = 1000
	ss, st, dd := NewSources(), NewStaleness(), NewDedup(0)
	type written struct {
		t     int64
		proto v1.Protocol
		stale bool
	}
	got := map[string][]written{}
	var takeovers, handbacks int
	var buf []series.Sample
	for poll := range 12 {
		base := int64(10_000 + poll*interval)
		rfUp := poll < 4 || poll >= 8 // Redfish is down for polls 4 to 7
		for _, p := range []struct {
			proto v1.Protocol
			t     int64
			up    bool
		}{{protoRedfish, base, rfUp}, {protoIPMI, base + 400, true}} {
			snap := &v1.Snapshot{BmcId: "srv-1", Protocol: p.proto, Up: p.up, PollStartMs: p.t}
			names := []string{"up"}
			if p.up {
				names = append(names, "temp", "fan")
				if p.proto == protoIPMI {
					names = append(names, "fault")
				}
			}
			buf = buf[:0]
			for _, name := range names {
				// Redfish reads a tenth of a degree more: the sawtooth
				// this stage prevents.
				v := 40.0
				if p.proto == protoRedfish {
					v = 40.1
				}
				buf = append(buf, sourceSample("srv-1", name, p.proto, p.t, v))
			}
			n, change := ss.Split(snap, protoRedfish, buf)
			switch change {
			case SourceTakeover:
				takeovers++
			case SourceHandback:
				handbacks++
			}
			all := len(buf)
			buf = st.Observe(buf, snap, buf)
			buf = append(buf[:n], buf[all:]...)
			buf = dd.Filter(buf[:0], "srv-1", buf)
			for _, s := range buf {
				key := s.Series.Labels.String()
				got[key] = append(got[key], written{s.T, p.proto, value.IsStaleNaN(s.V)})
			}
		}
	}
	require.Equal(t, 1, takeovers)
	require.Equal(t, 1, handbacks)
	require.Zero(t, dd.Stats.DroppedSamples, "out of order")
	for key, ws := range got {
		for i, w := range ws {
			require.False(t, w.stale, "%s: marked stale at %d", key, w.t)
			if i > 0 {
				require.GreaterOrEqual(t, w.t-ws[i-1].t, int64(interval)/2, "%s: two samples in one interval: %v", key, ws)
			}
		}
	}
	temp := got[sourceSample("srv-1", "temp", protoRedfish, 0, 0).Series.Labels.String()]
	require.Len(t, temp, 12, "one sample per poll")
	for i, w := range temp {
		want := protoRedfish
		if i >= 4 && i < 8 {
			want = protoIPMI
		}
		require.Equal(t, want, w.proto, "poll %d of temp", i)
	}
}

// TestSourcesForget: a BMC's state is dropped with Forget, and the state of
// the preferred protocol's series follows what it produces.
func TestSourcesForget(t *testing.T) {
	ss := NewSources()
	for i := range 3 {
		id := fmt.Sprintf("srv-%d", i)
		p := sourcePoll{proto: protoRedfish, up: true, t: 1000, series: []string{"up", "a", "b"}}
		ss.Split(&v1.Snapshot{BmcId: id, Protocol: protoRedfish, Up: true, PollStartMs: 1000}, protoRedfish, p.samples(id))
	}
	bmcs, n := ss.Len()
	require.Equal(t, 3, bmcs)
	require.Equal(t, 9, n)
	p := sourcePoll{proto: protoRedfish, up: true, t: 2000, series: []string{"up"}}
	ss.Split(&v1.Snapshot{BmcId: "srv-0", Protocol: protoRedfish, Up: true, PollStartMs: 2000}, protoRedfish, p.samples("srv-0"))
	_, n = ss.Len()
	require.Equal(t, 7, n)
	ss.Forget("srv-1")
	ss.Split(&v1.Snapshot{BmcId: "srv-2", Protocol: protoRedfish, Up: true, PollStartMs: 2000}, v1.Protocol_PROTOCOL_UNSPECIFIED, nil)
	bmcs, n = ss.Len()
	require.Equal(t, 1, bmcs)
	require.Equal(t, 1, n)
}

// TestSourcesSplitAllocs: in the steady state Split does not allocate.
func TestSourcesSplitAllocs(t *testing.T) {
	ss := NewSources()
	var rf, ipmi []series.Sample
	for i := range 200 {
		rf = append(rf, seriesSample("srv-1", "temp", 1000, 1, "sensor", fmt.Sprint(i)))
		ipmi = append(ipmi, seriesSample("srv-1", "temp", 1500, 1, "sensor", fmt.Sprint(i*2)))
	}
	rfSnap := &v1.Snapshot{BmcId: "srv-1", Protocol: protoRedfish, Up: true}
	ipmiSnap := &v1.Snapshot{BmcId: "srv-1", Protocol: protoIPMI, Up: true}
	ss.Split(rfSnap, protoRedfish, rf)
	allocs := testing.AllocsPerRun(100, func() {
		ss.Split(rfSnap, protoRedfish, rf)
		ss.Split(ipmiSnap, protoRedfish, ipmi)
	})
	require.Zero(t, allocs)
}

func BenchmarkSourcesSplit(b *testing.B) {
	ss := NewSources()
	var rf, ipmi []series.Sample
	for i := range 200 {
		rf = append(rf, seriesSample("srv-1", "temp", 1000, 1, "sensor", fmt.Sprint(i)))
		ipmi = append(ipmi, seriesSample("srv-1", "temp", 1500, 1, "sensor", fmt.Sprint(i*2)))
	}
	rfSnap := &v1.Snapshot{BmcId: "srv-1", Protocol: protoRedfish, Up: true}
	ipmiSnap := &v1.Snapshot{BmcId: "srv-1", Protocol: protoIPMI, Up: true}
	b.ReportAllocs()
	for b.Loop() {
		ss.Split(rfSnap, protoRedfish, rf)
		ss.Split(ipmiSnap, protoRedfish, ipmi)
	}
}

func TestSourceEvent(t *testing.T) {
	labels := map[string]string{"site": "ams", "rack": "r1"}
	down := &v1.Snapshot{BmcId: "srv-1", Protocol: protoIPMI, PollerId: "p1", PollStartMs: 5000, Error: "timeout: no answer", ErrorClass: "timeout"}
	e := SourceEvent(down, protoIPMI, SourceTakeover, labels)
	require.Equal(t, Event{Version: SchemaVersion, Kind: EventProtocolTakeover, BMC: "srv-1", Site: "ams", Rack: "r1", Labels: labels,
		Protocol: "ipmi", Metric: "bmc_up", Previous: "ipmi", Current: "redfish", TimeMs: 5000, Poller: "p1",
		Error: "timeout: no answer", ErrorClass: "timeout"}, e)
	up := &v1.Snapshot{BmcId: "srv-1", Protocol: protoRedfish, Up: true, PollerId: "p1", PollStartMs: 9000}
	e = SourceEvent(up, protoRedfish, SourceHandback, labels)
	require.Equal(t, Event{Version: SchemaVersion, Kind: EventProtocolHandback, BMC: "srv-1", Site: "ams", Rack: "r1", Labels: labels,
		Protocol: "redfish", Metric: "bmc_up", Value: 1, Previous: "ipmi", Current: "redfish", TimeMs: 9000, Poller: "p1"}, e)
}
