package pipeline

import (
	"fmt"
	"strings"

	"github.com/prometheus/prometheus/prompb"

	"github.com/bmcstream/bmcstream/pkg/series"
	v1 "github.com/bmcstream/bmcstream/proto/bmcstream/v1"
)

// ReadingFate says what the normaliser makes of one reading of a
// snapshot: the series it feeds, or why it feeds none.
type ReadingFate struct {
	// Reading is the index of the reading in the snapshot's Readings.
	Reading int
	// Series are the series the reading feeds with this snapshot, in
	// exposition form (name{label="value",...}, labels sorted), its
	// value, health, thresholds and bmc_sensor_info alike.
	Series []string
	// Dropped is the reason it feeds no series, as Stats.Each names it
	// ("unmapped", "absent", "invalid"...); empty when it feeds some. A
	// duplicate feeds only the health and thresholds its winner lacks:
	// Dropped is "duplicate" and Series may still hold those.
	Dropped string
	// Detail says why, in words: kind, class, context and label and what
	// decided them, or what made it a drop.
	Detail string
}

// Explain tells, for each reading of s, which series it feeds or why it
// feeds none, as Normalise would with base labels base. It plans s afresh
// and records nothing: no Stats, no plan cached, nothing promoted.
func (n *Normaliser) Explain(s *v1.Snapshot, base []prompb.Label) []ReadingFate {
	vendor := n.vendorOf(s)
	p, cs := n.rules.planAlone(s, base, vendor)
	out := make([]ReadingFate, len(s.Readings))
	var smp []series.Sample
	for i := range s.Readings {
		var st Stats
		smp = p.emitReading(smp[:0], s, i, s.PollStartMs, &st)
		f := ReadingFate{Reading: i}
		for _, x := range smp {
			f.Series = append(f.Series, seriesString(x.Series.Labels))
		}
		c := &cs[i]
		switch {
		case c.skip != emitted:
			f.Dropped, f.Detail = skipNames[c.skip], c.why
		case st.Invalid > 0:
			f.Dropped = reasonInvalid
			f.Detail = fmt.Sprintf("value %g is not a finite number in the base unit", s.Readings[i].Value)
		case c.discrete != "":
			f.Detail = fmt.Sprintf("discrete %s sensor; label %q (%s); states %q", c.discrete, c.label, c.labelBy, s.Readings[i].State)
			if c.fault != "" {
				f.Detail += "; chassis fault " + c.fault
			}
		default:
			f.Detail = fmt.Sprintf("%s as %s; context %s (%s); label %q (%s); name words %q",
				kindName(c.kind), classes[c.class].name, Contexts[c.place], c.placeBy, c.label, c.labelBy, c.words)
		}
		if c.skip == skipDuplicate {
			f.Detail = c.why
		}
		if f.Dropped == "" && len(f.Series) == 0 {
			// Cannot happen for a planned reading; say so rather than
			// hide it.
			f.Dropped, f.Detail = "no_series", "the plan feeds no series from this reading"
		}
		out[i] = f
	}
	return out
}

// seriesString writes a label set as the text exposition format does:
// name{a="x",b="y"}, values escaped.
func seriesString(ls series.Labels) string {
	var b strings.Builder
	b.WriteString(ls.Name())
	b.WriteByte('{')
	first := true
	ls.Range(func(name, value string) {
		if name == "__name__" {
			return
		}
		if !first {
			b.WriteByte(',')
		}
		first = false
		b.WriteString(name)
		b.WriteString(`="`)
		b.WriteString(strings.NewReplacer(`\`, `\\`, `"`, `\"`, "\n", `\n`).Replace(value))
		b.WriteByte('"')
	})
	b.WriteByte('}')
	return b.String()
}

// planAlone plans s in a series table of its own, for Explain and events:
// nothing is cached or shared.
func (rs *ruleSet) planAlone(s *v1.Snapshot, base []prompb.Label, vendor string) (*plan, []classified) {
	var t seriesTable
	b := t.begin(protoSlot(s.Protocol), base, s.PollStartMs)
	p, cs := rs.buildPlanExplained(b, s, vendor, 0)
	b.end()
	p.compact()
	return p, cs
}

// readingSeries is what events need of one reading's value series.
type readingSeries struct {
	ReadingUnit
	ok bool
}

// readingSeries says, for each reading of s, the value series the
// normaliser makes of it: name, own labels, base unit and conversion, so
// events describe a reading exactly as its samples. It plans s afresh
// (events are rare; a plan is about 0.4 ms) and caches nothing.
func (n *Normaliser) readingSeries(s *v1.Snapshot) []readingSeries {
	p, cs := n.rules.planAlone(s, nil, n.vendorOf(s))
	out := make([]readingSeries, len(s.Readings))
	for i := range p.readings {
		rp := &p.readings[i]
		val := p.out(rp, outValue)
		if val == nil || cs[i].skip != emitted {
			continue
		}
		u := ReadingUnit{Unit: baseNames[cs[i].base], Labels: map[string]string{}}
		val.Labels.Range(func(name, value string) {
			if name == "__name__" {
				u.Metric = value
			} else {
				u.Labels[name] = value
			}
		})
		conv := rp.conv
		u.Convert = conv.apply
		// A margin negated to headroom turns the BMC's upper threshold
		// into a lower one; events follow the series' sense.
		out[i] = readingSeries{ReadingUnit: u, ok: true}
	}
	return out
}

// vendorOf is the vendor s names, else the one its BMC's cached plan
// matched (a snapshot without identity), read without touching the cache.
func (n *Normaliser) vendorOf(s *v1.Snapshot) string {
	if v := s.Info["vendor"]; v != "" {
		return v
	}
	if bs := n.peek(s.BmcId); bs != nil {
		if p := bs.plans[protoSlot(s.Protocol)].Load(); p != nil {
			return p.vendor
		}
	}
	return ""
}
