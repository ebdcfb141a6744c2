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
	p, cs := n.rules.buildPlanExplained(s, base, vendor, 0)
	out := make([]ReadingFate, len(s.Readings))
	var smp []series.Sample
	for i := range s.Readings {
		var st Stats
		smp = p.emitReading(smp[:0], s, i, s.PollStartMs, &st)
		f := ReadingFate{Reading: i}
		for _, x := range smp {
			f.Series = append(f.Series, seriesString(x.Labels))
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
func seriesString(ls []prompb.Label) string {
	var b strings.Builder
	var name string
	for _, l := range ls {
		if l.Name == "__name__" {
			name = l.Value
		}
	}
	b.WriteString(name)
	b.WriteByte('{')
	first := true
	for _, l := range ls {
		if l.Name == "__name__" {
			continue
		}
		if !first {
			b.WriteByte(',')
		}
		first = false
		b.WriteString(l.Name)
		b.WriteString(`="`)
		b.WriteString(strings.NewReplacer(`\`, `\\`, `"`, `\"`, "\n", `\n`).Replace(l.Value))
		b.WriteByte('"')
	}
	b.WriteByte('}')
	return b.String()
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
	p, cs := n.rules.buildPlanExplained(s, nil, n.vendorOf(s), 0)
	out := make([]readingSeries, len(s.Readings))
	for i := range p.readings {
		rp := &p.readings[i]
		if rp.value.labels == nil || cs[i].skip != emitted {
			continue
		}
		u := ReadingUnit{Unit: baseNames[cs[i].base], Labels: map[string]string{}}
		for _, l := range rp.value.labels {
			if l.Name == "__name__" {
				u.Metric = l.Value
			} else {
				u.Labels[l.Name] = l.Value
			}
		}
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
	n.mu.RLock()
	defer n.mu.RUnlock()
	k := planKey{bmc: s.BmcId, proto: s.Protocol}
	p := n.cur[k]
	if p == nil {
		p = n.prev[k]
	}
	if p != nil {
		return p.vendor
	}
	return ""
}
