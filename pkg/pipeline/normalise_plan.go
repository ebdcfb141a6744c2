package pipeline

import (
	"fmt"
	"math/bits"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/bmcstream/bmcstream/pkg/series"
	v1 "github.com/bmcstream/bmcstream/proto/bmcstream/v1"
)

// A plan is everything Normalise decides about one BMC's snapshots of one
// shape (the same sensors, units, contexts, inventory labels and identity):
// which series each reading feeds, with their label sets built, sorted and
// hashed once. Normalising a snapshot of a known shape only reads values.
// A plan is immutable once built; its series come from the BMC's series
// table (see seriesTable) and are handed to sinks, which never modify them
// (see series.Sample).
type plan struct {
	shape uint64
	// vendor is the vendor the plan's rules matched, kept so a snapshot
	// that lacks identity is classified as the BMC's previous ones were.
	vendor string

	up, duration, info, poweredOn   outSeries
	chassisHealth, chassisHealthBad outSeries
	faults                          []faultSeries
	readings                        []readingPlan
	outs                            []outSeries    // the readings' series
	wide                            []readingBuild // while built

	// base is the base its series were made over, nil for a plan made
	// alone (Explain).
	base *series.Base
	// byValue are the readings whose value took part in a decision.
	byValue []valueDep
}

// eachOut calls f with every series slot of the plan, fed or not.
func (p *plan) eachOut(f func(o *outSeries)) {
	for _, o := range [...]*outSeries{&p.up, &p.duration, &p.info, &p.poweredOn, &p.chassisHealth, &p.chassisHealthBad} {
		f(o)
	}
	for i := range p.faults {
		f(&p.faults[i].out)
	}
	for i := range p.outs {
		f(&p.outs[i])
	}
}

// rebaseable reports whether every series of the plan is its own labels
// over the plan's base, so the plan can serve as another BMC's template.
func (p *plan) rebaseable() bool {
	ok := true
	p.eachOut(func(o *outSeries) {
		if o.ser != nil && ok {
			_, ok = o.ser.Labels.Rebase(p.base)
		}
	})
	return ok
}

// outSeries is one series the plan feeds; ser is nil when it feeds none.
type outSeries struct {
	ser *series.Series
}

type faultSeries struct {
	info string
	out  outSeries
}

// skipReason says why a reading feeds no value series.
type skipReason uint8

const (
	emitted skipReason = iota
	skipUnmapped
	skipDiscrete
	skipAbsent
	skipRuleDrop
	skipStatusSignal
	skipDuplicate
	numSkipReasons
)

// skipNames are the reasons as Stats, Explain and the gateway's
// self-metrics name them.
var skipNames = [numSkipReasons]string{
	skipUnmapped:     "unmapped",
	skipDiscrete:     "discrete_unmapped",
	skipAbsent:       "absent",
	skipRuleDrop:     "rule_drop",
	skipStatusSignal: "status_signal",
	skipDuplicate:    "duplicate",
}

// readingPlan is what one reading of the snapshot becomes, compactly: its
// series are plan.outs[first:], one for each bit of mask (see out).
type readingPlan struct {
	conv     conversion
	first    int32
	mask     uint16
	skip     skipReason
	discrete bool
}

// A reading's series, by their bit in readingPlan.mask.
const (
	outValue = iota
	outHealth
	outInfo
	outPresent
	outFailed
	outFault
	outThreshold // + the threshold kind
)

// out returns series k of reading rp, or nil.
func (p *plan) out(rp *readingPlan, k int) *series.Series {
	if rp.mask&(1<<k) == 0 {
		return nil
	}
	return p.outs[int(rp.first)+bits.OnesCount16(rp.mask&(1<<k-1))].ser
}

// compact moves the series of the readings as built into outs. Call it
// once the builder has ended (every series made).
func (p *plan) compact() {
	if p.wide == nil {
		return
	}
	n := 0
	for i := range p.wide {
		for _, o := range p.wide[i].outs() {
			if o.ser != nil {
				n++
			}
		}
	}
	p.outs = make([]outSeries, 0, n)
	p.readings = make([]readingPlan, len(p.wide))
	for i := range p.wide {
		w := &p.wide[i]
		rp := &p.readings[i]
		rp.conv, rp.skip, rp.discrete, rp.first = w.conv, w.skip, w.discrete, int32(len(p.outs))
		for k, o := range w.outs() {
			if o.ser != nil {
				rp.mask |= 1 << k
				p.outs = append(p.outs, *o)
			}
		}
	}
	p.wide = nil
}

// readingBuild is a reading's plan while it is built.
type readingBuild struct {
	skip       skipReason
	conv       conversion
	value      outSeries
	health     outSeries
	info       outSeries
	thresholds [numThresholdKinds]outSeries // by the reading's threshold kind
	// A discrete reading's series: bmc_psu_present, bmc_psu_failed and
	// bmc_chassis_fault{kind=fan_redundancy|power_redundancy}.
	discrete               bool
	present, failed, fault outSeries
}

// outs lists the series of the reading in readingPlan.mask order.
func (w *readingBuild) outs() [outThreshold + numThresholdKinds]*outSeries {
	var o [outThreshold + numThresholdKinds]*outSeries
	o[outValue], o[outHealth], o[outInfo] = &w.value, &w.health, &w.info
	o[outPresent], o[outFailed], o[outFault] = &w.present, &w.failed, &w.fault
	for k := range w.thresholds {
		o[outThreshold+k] = &w.thresholds[k]
	}
	return o
}

// conversion turns a raw value into the base unit: (v + off) × mul ÷ div.
type conversion struct {
	off, mul, div float64
}

func (c conversion) apply(v float64) float64 { return (v + c.off) * c.mul / c.div }

// decision is what the rules say about one reading; for each field the
// first rule that sets it wins. A rule holds one too: what it sets.
type decision struct {
	class         class
	place         place
	placeSet      bool
	sensor        string
	sensorSet     bool
	indexBase     int
	indexBaseSet  bool
	multiply      float64
	multiplySet   bool
	ignorePhys    bool
	ignorePhysSet bool
	priority      int
	prioritySet   bool
	drop          bool
	dropSet       bool
	status        bool
	statusSet     bool
}

// classified is one reading on its way into a plan.
type classified struct {
	skip     skipReason
	why      string // why it was skipped, for Explain
	kind     v1.Kind
	class    class
	base     base
	conv     conversion
	place    place
	placeBy  string // what decided the place, for Explain
	canon    string // canonical name: prefixes stripped, SDR-shortened
	words    string // canon's words, as name patterns see them
	slug     string // canon as a label value
	full     string // the whole name (prefixes stripped) as a label value
	label    string // the sensor/fan/psu label value
	labelBy  string // what decided the label, for Explain
	priority int
	metric   *seriesNames
	// discrete is the kind label of a discrete reading's health (psu,
	// fan, processor...), fault the kind of chassis fault a redundancy
	// sensor feeds.
	discrete string
	fault    string
	// boardInlet: a board zone's inlet ("System Board Inlet Temp"), the
	// chassis' intake only when the BMC has no room-air reading.
	boardInlet bool
	// byValue: the reading's value took part in a decision: whether it
	// is below zero in the unit's base (valueConv). A plan serves as
	// another BMC's template only where that holds alike (see valueDep).
	byValue   bool
	valueConv conversion
}

// valueDep is a reading whose value took part in a plan's decisions: only
// whether it is below zero in its unit's base.
type valueDep struct {
	reading int
	conv    conversion
	neg     bool
}

// valuesAlike reports whether s's readings decide as the plan's did.
func (p *plan) valuesAlike(s *v1.Snapshot) bool {
	for _, d := range p.byValue {
		if d.reading >= len(s.Readings) || (d.conv.apply(s.Readings[d.reading].Value) < 0) != d.neg {
			return false
		}
	}
	return true
}

// buildPlan classifies every reading of s and builds the plan's series.
func (rs *ruleSet) buildPlan(b *labelBuilder, s *v1.Snapshot, vendor string, shape uint64) *plan {
	p, _ := rs.buildPlanExplained(b, s, vendor, shape)
	return p
}

// buildPlanExplained is buildPlan, also returning each reading's
// classification for Explain.
// b makes the plan's series in the BMC's series table (see labelBuilder).
func (rs *ruleSet) buildPlanExplained(b *labelBuilder, s *v1.Snapshot, vendor string, shape uint64) (*plan, []classified) {
	p := &plan{shape: shape, vendor: vendor, wide: make([]readingBuild, len(s.Readings))}
	proto := protoName(s.Protocol)

	b.series(&p.up, metricUp, "protocol", proto)
	b.series(&p.duration, metricPollDuration, "protocol", proto)
	b.infoSeries(p, s)
	b.series(&p.poweredOn, metricPoweredOn)
	b.series(&p.chassisHealth, metricChassisHealth)
	b.series(&p.chassisHealthBad, metricChassisFault, "kind", "health")
	p.faults = make([]faultSeries, len(rs.faults))
	for i, f := range rs.faults {
		p.faults[i].info = f.info
		b.series(&p.faults[i].out, metricChassisFault, "kind", f.kind)
	}

	// Vendor patterns are matched once per plan, not once per reading.
	vendorOK := make([]bool, len(rs.rules))
	for i, ru := range rs.rules {
		vendorOK[i] = ru.vendor == nil || ru.vendor.MatchString(vendor)
	}
	cs := make([]classified, len(s.Readings))
	decisions := make([]decision, len(s.Readings))
	namePlaces := make([]placeRef, len(s.Readings))
	// Pass 1: kind, unit, class and the rules' say.
	temps, intakes := 0, 0
	intakeContradicted := false
	for i := range s.Readings {
		r := &s.Readings[i]
		c := &cs[i]
		ni := rs.nameInfo(r.Name)
		c.canon, c.words, c.slug, c.full = ni.canon, ni.words, ni.slug, ni.full
		if c.slug == "" {
			c.slug, c.full = slug(r.Id), slug(r.Id)
		}
		if c.slug == "" {
			c.slug, c.full = "sensor", "sensor"
		}
		rs.classify(r, s.Protocol, vendorOK, c, &decisions[i])
		namePlaces[i] = ni.place
		if c.skip == emitted && c.kind == v1.Kind_KIND_TEMPERATURE {
			temps++
			if ref := rs.physical[strings.ToLower(strings.TrimSpace(r.Context))]; ref.ok && ref.place == placeIntake {
				intakes++
				if np := namePlaces[i]; np.ok && np.place != placeIntake {
					intakeContradicted = true
				}
			}
		}
	}
	for i := range cs {
		if c := &cs[i]; c.byValue {
			p.byValue = append(p.byValue, valueDep{reading: i, conv: c.valueConv, neg: c.valueConv.apply(s.Readings[i].Value) < 0})
		}
	}
	// A BMC's PhysicalContext Intake is believed for a temperature whose
	// name says nothing only when no temperature at Intake names a
	// component and not every one of two or more temperatures is at
	// Intake (AMI, Supermicro and NVIDIA put Intake on everything).
	intakeDistrusted := intakeContradicted || temps >= 2 && intakes == temps

	// Pass 2: context.
	for i := range s.Readings {
		r := &s.Readings[i]
		c := &cs[i]
		if c.skip != emitted || c.discrete != "" {
			continue
		}
		c.place, c.placeBy = rs.placeOf(r, &decisions[i], namePlaces[i], intakeDistrusted)
		if c.place == placeIntake && c.placeBy != "rule" && aboveRoomAir(r, c.conv) {
			// Named or placed like room air, but the BMC alarms on it
			// where room air never is: air already inside the chassis.
			c.place, c.placeBy = placeOther, fmt.Sprintf("not intake: an upper threshold above %d °C, room air's limit", RoomAirLimitCelsius)
		}
		c.boardInlet = c.place == placeSystemBoard && c.placeBy == "name" && rs.intakeWord(c.words) &&
			roomAirLimits(r, c.conv)
	}
	chooseSpots(s, cs)

	// Pass 3: labels, numbered from 0 where the BMC has a sensor 0 of the
	// family, else from 1.
	zero := zeroFamilies(s, cs)
	for i := range s.Readings {
		c := &cs[i]
		if c.skip != emitted || c.label != "" {
			continue
		}
		c.label, c.labelBy = rs.label(&s.Readings[i], &decisions[i], c, zero)
	}

	resolveCollisions(cs)

	// Build the series in reading order, so the first of several readings
	// feeding one health or info series wins; duplicates last, so their
	// health and thresholds only fill what the winner lacks (DCMI has
	// neither; the SDR's power sensor beside it has both).
	seen := b.sc.seen
	for _, pass := range [...]skipReason{emitted, skipDuplicate} {
		for i := range s.Readings {
			if cs[i].skip == pass {
				rs.buildReading(b, &p.wide[i], &s.Readings[i], &cs[i], proto, seen)
			}
		}
	}
	for i := range cs {
		p.wide[i].skip = cs[i].skip
	}
	return p, cs
}

// infoSeries builds the plan's bmc_info series from the snapshot's
// identity, if it has one.
func (b *labelBuilder) infoSeries(p *plan, s *v1.Snapshot) {
	if len(s.Info) > 0 {
		b.series(&p.info, metricInfo, "firmware", s.Info["firmware"], "model", s.Info["model"],
			"protocol", protoName(s.Protocol), "serial", s.Info["serial"], "vendor", s.Info["vendor"])
	}
}

// chooseSpots decides which reading is the canonical sensor="intake" and
// sensor="exhaust" of the snapshot; the other readings at those places
// keep the place as context and their slug as label. Intake candidates
// rank: room-air words (ambient, amb, room, front panel) first, then
// other inlet and intake names, then readings placed by their context or
// entity alone; within a rank the lowest sensor id (natural order), then
// name. When no reading is at intake, a board zone's inlet ("System Board
// Inlet Temp", "BB Inlet Temp": the inlet sensor on the main board) is
// the chassis' intake, ranked the same way. Never by name length.
func chooseSpots(s *v1.Snapshot, cs []classified) {
	for _, spot := range [...]place{placeIntake, placeExhaust} {
		best, bestRank := -1, 99
		for pass := 0; pass < 2 && best < 0; pass++ {
			for i := range cs {
				c := &cs[i]
				if c.skip != emitted || c.class != classTemperature {
					continue
				}
				ok := c.place == spot
				if pass == 1 {
					ok = spot == placeIntake && c.boardInlet
				}
				if !ok {
					continue
				}
				rank := spotRank(c)
				if best < 0 || rank < bestRank || rank == bestRank && idLess(&s.Readings[i], &s.Readings[best]) {
					best, bestRank = i, rank
				}
			}
		}
		if best < 0 {
			continue
		}
		c := &cs[best]
		if c.boardInlet && c.place != placeIntake {
			c.place, c.placeBy = placeIntake, "board inlet standing in for the room (no room-air reading)"
		}
		c.label = Contexts[spot]
		c.labelBy = "canonical " + Contexts[spot] + " (" + spotWhy[bestRank] + ")"
	}
}

// RoomAirLimitCelsius is the highest upper threshold a board inlet may
// carry and still stand in for the room's air. The BMCs that watch room
// air set their inlet alarms near the warmest inlet air servers are
// specified for (ASHRAE class A4 allows 45 °C): 38-48 °C across the
// corpus of real captures, while board zones' own inlets (a power
// distribution board, a GPU baseboard, a compute module's baseboard) are
// set at 53 °C and above because they measure air already warmed inside
// the chassis.
const RoomAirLimitCelsius = 50

// roomAirLimits reports whether a reading's own upper alarm thresholds
// (caution and critical, in °C) say it watches room air: it has at least
// one and none above RoomAirLimitCelsius. The fatal threshold is a
// shutdown point and may be higher (iLO 4 puts its Front Ambient's at 52
// °C). A reading without upper alarm thresholds says nothing, and is not
// believed.
func roomAirLimits(r *v1.Reading, conv conversion) bool {
	seen := false
	for _, t := range r.Thresholds {
		switch t.Kind {
		case v1.ThresholdKind_THRESHOLD_UPPER_CAUTION, v1.ThresholdKind_THRESHOLD_UPPER_CRITICAL:
			if conv.apply(t.Value) > RoomAirLimitCelsius {
				return false
			}
			seen = true
		}
	}
	return seen
}

// aboveRoomAir reports whether any of a reading's own upper alarm
// thresholds (caution, critical; in °C) is above RoomAirLimitCelsius.
func aboveRoomAir(r *v1.Reading, conv conversion) bool {
	for _, t := range r.Thresholds {
		switch t.Kind {
		case v1.ThresholdKind_THRESHOLD_UPPER_CAUTION, v1.ThresholdKind_THRESHOLD_UPPER_CRITICAL:
			if conv.apply(t.Value) > RoomAirLimitCelsius {
				return true
			}
		}
	}
	return false
}

var spotWhy = [...]string{"room-air name", "inlet name", "context or entity only"}

// spotRank ranks an intake candidate (0 best); exhaust candidates are all
// equal.
func spotRank(c *classified) int {
	if c.place == placeExhaust {
		return 0
	}
	switch {
	case roomAir.MatchString(c.words):
		return 0
	case inletWord.MatchString(c.words):
		return 1
	}
	return 2
}

// Room-air and inlet words, on a name's words. Read-only tables.
var (
	roomAir   = regexp.MustCompile(`ambient|\bamb\b|\broom\b|front ?panel`)
	inletWord = regexp.MustCompile(`inlet|intake`)
	// outletWord names a component's outlet air.
	outletWord = regexp.MustCompile(`outlet|exhaust`)
)

func (rs *ruleSet) intakeWord(w string) bool {
	return roomAir.MatchString(w) || inletWord.MatchString(w)
}

// idLess orders readings by sensor id (natural order), then name.
func idLess(a, b *v1.Reading) bool {
	if a.Id != b.Id {
		return naturalLess(a.Id, b.Id)
	}
	return naturalLess(a.Name, b.Name)
}

// family is the numbering family of a reading's label ("cpu", "fan",
// "psu"...) with the name's stem (its words before the first number), or
// "" when the label is not numbered.
func (c *classified) family() string {
	var fam string
	switch {
	case c.discrete != "":
		fam = discreteFamily(c.discrete)
		if c.fault != "" {
			fam = ""
		}
	case c.class == classTemperature || c.class == classTemperatureMargin:
		if c.place.counted() {
			fam = Contexts[c.place]
		}
	case c.class == classFan:
		fam = "fan"
		if c.place == placePSU {
			fam = "psu"
		}
	case c.class == classPSUInput || c.class == classPSUOutput:
		fam = "psu"
	}
	if fam == "" {
		return ""
	}
	stem := c.canon
	if i := strings.IndexAny(stem, "0123456789"); i >= 0 {
		stem = stem[:i]
	}
	return fam + "\xff" + words(stem)
}

// zeroFamilies finds the numbering families of the snapshot that have a
// sensor 0: those count from 0 (cpu0 is cpu1), the others from 1.
func zeroFamilies(s *v1.Snapshot, cs []classified) map[string]bool {
	zero := map[string]bool{}
	for i := range cs {
		c := &cs[i]
		if c.skip != emitted {
			continue
		}
		f := c.family()
		if f == "" {
			continue
		}
		if n, _, ok := firstNumber(c.canon); ok {
			if n == 0 {
				zero[f] = true
			}
		} else if n, _, ok := firstNumber(s.Readings[i].Parent); ok && n == 0 {
			zero[f] = true
		}
	}
	return zero
}

// seenKey is a series a plan already has a feeder for: a kind of series
// and up to three strings naming it.
type seenKey struct {
	k       byte
	a, b, c string
}

// buildReading builds the series of one reading; seen holds the health,
// info and threshold series already fed by an earlier reading. A duplicate
// feeds only the health and thresholds its winner lacks.
func (rs *ruleSet) buildReading(b *labelBuilder, rp *readingBuild, r *v1.Reading, c *classified, proto string, seen map[seenKey]bool) {
	if c.discrete != "" {
		rs.buildDiscrete(b, rp, r, c, proto, seen)
		return
	}
	ci := &classes[c.class]
	rp.conv = c.conv
	extra := make([]string, 0, 4)
	if ci.label != "" {
		extra = append(extra, ci.label, c.label)
	}
	if ci.context {
		extra = append(extra, "context", Contexts[c.place])
	}
	sensor := c.label
	if ci.label == "" {
		sensor = chassisSensor
	}
	if c.skip == emitted {
		b.series(&rp.value, c.metric.value, extra...)
		if key := (seenKey{'i', ci.name, sensor, r.Name}); !seen[key] {
			seen[key] = true
			b.series(&rp.info, metricSensorInfo, "kind", ci.name, "name", r.Name, "protocol", proto, "sensor", sensor)
		}
	}
	if key := (seenKey{'h', ci.name, sensor, ""}); !seen[key] && r.Health != v1.Health_HEALTH_UNSPECIFIED {
		seen[key] = true
		b.series(&rp.health, metricSensorHealth, "kind", ci.name, "sensor", sensor)
	}
	if ci.counter {
		return
	}
	for _, th := range r.Thresholds {
		k := th.Kind
		if k <= 0 || int(k) >= numThresholdKinds {
			continue
		}
		nk := k
		if c.conv.mul < 0 {
			nk = flipped(k)
		}
		name := c.metric.thresholds[nk]
		if key := (seenKey{'t', name, c.label, ""}); !seen[key] {
			seen[key] = true
			b.series(&rp.thresholds[k], name, extra...)
		}
	}
}

// buildDiscrete builds the series of a discrete reading (CONTRACTS of the
// IPMI source: State lists the asserted states by name): its health, a
// power supply's presence and failure, a redundancy sensor's chassis
// fault.
func (rs *ruleSet) buildDiscrete(b *labelBuilder, rp *readingBuild, r *v1.Reading, c *classified, proto string, seen map[seenKey]bool) {
	rp.discrete = true
	if key := (seenKey{'h', c.discrete, c.label, ""}); !seen[key] && r.Health != v1.Health_HEALTH_UNSPECIFIED {
		seen[key] = true
		b.series(&rp.health, metricSensorHealth, "kind", c.discrete, "sensor", c.label)
	}
	if c.discrete == "psu" && c.fault == "" {
		if key := (seenKey{'p', c.label, "", ""}); !seen[key] {
			seen[key] = true
			b.series(&rp.present, metricPSUPresent, "psu", c.label)
			b.series(&rp.failed, metricPSUFailed, "psu", c.label)
		}
	}
	if c.fault != "" {
		if key := (seenKey{'f', c.fault, "", ""}); !seen[key] {
			seen[key] = true
			b.series(&rp.fault, metricChassisFault, "kind", c.fault)
		}
	}
	if key := (seenKey{'i', c.discrete, c.label, r.Name}); !seen[key] {
		seen[key] = true
		b.series(&rp.info, metricSensorInfo, "kind", c.discrete, "name", r.Name, "protocol", proto, "sensor", c.label)
	}
}

// classify decides kind, unit, class and conversion of a reading, and
// records what the rules say in d.
func (rs *ruleSet) classify(r *v1.Reading, proto v1.Protocol, vendorOK []bool, c *classified, d *decision) {
	if r.Kind == v1.Kind_KIND_DISCRETE {
		rs.classifyDiscrete(r, proto, vendorOK, c, d)
		return
	}
	if strings.EqualFold(r.State, "Absent") {
		c.skip, c.why = skipAbsent, "the BMC reports the sensor absent"
		return
	}
	// Kind: unit first, then the source's kind and sensor type, then name.
	var unit *unitDef
	if u := strings.ToLower(strings.TrimSpace(r.Unit)); u != "" {
		var ok bool
		if unit, ok = rs.units[u]; !ok {
			c.skip, c.why = skipUnmapped, "unit "+strconv.Quote(r.Unit)+" is not in the mapping files"
			return
		}
	}
	kind := v1.Kind_KIND_UNSPECIFIED
	if unit != nil {
		kind = unit.kind
	}
	if kind == v1.Kind_KIND_UNSPECIFIED && r.Kind > 0 && int(r.Kind) < len(kindNames) {
		kind = r.Kind // a kind from a newer schema is as good as none
	}
	if kind == v1.Kind_KIND_UNSPECIFIED {
		kind = rs.sensorTypes[strings.ToLower(strings.TrimSpace(r.SensorType))]
	}
	if kind == v1.Kind_KIND_UNSPECIFIED {
		for _, kp := range rs.kindNames {
			if kp.re.MatchString(c.words) {
				kind = kp.kind
				break
			}
		}
	}
	c.kind = kind
	if unit == nil && int(kind) < len(rs.kindDefaults) {
		unit = rs.kindDefaults[kind]
	}

	rs.decide(r, proto, vendorOK, kind, c.words, d)
	if d.dropSet && d.drop {
		c.skip, c.why = skipRuleDrop, "a rule drops it"
		return
	}
	if d.statusSet && d.status {
		c.skip, c.why = skipStatusSignal, "a status line (power good and the like), not a measurement"
		return
	}
	cl := d.class
	if cl == classNone {
		cl = defaultClass(kind)
	}
	if cl == classTemperature && d.class == classNone && unit != nil && thermWord.MatchString(c.words) {
		c.byValue, c.valueConv = true, conversion{off: unit.offset, mul: unit.mul, div: unit.div}
		if (r.Value+unit.offset)*unit.mul/unit.div < 0 {
			// "P1 DIMM Thrm 1" at -58: a name saying thermal (not
			// temp) with a reading below zero is a margin below a
			// throttle point; no server part runs below 0 °C.
			cl = classTemperatureMargin
		}
	}
	if cl == classNone || unit == nil || !cl.accepts(unit.base) {
		c.skip, c.why = skipUnmapped, "no series for kind "+strconv.Quote(kindName(kind))+" in unit "+strconv.Quote(r.Unit)
		return
	}
	c.class, c.base = cl, unit.base
	c.conv = conversion{off: unit.offset, mul: unit.mul, div: unit.div}
	if d.multiplySet {
		c.conv.mul *= d.multiply
	} else if cl == classTemperatureMargin {
		c.byValue, c.valueConv = true, c.conv
		if c.conv.apply(r.Value) < 0 {
			// Headroom is positive when safe: a BMC reporting the
			// margin as a negative temperature (-61 for 61 below the
			// throttle point) is negated. Decided when the plan is
			// made, so a margin keeps its sign convention from poll
			// to poll.
			c.conv.mul = -c.conv.mul
		}
	}
	c.priority = d.priority
	c.metric = rs.names[cl][unit.base]
}

func kindName(k v1.Kind) string {
	if int(k) < len(kindNames) && kindNames[k] != "" {
		return kindNames[k]
	}
	return "unknown"
}

// Discrete sensor types (IPMI sensor type names, as the IPMI source
// names them) and the kind label of their health.
var discreteKinds = map[string]string{
	"power supply": "psu",
	"fan":          "fan",
	"processor":    "processor",
	"memory":       "memory",
	"drive slot":   "drive",
	"power unit":   "power_unit",
}

// discreteFamily is the numbering family of a discrete kind: the label
// prefix its components share with their other series (cpu1, storage1).
func discreteFamily(k string) string {
	switch k {
	case "psu", "fan", "memory":
		return k
	case "processor":
		return "cpu"
	case "drive":
		return "storage"
	}
	return ""
}

var redundancyStates = [...]string{"fully_redundant", "redundancy_lost", "redundancy_degraded", "non_redundant_sufficient",
	"non_redundant_insufficient", "non_redundant", "redundancy_degraded_from_full", "redundancy_degraded_from_non_redundant"}

var fanWord = regexp.MustCompile(`fan|cooling`)

// thermWord: a name saying thermal rather than temperature (Intel's
// "Thrm" sensors are margins).
var thermWord = regexp.MustCompile(`\bthe?rm(al)?\b`)

// classifyDiscrete classifies a discrete reading: its health kind and, for
// a redundancy sensor, the chassis fault it feeds.
func (rs *ruleSet) classifyDiscrete(r *v1.Reading, proto v1.Protocol, vendorOK []bool, c *classified, d *decision) {
	c.kind = v1.Kind_KIND_DISCRETE
	rs.decide(r, proto, vendorOK, c.kind, c.words, d)
	if d.dropSet && d.drop {
		c.skip, c.why = skipRuleDrop, "a rule drops it"
		return
	}
	st := strings.ToLower(strings.TrimSpace(r.SensorType))
	c.discrete = discreteKinds[st]
	if c.discrete == "" {
		c.discrete = "discrete"
	}
	for _, rs := range redundancyStates {
		if hasState(r.State, rs) {
			switch {
			case st == "fan" || fanWord.MatchString(c.words):
				c.fault = "fan_redundancy"
			case st == "power supply" || st == "power unit":
				c.fault = "power_redundancy"
			}
			c.label, c.labelBy = c.slug, "redundancy sensor: the name as a slug"
			break
		}
	}
	c.placeBy = "discrete sensor of type " + strconv.Quote(r.SensorType)
	if r.Health == v1.Health_HEALTH_UNSPECIFIED && c.discrete != "psu" && c.fault == "" {
		// Nothing to map: counted, not lost.
		c.skip, c.why = skipDiscrete, "discrete sensor without health, and neither a power supply nor a redundancy sensor"
	}
}

// decide runs the rules over a reading; w are the words of its canonical
// name.
func (rs *ruleSet) decide(r *v1.Reading, proto v1.Protocol, vendorOK []bool, kind v1.Kind, w string, d *decision) {
	sensorType := strings.ToLower(strings.TrimSpace(r.SensorType))
	physical := strings.ToLower(strings.TrimSpace(r.Context))
	for i, ru := range rs.rules {
		var m []int
		if !vendorOK[i] || !ru.matches(r, proto, kind, sensorType, physical) {
			continue
		}
		if ru.name != nil {
			m = ru.name.FindStringSubmatchIndex(r.Name)
			if m == nil {
				continue
			}
		}
		if ru.words != nil && !ru.words.MatchString(w) {
			continue
		}
		d.adopt(&ru.decision)
		if !d.sensorSet && ru.sensorSet {
			d.sensor = ru.sensor
			if ru.name != nil && strings.Contains(ru.sensor, "$") {
				d.sensor = string(ru.name.ExpandString(nil, ru.sensor, r.Name, m))
			}
			// A template expanding to nothing leaves the label to the
			// built-in rules rather than making an unlabelled series.
			d.sensorSet = d.sensor != ""
		}
	}
}

// adopt takes from a rule's settings each one d does not have yet, but
// the sensor label, which decide expands from the rule's name pattern.
func (d *decision) adopt(r *decision) {
	if d.class == classNone && r.class != classNone {
		d.class = r.class
	}
	if !d.placeSet && r.placeSet {
		d.place, d.placeSet = r.place, true
	}
	if !d.indexBaseSet && r.indexBaseSet {
		d.indexBase, d.indexBaseSet = r.indexBase, true
	}
	if !d.multiplySet && r.multiplySet {
		d.multiply, d.multiplySet = r.multiply, true
	}
	if !d.ignorePhysSet && r.ignorePhysSet {
		d.ignorePhys, d.ignorePhysSet = r.ignorePhys, true
	}
	if !d.prioritySet && r.prioritySet {
		d.priority, d.prioritySet = r.priority, true
	}
	if !d.dropSet && r.dropSet {
		d.drop, d.dropSet = r.drop, true
	}
	if !d.statusSet && r.statusSet {
		d.status, d.statusSet = r.status, true
	}
}

// matches reports whether every matcher of the rule but the vendor and
// the names holds; sensorType and physical are the reading's, lower case.
func (ru *rule) matches(r *v1.Reading, proto v1.Protocol, kind v1.Kind, sensorType, physical string) bool {
	if ru.protocol != v1.Protocol_PROTOCOL_UNSPECIFIED && ru.protocol != proto {
		return false
	}
	if len(ru.kinds) > 0 && !slices.Contains(ru.kinds, kind) {
		return false
	}
	if len(ru.sensorTypes) > 0 && !slices.Contains(ru.sensorTypes, sensorType) {
		return false
	}
	if len(ru.physical) > 0 && !slices.Contains(ru.physical, physical) {
		return false
	}
	if len(ru.entities) > 0 && !slices.Contains(ru.entities, r.EntityId) {
		return false
	}
	return true
}

// namePlace is the place the name patterns give words, if any.
func (rs *ruleSet) namePlace(w string) placeRef {
	for _, pp := range rs.placeNames {
		if pp.re.MatchString(w) {
			return placeRef{place: pp.place, ok: true}
		}
	}
	return placeRef{}
}

// placeOf decides where a reading is: a rule's context; else a strong
// physical context or entity; else a name pattern; else a weak physical
// context or entity; else other. A strong intake (PhysicalContext Intake
// or Room, an air inlet entity) yields to a name naming another place,
// and is not believed for a name saying nothing when intakeDistrusted.
// It returns what decided, for Explain.
func (rs *ruleSet) placeOf(r *v1.Reading, d *decision, byName placeRef, intakeDistrusted bool) (place, string) {
	if d.placeSet {
		return d.place, "rule"
	}
	ignorePhys := d.ignorePhysSet && d.ignorePhys
	var weak placeRef
	weakBy := ""
	strong := func(ref placeRef) bool {
		if ref.place != placeIntake {
			return true
		}
		if byName.ok {
			return byName.place == placeIntake
		}
		return !intakeDistrusted
	}
	if r.Context != "" && !ignorePhys {
		if ref := rs.physical[strings.ToLower(strings.TrimSpace(r.Context))]; ref.ok {
			if !ref.weak && strong(ref) {
				return ref.place, "physical context " + r.Context
			}
			if ref.weak {
				weak, weakBy = ref, "weak physical context "+r.Context
			}
		}
	}
	if r.EntityId > 0 && r.EntityId < 256 {
		if ref := rs.entities[r.EntityId]; ref.ok {
			if !ref.weak && strong(ref) {
				return ref.place, "entity " + strconv.Itoa(int(r.EntityId))
			}
			if ref.weak && !weak.ok {
				weak, weakBy = ref, "weak entity "+strconv.Itoa(int(r.EntityId))
			}
		}
	}
	if byName.ok {
		return byName.place, "name"
	}
	if weak.ok {
		return weak.place, weakBy
	}
	return placeOther, "nothing says"
}

// label is a reading's canonical sensor label (see docs/metrics.md):
// a place for one-off spots (intake, exhaust; chooseSpots gives those), a
// place and a number for components (cpu1, psu2, fan1a), the canonical
// name as a slug for the rest, or what a rule says. zero holds the
// numbering families that count from 0.
func (rs *ruleSet) label(r *v1.Reading, d *decision, c *classified, zero map[string]bool) (string, string) {
	if d.sensorSet {
		return d.sensor, "rule"
	}
	idx := func() string {
		base := 1
		if d.indexBaseSet {
			base = d.indexBase
		} else if zero[c.family()] {
			base = 0
		}
		return index(r, base, c.canon)
	}
	if c.discrete != "" {
		if f := discreteFamily(c.discrete); f != "" {
			return f + idx(), "component and number"
		}
		return c.slug, "name as a slug"
	}
	switch c.class {
	case classTemperature, classTemperatureMargin:
		if c.place.counted() {
			// A component's inlet or outlet air ("GPU 3 Inlet", "PSU1
			// Inlet", "P/S 2 Outlet") is not the component itself.
			switch {
			case inletWord.MatchString(c.words):
				return Contexts[c.place] + idx() + "_inlet", "context, number and inlet"
			case outletWord.MatchString(c.words):
				return Contexts[c.place] + idx() + "_outlet", "context, number and outlet"
			}
			return Contexts[c.place] + idx(), "context and number"
		}
		return c.slug, "name as a slug"
	case classFan:
		if c.place == placePSU {
			return "psu" + idx() + "_fan", "power supply fan and number"
		}
		return "fan" + idx(), "fan and number"
	case classPSUInput, classPSUOutput:
		return "psu" + idx(), "power supply and number"
	case classChassisPower:
		return "", "chassis power: no label"
	}
	return c.slug, "name as a slug"
}

// index numbers a component: the first number in its canonical name (with
// a rotor letter: "Fan1A" is 1a), counted from base (0 when the BMC's
// family has a sensor 0); else the first number of its parent; else its
// IPMI entity instance; else 1.
func index(r *v1.Reading, base int, canon string) string {
	if n, suffix, ok := firstNumber(canon); ok {
		return strconv.Itoa(n+1-base) + suffix
	}
	if n, suffix, ok := firstNumber(r.Parent); ok {
		return strconv.Itoa(n+1-base) + suffix
	}
	if inst := r.EntityInstance & 0x7F; r.EntityId != 0 && inst > 0 {
		if inst >= 0x60 { // device-relative instances start at 0x60
			inst -= 0x60 - 1
		}
		return strconv.Itoa(int(inst))
	}
	return "1"
}

// firstNumber finds the first run of digits in s, with the one letter that
// follows it when a word boundary follows that letter ("1A" in "Fan1A",
// not "1T" in "1Tach").
func firstNumber(s string) (n int, suffix string, ok bool) {
	i := 0
	for i < len(s) && (s[i] < '0' || s[i] > '9') {
		i++
	}
	if i == len(s) {
		return 0, "", false
	}
	j := i
	for j < len(s) && s[j] >= '0' && s[j] <= '9' && j-i < 6 {
		n = n*10 + int(s[j]-'0')
		j++
	}
	if j < len(s) && isLetter(s[j]) && (j+1 == len(s) || !isAlnum(s[j+1])) {
		suffix = strings.ToLower(s[j : j+1])
	}
	return n, suffix, true
}

func isLetter(c byte) bool { return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' }
func isAlnum(c byte) bool  { return isLetter(c) || c >= '0' && c <= '9' }

// canonicalName is the name every label decision reads: prefixes stripped
// (HPE's "01-"), then shortened as an IPMI SDR ID string is (at most 16
// bytes, leading words dropped first: "System Board Inlet Temp" becomes
// "Board Inlet Temp"), so a sensor's Redfish and IPMI names agree.
func (rs *ruleSet) canonicalName(name string) string {
	name = rs.stripPrefixes(strings.TrimSpace(name))
	return rs.stripPrefixes(sdrID(name))
}

// stripPrefixes strips the name prefixes of the mapping files, each only
// when a letter follows it ("01-Inlet Ambient" is "Inlet Ambient";
// "48-12V TMP ADC" keeps its number, which is part of the name).
func (rs *ruleSet) stripPrefixes(name string) string {
	for _, re := range rs.prefixes {
		if loc := re.FindStringIndex(name); loc != nil && loc[0] == 0 && loc[1] < len(name) && isLetter(name[loc[1]]) {
			name = strings.TrimSpace(name[loc[1]:])
		}
	}
	return name
}

// sdrIDMax is the longest ID string an IPMI SDR holds (IPMI v2.0 §43.1).
const sdrIDMax = 16

// sdrID shortens a name the way BMCs fit names into SDR ID strings: drop
// leading words while it is too long, then cut at 16 bytes. A word is
// never dropped when that would leave a name starting with a number: the
// number belongs to the word before it ("Processor Module 1 Frequency"
// keeps "Module 1 Frequency" whole rather than become "1 Frequency", and
// is cut at 16 bytes instead).
func sdrID(name string) string {
	for len(name) > sdrIDMax {
		_, rest, ok := strings.Cut(name, " ")
		rest = strings.TrimSpace(rest)
		if !ok || rest == "" || isDigit(rest[0]) {
			break
		}
		name = rest
	}
	if len(name) <= sdrIDMax {
		return name
	}
	n := sdrIDMax
	for n > 0 && !utf8.RuneStart(name[n]) {
		n--
	}
	return strings.TrimSpace(name[:n])
}

// slug is s in lower case with every run of other characters than ASCII
// letters and digits made one underscore: "Inlet Temp" → "inlet_temp".
func slug(s string) string {
	out := make([]byte, 0, len(s))
	under := false
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c >= 'a' && c <= 'z' || c >= '0' && c <= '9':
		case c >= 'A' && c <= 'Z':
			c += 'a' - 'A'
		default:
			under = len(out) > 0
			continue
		}
		if under {
			out = append(out, '_')
			under = false
		}
		out = append(out, c)
	}
	return string(out)
}

// resolveCollisions makes labels unique per metric. Several readings of
// the unlabelled chassis power series: the highest priority wins, then the
// first, and the others become duplicates. Several readings with one
// component label (cpu1): the one with the shortest canonical name keeps
// it, the others get their slug appended ("cpu1_cpu1_core_temp"). Several
// readings with one slug label: each takes the slug of its full name,
// whose leading words the canonical name may have dropped
// ("cpu_sub_system_power", "memory_sub_system_power"). What is still
// ambiguous (two sensors of one name) is numbered in snapshot order:
// "temp", "temp_2". The canonical intake and exhaust are unique already
// (chooseSpots).
func resolveCollisions(cs []classified) {
	groups := map[string][]int{}
	var keys []string
	for i := range cs {
		c := &cs[i]
		if c.skip != emitted {
			continue
		}
		k := c.metricKey() + "\xff" + c.label
		if _, ok := groups[k]; !ok {
			keys = append(keys, k)
		}
		groups[k] = append(groups[k], i)
	}
	taken := map[string]bool{}
	for _, k := range keys {
		taken[k] = true
	}
	claim := func(c *classified, l string) {
		base := l
		for n := 2; taken[c.metricKey()+"\xff"+l]; n++ {
			l = base + "_" + strconv.Itoa(n)
		}
		taken[c.metricKey()+"\xff"+l] = true
		c.label = l
	}
	for _, k := range keys {
		g := groups[k]
		if len(g) < 2 {
			continue
		}
		if cs[g[0]].discrete == "" && classes[cs[g[0]].class].label == "" {
			win := g[0]
			for _, i := range g[1:] {
				if cs[i].priority > cs[win].priority {
					win = i
				}
			}
			for _, i := range g {
				if i != win {
					cs[i].skip, cs[i].why = skipDuplicate, "a second reading of the chassis power; the first of the highest priority wins"
				}
			}
			continue
		}
		delete(taken, k)
		var roles []int
		for _, i := range g {
			if c := &cs[i]; c.label == c.slug {
				claim(c, c.full)
			} else {
				roles = append(roles, i)
			}
		}
		slices.SortStableFunc(roles, func(a, b int) int {
			if d := len(cs[a].slug) - len(cs[b].slug); d != 0 {
				return d
			}
			return strings.Compare(cs[a].slug, cs[b].slug)
		})
		for j, i := range roles {
			c := &cs[i]
			if j == 0 {
				claim(c, c.label)
			} else {
				claim(c, c.label+"_"+c.slug)
			}
		}
	}
}

// metricKey is what a label must be unique within: the value series, or
// for a discrete reading its health kind.
func (c *classified) metricKey() string {
	if c.discrete != "" {
		return metricSensorHealth + "\xff" + c.discrete
	}
	return c.metric.value
}

// protoName is the protocol label value.
func protoName(p v1.Protocol) string {
	switch p {
	case v1.Protocol_PROTOCOL_REDFISH:
		return "redfish"
	case v1.Protocol_PROTOCOL_IPMI:
		return "ipmi"
	}
	return ""
}
