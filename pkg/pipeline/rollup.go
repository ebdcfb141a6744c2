package pipeline

import (
	"errors"
	"fmt"
	"math"
	"slices"
	"time"

	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/prompb"

	"github.com/bmcstream/bmcstream/pkg/series"
)

// Roll-up series: rack-level series the gateway computes in stream (the
// optional roll-up stage), so that dashboards and alerts on racks need no
// recording rules. Each carries the metric name and the group-by labels
// (by default site, room, row and rack; a label the BMCs lack is left out),
// and never `bmc` or any other label. All are gauges, written at the time
// the gateway passes to Rollup.Emit.
const (
	// RackPowerMetric is the sum, over the group's reporting BMCs, of each
	// BMC's latest chassis input power (bmc_power_watts), in watts. BMCs
	// without a current power reading add nothing: compare with
	// bmc_rack_bmcs_reporting before reading a drop as a drop in load.
	RackPowerMetric = "bmc_rack_power_watts"
	// RackIntakeMaxMetric is the highest latest intake (inlet air)
	// temperature among the group's reporting BMCs
	// (bmc_temperature_celsius{context="intake"}; a BMC with several intake
	// sensors contributes each), in degrees Celsius.
	RackIntakeMaxMetric = "bmc_rack_intake_temperature_max_celsius"
	// RackReportingMetric is how many of the group's BMCs contributed to
	// the group's power or intake temperature: BMCs with a current value
	// of either. It is 0, rather than absent, for a group whose BMCs are
	// all silent, until they are forgotten (they left the inventory).
	RackReportingMetric = "bmc_rack_bmcs_reporting"
)

// Input series of the roll-ups, from the metric schema (docs/metrics.md).
const (
	rollupPowerMetric   = "bmc_power_watts"
	rollupTempMetric    = "bmc_temperature_celsius"
	rollupIntakeContext = "intake"
)

// DefaultRollupGroupBy are the labels roll-ups group BMCs by when
// RollupOptions.GroupBy is empty: the inventory's location labels down to
// the rack. It is a read-only table: never modify it.
var DefaultRollupGroupBy = []string{"site", "room", "row", "rack"}

// DefaultRollupStale is how old, in sample time, a BMC's latest value may be
// and still count in a roll-up when RollupOptions.Stale is zero: two
// minutes, four polls at the usual 30-second interval, so one or two missed
// polls do not make a rack's power dip, while a BMC that went dark leaves
// the sum before Prometheus' five-minute lookback would hide it.
const DefaultRollupStale = 2 * time.Minute

// RollupOptions configure a Rollup. The zero value groups by
// DefaultRollupGroupBy with DefaultRollupStale.
type RollupOptions struct {
	// GroupBy are the labels that make a group; empty means
	// DefaultRollupGroupBy. A BMC lacking some of them is grouped by those
	// it has (a room without rows still gets its racks); a BMC lacking all
	// of them, such as one missing from the inventory, is not rolled up.
	GroupBy []string
	// Stale is how old, by sample time relative to Emit's time, a BMC's
	// latest value may be and still count; zero means DefaultRollupStale.
	Stale time.Duration
	// Extra labels go on every roll-up series: a gateway consuming one
	// partition of the stream sees only part of each rack, so it labels
	// its partial roll-ups with the partition (sum, max and count over
	// partitions give the whole rack's).
	Extra []prompb.Label
}

// Validate checks the options: group-by labels must be valid, distinct
// label names other than __name__ and bmc (a roll-up aggregates over BMCs),
// and Stale must not be negative.
func (o RollupOptions) Validate() error {
	var errs []error
	if o.Stale < 0 {
		errs = append(errs, fmt.Errorf("stale: must not be negative, got %s", o.Stale))
	}
	seen := make(map[string]bool, len(o.GroupBy))
	for _, n := range o.GroupBy {
		switch {
		case !model.UTF8Validation.IsValidLabelName(n):
			errs = append(errs, fmt.Errorf("group by: invalid label name %q", n))
		case n == model.MetricNameLabel || n == "bmc":
			errs = append(errs, fmt.Errorf("group by: label %q cannot be a roll-up label", n))
		case seen[n]:
			errs = append(errs, fmt.Errorf("group by: duplicate label %q", n))
		}
		seen[n] = true
	}
	return errors.Join(errs...)
}

// A Rollup computes the roll-up series (RackPowerMetric,
// RackIntakeMaxMetric, RackReportingMetric) from the sample stream: Observe
// records, per BMC (label `bmc`), its latest chassis power and its latest
// intake temperatures, and which group its labels put it in; Emit writes
// the roll-ups of every group at a time of the caller's choosing (say, each
// poll interval, with the gateway's clock or the newest sample time).
//
// A BMC counts in a group's roll-ups while its latest value is at most the
// stale time older than Emit's time; a staleness marker (or any NaN) ends
// the series it arrives on at once. A BMC that moves (its labels change)
// counts in its new group only. When a roll-up series of a group loses its
// last contributor, Emit writes one staleness marker for it, and once a
// group has no BMCs left (see Forget) it writes markers for all its series
// and forgets the group.
//
// A Rollup is owned by one goroutine; it is not safe for concurrent use.
type Rollup struct {
	groupBy []string // sorted, distinct
	staleMs int64
	extra   []prompb.Label

	bmcs   map[string]*rollupBMC
	groups map[string]*rollupGroup
	order  []*rollupGroup // groups in creation order, for a stable Emit

	vals []string // scratch: a sample's group-by values
	key  []byte   // scratch: a group key
}

type rollupBMC struct {
	group *rollupGroup // nil while the BMC has none of the group-by labels

	// power is the latest chassis power, NaN after a staleness marker;
	// powerT is its time, 0 before the first.
	power  float64
	powerT int64
	intake []rollupReading // one per intake sensor series
}

// rollupReading is the latest value of one intake sensor series, NaN after
// a staleness marker.
type rollupReading struct {
	ser *series.Series
	v   float64
	t   int64
}

// rollupGroup is one group and its three output series.
type rollupGroup struct {
	key     string
	values  []string // group-by values, "" where absent
	members []*rollupBMC

	series [3]rollupSeries // power, intake max, reporting
}

type rollupSeries struct {
	ser     *series.Series // made once, with the group
	emitted bool           // the last Emit wrote a value, not a marker
}

const (
	rollupPower = iota
	rollupIntake
	rollupReporting
)

// NewRollup returns an empty Rollup. It does not fail: a negative Stale
// counts as zero, and group-by names that Validate rejects are left out.
// Call opts.Validate first to report them.
func NewRollup(opts RollupOptions) *Rollup {
	gb := opts.GroupBy
	if len(gb) == 0 {
		gb = DefaultRollupGroupBy
	}
	groupBy := make([]string, 0, len(gb))
	for _, n := range gb {
		if n == "" || n == model.MetricNameLabel || n == "bmc" || slices.Contains(groupBy, n) {
			continue
		}
		groupBy = append(groupBy, n)
	}
	slices.Sort(groupBy)
	stale := opts.Stale
	if stale <= 0 {
		stale = DefaultRollupStale
	}
	return &Rollup{
		groupBy: groupBy,
		staleMs: stale.Milliseconds(),
		extra:   slices.Clone(opts.Extra),
		bmcs:    make(map[string]*rollupBMC),
		groups:  make(map[string]*rollupGroup),
		vals:    make([]string, len(groupBy)),
	}
}

// Observe records the samples that feed the roll-ups: bmc_power_watts and
// bmc_temperature_celsius{context="intake"} of any BMC, by their `bmc`
// label; others are ignored. A value older than the one recorded for its
// series is ignored too. Observe keeps the intake series (immutable once
// handed on, see series.Sample) and, in the steady state, does not
// allocate.
func (r *Rollup) Observe(samples []series.Sample) {
	for i := range samples {
		s := &samples[i]
		var power bool
		ls := s.Series.Labels
		switch ls.Name() {
		case rollupPowerMetric:
			power = true
		case rollupTempMetric:
			if ls.Get("context") != rollupIntakeContext {
				continue
			}
		default:
			continue
		}
		id := ls.Get("bmc")
		if id == "" {
			continue
		}
		b := r.bmcs[id]
		if b == nil {
			b = &rollupBMC{power: math.NaN()}
			r.bmcs[id] = b
		}
		r.place(b, ls)
		if power {
			if s.T >= b.powerT {
				b.power, b.powerT = s.V, s.T
			}
			continue
		}
		r.observeIntake(b, s)
	}
}

func (r *Rollup) observeIntake(b *rollupBMC, s *series.Sample) {
	for j := range b.intake {
		in := &b.intake[j]
		if !sameSeries(in.ser, s.Series) {
			continue
		}
		if s.T >= in.t {
			in.ser, in.v, in.t = s.Series, s.V, s.T
		}
		return
	}
	if !math.IsNaN(s.V) {
		b.intake = append(b.intake, rollupReading{ser: s.Series, v: s.V, t: s.T})
	}
}

// place puts b in the group its labels ls name, moving it if they changed.
func (r *Rollup) place(b *rollupBMC, ls series.Labels) {
	grouped := false
	for i, n := range r.groupBy {
		r.vals[i] = ls.Get(n)
		grouped = grouped || r.vals[i] != ""
	}
	if b.group != nil && slices.Equal(b.group.values, r.vals) {
		return
	}
	if b.group == nil && !grouped {
		return
	}
	var g *rollupGroup
	if grouped {
		r.key = r.key[:0]
		for _, v := range r.vals {
			r.key = append(r.key, v...)
			r.key = append(r.key, 0xff) // cannot occur in UTF-8
		}
		g = r.groups[string(r.key)]
		if g == nil {
			g = r.newGroup(string(r.key))
		}
	}
	if b.group != nil {
		b.group.members = slices.DeleteFunc(b.group.members, func(m *rollupBMC) bool { return m == b })
	}
	b.group = g
	if g != nil {
		g.members = append(g.members, b)
	}
}

func (r *Rollup) newGroup(key string) *rollupGroup {
	g := &rollupGroup{key: key, values: slices.Clone(r.vals)}
	for k, name := range [3]string{RackPowerMetric, RackIntakeMaxMetric, RackReportingMetric} {
		ls := make([]prompb.Label, 0, 1+len(r.groupBy))
		ls = append(ls, prompb.Label{Name: model.MetricNameLabel, Value: name})
		for i, n := range r.groupBy {
			if g.values[i] != "" {
				ls = append(ls, prompb.Label{Name: n, Value: g.values[i]})
			}
		}
		ls = append(ls, r.extra...)
		g.series[k] = rollupSeries{ser: series.New(ls)}
	}
	r.groups[key] = g
	r.order = append(r.order, g)
	return g
}

// Forget drops what the Rollup knows of a BMC, as when it leaves the
// inventory: it no longer counts anywhere, and a group left without BMCs
// ends its series at the next Emit.
func (r *Rollup) Forget(bmcID string) {
	b := r.bmcs[bmcID]
	if b == nil {
		return
	}
	if b.group != nil {
		b.group.members = slices.DeleteFunc(b.group.members, func(m *rollupBMC) bool { return m == b })
	}
	delete(r.bmcs, bmcID)
}

// Emit appends to dst, at time t (Unix milliseconds), the roll-up series of
// every group and returns dst: the power sum and intake maximum where at
// least one BMC has a current value, and the reporting count while the
// group has BMCs; a staleness marker for a series that was written last
// time and has no value now. Intake readings gone stale are forgotten.
// The samples' series are shared between calls and must not be modified. Groups come in the order they were first seen.
func (r *Rollup) Emit(dst []series.Sample, t int64) []series.Sample {
	marker := staleNaN()
	kept := r.order[:0]
	for _, g := range r.order {
		var (
			sum, maxT     float64
			nPower, nTemp int
			reporting     int
		)
		for _, b := range g.members {
			contributed := false
			if !math.IsNaN(b.power) && t-b.powerT <= r.staleMs {
				sum += b.power
				nPower++
				contributed = true
			}
			b.intake = slices.DeleteFunc(b.intake, func(in rollupReading) bool { return t-in.t > r.staleMs })
			for _, in := range b.intake {
				if math.IsNaN(in.v) {
					continue
				}
				if nTemp == 0 || in.v > maxT {
					maxT = in.v
				}
				nTemp++
				contributed = true
			}
			if contributed {
				reporting++
			}
		}
		if len(g.members) == 0 {
			for k := range g.series {
				dst = g.series[k].end(dst, t, marker)
			}
			delete(r.groups, g.key)
			continue
		}
		kept = append(kept, g)
		if nPower > 0 {
			dst = g.series[rollupPower].write(dst, t, sum)
		} else {
			dst = g.series[rollupPower].end(dst, t, marker)
		}
		if nTemp > 0 {
			dst = g.series[rollupIntake].write(dst, t, maxT)
		} else {
			dst = g.series[rollupIntake].end(dst, t, marker)
		}
		dst = g.series[rollupReporting].write(dst, t, float64(reporting))
	}
	clear(r.order[len(kept):])
	r.order = kept
	return dst
}

func (s *rollupSeries) write(dst []series.Sample, t int64, v float64) []series.Sample {
	s.emitted = true
	return append(dst, series.Sample{Series: s.ser, T: t, V: v})
}

// end writes a staleness marker if the series was written last time.
func (s *rollupSeries) end(dst []series.Sample, t int64, marker float64) []series.Sample {
	if !s.emitted {
		return dst
	}
	s.emitted = false
	return append(dst, series.Sample{Series: s.ser, T: t, V: marker})
}
