package pipeline

import (
	"encoding/binary"
	"fmt"
	"hash/maphash"
	"math"
	"math/bits"
	"strings"
	"sync"

	"github.com/prometheus/prometheus/prompb"

	"github.com/bmcstream/bmcstream/pkg/series"
	v1 "github.com/bmcstream/bmcstream/proto/bmcstream/v1"
)

// Stats counts, per Normalise call, the readings that did not become a
// value series, by reason. The caller adds them to its self-metrics (Each
// names the reasons). Every reading of a snapshot is either a value series
// (or a discrete sensor's series) or counted here, once.
type Stats struct {
	// Unmapped readings had a unit the mapping files do not know, or a
	// kind and unit the schema has no series for.
	Unmapped int
	// Discrete readings were discrete sensors with nothing to map: no
	// health, and neither a power supply nor a redundancy sensor.
	Discrete int
	// Invalid readings had a NaN or infinite value, or one that is
	// infinite in base units.
	Invalid int
	// Absent readings were sensors the BMC reports absent.
	Absent int
	// RuleDrop readings were dropped by a rule's `drop`.
	RuleDrop int
	// StatusSignal readings were status lines (power good and the like),
	// not measurements, though a BMC may type them Voltage.
	StatusSignal int
	// Duplicate readings measured a quantity another reading of the
	// snapshot already gave (a BMC's chassis power from DCMI and from an
	// SDR sensor); only their thresholds and health were used.
	Duplicate int
}

// Each calls f with each reason's name (as the gateway's
// bmcstream_gateway_readings_skipped_total labels it) and its count, in a
// fixed order, zero counts included.
func (st *Stats) Each(f func(reason string, n int)) {
	f(skipNames[skipUnmapped], st.Unmapped)
	f(skipNames[skipDiscrete], st.Discrete)
	f(reasonInvalid, st.Invalid)
	f(skipNames[skipAbsent], st.Absent)
	f(skipNames[skipRuleDrop], st.RuleDrop)
	f(skipNames[skipStatusSignal], st.StatusSignal)
	f(skipNames[skipDuplicate], st.Duplicate)
}

// reasonInvalid names a reading whose value was not finite.
const reasonInvalid = "invalid"

// add counts one reading skipped for r.
func (st *Stats) add(r skipReason) {
	switch r {
	case skipUnmapped:
		st.Unmapped++
	case skipDiscrete:
		st.Discrete++
	case skipAbsent:
		st.Absent++
	case skipRuleDrop:
		st.RuleDrop++
	case skipStatusSignal:
		st.StatusSignal++
	case skipDuplicate:
		st.Duplicate++
	}
}

// DefaultPlanCacheSize is how many BMCs a Normaliser keeps plans and
// series tables for in each of its two cache generations by default. A
// BMC's state is its plans (one per protocol: which series each reading
// feeds, a pointer per series) and its series table (each series once:
// compact labels whose own part is interned across BMCs and whose
// inventory part is shared by the BMC's series); about 20 KB for a
// 90-sensor server. 65536 BMCs per generation cover the largest gateway
// we run. A BMC forgotten is planned afresh at its next poll (0.1-0.5 ms)
// and its series are made anew, possibly in other slots: the stages after
// the normaliser keep the state of a series that lands in its old slot
// and start the others afresh, and still hold the old series in their old
// slots: Staleness may then end such a series with a marker at the poll
// that feeds it under its new slot. Keep the cache larger than the number
// of BMCs the gateway polls. Decommissioned BMCs are dropped by Forget,
// or age out of the cache.
const DefaultPlanCacheSize = 1 << 16

// NormaliserOptions configure a Normaliser. The zero value normalises with
// the built-in rules and the default cache.
type NormaliserOptions struct {
	// RuleFiles are the user's mapping files, read before the built-in
	// ones so that what they define wins (see ReadRuleFiles).
	RuleFiles []RuleFile
	// PlanCacheSize bounds the BMCs whose plans and series are kept per
	// cache generation; zero means DefaultPlanCacheSize.
	PlanCacheSize int
}

// Validate checks the options that do not need the rule files parsed.
func (o NormaliserOptions) Validate() error {
	if o.PlanCacheSize < 0 {
		return fmt.Errorf("plan cache size: must not be negative, got %d", o.PlanCacheSize)
	}
	return nil
}

// A Normaliser turns snapshots into bmcstream's vendor-neutral metric
// schema (docs/metrics.md), following mapping rules read from YAML files.
//
// It remembers, per BMC, a series table (see seriesTable: each series the
// BMC's plans feed, made once and shared by both protocols) and, per
// protocol, the plan it made of the last snapshot: while a BMC's sensors,
// inventory labels and identity stay the same, normalising only reads
// values and appends samples pointing at the table's series, the same
// *series.Series poll after poll (they are immutable once handed on, see
// series.Sample). BMCs unused for two cache generations are forgotten, so
// decommissioned BMCs do not pin memory.
//
// A Normaliser is safe for concurrent use.
type Normaliser struct {
	rules *ruleSet
	seed  maphash.Seed

	mu        sync.RWMutex
	cur, prev map[string]*bmcState
	cacheSize int

	tmu       sync.RWMutex
	templates map[uint64]*plan // by model shape and vendor (see plan)
}

// NewNormaliser builds a Normaliser from the built-in mapping files and the
// user's files in opts, which are read first so that what they define wins
// (see docs/metrics.md for the format and the precedence). Every file is
// decoded strictly: an unknown key, a bad pattern or an unknown context is
// an error naming the file and line.
func NewNormaliser(opts NormaliserOptions) (*Normaliser, error) {
	if err := opts.Validate(); err != nil {
		return nil, fmt.Errorf("new normaliser: %w", err)
	}
	builtin, err := BuiltinRuleFiles()
	if err != nil {
		return nil, err
	}
	rs, err := parseRules(append(append([]RuleFile(nil), opts.RuleFiles...), builtin...))
	if err != nil {
		return nil, err
	}
	size := opts.PlanCacheSize
	if size == 0 {
		size = DefaultPlanCacheSize
	}
	return &Normaliser{
		rules:     rs,
		seed:      maphash.MakeSeed(),
		cur:       map[string]*bmcState{},
		prev:      map[string]*bmcState{},
		cacheSize: size,
	}, nil
}

// Normalise appends the samples of snapshot s to dst and returns dst.
// base are the labels every series of this BMC carries (bmc and the
// inventory's labels), sorted by name; they are copied into the
// Normaliser's label sets, never retained as given. st receives the counts
// of readings that made no series.
//
// The returned samples' series are shared between polls and consumers and
// must not be modified.
func (n *Normaliser) Normalise(dst []series.Sample, s *v1.Snapshot, base []prompb.Label, st *Stats) []series.Sample {
	shape, model := n.shape(s, base)
	bs := n.state(s.BmcId)
	slot := protoSlot(s.Protocol)
	p := bs.plans[slot].Load()
	if p == nil || p.shape != shape {
		p = n.plan(bs, slot, s, base, shape, model)
	}
	if s.PollStartMs >= bs.sweepAt.Load() {
		bs.mu.Lock()
		bs.table.newest = max(bs.table.newest, s.PollStartMs)
		bs.sweepAt.Store(bs.table.sweep(bs.table.newest))
		bs.mu.Unlock()
	}
	return p.emit(dst, s, st)
}

// plan builds and stores the plan of s (protocol slot slot) in bs, unless
// another caller just did.
//
// A BMC of a model the Normaliser has planned before (the same sensors,
// identity and inventory label names, another BMC's values) is planned
// from that BMC's plan, its template: the same decisions, each series'
// interned own labels rebased onto this BMC's inventory labels, without
// classifying a reading again.
func (n *Normaliser) plan(bs *bmcState, slot int, s *v1.Snapshot, base []prompb.Label, shape, model uint64) *plan {
	bs.mu.Lock()
	defer bs.mu.Unlock()
	old := bs.plans[slot].Load()
	if old != nil && old.shape == shape {
		return old
	}
	vendor := s.Info["vendor"]
	if vendor == "" && old != nil {
		vendor = old.vendor
	}
	key := n.templateKey(s, model, vendor)
	b := bs.table.begin(slot, base, s.PollStartMs)
	var p *plan
	if tp := n.template(key); tp != nil && tp.vendor == vendor && tp.valuesAlike(s) {
		p = b.instantiate(tp, shape, s)
	}
	if p == nil {
		p = n.rules.buildPlan(b, s, vendor, shape)
		p.base = b.t.base
	}
	bs.sweepAt.Store(b.end())
	p.compact()
	if p.base == b.t.base && p.rebaseable() {
		n.storeTemplate(key, p)
	}
	bs.plans[slot].Store(p)
	return p
}

// templateKey is what a plan made for one BMC must share with another's
// snapshot to serve as its template: the model shape (see shape), the
// vendor the rules match, and what of the readings the shape leaves out
// but the decisions read: ids (the order of candidates for intake and
// exhaust) and threshold values (room-air limits). Where a decision read
// a reading's value (its sign), the template serves only snapshots whose
// values have the same sign (plan.valuesAlike).
func (n *Normaliser) templateKey(s *v1.Snapshot, model uint64, vendor string) uint64 {
	var h maphash.Hash
	h.SetSeed(n.seed)
	var buf [8]byte
	binary.LittleEndian.PutUint64(buf[:], model)
	_, _ = h.Write(buf[:])
	_, _ = h.WriteString(vendor)
	for i := range s.Readings {
		r := &s.Readings[i]
		_ = h.WriteByte(0xff)
		_, _ = h.WriteString(r.Id)
		for _, th := range r.Thresholds {
			binary.LittleEndian.PutUint64(buf[:], math.Float64bits(th.Value))
			_, _ = h.Write(buf[:])
		}
	}
	return h.Sum64()
}

// maxTemplates bounds the plans kept as templates; the store starts afresh
// when full.
const maxTemplates = 4096

func (n *Normaliser) template(key uint64) *plan {
	n.tmu.RLock()
	defer n.tmu.RUnlock()
	return n.templates[key]
}

func (n *Normaliser) storeTemplate(key uint64, p *plan) {
	n.tmu.Lock()
	defer n.tmu.Unlock()
	if _, ok := n.templates[key]; ok {
		return
	}
	if n.templates == nil || len(n.templates) >= maxTemplates {
		n.templates = make(map[uint64]*plan)
	}
	n.templates[key] = p
}

// Forget drops what the Normaliser remembers of a BMC, over every
// protocol: its plans and its series. Its next snapshot is planned afresh.
func (n *Normaliser) Forget(bmcID string) {
	n.mu.Lock()
	defer n.mu.Unlock()
	delete(n.cur, bmcID)
	delete(n.prev, bmcID)
}

// state returns the state of a BMC, made if new, promoted to the current
// generation if found in the previous one.
func (n *Normaliser) state(id string) *bmcState {
	n.mu.RLock()
	bs := n.cur[id]
	n.mu.RUnlock()
	if bs != nil {
		return bs
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	if bs = n.cur[id]; bs != nil {
		return bs
	}
	if bs = n.prev[id]; bs == nil {
		bs = newBMCState()
	}
	if len(n.cur) >= n.cacheSize {
		n.prev, n.cur = n.cur, make(map[string]*bmcState, len(n.cur))
	}
	n.cur[id] = bs
	delete(n.prev, id)
	return bs
}

// peek returns the state of a BMC without touching the cache, or nil.
func (n *Normaliser) peek(id string) *bmcState {
	n.mu.RLock()
	defer n.mu.RUnlock()
	if bs := n.cur[id]; bs != nil {
		return bs
	}
	return n.prev[id]
}

// shape hashes everything of a snapshot a plan depends on, values aside:
// protocol, base labels, identity, and each reading's name, kind, unit,
// context, type, entity, parent, state, threshold kinds and whether it
// has a health. It never allocates.
//
// It also returns the shape without the base labels' values: what a plan
// depends on besides the BMC's inventory labels, under which a plan made
// for one BMC serves as the template of another's (see template).
func (n *Normaliser) shape(s *v1.Snapshot, base []prompb.Label) (shape, model uint64) {
	var h, hv maphash.Hash
	h.SetSeed(n.seed)
	hv.SetSeed(n.seed)
	var buf [8]byte
	num := func(v uint64) {
		binary.LittleEndian.PutUint64(buf[:], v)
		_, _ = h.Write(buf[:])
	}
	str := func(v string) {
		_, _ = h.WriteString(v)
		_ = h.WriteByte(0xff)
	}
	num(uint64(s.Protocol))
	num(uint64(len(base)))
	for i := range base {
		str(base[i].Name)
		_, _ = hv.WriteString(base[i].Value)
		_ = hv.WriteByte(0xff)
	}
	if len(s.Info) > 0 {
		str(s.Info["vendor"])
		// Model, serial and firmware only label bmc_info: values of
		// the BMC, like its inventory labels.
		for _, k := range [...]string{"model", "serial", "firmware"} {
			_, _ = hv.WriteString(s.Info[k])
			_ = hv.WriteByte(0xff)
		}
	} else {
		_ = h.WriteByte(0xfe)
	}
	num(uint64(len(s.Readings)))
	for i := range s.Readings {
		r := &s.Readings[i]
		str(r.Name)
		if r.Name == "" {
			str(r.Id) // a nameless sensor's label comes from its id
		}
		str(r.Unit)
		str(r.Context)
		str(r.SensorType)
		str(r.Parent)
		str(r.State)
		var ths uint64
		for _, th := range r.Thresholds {
			if th.Kind > 0 && int(th.Kind) < numThresholdKinds {
				ths |= 1 << th.Kind
			}
		}
		if r.Health != v1.Health_HEALTH_UNSPECIFIED {
			ths |= 1 << 16
		}
		num(uint64(r.Kind) | uint64(r.EntityId)<<8 | uint64(r.EntityInstance)<<16 | ths<<32)
	}
	model = h.Sum64()
	return model ^ bits.RotateLeft64(hv.Sum64(), 29), model
}

// emit appends the samples of s under plan p.
func (p *plan) emit(dst []series.Sample, s *v1.Snapshot, st *Stats) []series.Sample {
	t := s.PollStartMs
	up := 0.0
	if s.Up {
		up = 1
	}
	dst = p.up.append(dst, t, up)
	if s.PollEndMs >= s.PollStartMs {
		dst = p.duration.append(dst, t, float64(s.PollEndMs-s.PollStartMs)/1000)
	}
	if p.info.ser != nil {
		dst = p.info.append(dst, t, 1)
	}
	if v, ok := poweredOn(s.Info["power_state"]); ok {
		dst = p.poweredOn.append(dst, t, v)
	}
	if v, ok := chassisHealth(s.Info["health"]); ok {
		dst = p.chassisHealth.append(dst, t, v)
		bad := 0.0
		if v > 0 {
			bad = 1
		}
		dst = p.chassisHealthBad.append(dst, t, bad)
	}
	for i := range p.faults {
		if v, ok := infoBool(s.Info[p.faults[i].info]); ok {
			dst = p.faults[i].out.append(dst, t, v)
		}
	}
	for i := range s.Readings {
		dst = p.emitReading(dst, s, i, t, st)
	}
	return dst
}

// emitReading appends the samples of reading i of s under plan p, counting
// in st what it does not make.
func (p *plan) emitReading(dst []series.Sample, s *v1.Snapshot, i int, t int64, st *Stats) []series.Sample {
	r := &s.Readings[i]
	rp := &p.readings[i]
	switch rp.skip {
	case emitted:
	case skipDuplicate:
		st.add(rp.skip) // its health and thresholds may still serve
	default:
		st.add(rp.skip)
		return dst
	}
	ts := t
	if r.TimestampMs > 0 {
		ts = r.TimestampMs
	}
	if rp.discrete {
		return p.emitDiscrete(dst, rp, r, ts)
	}
	if o := p.out(rp, outValue); o != nil {
		// A finite reading can still overflow in base units (1e308
		// kW): both are invalid, never an infinite sample.
		if v := rp.conv.apply(r.Value); finite(r.Value) && finite(v) {
			dst = add(dst, o, ts, v)
			if o := p.out(rp, outInfo); o != nil {
				dst = add(dst, o, ts, 1)
			}
		} else {
			st.Invalid++
		}
	}
	if h, ok := healthLevel(r.Health); ok {
		if o := p.out(rp, outHealth); o != nil {
			dst = add(dst, o, ts, float64(h))
		}
	}
	for j := range r.Thresholds {
		th := &r.Thresholds[j]
		if th.Kind <= 0 || int(th.Kind) >= numThresholdKinds || !finite(th.Value) {
			continue
		}
		if o := p.out(rp, outThreshold+int(th.Kind)); o != nil {
			if v := rp.conv.apply(th.Value); finite(v) {
				dst = add(dst, o, ts, v)
			}
		}
	}
	return dst
}

// psuFailStates are the power supply states bmc_psu_failed reports.
var psuFailStates = [...]string{"failure_detected", "input_lost", "input_lost_or_out_of_range", "input_out_of_range"}

// emitDiscrete appends a discrete reading's samples: health, a power
// supply's presence and failure, a redundancy sensor's fault.
func (p *plan) emitDiscrete(dst []series.Sample, rp *readingPlan, r *v1.Reading, ts int64) []series.Sample {
	if h, ok := healthLevel(r.Health); ok {
		if o := p.out(rp, outHealth); o != nil {
			dst = add(dst, o, ts, float64(h))
		}
	}
	if o := p.out(rp, outPresent); o != nil {
		switch {
		case hasState(r.State, "presence_detected"):
			dst = add(dst, o, ts, 1)
		case hasState(r.State, "absent"):
			dst = add(dst, o, ts, 0)
		}
	}
	if o := p.out(rp, outFailed); o != nil {
		v := 0.0
		for _, f := range psuFailStates {
			if hasState(r.State, f) {
				v = 1
				break
			}
		}
		dst = add(dst, o, ts, v)
	}
	if o := p.out(rp, outFault); o != nil {
		v := 0.0
		if hasState(r.State, "redundancy_lost") || hasState(r.State, "non_redundant_insufficient") {
			v = 1
		}
		dst = add(dst, o, ts, v)
	}
	if o := p.out(rp, outInfo); o != nil {
		dst = add(dst, o, ts, 1)
	}
	return dst
}

func add(dst []series.Sample, s *series.Series, t int64, v float64) []series.Sample {
	return append(dst, series.Sample{Series: s, T: t, V: v})
}

func (o *outSeries) append(dst []series.Sample, t int64, v float64) []series.Sample {
	return append(dst, series.Sample{Series: o.ser, T: t, V: v})
}

// infoBool reads a boolean of the snapshot's info as 1 or 0. Unlike
// strconv.ParseBool it does not allocate an error for a missing key.
func infoBool(s string) (float64, bool) {
	switch {
	case s == "true" || s == "1" || strings.EqualFold(s, "true"):
		return 1, true
	case s == "false" || s == "0" || strings.EqualFold(s, "false"):
		return 0, true
	}
	return 0, false
}

// healthLevel maps a reading's health to bmc_sensor_health's value (0 ok,
// 1 warning, 2 critical), shared by the samples and the events so the two
// never disagree; false for a reading without health.
func healthLevel(h v1.Health) (int8, bool) {
	switch h {
	case v1.Health_HEALTH_OK:
		return 0, true
	case v1.Health_HEALTH_WARNING:
		return 1, true
	case v1.Health_HEALTH_CRITICAL:
		return 2, true
	}
	return 0, false
}

// poweredOn reads a Redfish PowerState or the IPMI source's power state. A
// chassis powering off is still on; one powering on is not yet.
func poweredOn(s string) (float64, bool) {
	switch {
	case strings.EqualFold(s, "On"), strings.EqualFold(s, "PoweringOff"):
		return 1, true
	case strings.EqualFold(s, "Off"), strings.EqualFold(s, "PoweringOn"):
		return 0, true
	}
	return 0, false
}

// chassisHealth reads a Redfish Status.Health (the chassis' HealthRollup
// as the Redfish source reports it).
func chassisHealth(s string) (float64, bool) {
	switch {
	case strings.EqualFold(s, "OK"):
		return 0, true
	case strings.EqualFold(s, "Warning"):
		return 1, true
	case strings.EqualFold(s, "Critical"):
		return 2, true
	}
	return 0, false
}

// String describes the Normaliser for logs.
func (n *Normaliser) String() string {
	n.mu.RLock()
	defer n.mu.RUnlock()
	return fmt.Sprintf("normaliser (%d rules, %d BMCs cached)", len(n.rules.rules), len(n.cur)+len(n.prev))
}
