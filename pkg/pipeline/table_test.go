package pipeline

import (
	"fmt"
	"maps"
	"slices"
	"testing"
	"time"

	"github.com/prometheus/prometheus/model/value"
	"github.com/prometheus/prometheus/prompb"
	"github.com/stretchr/testify/require"

	"github.com/bmcstream/bmcstream/pkg/series"
	v1 "github.com/bmcstream/bmcstream/proto/bmcstream/v1"
)

// tableSnap is a snapshot of BMC bmc over protocol p at poll time t with a
// temperature per name.
func tableSnap(bmc string, p v1.Protocol, t int64, names ...string) *v1.Snapshot {
	s := vendorSnap("Acme", p)
	s.BmcId, s.PollStartMs, s.PollEndMs = bmc, t, t+100
	for _, nm := range names {
		s.Readings = append(s.Readings, v1.Reading{Name: nm, Kind: kTemp, Unit: "Cel", Value: 20, Context: "CPU"})
	}
	return s
}

// bySensor indexes samples of bmc_temperature_celsius by their sensor label.
func bySensor(ss []series.Sample) map[string]*series.Series {
	out := map[string]*series.Series{}
	for _, s := range ss {
		if s.Series.Labels.Name() == "bmc_temperature_celsius" {
			out[s.Series.Labels.Get("sensor")] = s.Series
		}
	}
	return out
}

func tableOf(t *testing.T, n *Normaliser, bmc string) *seriesTable {
	t.Helper()
	bs := n.peek(bmc)
	require.NotNil(t, bs, bmc)
	return &bs.table
}

// TestSeriesTableCreation: one label set is one *Series for a BMC, poll
// after poll, whichever protocol feeds it; its Slot indexes the table; its
// labels and hash are those of the label set; another BMC has its own.
func TestSeriesTableCreation(t *testing.T) {
	n, err := NewNormaliser(NormaliserOptions{})
	require.NoError(t, err)
	base := []prompb.Label{{Name: "bmc", Value: "a"}, {Name: "rack", Value: "r1"}}
	var st Stats
	const min = int64(60_000)
	rf1 := n.Normalise(nil, tableSnap("a", pRedfish, 1*min, "CPU1 Temp", "CPU2 Temp"), base, &st)
	rf2 := n.Normalise(nil, tableSnap("a", pRedfish, 2*min, "CPU1 Temp", "CPU2 Temp"), base, &st)
	require.Equal(t, len(rf1), len(rf2))
	for i := range rf1 {
		require.Same(t, rf1[i].Series, rf2[i].Series, "poll after poll: %v", rf1[i].Series.Labels)
		s := rf1[i].Series
		require.GreaterOrEqual(t, s.Slot, int32(0))
		require.Same(t, s, tableOf(t, n, "a").sers[s.Slot])
		require.Equal(t, series.Hash(s.Labels.Prom()), s.Hash)
		require.Equal(t, "r1", s.Labels.Get("rack"))
	}
	// The IPMI plan meets the same temperatures: the same series, though
	// its own series (bmc_up{protocol="ipmi"}...) are new.
	ip := n.Normalise(nil, tableSnap("a", pIPMI, 2*min+10, "CPU1 Temp", "CPU2 Temp"), base, &st)
	rfT, ipT := bySensor(rf1), bySensor(ip)
	require.Len(t, rfT, 2)
	for k, s := range rfT {
		require.Same(t, s, ipT[k], "sensor %s over both protocols", k)
	}
	upR, upI := n.Normalise(nil, tableSnap("a", pRedfish, 3*min), base, &st)[0].Series, ip[0].Series
	require.Equal(t, "bmc_up", upI.Labels.Name())
	require.NotSame(t, upR, upI)
	require.Equal(t, "ipmi", upI.Labels.Get("protocol"))

	// Another BMC of the same model: its own series, in its own table.
	b := n.Normalise(nil, tableSnap("b", pRedfish, 1*min, "CPU1 Temp", "CPU2 Temp"), []prompb.Label{{Name: "bmc", Value: "b"}}, &st)
	for k, s := range bySensor(b) {
		require.NotSame(t, rfT[k], s)
		require.Equal(t, "b", s.Labels.Get("bmc"))
	}
	// Slots are dense: every series of a's table is live.
	tb := tableOf(t, n, "a")
	require.Equal(t, len(tb.sers), tb.live())
}

// TestSeriesTableChurn: a renamed sensor makes a new series; the old one
// stays in the table (and comes back as the same series if the name does)
// until it has been idle for DedupHorizon of the BMC's own poll time, then
// is freed and its slot reused by a later series, which Dedup and
// Staleness do not confuse with the old one.
func TestSeriesTableChurn(t *testing.T) {
	n, err := NewNormaliser(NormaliserOptions{})
	require.NoError(t, err)
	base := []prompb.Label{{Name: "bmc", Value: "a"}}
	var st Stats
	dd, stale := NewDedup(time.Minute), NewStaleness()
	const min = int64(60_000)
	poll := func(t0 int64, names ...string) []series.Sample {
		s := tableSnap("a", pRedfish, t0, names...)
		require.True(t, dd.Accept(s))
		out := n.Normalise(nil, s, base, &st)
		out = stale.Observe(out, s, out)
		return dd.Filter(out[:0], "a", out)
	}
	first := bySensor(poll(1*min, "CPU1 Temp", "CPU2 Temp"))
	tb := tableOf(t, n, "a")
	live := tb.live()
	old := first["cpu2"]
	require.NotNil(t, old)

	// Renamed: CPU2 becomes "CPU3 Temp". A new series; the old one gets
	// its staleness marker and stays in the table, idle.
	out := poll(2*min, "CPU1 Temp", "CPU3 Temp")
	renamed := bySensor(out)
	require.Same(t, first["cpu1"], renamed["cpu1"])
	require.NotSame(t, old, renamed["cpu3"])
	require.NotEqual(t, old.Slot, renamed["cpu3"].Slot, "an idle series keeps its slot")
	marker := false
	for _, s := range out {
		if s.Series == old && value.IsStaleNaN(s.V) {
			marker = true
		}
	}
	require.True(t, marker, "the renamed sensor's old series ends with a marker")
	require.Equal(t, live+2, tb.live(), "a value and a bmc_sensor_info series more")
	require.Contains(t, tb.idle, old.Slot)

	// Back within the horizon: the same series again.
	back := bySensor(poll(3*min, "CPU1 Temp", "CPU2 Temp"))
	require.Same(t, old, back["cpu2"])
	require.NotContains(t, tb.idle, old.Slot)

	// Renamed once more, then polled for an hour of BMC time: the old
	// series is freed at the horizon, not before.
	t0 := 4 * min
	poll(t0, "CPU1 Temp", "CPU3 Temp")
	poll(t0+DedupHorizon.Milliseconds()-1, "CPU1 Temp", "CPU3 Temp")
	require.Same(t, old, tb.sers[old.Slot], "not yet an hour idle")
	poll(t0+DedupHorizon.Milliseconds(), "CPU1 Temp", "CPU3 Temp")
	require.Nil(t, tb.sers[old.Slot], "freed an hour after it went idle, in BMC time")
	require.Contains(t, tb.free, old.Slot)
	freed := slices.Clone(tb.free)

	// A new sensor takes the freed slot. Dedup and Staleness hold state
	// for that slot from the old series (a last sample time newer than
	// the new series' first sample would be, had it been kept): the
	// pointer check starts it afresh, so the new series' samples pass.
	tNew := t0 + DedupHorizon.Milliseconds() + min
	out = poll(tNew, "CPU1 Temp", "CPU3 Temp", "CPU4 Temp")
	nw := bySensor(out)["cpu4"]
	require.NotNil(t, nw, "the new series' first sample passes Dedup")
	require.Contains(t, freed, nw.Slot, "a freed slot is reused")
	require.Equal(t, slices.Min(freed), nw.Slot, "the lowest first")
	require.Equal(t, "cpu4", nw.Labels.Get("sensor"))
	// Its next sample passes, an older one does not: its own state.
	s := tableSnap("a", pRedfish, tNew+min, "CPU1 Temp", "CPU3 Temp", "CPU4 Temp")
	smp := []series.Sample{{Series: nw, T: tNew + min, V: 1}, {Series: nw, T: tNew, V: 2}}
	require.True(t, dd.Accept(s))
	got := dd.Filter(nil, "a", smp)
	require.Len(t, got, 1)
	require.Equal(t, tNew+min, got[0].T)
}

// TestSeriesTableBounded: a sensor renamed at every poll (label churn)
// leaves at most an hour's worth of idle series in the table, however
// long it goes on.
func TestSeriesTableBounded(t *testing.T) {
	n, err := NewNormaliser(NormaliserOptions{})
	require.NoError(t, err)
	base := []prompb.Label{{Name: "bmc", Value: "a"}}
	var st Stats
	const interval = int64(5 * 60_000)
	perHorizon := int(DedupHorizon.Milliseconds() / interval)
	maxLive := 0
	for i := range 10 * perHorizon {
		n.Normalise(nil, tableSnap("a", pRedfish, int64(i+1)*interval, fmt.Sprintf("Sensor %d Temp", i)), base, &st)
		maxLive = max(maxLive, tableOf(t, n, "a").live())
	}
	tb := tableOf(t, n, "a")
	// The plan's own series (bmc_up and the like) plus one temperature
	// and its info per poll of the last hour.
	require.LessOrEqual(t, maxLive, 16+2*(perHorizon+1))
	require.LessOrEqual(t, len(tb.sers), 16+2*(perHorizon+1), "slots are reused")
}

// TestSeriesTableBaseChange: new inventory labels make new series (on a
// new base); the old ones go idle.
func TestSeriesTableBaseChange(t *testing.T) {
	n, err := NewNormaliser(NormaliserOptions{})
	require.NoError(t, err)
	var st Stats
	a := n.Normalise(nil, tableSnap("a", pRedfish, 60_000, "CPU1 Temp"), []prompb.Label{{Name: "bmc", Value: "a"}, {Name: "rack", Value: "r1"}}, &st)
	planned := tableOf(t, n, "a").live()
	b := n.Normalise(nil, tableSnap("a", pRedfish, 120_000, "CPU1 Temp"), []prompb.Label{{Name: "bmc", Value: "a"}, {Name: "rack", Value: "r2"}}, &st)
	require.Equal(t, len(a), len(b))
	for i := range a {
		require.NotSame(t, a[i].Series, b[i].Series)
		require.Equal(t, "r2", b[i].Series.Labels.Get("rack"))
	}
	require.Len(t, tableOf(t, n, "a").idle, planned, "every series of the old base is idle")
}

// TestSeriesTableForget: Forget drops the BMC's table; its next poll makes
// new series.
func TestSeriesTableForget(t *testing.T) {
	n, err := NewNormaliser(NormaliserOptions{})
	require.NoError(t, err)
	base := []prompb.Label{{Name: "bmc", Value: "a"}}
	var st Stats
	a := n.Normalise(nil, tableSnap("a", pRedfish, 60_000, "CPU1 Temp"), base, &st)
	planned := tableOf(t, n, "a").live()
	n.Normalise(nil, tableSnap("a", pIPMI, 60_000, "CPU1 Temp"), base, &st)
	n.Forget("a")
	require.Nil(t, n.peek("a"))
	b := n.Normalise(nil, tableSnap("a", pRedfish, 120_000, "CPU1 Temp"), base, &st)
	require.Equal(t, len(a), len(b))
	for i := range a {
		require.NotSame(t, a[i].Series, b[i].Series)
		require.True(t, a[i].Series.Labels.Equal(b[i].Series.Labels))
	}
	// Only the Redfish plan's series: the IPMI ones went with the table.
	require.Equal(t, planned, tableOf(t, n, "a").live())
}

// TestSeriesStateRebuiltTable: a series made again with the same labels
// (its BMC's table rebuilt after the cache forgot it) keeps its state in
// the stages when it lands on the same slot.
func TestSeriesStateRebuiltTable(t *testing.T) {
	d := NewDedup(time.Minute)
	s1 := &series.Series{Labels: series.FromStrings("__name__", "x"), Slot: 0}
	s1.Hash = s1.Labels.Hash()
	s2 := &series.Series{Labels: s1.Labels, Hash: s1.Hash, Slot: 0}
	require.Len(t, d.Filter(nil, "a", []series.Sample{{Series: s1, T: 10}}), 1)
	require.Empty(t, d.Filter(nil, "a", []series.Sample{{Series: s2, T: 10}}), "the same series at the same time")
	require.Len(t, d.Filter(nil, "a", []series.Sample{{Series: s2, T: 11}}), 1)
	other := &series.Series{Labels: series.FromStrings("__name__", "y"), Slot: 0}
	other.Hash = other.Labels.Hash()
	require.Len(t, d.Filter(nil, "a", []series.Sample{{Series: other, T: 5}}), 1, "another series on the slot starts afresh")
	_, ns := d.Len()
	require.Equal(t, 1, ns)
}

// TestPlanTemplate: a BMC planned from another BMC's plan of the same model
// (a template) gets exactly the samples a Normaliser that never saw the
// other BMC makes: the same series, its own inventory labels and identity.
func TestPlanTemplate(t *testing.T) {
	f := newBenchFleet(t, 60)
	shared, err := NewNormaliser(NormaliserOptions{})
	require.NoError(t, err)
	fresh, err := NewNormaliser(NormaliserOptions{})
	require.NoError(t, err)
	var st Stats
	seen := map[int]*plan{}
	templated := 0
	for i := range f.bmcs {
		// Models repeat every 2×personalities BMCs.
		m := i % (2 * len(f.templates))
		s := f.snapshot(m, 0)
		s.BmcId = f.bmcs[i]
		s.Info = maps.Clone(s.Info)
		s.Info["serial"] = fmt.Sprintf("SN%04d", i) // identity differs per BMC
		if first := seen[m]; first != nil && first.valuesAlike(s) {
			// A plan whose decisions read a value (a thermal margin's
			// sign) is a template where the values' signs are alike.
			_, model := shared.shape(s, f.bases[i])
			require.NotNil(t, shared.template(shared.templateKey(s, model, s.Info["vendor"])), "BMC %d is planned from a template", i)
			templated++
		}
		got := shared.Normalise(nil, s, f.bases[i], &st)
		if seen[m] == nil {
			seen[m] = shared.peek(s.BmcId).plans[protoSlot(s.Protocol)].Load()
		}
		fresh.tmu.Lock()
		fresh.templates = nil // planned as if no other BMC had been
		fresh.tmu.Unlock()
		want := fresh.Normalise(nil, s, f.bases[i], &st)
		require.Equal(t, expoLines(t, want), expoLines(t, got), "BMC %d", i)
	}
	t.Logf("%d of %d BMCs planned from a template", templated, len(f.bmcs))
	require.NotZero(t, templated)
}
