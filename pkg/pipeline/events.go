package pipeline

import (
	"math"
	"strings"

	"github.com/bmcstream/bmcstream/pkg/series"
	v1 "github.com/bmcstream/bmcstream/proto/bmcstream/v1"
)

// SchemaVersion is the version of the JSON messages the gateway publishes on
// bmc.v1.events.> (Event) and bmc.v1.norm.> (NormMessage), carried in their
// "version" field. Fields are only ever added within a version; a change
// that would break a consumer gets a new version (and subject prefix).
// docs/automation.md is the consumer's reference.
const SchemaVersion = 1

// EventKind names what changed.
type EventKind string

// The kinds of event. Each is emitted once per change, not on every poll.
const (
	// EventBMCDown: a protocol of the BMC stopped answering (up → down).
	EventBMCDown EventKind = "bmc_down"
	// EventBMCUp: it answers again (down → up).
	EventBMCUp EventKind = "bmc_up"
	// EventHealthWorsened: a sensor's health got worse (ok → warning,
	// warning → critical, ok → critical).
	EventHealthWorsened EventKind = "health_worsened"
	// EventHealthRecovered: a sensor's health got better, not necessarily
	// back to ok (Current says where it is).
	EventHealthRecovered EventKind = "health_recovered"
	// EventThresholdCrossed: a reading reached one of the BMC's own
	// thresholds for it (upper, or lower from above), or a more severe one.
	EventThresholdCrossed EventKind = "threshold_crossed"
	// EventThresholdCleared: the reading went back inside the threshold by
	// the hysteresis margin (see ThresholdHysteresis).
	EventThresholdCleared EventKind = "threshold_cleared"
	// EventPowerOn: the chassis power state changed to on.
	EventPowerOn EventKind = "power_on"
	// EventPowerOff: the chassis power state changed to off.
	EventPowerOff EventKind = "power_off"
)

// Event is one state change of one BMC, as published (JSON) on
// bmc.v1.events.<site>.<rack>.<bmc> for automation consumers in any
// language. docs/automation.md shows one of each kind.
type Event struct {
	// Version is SchemaVersion.
	Version int `json:"version"`
	// Kind says what changed.
	Kind EventKind `json:"kind"`
	// BMC is the inventory id of the BMC.
	BMC string `json:"bmc"`
	// Site and Rack repeat the inventory labels of the same names, for
	// consumers that route on them.
	Site string `json:"site,omitempty"`
	Rack string `json:"rack,omitempty"`
	// Labels are all of the BMC's inventory labels. The map is shared with
	// the caller of Events.Observe and must not be modified.
	Labels map[string]string `json:"labels,omitempty"`
	// Protocol is the protocol of the snapshot that showed the change:
	// "redfish" or "ipmi".
	Protocol string `json:"protocol,omitempty"`
	// Sensor is the BMC's own name for the sensor ("CPU1 Temp"), SensorID
	// its own id for it (a Redfish member id, an IPMI sensor number), and
	// SensorKind what it measures as the poller understood it
	// ("temperature", "fan", "power"...). Empty for BMC-level events.
	Sensor     string `json:"sensor,omitempty"`
	SensorID   string `json:"sensor_id,omitempty"`
	SensorKind string `json:"sensor_kind,omitempty"`
	// Metric is the series that shows the change in Prometheus, and Value
	// its value now: bmc_up 0/1, bmc_chassis_powered_on 0/1,
	// bmc_sensor_health 0/1/2, or the reading's series (for threshold
	// events) in its base unit. Metric is empty for a reading the schema has
	// no series for (or without Events.Normaliser and Units); Value is then the raw
	// reading.
	Metric string `json:"metric,omitempty"`
	// SeriesLabels are the series' own labels (sensor, context, fan,
	// psu...) as the normaliser gives them, for threshold events of a
	// reading that has a series (with Events.Normaliser), so a consumer
	// finds the exact series in Prometheus: Metric{bmc=BMC, SeriesLabels}.
	SeriesLabels map[string]string `json:"series_labels,omitempty"`
	Value        float64           `json:"value"`
	// Unit is the unit of Value and ThresholdValue in threshold events: the
	// base unit of Metric ("celsius", "rpm", "volts"...), or the BMC's raw
	// unit when Metric is empty.
	Unit string `json:"unit,omitempty"`
	// Threshold names the threshold crossed or cleared ("upper_critical",
	// "lower_caution"...) and ThresholdValue is its value, in Unit.
	Threshold      string   `json:"threshold,omitempty"`
	ThresholdValue *float64 `json:"threshold_value,omitempty"`
	// Previous and Current are the state before and after: "up"/"down",
	// "on"/"off", "ok"/"warning"/"critical", or for thresholds "normal" or
	// the most severe threshold reached on that side. Previous is "unknown"
	// when the gateway sees the BMC or sensor for the first time (see
	// Events.Observe).
	Previous string `json:"previous"`
	Current  string `json:"current"`
	// State is the asserted states of a discrete sensor in health events,
	// comma-separated as the IPMI source lists them
	// ("presence_detected,failure_detected").
	State string `json:"state,omitempty"`
	// TimeMs is when the BMC was read (Unix ms): the snapshot's poll time,
	// or the reading's own timestamp.
	TimeMs int64 `json:"time_ms"`
	// Poller is the id of the poller that read the BMC.
	Poller string `json:"poller"`
	// Error and ErrorClass say why a BMC is down (bmc_down only).
	Error      string `json:"error,omitempty"`
	ErrorClass string `json:"error_class,omitempty"`
}

// ThresholdHysteresis is the margin, as a fraction of a threshold's
// magnitude in the metric's base unit (see Events.Units; the raw unit
// without it), by which a reading must be back inside a crossed threshold
// before the crossing clears; at least 1 °C for temperatures. A reading hovering at a limit (90.2, 89.8, 90.1 °C against
// 90 °C) therefore gives one crossing, not one per poll: it clears below
// 88.2 °C. 2 % is about what BMCs' own IPMI hysteresis amounts to (1-2 raw
// steps), and for a 12 V rail (0.24 V) or a 600 RPM lower fan limit (12 RPM)
// stays above the readings' noise.
const ThresholdHysteresis = 0.02

// Events turns snapshots into events: it keeps, per BMC, the last state of
// each protocol's reachability, the power state, and each sensor's health
// and threshold level, and reports each change once.
//
// First sight: for a BMC or sensor the gateway has no state for (the
// gateway started, or Forget was called), normal states (up, health ok,
// inside the thresholds) are recorded silently, while abnormal ones (down,
// warning or critical, a threshold reached) are reported with Previous
// "unknown", so a consumer learns of a BMC that is already down when the
// gateway starts. Such events repeat after a gateway restart; consumers must
// be idempotent anyway (delivery is at least once). Power state is recorded
// silently at first sight: off is not a fault.
//
// A BMC that is down keeps its sensors' state: when it answers again, only
// what changed meanwhile is reported. Likewise a sensor missing from a poll
// keeps its state, so its return is compared with how it left; state is
// dropped only by Forget, and is a few dozen bytes per sensor.
//
// Feed Events only the snapshots Dedup accepted, from one place in the
// gateway (not once per sink), or HA pairs and sinks multiply the events.
// An Events is owned by one goroutine; it is not safe for concurrent use.
type Events struct {
	// Normaliser, when set, is the gateway's normaliser: threshold events
	// name the series it makes of the reading (Metric, SeriesLabels) with
	// values in that series' base unit, exactly as the samples written to
	// Prometheus. It wins over Units.
	Normaliser *Normaliser
	// Units, when set, maps a reading to the series the normaliser makes
	// of it (ok false when it makes none), so threshold events name that
	// series and carry values in its base unit, as in Prometheus. It is
	// called once per sensor, and again only when the BMC changes the
	// sensor's kind, unit or type. Without it, threshold events carry the
	// raw reading and the BMC's unit, and no metric.
	Units func(r *v1.Reading) (u ReadingUnit, ok bool)
	// shadow takes the events of readings whose series another protocol
	// feeds (ObserveFed): their state moves on, their events are not shown.
	shadow []Event

	bmcs map[string]*eventBMC
}

// ReadingUnit says how events express a reading: as the series the
// normaliser makes of it, in that series' base unit.
type ReadingUnit struct {
	// Metric is the series' name (bmc_temperature_celsius).
	Metric string
	// Unit is its base unit, the last word of Metric ("celsius").
	Unit string
	// Convert turns a raw value or threshold of the reading into Unit.
	// Nil means the raw value is already in Unit.
	Convert func(float64) float64
	// Labels are the series' own labels (sensor, context...), without
	// bmc and the inventory's; shared, never modified.
	Labels map[string]string
}

// clone returns u with its strings copied: a unit made from a decoded
// snapshot may share the message's bytes (Decode).
func (u ReadingUnit) clone() ReadingUnit {
	c := u
	c.Metric, c.Unit = strings.Clone(u.Metric), strings.Clone(u.Unit)
	if u.Labels != nil {
		c.Labels = make(map[string]string, len(u.Labels))
		for k, v := range u.Labels {
			c.Labels[strings.Clone(k)] = strings.Clone(v)
		}
	}
	return c
}

type eventBMC struct {
	up      [protoSlots]int8 // stateUnknown, stateUp, stateDown
	power   int8             // stateUnknown, powerOn, powerOff
	sensors map[sensorKey]*sensorState
}

const (
	stateUnknown int8 = iota
	stateUp
	stateDown
)

const (
	powerOn  = stateUp
	powerOff = stateDown
)

// sensorKey identifies a sensor of a BMC: its id (or name) in one protocol.
type sensorKey struct {
	proto v1.Protocol
	id    string
}

type sensorState struct {
	health int8 // -1 unknown, else 0 ok, 1 warning, 2 critical
	// level is the most severe threshold reached, per side (upper, lower):
	// 0 none, 1 caution, 2 critical, 3 fatal. Valid when levelKnown.
	level      [2]int8
	levelKnown bool
	// How the reading is expressed: cached per sensor, as working it out
	// allocates; redone when the BMC changes the sensor's kind or unit.
	unitSet    bool
	kind       v1.Kind
	rawUnit    string
	sensorType string
	name       string
	unit       eventUnit
}

// NewEvents returns an Events with no state.
func NewEvents() *Events {
	return &Events{bmcs: make(map[string]*eventBMC)}
}

// Observe appends to dst the events one snapshot shows. labels are the BMC's
// inventory labels (site, rack, ...), shared into the events, not copied:
// they must not be modified afterwards. In the steady state (nothing
// changed) Observe does not allocate.
func (ev *Events) Observe(dst []Event, s *v1.Snapshot, labels map[string]string) []Event {
	return ev.ObserveFed(dst, s, labels, nil)
}

// ObserveFed is Observe for a BMC polled over two protocols, whose series
// are fed by one protocol at a time (Sources): fed reports whether this
// snapshot feeds the series metric{labels} (the series' own labels, as in
// Event.SeriesLabels). A reading whose value series another protocol feeds
// still updates what Events knows of it, but shows no sensor event: the
// protocol feeding the series shows them, so one crossing is one event,
// not one per protocol. Readings without a series of their own (a
// discrete sensor's states) are not filtered. A nil fed filters nothing.
func (ev *Events) ObserveFed(dst []Event, s *v1.Snapshot, labels map[string]string, fed func(metric string, labels map[string]string) bool) []Event {
	b := ev.bmcs[s.BmcId]
	if b == nil {
		b = &eventBMC{sensors: make(map[sensorKey]*sensorState)}
		ev.bmcs[s.BmcId] = b
	}
	e := eventBase{s: s, labels: labels, norm: ev.Normaliser}

	slot := protoSlot(s.Protocol)
	prev, cur := b.up[slot], stateDown
	if s.Up {
		cur = stateUp
	}
	b.up[slot] = cur
	switch {
	case prev == cur, prev == stateUnknown && cur == stateUp:
	case cur == stateDown:
		x := e.event(EventBMCDown, s.PollStartMs)
		x.Metric, x.Value, x.Previous, x.Current = "bmc_up", 0, upName(prev), "down"
		x.Error, x.ErrorClass = s.Error, s.ErrorClass
		dst = append(dst, x)
	default:
		x := e.event(EventBMCUp, s.PollStartMs)
		x.Metric, x.Value, x.Previous, x.Current = "bmc_up", 1, "down", "up"
		dst = append(dst, x)
	}
	if !s.Up {
		return dst
	}

	if p := powerState(s.Info["power_state"]); p != stateUnknown {
		if prev := b.power; prev != stateUnknown && prev != p {
			x := e.event(EventPowerOn, s.PollStartMs)
			x.Metric, x.Value, x.Previous, x.Current = "bmc_chassis_powered_on", 1, "off", "on"
			if p == powerOff {
				x.Kind, x.Value, x.Previous, x.Current = EventPowerOff, 0, "on", "off"
			}
			dst = append(dst, x)
		}
		b.power = p
	}

	for i := range s.Readings {
		r := &s.Readings[i]
		key := sensorKey{proto: s.Protocol, id: r.Id}
		if key.id == "" {
			key.id = r.Name
		}
		st := b.sensors[key]
		if st == nil {
			st = &sensorState{health: -1}
			key.id = strings.Clone(key.id) // r's strings alias the message (Decode)
			b.sensors[key] = st
		}
		if fed != nil && ev.Normaliser != nil {
			if u := st.unitFor(&e, i, ev.Units); u.Metric != "" && !fed(u.Metric, u.Labels) {
				ev.shadow = ev.observeReading(ev.shadow[:0], &e, st, i)
				continue
			}
		}
		dst = ev.observeReading(dst, &e, st, i)
	}
	return dst
}

func (ev *Events) observeReading(dst []Event, e *eventBase, st *sensorState, i int) []Event {
	r := &e.s.Readings[i]
	t := e.s.PollStartMs
	if r.TimestampMs > 0 {
		t = r.TimestampMs
	}
	if h, ok := healthLevel(r.Health); ok {
		prev := st.health
		st.health = h
		if h != prev && (prev >= 0 || h > 0) {
			x := e.sensorEvent(EventHealthWorsened, t, r)
			if prev >= 0 && h < prev {
				x.Kind = EventHealthRecovered
			}
			x.Metric, x.Value = "bmc_sensor_health", float64(h)
			x.Previous, x.Current = healthName(prev), healthName(h)
			if r.Kind == v1.Kind_KIND_DISCRETE {
				x.State = r.State
			}
			dst = append(dst, x)
		}
	}

	if math.IsNaN(r.Value) || math.IsInf(r.Value, 0) {
		return dst
	}
	var thr [2][4]float64
	var has [2][4]bool
	for _, th := range r.Thresholds {
		side, lvl := thresholdLevel(th.Kind)
		if lvl == 0 || math.IsNaN(th.Value) || math.IsInf(th.Value, 0) {
			continue
		}
		thr[side][lvl], has[side][lvl] = th.Value, true
	}
	known := st.levelKnown
	st.levelKnown = true
	for side := range 2 {
		sign := 1.0
		if side == sideLower {
			sign = -1
		}
		reached := int8(0)
		for k := int8(3); k >= 1; k-- {
			if has[side][k] && sign*r.Value >= sign*thr[side][k] {
				reached = k
				break
			}
		}
		cur := st.level[side]
		switch {
		case !known:
			st.level[side] = reached
			if reached > 0 {
				u := st.unitFor(e, i, ev.Units)
				x := e.sensorEvent(EventThresholdCrossed, t, r)
				u.describe(&x, r.Value)
				x.Threshold, x.ThresholdValue = u.levelName(side, reached), float64Ptr(u.convert(thr[side][reached]))
				x.Previous, x.Current = "unknown", u.levelName(side, reached)
				dst = append(dst, x)
			}
		case reached > cur:
			st.level[side] = reached
			u := st.unitFor(e, i, ev.Units)
			x := e.sensorEvent(EventThresholdCrossed, t, r)
			u.describe(&x, r.Value)
			x.Threshold, x.ThresholdValue = u.levelName(side, reached), float64Ptr(u.convert(thr[side][reached]))
			x.Previous, x.Current = u.levelName(side, cur), u.levelName(side, reached)
			dst = append(dst, x)
		case reached < cur:
			// Below the level reached before: it holds while the reading
			// stays within the hysteresis margin of that level's threshold
			// (or of a lower one, which then becomes the level).
			u := st.unitFor(e, i, ev.Units)
			// Compared in the series' unit; in raw units when the
			// conversion negates (a margin made headroom): the margin
			// is the same size in both.
			v := r.Value
			if !u.decreasing {
				v = u.convert(v)
			}
			held := reached
			for k := cur; k > reached; k-- {
				if !has[side][k] {
					continue
				}
				tv := thr[side][k]
				if !u.decreasing {
					tv = u.convert(tv)
				}
				if sign*v >= sign*tv-u.margin(tv) {
					held = k
					break
				}
			}
			if held == cur {
				break
			}
			st.level[side] = held
			x := e.sensorEvent(EventThresholdCleared, t, r)
			u.describe(&x, r.Value)
			x.Threshold = u.levelName(side, cur)
			if has[side][cur] {
				x.ThresholdValue = float64Ptr(u.convert(thr[side][cur]))
			}
			x.Previous, x.Current = u.levelName(side, cur), u.levelName(side, held)
			dst = append(dst, x)
		}
	}
	return dst
}

// Forget drops the state of a BMC: the next snapshot is a first sight.
func (ev *Events) Forget(bmcID string) {
	delete(ev.bmcs, bmcID)
}

// eventBase fills the fields every event of one snapshot shares.
type eventBase struct {
	s      *v1.Snapshot
	labels map[string]string
	proto  string
	norm   *Normaliser
	// units are the normaliser's view of the snapshot's readings, made
	// the first time a threshold event needs one.
	units []readingSeries
}

func (e *eventBase) event(kind EventKind, t int64) Event {
	if e.proto == "" {
		e.proto = strings.ToLower(strings.TrimPrefix(e.s.Protocol.String(), "PROTOCOL_"))
	}
	return Event{
		Version:  SchemaVersion,
		Kind:     kind,
		BMC:      e.s.BmcId,
		Site:     e.labels["site"],
		Rack:     e.labels["rack"],
		Labels:   e.labels,
		Protocol: e.proto,
		TimeMs:   t,
		Poller:   e.s.PollerId,
	}
}

func (e *eventBase) sensorEvent(kind EventKind, t int64, r *v1.Reading) Event {
	x := e.event(kind, t)
	x.Sensor, x.SensorID = r.Name, r.Id
	if x.Sensor == "" {
		x.Sensor = r.Id
	}
	x.SensorKind = strings.ToLower(strings.TrimPrefix(r.Kind.String(), "KIND_"))
	return x
}

// eventUnit is a sensor's ReadingUnit, or its raw unit when it has none.
type eventUnit struct {
	ReadingUnit
	temperature bool // for the hysteresis floor
	// decreasing: the conversion negates (a margin the BMC reports below
	// zero, made headroom), so the BMC's upper thresholds are the series'
	// lower ones.
	decreasing bool
}

// levelName names a threshold level on the BMC's side as the series
// names it.
func (u *eventUnit) levelName(side int, level int8) string {
	if u.decreasing {
		side = 1 - side
	}
	return levelName(side, level)
}

func (st *sensorState) unitFor(e *eventBase, i int, units func(*v1.Reading) (ReadingUnit, bool)) *eventUnit {
	r := &e.s.Readings[i]
	if !st.unitSet || st.kind != r.Kind || st.rawUnit != r.Unit || st.sensorType != r.SensorType || st.name != r.Name {
		// Kept across snapshots: copies, as r's strings alias the message
		// they were decoded from (Decode).
		st.unitSet, st.kind = true, r.Kind
		st.rawUnit, st.sensorType, st.name = strings.Clone(r.Unit), strings.Clone(r.SensorType), strings.Clone(r.Name)
		st.unit = eventUnit{ReadingUnit: ReadingUnit{Unit: st.rawUnit}, temperature: r.Kind == v1.Kind_KIND_TEMPERATURE}
		if e.norm != nil {
			if e.units == nil {
				e.units = e.norm.readingSeries(e.s)
			}
			if u := e.units[i]; u.ok {
				st.unit.ReadingUnit = u.ReadingUnit.clone()
				st.unit.temperature = u.Unit == "celsius"
				st.unit.decreasing = u.Convert(1) < u.Convert(0)
			}
		} else if units != nil {
			if u, ok := units(r); ok {
				st.unit.ReadingUnit = u.clone()
			}
		}
	}
	return &st.unit
}

func (u *eventUnit) convert(v float64) float64 {
	if u.Convert == nil {
		return v
	}
	return u.Convert(v)
}

// margin is the hysteresis margin around threshold tv (in the event's
// unit). The 1-degree floor for temperatures holds in raw Kelvin and
// Fahrenheit too, near enough.
func (u *eventUnit) margin(tv float64) float64 {
	m := ThresholdHysteresis * math.Abs(tv)
	if u.temperature {
		m = max(m, 1)
	}
	return m
}

func (u *eventUnit) describe(x *Event, raw float64) {
	x.Metric, x.Value, x.Unit, x.SeriesLabels = u.Metric, u.convert(raw), u.Unit, u.Labels
}

const (
	sideUpper = 0
	sideLower = 1
)

// thresholdLevel returns the side (upper, lower) and severity (1 caution,
// 2 critical, 3 fatal) of a threshold kind; severity 0 for unknown kinds.
func thresholdLevel(k v1.ThresholdKind) (side int, level int8) {
	switch k {
	case v1.ThresholdKind_THRESHOLD_UPPER_CAUTION:
		return sideUpper, 1
	case v1.ThresholdKind_THRESHOLD_UPPER_CRITICAL:
		return sideUpper, 2
	case v1.ThresholdKind_THRESHOLD_UPPER_FATAL:
		return sideUpper, 3
	case v1.ThresholdKind_THRESHOLD_LOWER_CAUTION:
		return sideLower, 1
	case v1.ThresholdKind_THRESHOLD_LOWER_CRITICAL:
		return sideLower, 2
	case v1.ThresholdKind_THRESHOLD_LOWER_FATAL:
		return sideLower, 3
	}
	return sideUpper, 0
}

func levelName(side int, level int8) string {
	if level == 0 {
		return "normal"
	}
	return [2][4]string{
		{"", "upper_caution", "upper_critical", "upper_fatal"},
		{"", "lower_caution", "lower_critical", "lower_fatal"},
	}[side][level]
}

func healthName(h int8) string {
	switch h {
	case 0:
		return "ok"
	case 1:
		return "warning"
	case 2:
		return "critical"
	}
	return "unknown"
}

func upName(s int8) string {
	switch s {
	case stateUp:
		return "up"
	case stateDown:
		return "down"
	}
	return "unknown"
}

func powerState(s string) int8 {
	switch {
	case strings.EqualFold(s, "on"):
		return powerOn
	case strings.EqualFold(s, "off"):
		return powerOff
	}
	return stateUnknown
}

func float64Ptr(v float64) *float64 { return &v }

// NormMessage is the JSON message of one snapshot's normalised readings, as
// published on bmc.v1.norm.<site>.<rack>.<bmc>.
type NormMessage struct {
	// Version is SchemaVersion.
	Version int `json:"version"`
	// BMC is the inventory id of the BMC.
	BMC string `json:"bmc"`
	// Labels are the BMC's inventory labels, which every sample also has.
	Labels map[string]string `json:"labels,omitempty"`
	// TimeMs is the poll time (Unix ms).
	TimeMs int64 `json:"time_ms"`
	// Samples are the snapshot's series.
	Samples []NormSample `json:"samples"`
}

// NormSample is one series' value in a NormMessage.
type NormSample struct {
	// Name is the metric name (bmc_temperature_celsius).
	Name string `json:"name"`
	// Labels are the series' own labels (sensor, context...); `bmc` and the
	// inventory labels are in the message, not repeated here.
	Labels map[string]string `json:"labels,omitempty"`
	// Value is the value in the metric's base unit.
	Value float64 `json:"value"`
	// TimeMs is the reading's own time when it differs from the message's.
	TimeMs int64 `json:"time_ms,omitempty"`
}

// NewNormMessage builds the norm message of a BMC's samples at poll time t.
// Samples with a value JSON cannot carry (NaN, ±Inf, staleness markers
// included) are left out. labels are shared, not copied.
func NewNormMessage(bmcID string, labels map[string]string, t int64, samples []series.Sample) NormMessage {
	m := NormMessage{Version: SchemaVersion, BMC: bmcID, Labels: labels, TimeMs: t, Samples: make([]NormSample, 0, len(samples))}
	for _, smp := range samples {
		if math.IsNaN(smp.V) || math.IsInf(smp.V, 0) {
			continue
		}
		ns := NormSample{Value: smp.V}
		if smp.T != t {
			ns.TimeMs = smp.T
		}
		smp.Series.Labels.Range(func(name, value string) {
			if name == "__name__" {
				ns.Name = value
				return
			}
			if v, ok := labels[name]; name == "bmc" || ok && v == value {
				return
			}
			if ns.Labels == nil {
				ns.Labels = make(map[string]string, 4)
			}
			ns.Labels[name] = value
		})
		m.Samples = append(m.Samples, ns)
	}
	return m
}
