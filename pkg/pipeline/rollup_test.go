package pipeline

import (
	"fmt"
	"math"
	"testing"
	"time"

	"github.com/prometheus/prometheus/model/value"
	"github.com/stretchr/testify/require"

	"github.com/bmcstream/bmcstream/pkg/series"
)

// ruPower and ruIntake make one BMC's samples with the inventory labels
// given as name, value pairs.
func ruPower(bmc string, t int64, v float64, loc ...string) series.Sample {
	return rlSample("bmc_power_watts", t, v, append([]string{"bmc", bmc}, loc...)...)
}

func ruTemp(bmc, context, sensor string, t int64, v float64, loc ...string) series.Sample {
	return rlSample("bmc_temperature_celsius", t, v,
		append([]string{"bmc", bmc, "context", context, "sensor", sensor}, loc...)...)
}

// ruEmit runs Emit and returns its samples by label set; staleness markers
// read "stale".
func ruEmit(t *testing.T, r *Rollup, at int64) map[string]any {
	t.Helper()
	got := map[string]any{}
	for _, s := range r.Emit(nil, at) {
		require.Equal(t, series.Hash(s.Series.Labels.Prom()), s.Series.Hash)
		require.Equal(t, at, s.T)
		require.NotEqual(t, "", s.Series.Labels.Get("__name__"))
		require.Equal(t, "", s.Series.Labels.Get("bmc"))
		k := rlString(s.Series.Labels.Prom())
		require.NotContains(t, got, k, "series written twice")
		if value.IsStaleNaN(s.V) {
			got[k] = "stale"
		} else {
			got[k] = s.V
		}
	}
	return got
}

var (
	ruRackA = []string{"site", "ctc", "room", "r1", "row", "b", "rack", "a1", "position", "u1"}
	ruRackB = []string{"site", "ctc", "room", "r1", "row", "b", "rack", "a2", "position", "u1"}
)

const (
	ruPowerA  = `{__name__="bmc_rack_power_watts",rack="a1",room="r1",row="b",site="ctc"}`
	ruIntakeA = `{__name__="bmc_rack_intake_temperature_max_celsius",rack="a1",room="r1",row="b",site="ctc"}`
	ruCountA  = `{__name__="bmc_rack_bmcs_reporting",rack="a1",room="r1",row="b",site="ctc"}`
	ruPowerB  = `{__name__="bmc_rack_power_watts",rack="a2",room="r1",row="b",site="ctc"}`
	ruIntakeB = `{__name__="bmc_rack_intake_temperature_max_celsius",rack="a2",room="r1",row="b",site="ctc"}`
	ruCountB  = `{__name__="bmc_rack_bmcs_reporting",rack="a2",room="r1",row="b",site="ctc"}`
)

func TestRollup(t *testing.T) {
	const t0 = int64(1_767_225_600_000)
	stale := math.Float64frombits(value.StaleNaN)
	type step struct {
		observe []series.Sample
		forget  string
		emit    int64
		want    map[string]any
	}
	twoRacks := []series.Sample{
		ruPower("n1", t0, 300, ruRackA...),
		ruTemp("n1", "intake", "Inlet 1", t0, 22, ruRackA...),
		ruTemp("n1", "intake", "Inlet 2", t0, 23.5, ruRackA...),
		ruTemp("n1", "cpu", "CPU1", t0, 80, ruRackA...), // not intake: ignored
		ruPower("n2", t0, 450.5, ruRackA...),
		ruTemp("n2", "intake", "Inlet", t0, 25, ruRackA...),
		ruPower("n3", t0, 1000, ruRackB...),
		ruTemp("n3", "exhaust", "Exhaust", t0, 40, ruRackB...), // no intake sensor
		rlSample("bmc_fan_speed_rpm", t0, 9000, append([]string{"bmc", "n3", "fan", "1"}, ruRackB...)...),
	}
	twoRacksWant := map[string]any{
		ruPowerA: 750.5, ruIntakeA: 25.0, ruCountA: 2.0,
		ruPowerB: 1000.0, ruCountB: 1.0,
	}
	tests := []struct {
		name  string
		opts  RollupOptions
		steps []step
	}{
		{
			name: "sums and maxes over two racks",
			steps: []step{{
				observe: twoRacks,
				emit:    t0 + 1000,
				want:    twoRacksWant,
			}},
		},
		{
			name: "latest value wins, older ones are ignored",
			steps: []step{
				{observe: twoRacks},
				{
					observe: []series.Sample{
						ruPower("n1", t0+30_000, 310, ruRackA...),
						ruPower("n1", t0+10_000, 999, ruRackA...), // late redelivery
						ruTemp("n2", "intake", "Inlet", t0+30_000, 21, ruRackA...),
					},
					emit: t0 + 30_000,
					want: map[string]any{
						ruPowerA: 760.5, ruIntakeA: 23.5, ruCountA: 2.0,
						ruPowerB: 1000.0, ruCountB: 1.0,
					},
				},
			},
		},
		{
			name: "stale BMCs are excluded, then their series end",
			steps: []step{
				{observe: twoRacks, emit: t0, want: twoRacksWant},
				{
					observe: []series.Sample{
						ruPower("n1", t0+100_000, 310, ruRackA...),
						ruTemp("n1", "intake", "Inlet 1", t0+100_000, 22, ruRackA...),
					},
					// n2 and n3 last reported 150 s ago, n1's Inlet 2 too.
					emit: t0 + 150_000,
					want: map[string]any{
						ruPowerA: 310.0, ruIntakeA: 22.0, ruCountA: 1.0,
						ruPowerB: "stale", ruCountB: 0.0,
					},
				},
				{
					emit: t0 + 160_000,
					want: map[string]any{
						ruPowerA: 310.0, ruIntakeA: 22.0, ruCountA: 1.0,
						ruCountB: 0.0,
					},
				},
				{
					// n3 is back.
					observe: []series.Sample{ruPower("n3", t0+170_000, 990, ruRackB...)},
					emit:    t0 + 170_000,
					want: map[string]any{
						ruPowerA: 310.0, ruIntakeA: 22.0, ruCountA: 1.0,
						ruPowerB: 990.0, ruCountB: 1.0,
					},
				},
			},
		},
		{
			name: "staleness markers end a BMC's values at once",
			steps: []step{
				{observe: twoRacks},
				{
					observe: []series.Sample{
						ruPower("n2", t0+30_000, stale, ruRackA...),
						ruTemp("n2", "intake", "Inlet", t0+30_000, stale, ruRackA...),
						ruTemp("n1", "intake", "Inlet 2", t0+30_000, stale, ruRackA...),
						ruTemp("n1", "intake", "Inlet 2", t0+20_000, 50, ruRackA...), // older than the marker
					},
					emit: t0 + 30_000,
					want: map[string]any{
						ruPowerA: 300.0, ruIntakeA: 22.0, ruCountA: 1.0,
						ruPowerB: 1000.0, ruCountB: 1.0,
					},
				},
			},
		},
		{
			name: "forget",
			steps: []step{
				{observe: twoRacks},
				{
					forget: "n2",
					emit:   t0 + 1000,
					want: map[string]any{
						ruPowerA: 300.0, ruIntakeA: 23.5, ruCountA: 1.0,
						ruPowerB: 1000.0, ruCountB: 1.0,
					},
				},
				{
					forget: "n3",
					emit:   t0 + 2000,
					want: map[string]any{
						ruPowerA: 300.0, ruIntakeA: 23.5, ruCountA: 1.0,
						ruPowerB: "stale", ruCountB: "stale",
					},
				},
				{
					forget: "n3", // again: nothing to do
					emit:   t0 + 3000,
					want: map[string]any{
						ruPowerA: 300.0, ruIntakeA: 23.5, ruCountA: 1.0,
					},
				},
			},
		},
		{
			name: "a BMC that moves counts in its new rack",
			steps: []step{
				{observe: twoRacks, emit: t0, want: twoRacksWant},
				{
					observe: []series.Sample{
						ruPower("n3", t0+30_000, 1000, ruRackA...),
						ruPower("n1", t0+30_000, 300, ruRackA...),
						ruPower("n2", t0+30_000, 450.5, ruRackA...),
					},
					emit: t0 + 30_000,
					want: map[string]any{
						ruPowerA: 1750.5, ruIntakeA: 25.0, ruCountA: 3.0,
						ruPowerB: "stale", ruCountB: "stale",
					},
				},
			},
		},
		{
			name: "missing labels",
			steps: []step{{
				observe: []series.Sample{
					ruPower("n1", t0, 100, "site", "ctc", "room", "r1", "rack", "x1"),            // no row
					ruPower("n2", t0, 200, "site", "ctc", "room", "r1", "rack", "x1"),            // no row
					ruPower("n3", t0, 300, "site", "ctc", "room", "r1", "row", "", "rack", "x1"), // empty row
					ruPower("n4", t0, 400, "site", "ctc"),                                        // site only
					ruPower("n5", t0, 500, "inventory", "missing"),                               // not rolled up
					ruPower("n6", t0, 600, "rack", "x1"),                                         // rack only: another group
					rlSample("bmc_power_watts", t0, 700, "rack", "x1"),                           // no bmc
				},
				emit: t0,
				want: map[string]any{
					`{__name__="bmc_rack_power_watts",rack="x1",room="r1",site="ctc"}`:    600.0,
					`{__name__="bmc_rack_bmcs_reporting",rack="x1",room="r1",site="ctc"}`: 3.0,
					`{__name__="bmc_rack_power_watts",site="ctc"}`:                        400.0,
					`{__name__="bmc_rack_bmcs_reporting",site="ctc"}`:                     1.0,
					`{__name__="bmc_rack_power_watts",rack="x1"}`:                         600.0,
					`{__name__="bmc_rack_bmcs_reporting",rack="x1"}`:                      1.0,
				},
			}},
		},
		{
			name: "custom group-by and stale time",
			opts: RollupOptions{GroupBy: []string{"row", "site", "row"}, Stale: 10 * time.Second},
			steps: []step{{
				observe: append(twoRacks[:len(twoRacks):len(twoRacks)], ruPower("n4", t0-20_000, 5, ruRackB...)),
				emit:    t0 + 10_000,
				want: map[string]any{
					`{__name__="bmc_rack_power_watts",row="b",site="ctc"}`:                    1750.5,
					`{__name__="bmc_rack_intake_temperature_max_celsius",row="b",site="ctc"}`: 25.0,
					`{__name__="bmc_rack_bmcs_reporting",row="b",site="ctc"}`:                 3.0,
				},
			}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := NewRollup(tt.opts)
			for i, st := range tt.steps {
				r.Observe(st.observe)
				if st.forget != "" {
					r.Forget(st.forget)
				}
				if st.want == nil {
					continue
				}
				require.Equal(t, st.want, ruEmit(t, r, st.emit), "step %d", i)
			}
		})
	}
}

func TestRollupEmitShares(t *testing.T) {
	r := NewRollup(RollupOptions{})
	r.Observe([]series.Sample{ruPower("n1", 1000, 300, ruRackA...), ruTemp("n1", "intake", "Inlet", 1000, 20, ruRackA...)})
	first := r.Emit(nil, 1000)
	second := r.Emit(nil, 2000)
	require.Len(t, second, len(first))
	for i := range first {
		require.Same(t, first[i].Series, second[i].Series)
	}
	dst := make([]series.Sample, 0, 8)
	require.Zero(t, testing.AllocsPerRun(10, func() { dst = r.Emit(dst[:0], 3000) }))
}

func TestRollupOptionsValidate(t *testing.T) {
	tests := []struct {
		name string
		opts RollupOptions
		err  []string
	}{
		{name: "zero", opts: RollupOptions{}},
		{name: "custom", opts: RollupOptions{GroupBy: []string{"site", "pod"}, Stale: time.Minute}},
		{name: "negative stale", opts: RollupOptions{Stale: -time.Second}, err: []string{"stale: must not be negative"}},
		{
			name: "bad labels",
			opts: RollupOptions{GroupBy: []string{"site", "", "__name__", "bmc", "site"}},
			err: []string{
				`group by: invalid label name ""`,
				`group by: label "__name__" cannot be a roll-up label`,
				`group by: label "bmc" cannot be a roll-up label`,
				`group by: duplicate label "site"`,
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.opts.Validate()
			if len(tt.err) == 0 {
				require.NoError(t, err)
				return
			}
			for _, e := range tt.err {
				require.ErrorContains(t, err, e)
			}
		})
	}
	// NewRollup copes with what Validate rejects.
	r := NewRollup(RollupOptions{GroupBy: []string{"site", "", "__name__", "bmc", "site"}, Stale: -1})
	require.Equal(t, []string{"site"}, r.groupBy)
	require.Equal(t, DefaultRollupStale.Milliseconds(), r.staleMs)
}

// ruFleet makes one poll of n BMCs over racks of 20, each with a chassis
// power, two intake and 57 other series, as the normaliser would.
func ruFleet(n int, t int64) []series.Sample {
	out := make([]series.Sample, 0, n*60)
	for i := range n {
		bmc := fmt.Sprintf("10.0.%d.%d", i/250, i%250)
		loc := []string{"site", "ctc", "room", "r1", "row", "b", "rack", fmt.Sprintf("a%d", i/20), "position", fmt.Sprintf("u%d", i%20)}
		out = append(out, ruPower(bmc, t, 300, loc...))
		out = append(out, ruTemp(bmc, "intake", "Inlet 1", t, 22, loc...), ruTemp(bmc, "intake", "Inlet 2", t, 23, loc...))
		for j := range 57 {
			out = append(out, ruTemp(bmc, Contexts[1+j%(len(Contexts)-1)], fmt.Sprintf("Temp %d", j), t, 40, loc...))
		}
	}
	return out
}

func BenchmarkRollupObserve(b *testing.B) {
	in := ruFleet(100, 1000)
	r := NewRollup(RollupOptions{})
	r.Observe(in)
	require.Zero(b, testing.AllocsPerRun(10, func() { r.Observe(in) }))
	b.ReportAllocs()
	for b.Loop() {
		r.Observe(in)
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*len(in)), "ns/sample")
}

func BenchmarkRollupEmit(b *testing.B) {
	r := NewRollup(RollupOptions{})
	r.Observe(ruFleet(1000, 1000)) // 50 racks of 20
	dst := r.Emit(nil, 1000)
	b.ReportAllocs()
	for b.Loop() {
		dst = r.Emit(dst[:0], 2000)
	}
}
