package pipeline

import (
	"encoding/binary"
	"fmt"
	"hash/maphash"
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

// DefaultPlanCacheSize is how many (BMC, protocol) plans a Normaliser keeps
// in each of its two cache generations by default. A plan holds the label
// sets of one BMC's series: about 180 KB for a 60-sensor server with six
// inventory labels (a prompb.Label is 64 bytes), the garbage one uncached
// poll of it would make. 16384 plans cover a gateway of 16 000 BMCs polled
// over one protocol (8 000 over both) in about 3 GB; a plan forgotten is
// rebuilt in about 0.4 ms of CPU at the BMC's next poll, so a smaller cache
// trades memory for CPU and garbage, never correctness.
const DefaultPlanCacheSize = 1 << 14

// NormaliserOptions configure a Normaliser. The zero value normalises with
// the built-in rules and the default cache.
type NormaliserOptions struct {
	// RuleFiles are the user's mapping files, read before the built-in
	// ones so that what they define wins (see ReadRuleFiles).
	RuleFiles []RuleFile
	// PlanCacheSize bounds the plans kept per cache generation; zero means
	// DefaultPlanCacheSize.
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
// It remembers, per BMC and protocol, the plan it made of the last
// snapshot (see DefaultPlanCacheSize for what that costs): while a BMC's sensors, inventory labels and identity stay the
// same, normalising only reads values and appends samples whose label
// slices are shared with every earlier poll (they are immutable once
// handed on, see series.Sample). Plans unused for two cache generations
// are forgotten, so decommissioned BMCs do not pin memory.
//
// A Normaliser is safe for concurrent use.
type Normaliser struct {
	rules *ruleSet
	seed  maphash.Seed

	mu        sync.RWMutex
	cur, prev map[planKey]*plan
	cacheSize int
	// oddProto is set once a plan is stored for a protocol outside the
	// enum: Forget then scans the cache instead of deleting by key.
	oddProto bool
}

type planKey struct {
	bmc   string
	proto v1.Protocol
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
		cur:       map[planKey]*plan{},
		prev:      map[planKey]*plan{},
		cacheSize: size,
	}, nil
}

// Normalise appends the samples of snapshot s to dst and returns dst.
// base are the labels every series of this BMC carries (bmc and the
// inventory's labels), sorted by name; they are copied into the
// Normaliser's label sets, never retained as given. st receives the counts
// of readings that made no series.
//
// The returned samples' label slices are shared between polls and must
// not be modified.
func (n *Normaliser) Normalise(dst []series.Sample, s *v1.Snapshot, base []prompb.Label, st *Stats) []series.Sample {
	key := planKey{bmc: s.BmcId, proto: s.Protocol}
	shape := n.shape(s, base)
	p := n.lookup(key)
	if p == nil || p.shape != shape {
		vendor := s.Info["vendor"]
		if vendor == "" && p != nil {
			vendor = p.vendor
		}
		p = n.rules.buildPlan(s, base, vendor, shape)
		n.store(key, p)
	}
	return p.emit(dst, s, st)
}

// Forget drops what the Normaliser remembers of a BMC, over every
// protocol; its next snapshot is planned afresh.
func (n *Normaliser) Forget(bmcID string) {
	n.mu.Lock()
	defer n.mu.Unlock()
	for _, m := range []map[planKey]*plan{n.cur, n.prev} {
		if !n.oddProto {
			// A plan per protocol at most: a few deletes, not a scan of
			// the cache (forgetting thousands of BMCs stays cheap).
			for p := range v1.Protocol_name {
				delete(m, planKey{bmc: bmcID, proto: v1.Protocol(p)})
			}
			continue
		}
		for k := range m {
			if k.bmc == bmcID {
				delete(m, k)
			}
		}
	}
}

func (n *Normaliser) lookup(k planKey) *plan {
	n.mu.RLock()
	p, cur := n.cur[k]
	if !cur {
		p = n.prev[k]
	}
	n.mu.RUnlock()
	if p != nil && !cur {
		n.store(k, p) // used again: promote it to the current generation
	}
	return p
}

// store keeps p in the current generation; a full generation becomes the
// previous one, and the previous one is dropped.
func (n *Normaliser) store(k planKey, p *plan) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if _, ok := v1.Protocol_name[int32(k.proto)]; !ok {
		n.oddProto = true
	}
	if _, ok := n.cur[k]; !ok && len(n.cur) >= n.cacheSize {
		n.prev, n.cur = n.cur, make(map[planKey]*plan, len(n.cur))
	}
	n.cur[k] = p
	delete(n.prev, k)
}

// shape hashes everything of a snapshot a plan depends on, values aside:
// protocol, base labels, identity, and each reading's name, kind, unit,
// context, type, entity, parent, state, threshold kinds and whether it
// has a health. It never allocates.
func (n *Normaliser) shape(s *v1.Snapshot, base []prompb.Label) uint64 {
	var h maphash.Hash
	h.SetSeed(n.seed)
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
		str(base[i].Value)
	}
	if len(s.Info) > 0 {
		for _, k := range [...]string{"vendor", "model", "serial", "firmware"} {
			str(s.Info[k])
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
	return h.Sum64()
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
	if p.info.labels != nil {
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
		return rp.emitDiscrete(dst, r, ts)
	}
	if rp.value.labels != nil {
		// A finite reading can still overflow in base units (1e308
		// kW): both are invalid, never an infinite sample.
		if v := rp.conv.apply(r.Value); finite(r.Value) && finite(v) {
			dst = rp.value.append(dst, ts, v)
			if rp.info.labels != nil {
				dst = rp.info.append(dst, ts, 1)
			}
		} else {
			st.Invalid++
		}
	}
	if h, ok := healthScore(r.Health); ok && rp.health.labels != nil {
		dst = rp.health.append(dst, ts, h)
	}
	for j := range r.Thresholds {
		th := &r.Thresholds[j]
		if th.Kind <= 0 || int(th.Kind) >= numThresholdKinds || !finite(th.Value) {
			continue
		}
		if o := &rp.thresholds[th.Kind]; o.labels != nil {
			if v := rp.conv.apply(th.Value); finite(v) {
				dst = o.append(dst, ts, v)
			}
		}
	}
	return dst
}

// psuFailStates are the power supply states bmc_psu_failed reports.
var psuFailStates = [...]string{"failure_detected", "input_lost", "input_lost_or_out_of_range", "input_out_of_range"}

// emitDiscrete appends a discrete reading's samples: health, a power
// supply's presence and failure, a redundancy sensor's fault.
func (rp *readingPlan) emitDiscrete(dst []series.Sample, r *v1.Reading, ts int64) []series.Sample {
	if h, ok := healthScore(r.Health); ok && rp.health.labels != nil {
		dst = rp.health.append(dst, ts, h)
	}
	if rp.present.labels != nil {
		switch {
		case hasState(r.State, "presence_detected"):
			dst = rp.present.append(dst, ts, 1)
		case hasState(r.State, "absent"):
			dst = rp.present.append(dst, ts, 0)
		}
	}
	if rp.failed.labels != nil {
		v := 0.0
		for _, f := range psuFailStates {
			if hasState(r.State, f) {
				v = 1
				break
			}
		}
		dst = rp.failed.append(dst, ts, v)
	}
	if rp.fault.labels != nil {
		v := 0.0
		if hasState(r.State, "redundancy_lost") || hasState(r.State, "non_redundant_insufficient") {
			v = 1
		}
		dst = rp.fault.append(dst, ts, v)
	}
	if rp.info.labels != nil {
		dst = rp.info.append(dst, ts, 1)
	}
	return dst
}

func (o *outSeries) append(dst []series.Sample, t int64, v float64) []series.Sample {
	return append(dst, series.Sample{Labels: o.labels, Hash: o.hash, T: t, V: v})
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

func healthScore(h v1.Health) (float64, bool) {
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

// defaultNormaliser is built from the built-in rules on first use by the
// package-level Normalise. A function value set once, never reassigned: the
// one exception to "no package state", kept so callers that predate
// Normaliser keep compiling.
var defaultNormaliser = sync.OnceValues(func() (*Normaliser, error) { return NewNormaliser(NormaliserOptions{}) })

// Normalise normalises with a Normaliser of the built-in rules shared by
// every caller of this function.
//
// Deprecated: build one Normaliser with NewNormaliser (with the user's rule
// files) and call its Normalise method.
func Normalise(dst []series.Sample, s *v1.Snapshot, base []prompb.Label, st *Stats) []series.Sample {
	n, err := defaultNormaliser()
	if err != nil {
		// The built-in files are tested; this cannot happen in a build
		// that passed its tests. Count everything as unmapped rather
		// than panic.
		st.Unmapped += len(s.Readings)
		return dst
	}
	return n.Normalise(dst, s, base, st)
}

// String describes the Normaliser for logs.
func (n *Normaliser) String() string {
	n.mu.RLock()
	defer n.mu.RUnlock()
	return fmt.Sprintf("normaliser (%d rules, %d plans cached)", len(n.rules.rules), len(n.cur)+len(n.prev))
}
