package redfish

import (
	"bytes"
	"encoding/json"
	"errors"
	"math"
	"strconv"
	"strings"

	"github.com/bmcstream/bmcstream/pkg/sources"
	v1 "github.com/bmcstream/bmcstream/proto/bmcstream/v1"
)

// This file decodes sensor documents with encoding/json into tolerant types
// instead of gofish's: BMCs print "N/A" or "30" where the schema says
// number, fractions where it says integer, and null for a sensor they cannot
// read, and a strict decoder loses the whole resource for one such member.
// Here one bad member costs one reading, counted in skips.
//
// Every decoder is pure (bytes in, readings out) so it is fuzzed on its own.

// numState says what a JSON value held where a number belongs.
type numState uint8

const (
	numAbsent numState = iota // the member was not there
	numOK                     // a finite number, or a string holding one
	numNull                   // null
	numNaN                    // anything else: "N/A", "", true, {...}, 1e999
)

// num is a tolerant JSON number. Its UnmarshalJSON never fails, so one odd
// value never aborts the decoding of the object around it.
type num struct {
	v     float64
	state numState
	// raw is the JSON text of a value that is not a number (cut to 32
	// bytes), for the drop's detail.
	raw string
}

// UnmarshalJSON implements json.Unmarshaler.
func (n *num) UnmarshalJSON(b []byte) error {
	b = bytes.TrimSpace(b)
	*n = num{state: numNaN}
	defer func() {
		if n.state == numNaN {
			n.raw = string(b[:min(len(b), 32)])
		}
	}()
	if len(b) == 0 {
		return nil
	}
	s := ""
	switch c := b[0]; {
	case c == 'n':
		n.state = numNull
		return nil
	case c == '"':
		var str string
		if json.Unmarshal(b, &str) != nil {
			return nil
		}
		s = strings.TrimSpace(str)
	case c == '-' || (c >= '0' && c <= '9'):
		s = string(b)
	default:
		return nil
	}
	v, err := strconv.ParseFloat(s, 64)
	if err != nil || math.IsNaN(v) || math.IsInf(v, 0) {
		return nil
	}
	n.v, n.state = v, numOK
	return nil
}

// ok returns the value when it is a usable number.
func (n num) ok() (float64, bool) { return n.v, n.state == numOK }

// str is a tolerant JSON string: a string, or the text of a number or a
// boolean (a serial number printed as 12345); anything else reads as "".
type str string

// UnmarshalJSON implements json.Unmarshaler.
func (s *str) UnmarshalJSON(b []byte) error {
	b = bytes.TrimSpace(b)
	*s = ""
	if len(b) == 0 {
		return nil
	}
	switch c := b[0]; {
	case c == '"':
		var v string
		if json.Unmarshal(b, &v) == nil {
			*s = str(strings.TrimSpace(v))
		}
	case c == '-' || (c >= '0' && c <= '9') || c == 't' || c == 'f':
		*s = str(b)
	}
	return nil
}

// link is a Redfish reference, {"@odata.id": "..."}.
type link struct {
	ID str `json:"@odata.id"`
}

// status is a Redfish Status object.
type status struct {
	State        str
	Health       str
	HealthRollup str
}

// dropReason says why a sensor whose Status.State is not Enabled has
// nothing to read, "" when its state does not say so: an empty socket or
// bay (iLO lists those with reading 0) is absent; a disabled sensor or a
// device offline is disabled.
func dropReason(state str) string {
	switch strings.ToLower(string(state)) {
	case "absent":
		return sources.DropAbsent
	case "disabled", "unavailableoffline", "standbyoffline":
		return sources.DropDisabled
	}
	return ""
}

// value applies the reading rules to one quantity named name with id id:
// nothing when the sensor's state says it has nothing to read, nothing when
// the value is missing (if required), null or not a number; each recorded
// as a drop with its reason. A quantity that is optional in its schema (a
// PSU's output watts) and absent is no reading and no drop.
func (res *docResult) value(state str, n num, required bool, name, id string) (float64, bool) {
	if n.state == numAbsent && !required {
		return 0, false
	}
	if r := dropReason(state); r != "" {
		res.drop(r, name, id, "state "+string(state))
		return 0, false
	}
	switch n.state {
	case numOK:
		return n.v, true
	case numAbsent:
		res.drop(sources.DropNull, name, id, "no reading")
	case numNull:
		res.drop(sources.DropNull, name, id, "reading null")
	default:
		res.drop(sources.DropNotANumber, name, id, "reading "+n.raw)
	}
	return 0, false
}

// drop records a reading left out.
func (res *docResult) drop(reason, name, id, detail string) {
	res.drops = append(res.drops, sources.Drop{Reason: reason, Name: name, ID: id, Detail: detail})
}

// add appends a reading with what the merge needs to know of it.
func (res *docResult) add(r v1.Reading, m meta) {
	res.readings = append(res.readings, r)
	res.meta = append(res.meta, m)
}

// health maps a Redfish Health.
func health(h str) v1.Health {
	switch strings.ToLower(string(h)) {
	case "ok":
		return v1.Health_HEALTH_OK
	case "warning":
		return v1.Health_HEALTH_WARNING
	case "critical":
		return v1.Health_HEALTH_CRITICAL
	}
	return v1.Health_HEALTH_UNSPECIFIED
}

// isObject reports whether b holds a JSON object (after leading space).
func isObject(b []byte) bool {
	b = bytes.TrimLeft(b, " \t\r\n")
	return len(b) > 0 && b[0] == '{'
}

// decodeLenient decodes b into v, keeping what fits. encoding/json skips a
// value of the wrong type (a string where the struct wants an object) and
// completes the rest, reporting only the first such mismatch; that report
// is dropped here. Syntax errors, which leave nothing to trust, are
// returned.
func decodeLenient(b []byte, v any) error {
	if !isObject(b) {
		return errors.New("document is not a JSON object")
	}
	err := json.Unmarshal(b, v)
	var te *json.UnmarshalTypeError
	if errors.As(err, &te) {
		return nil
	}
	return err
}

// members is a tolerant array of objects: anything but an array reads as
// empty and marks the array bad.
type members struct {
	raw []json.RawMessage
	bad bool
}

// UnmarshalJSON implements json.Unmarshaler.
func (m *members) UnmarshalJSON(b []byte) error {
	*m = members{}
	b = bytes.TrimSpace(b)
	if len(b) > 0 && b[0] == 'n' {
		return nil
	}
	if len(b) == 0 || b[0] != '[' || json.Unmarshal(b, &m.raw) != nil {
		m.raw, m.bad = nil, true
	}
	return nil
}

// each decodes every member of the array at uri#/array into a fresh T
// and calls fn with it and its index; members that are not objects are
// dropped as malformed, and an array that is not one as an unsupported
// layout (its readings cannot be told; the poll's error says where).
func each[T any](m members, res *docResult, uri, array string, fn func(i int, v *T)) {
	if m.bad {
		id := uri + "#/" + array
		res.drop(sources.DropUnsupportedLayout, array, id, array+" is not an array")
		res.layout = append(res.layout, id+" is not an array")
	}
	for i, raw := range m.raw {
		var v T
		if decodeLenient(raw, &v) != nil {
			res.drop(sources.DropMalformed, "", uri+"#/"+array+"/"+strconv.Itoa(i), "member is not an object")
			continue
		}
		fn(i, &v)
	}
}

// docResult is what one document yields: readings (and, beside each, what
// the merge needs to know of it), the readings left out, resource shapes
// that could not be read, and for a collection whose members came as bare
// links, the members still to fetch.
type docResult struct {
	readings []v1.Reading
	meta     []meta
	drops    []sources.Drop
	// layout describes, "where what", parts of the document whose shape
	// could not be read; the poll's error lists them.
	layout []string
	// pending are member URIs of a collection that was not expanded.
	pending []string
	// cov is, while decoding excerpts, the Sensors collections the poll
	// reads anyway.
	cov coverage
}

// The groups of sensor resources: readings of one group are distinct
// sensors; readings of different groups may be copies of one sensor.
const (
	groupLegacy  uint8 = iota + 1 // Thermal and Power arrays
	groupSensor                   // Sensor resources
	groupExcerpt                  // excerpts in subsystems and metrics
)

// meta is what the merge knows of a reading beyond the reading itself.
type meta struct {
	group uint8
	// member is the member's own id (MemberId, Id), when it has one.
	member string
	// links are the canonical URIs of what the reading names as its
	// source or subject: DataSourceUri, RelatedItem.
	links []string
	// chassis is the chassis whose resource held the reading; leaf the
	// index of that resource in the plan.
	chassis string
	leaf    int
}

// relatedLinks returns the canonical URIs of links.
func relatedLinks(ls []link) []string {
	var out []string
	for _, l := range ls {
		if l.ID != "" {
			out = append(out, canonicalURI(string(l.ID)))
		}
	}
	return out
}

// memberName is a legacy member's display name: Name, else a MemberId
// that is not a bare number, else the array's name and the member's
// number or position ("Fans 3"): a bare number names nothing.
func memberName(name, memberID str, array string, i int) string {
	switch {
	case name != "":
		return string(name)
	case memberID != "" && !numeric(string(memberID)):
		return string(memberID)
	case memberID != "":
		return array + " " + string(memberID)
	}
	return array + " " + strconv.Itoa(i)
}

// numeric reports whether s is only digits: a position, not an identity.
func numeric(s string) bool {
	if s == "" {
		return false
	}
	for _, c := range s {
		if c < '0' || c > '9' {
			return false
		}
	}
	return true
}

// memberID is a legacy member's id: its @odata.id, else the document's
// URI and a JSON pointer to the member (uri#/Temperatures/3), as the
// @odata.id of a legacy member reads.
func memberID(odataID str, uri, array string, i int) string {
	if odataID != "" {
		return canonicalURI(string(odataID))
	}
	return uri + "#/" + array + "/" + strconv.Itoa(i)
}

// legacyThresholds are the threshold members of Thermal and Power
// entries.
type legacyThresholds struct {
	LowerThresholdNonCritical num
	LowerThresholdCritical    num
	LowerThresholdFatal       num
	UpperThresholdNonCritical num
	UpperThresholdCritical    num
	UpperThresholdFatal       num
}

func (t *legacyThresholds) list() []v1.Threshold {
	return appendThresholds(nil,
		t.LowerThresholdNonCritical, t.LowerThresholdCritical, t.LowerThresholdFatal,
		t.UpperThresholdNonCritical, t.UpperThresholdCritical, t.UpperThresholdFatal)
}

// appendThresholds appends the usable ones of six thresholds given in
// ThresholdKind order (lower caution, critical, fatal, upper caution,
// critical, fatal).
func appendThresholds(dst []v1.Threshold, ns ...num) []v1.Threshold {
	for i, n := range ns {
		if v, ok := n.ok(); ok {
			dst = append(dst, v1.Threshold{Kind: v1.ThresholdKind(i + 1), Value: v})
		}
	}
	return dst
}

// thermalDoc is a legacy Thermal resource, v1.0 to v1.7 (v1.0's FanName
// and ReadingRPM, and iLO 4's CurrentReading and Units, included).
type thermalDoc struct {
	Temperatures members
	Fans         members
}

type temperatureMember struct {
	ODataID         str `json:"@odata.id"`
	MemberID        str `json:"MemberId"`
	Name            str
	ReadingCelsius  num
	PhysicalContext str
	Status          status
	RelatedItem     []link
	legacyThresholds
}

type fanMember struct {
	ODataID      str `json:"@odata.id"`
	MemberID     str `json:"MemberId"`
	Name         str
	FanName      str
	Reading      num
	ReadingRPM   num
	ReadingUnits str
	// CurrentReading and Units are iLO 4's (Thermal 1.1 with Oem.Hp).
	CurrentReading  num
	Units           str
	PhysicalContext str
	Status          status
	RelatedItem     []link
	legacyThresholds
}

// reading returns a legacy fan's reading and unit: Reading and
// ReadingUnits (Thermal 1.1 on), ReadingRPM (1.0, always RPM), or iLO 4's
// CurrentReading and Units.
func (m *fanMember) reading() (num, string) {
	switch {
	case m.Reading.state != numAbsent:
		return m.Reading, string(m.ReadingUnits)
	case m.ReadingRPM.state != numAbsent:
		unit := string(m.ReadingUnits)
		if unit == "" {
			unit = "RPM"
		}
		return m.ReadingRPM, unit
	case m.CurrentReading.state != numAbsent:
		unit := string(m.Units)
		if unit == "" {
			unit = string(m.ReadingUnits)
		}
		return m.CurrentReading, unit
	}
	return m.Reading, string(m.ReadingUnits)
}

// decodeThermal decodes a legacy Thermal document read from uri.
func decodeThermal(body []byte, uri string) (docResult, error) {
	var d thermalDoc
	if err := decodeLenient(body, &d); err != nil {
		return docResult{}, err
	}
	var res docResult
	each(d.Temperatures, &res, uri, "Temperatures", func(i int, m *temperatureMember) {
		name, id := memberName(m.Name, m.MemberID, "Temperatures", i), memberID(m.ODataID, uri, "Temperatures", i)
		v, ok := res.value(m.Status.State, m.ReadingCelsius, true, name, id)
		if !ok {
			return
		}
		res.add(v1.Reading{
			Name:       name,
			Id:         id,
			Kind:       v1.Kind_KIND_TEMPERATURE,
			Unit:       "Cel",
			Value:      v,
			Context:    string(m.PhysicalContext),
			SensorType: "Temperatures",
			Health:     health(m.Status.Health),
			State:      string(m.Status.State),
			Thresholds: m.list(),
		}, meta{group: groupLegacy, member: string(m.MemberID), links: relatedLinks(m.RelatedItem)})
	})
	each(d.Fans, &res, uri, "Fans", func(i int, m *fanMember) {
		name := m.Name
		if name == "" {
			name = m.FanName
		}
		n, id := memberName(name, m.MemberID, "Fans", i), memberID(m.ODataID, uri, "Fans", i)
		reading, unit := m.reading()
		v, ok := res.value(m.Status.State, reading, true, n, id)
		if !ok {
			return
		}
		res.add(v1.Reading{
			Name:       n,
			Id:         id,
			Kind:       v1.Kind_KIND_FAN,
			Unit:       unit,
			Value:      v,
			Context:    string(m.PhysicalContext),
			SensorType: "Fans",
			Health:     health(m.Status.Health),
			State:      string(m.Status.State),
			Thresholds: m.list(),
		}, meta{group: groupLegacy, member: string(m.MemberID), links: relatedLinks(m.RelatedItem)})
	})
	return res, nil
}

// powerDoc is a legacy Power resource.
type powerDoc struct {
	PowerControl  members
	PowerSupplies members
	Voltages      members
}

type powerControlMember struct {
	ODataID            str `json:"@odata.id"`
	MemberID           str `json:"MemberId"`
	Name               str
	PowerConsumedWatts num
	PhysicalContext    str
	Status             status
	RelatedItem        []link
}

type voltageMember struct {
	ODataID         str `json:"@odata.id"`
	MemberID        str `json:"MemberId"`
	Name            str
	ReadingVolts    num
	PhysicalContext str
	Status          status
	RelatedItem     []link
	legacyThresholds
}

type powerSupplyMember struct {
	ODataID              str `json:"@odata.id"`
	MemberID             str `json:"MemberId"`
	Name                 str
	PowerInputWatts      num
	PowerOutputWatts     num
	LastPowerOutputWatts num
	Status               status
	RelatedItem          []link
}

// psuOutput is a PSU's output power: PowerOutputWatts, else
// LastPowerOutputWatts (its older name), whichever holds a number; a null
// or a string in one does not hide a number in the other. With neither a
// number, the one present says why there is no reading.
func psuOutput(out, last num) num {
	switch {
	case out.state == numOK:
		return out
	case last.state == numOK, out.state == numAbsent:
		return last
	}
	return out
}

// unnamedChassisPower names an unnamed PowerControl, as
// EnvironmentMetrics' PowerWatts is named.
const unnamedChassisPower = "Chassis Power"

// decodePower decodes a legacy Power document read from uri: chassis input
// power (PowerControl), each PSU's input and output power, and voltages.
func decodePower(body []byte, uri string) (docResult, error) {
	var d powerDoc
	if err := decodeLenient(body, &d); err != nil {
		return docResult{}, err
	}
	var res docResult
	each(d.PowerControl, &res, uri, "PowerControl", func(i int, m *powerControlMember) {
		name := string(m.Name)
		if name == "" {
			name = unnamedChassisPower
		}
		id := memberID(m.ODataID, uri, "PowerControl", i)
		v, ok := res.value(m.Status.State, m.PowerConsumedWatts, true, name, id)
		if !ok {
			return
		}
		res.add(v1.Reading{
			Name:       name,
			Id:         id,
			Kind:       v1.Kind_KIND_POWER,
			Unit:       "W",
			Value:      v,
			Context:    string(m.PhysicalContext),
			SensorType: sensorTypeChassisPower,
			Health:     health(m.Status.Health),
			State:      string(m.Status.State),
		}, meta{group: groupLegacy, member: string(m.MemberID), links: relatedLinks(m.RelatedItem)})
	})

	// PSUs first in a pass of their own: their labels depend on all their
	// names (iLO names every PSU alike, Supermicro names them "nil").
	var psus []*powerSupplyMember
	var pos []int
	each(d.PowerSupplies, &res, uri, "PowerSupplies", func(i int, m *powerSupplyMember) {
		psus = append(psus, m)
		pos = append(pos, i)
	})
	names := make([]string, len(psus))
	for i, m := range psus {
		names[i] = string(m.Name)
	}
	labels := psuLabels(names, pos)
	for i, m := range psus {
		id := memberID(m.ODataID, uri, "PowerSupplies", pos[i])
		out := psuOutput(m.PowerOutputWatts, m.LastPowerOutputWatts)
		for _, q := range []struct {
			n          num
			sensorType string
			prop       string
		}{
			{m.PowerInputWatts, sensorTypePSUInput, "PowerInputWatts"},
			{out, sensorTypePSUOutput, "PowerOutputWatts"},
		} {
			qid := id + "/" + q.prop
			v, ok := res.value(m.Status.State, q.n, false, labels[i], qid)
			if !ok {
				continue
			}
			res.add(v1.Reading{
				Name:       labels[i],
				Id:         qid,
				Kind:       v1.Kind_KIND_POWER,
				Unit:       "W",
				Value:      v,
				Context:    "PowerSupply",
				SensorType: q.sensorType,
				Health:     health(m.Status.Health),
				State:      string(m.Status.State),
				Parent:     string(m.Name),
			}, meta{group: groupLegacy, links: relatedLinks(m.RelatedItem)})
		}
	}

	each(d.Voltages, &res, uri, "Voltages", func(i int, m *voltageMember) {
		name, id := memberName(m.Name, m.MemberID, "Voltages", i), memberID(m.ODataID, uri, "Voltages", i)
		v, ok := res.value(m.Status.State, m.ReadingVolts, true, name, id)
		if !ok {
			return
		}
		res.add(v1.Reading{
			Name:       name,
			Id:         id,
			Kind:       v1.Kind_KIND_VOLTAGE,
			Unit:       "V",
			Value:      v,
			Context:    string(m.PhysicalContext),
			SensorType: "Voltages",
			Health:     health(m.Status.Health),
			State:      string(m.Status.State),
			Thresholds: m.list(),
		}, meta{group: groupLegacy, member: string(m.MemberID), links: relatedLinks(m.RelatedItem)})
	})
	return res, nil
}

// The sensor_type values the gateway's normaliser keys power on.
const (
	sensorTypeChassisPower = "PowerControl"
	sensorTypePSUInput     = "PowerSupplyInput"
	sensorTypePSUOutput    = "PowerSupplyOutput"
)

// psuLabels names PSUs for the psu label: the vendor's name when it tells
// the PSU apart, else "PSU<n>" with n its 1-based position. iLO calls every
// PSU "HpeServerPowerSupply" and Supermicro calls them "nil"; two PSUs
// under one label would make one series out of two. The vendor's own name
// stays in Reading.parent.
func psuLabels(names []string, pos []int) []string {
	count := map[string]int{}
	for _, n := range names {
		count[strings.ToLower(n)]++
	}
	out := make([]string, len(names))
	for i, n := range names {
		if count[strings.ToLower(n)] == 1 && !placeholder(n) {
			out[i] = n
			continue
		}
		out[i] = "PSU" + strconv.Itoa(pos[i]+1)
	}
	return out
}

// placeholder reports whether a name is what BMCs print for "no name".
func placeholder(s string) bool {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "", "nil", "null", "n/a", "na", "none", "unknown", "-":
		return true
	}
	return false
}

// sensorCollectionDoc is a Sensors collection, expanded or not.
type sensorCollectionDoc struct {
	Members members
}

// sensorMember is a Sensor (Sensor.v1_x). A member of an unexpanded
// collection holds only its @odata.id.
type sensorMember struct {
	ODataID         str `json:"@odata.id"`
	ID              str `json:"Id"`
	Name            str
	Reading         num
	ReadingType     str
	ReadingUnits    str
	PhysicalContext str
	Status          *status
	Thresholds      sensorThresholds
	RelatedItem     []link
}

// bare reports whether raw is a bare link (collection not expanded).
func bare(raw json.RawMessage) bool {
	var keys map[string]json.RawMessage
	if json.Unmarshal(raw, &keys) != nil || len(keys) != 1 {
		return false
	}
	_, ok := keys["@odata.id"]
	return ok
}

type threshold struct {
	Reading num
}

type sensorThresholds struct {
	LowerCaution  threshold
	LowerCritical threshold
	LowerFatal    threshold
	UpperCaution  threshold
	UpperCritical threshold
	UpperFatal    threshold
}

// claim is what discovery learnt about a sensor from the resources that
// point at it: a PSU's input or output power, the chassis' power, a fan's
// speed. It overrides what the Sensor says of itself.
type claim struct {
	sensorType string
	kind       v1.Kind
	// name replaces the sensor's name (a PSU's label) when set.
	name   string
	parent string
}

// claims maps sensor URIs (@odata.id) to claims.
type claims map[string]claim

// decodeSensors decodes a Sensors collection read from uri. Expanded
// members become readings; bare links are returned in pending for the
// caller to fetch one by one.
func decodeSensors(body []byte, uri string, cl claims) (docResult, error) {
	var d sensorCollectionDoc
	if err := decodeLenient(body, &d); err != nil {
		return docResult{}, err
	}
	var res docResult
	if d.Members.bad {
		res.drop(sources.DropUnsupportedLayout, "Members", uri+"#/Members", "Members is not an array")
		res.layout = append(res.layout, uri+"#/Members is not an array")
	}
	for i, raw := range d.Members.raw {
		var m sensorMember
		if decodeLenient(raw, &m) != nil {
			res.drop(sources.DropMalformed, "", uri+"#/Members/"+strconv.Itoa(i), "member is not an object")
			continue
		}
		if bare(raw) && m.ODataID != "" {
			res.pending = append(res.pending, string(m.ODataID))
			continue
		}
		res.appendSensor(&m, uri+"#/Members/"+strconv.Itoa(i), cl)
	}
	return res, nil
}

// decodeSensor decodes one Sensor document read from uri.
func decodeSensor(body []byte, uri string, cl claims) (docResult, error) {
	var m sensorMember
	if err := decodeLenient(body, &m); err != nil {
		return docResult{}, err
	}
	var res docResult
	res.appendSensor(&m, uri, cl)
	return res, nil
}

func (res *docResult) appendSensor(m *sensorMember, fallbackID string, cl claims) {
	var st status
	if m.Status != nil {
		st = *m.Status
	}
	id := canonicalURI(string(m.ODataID))
	if id == "" {
		id = fallbackID
	}
	name := string(m.Name)
	if name == "" {
		name = string(m.ID)
	}
	if name == "" {
		name = lastSegment(id)
	}
	if name == "" {
		name = id // an id such as "#" or "/x/#" has no last segment
	}
	v, ok := res.value(st.State, m.Reading, true, name, id)
	if !ok {
		return
	}
	r := v1.Reading{
		Name:       name,
		Id:         id,
		Kind:       sensorKind(string(m.ReadingType), string(m.ReadingUnits), string(m.PhysicalContext)),
		Unit:       string(m.ReadingUnits),
		Value:      v,
		Context:    string(m.PhysicalContext),
		SensorType: string(m.ReadingType),
		Health:     health(st.Health),
		State:      string(st.State),
	}
	t := &m.Thresholds
	r.Thresholds = appendThresholds(nil,
		t.LowerCaution.Reading, t.LowerCritical.Reading, t.LowerFatal.Reading,
		t.UpperCaution.Reading, t.UpperCritical.Reading, t.UpperFatal.Reading)
	if c, ok := cl[id]; ok {
		if c.sensorType != "" {
			r.SensorType = c.sensorType
		}
		if c.kind != v1.Kind_KIND_UNSPECIFIED {
			r.Kind = c.kind
		}
		if c.name != "" {
			r.Name = c.name
		}
		if r.Context == "" && (c.sensorType == sensorTypePSUInput || c.sensorType == sensorTypePSUOutput) {
			r.Context = "PowerSupply"
		}
		r.Parent = c.parent
	}
	if r.SensorType == "" {
		r.SensorType = "Sensor"
	}
	res.add(r, meta{group: groupSensor, member: string(m.ID), links: relatedLinks(m.RelatedItem)})
}

// sensorKind maps a Sensor's ReadingType (or, when the BMC left it out,
// its unit) to a Kind. A Percent sensor is a fan when its context says so;
// discovery also claims the ones fans point at.
func sensorKind(readingType, unit, context string) v1.Kind {
	switch readingType {
	case "Temperature":
		return v1.Kind_KIND_TEMPERATURE
	case "Rotational":
		return v1.Kind_KIND_FAN
	case "Power":
		return v1.Kind_KIND_POWER
	case "Voltage":
		return v1.Kind_KIND_VOLTAGE
	case "Current":
		return v1.Kind_KIND_CURRENT
	case "EnergykWh", "EnergyJoules", "EnergyWh":
		return v1.Kind_KIND_ENERGY
	case "Humidity":
		return v1.Kind_KIND_HUMIDITY
	case "Frequency":
		return v1.Kind_KIND_FREQUENCY
	case "AirFlow", "AirFlowCMM":
		return v1.Kind_KIND_AIRFLOW
	case "Pressure", "PressurePa", "PressurekPa", "AbsolutePressurekPa", "DifferentialPressurekPa", "Barometric":
		return v1.Kind_KIND_PRESSURE
	case "Percent":
		if strings.EqualFold(context, "Fan") {
			return v1.Kind_KIND_FAN
		}
		return v1.Kind_KIND_PERCENT
	case "":
	default:
		return v1.Kind_KIND_UNSPECIFIED
	}
	switch unit {
	case "Cel":
		return v1.Kind_KIND_TEMPERATURE
	case "RPM", "{rev}/min":
		return v1.Kind_KIND_FAN
	case "W":
		return v1.Kind_KIND_POWER
	case "V":
		return v1.Kind_KIND_VOLTAGE
	case "A":
		return v1.Kind_KIND_CURRENT
	case "kW.h", "J", "W.h":
		return v1.Kind_KIND_ENERGY
	}
	return v1.Kind_KIND_UNSPECIFIED
}

// excerpt is a SensorExcerpt (PSU metrics, environment metrics, thermal
// metrics) or a SensorSpeedExcerpt (a fan's SpeedPercent, which may carry
// only SpeedRPM).
type excerpt struct {
	DataSourceURI   str `json:"DataSourceUri"`
	Reading         num
	SpeedRPM        num
	DeviceName      str
	PhysicalContext str
}

// covered reports whether the excerpt is a copy of a Sensor the poll
// reads anyway: then that Sensor is the reading.
func (e *excerpt) covered(cov coverage) bool {
	return e != nil && e.DataSourceURI != "" && cov.covers(canonicalURI(string(e.DataSourceURI)))
}

// readable reports whether the excerpt holds a reading of its own to read
// each poll: not covered, and carrying a value (a number, null, or
// anything in its place).
func (e *excerpt) readable(cov coverage) bool {
	return e != nil && !e.covered(cov) && (e.Reading.state != numAbsent || e.SpeedRPM.state != numAbsent)
}

// coverage is the set of Sensors collections a poll reads: a sensor URI
// under one of them is read anyway.
type coverage []string

func (c coverage) covers(uri string) bool {
	for _, coll := range c {
		if strings.HasPrefix(uri, coll+"/") {
			return true
		}
	}
	return false
}

// appendExcerpt adds the reading of an excerpt at uri#/ptr (not covered),
// with the given identity.
func (res *docResult) appendExcerpt(e *excerpt, state str, h str, uri, ptr string, r v1.Reading) {
	if e == nil || e.covered(res.cov) {
		return
	}
	id := uri + "#/" + ptr
	n := e.Reading
	if n.state == numAbsent && e.SpeedRPM.state != numAbsent {
		n, r.Unit = e.SpeedRPM, "RPM"
	}
	v, ok := res.value(state, n, true, r.Name, id)
	if !ok {
		return
	}
	r.Id, r.Value, r.Health, r.State = id, v, health(h), string(state)
	if r.Context == "" {
		r.Context = string(e.PhysicalContext)
	}
	var links []string
	if e.DataSourceURI != "" {
		links = []string{canonicalURI(string(e.DataSourceURI))}
	}
	res.add(r, meta{group: groupExcerpt, links: links})
}

// psuMetricsDoc is a PowerSupplyMetrics resource.
type psuMetricsDoc struct {
	InputPowerWatts  *excerpt
	OutputPowerWatts *excerpt
	InputVoltage     *excerpt
	InputCurrentAmps *excerpt
	Status           status
}

// decodePSUMetrics decodes a PowerSupplyMetrics document read from uri:
// label is the PSU's psu label and parent its own name. Excerpts of
// Sensors in cov are left to those Sensors.
func decodePSUMetrics(body []byte, uri, label, parent string, cov coverage) (docResult, error) {
	var d psuMetricsDoc
	if err := decodeLenient(body, &d); err != nil {
		return docResult{}, err
	}
	res := docResult{cov: cov}
	power := func(typ string) v1.Reading {
		return v1.Reading{Name: label, Kind: v1.Kind_KIND_POWER, Unit: "W", Context: "PowerSupply", SensorType: typ, Parent: parent}
	}
	res.appendExcerpt(d.InputPowerWatts, d.Status.State, d.Status.Health, uri, "InputPowerWatts", power(sensorTypePSUInput))
	res.appendExcerpt(d.OutputPowerWatts, d.Status.State, d.Status.Health, uri, "OutputPowerWatts", power(sensorTypePSUOutput))
	res.appendExcerpt(d.InputVoltage, d.Status.State, d.Status.Health, uri, "InputVoltage", v1.Reading{
		Name: label + " Input Voltage", Kind: v1.Kind_KIND_VOLTAGE, Unit: "V", Context: "PowerSupply", SensorType: "Voltage", Parent: parent})
	res.appendExcerpt(d.InputCurrentAmps, d.Status.State, d.Status.Health, uri, "InputCurrentAmps", v1.Reading{
		Name: label + " Input Current", Kind: v1.Kind_KIND_CURRENT, Unit: "A", Context: "PowerSupply", SensorType: "Current", Parent: parent})
	res.cov = nil
	return res, nil
}

// envMetricsDoc is a chassis' EnvironmentMetrics resource.
type envMetricsDoc struct {
	Name         str
	PowerWatts   *excerpt
	EnergyJoules *excerpt
	EnergykWh    *excerpt
}

// unnamedChassisEnergy names the energy EnvironmentMetrics counts.
const unnamedChassisEnergy = "Chassis Energy"

// decodeEnvMetrics decodes a chassis' EnvironmentMetrics read from uri:
// its input power and the energy it counted, each unless it is a copy of
// a Sensor in cov.
//
// EnergyJoules and EnergykWh are one quantity in two units. EnergykWh
// without a DataSourceUri of its own names the Sensor EnergyJoules names,
// so that the merge makes one reading of the Sensor and it; when
// EnergyJoules is read here too, EnergykWh is its copy (a merged drop).
func decodeEnvMetrics(body []byte, uri string, cov coverage) (docResult, error) {
	var d envMetricsDoc
	if err := decodeLenient(body, &d); err != nil {
		return docResult{}, err
	}
	res := docResult{cov: cov}
	res.appendExcerpt(d.PowerWatts, "", "", uri, "PowerWatts", v1.Reading{
		Name: unnamedChassisPower, Kind: v1.Kind_KIND_POWER, Unit: "W", Context: "Chassis", SensorType: sensorTypeChassisPower})
	n := len(res.readings)
	res.appendExcerpt(d.EnergyJoules, "", "", uri, "EnergyJoules", v1.Reading{
		Name: unnamedChassisEnergy, Kind: v1.Kind_KIND_ENERGY, Unit: "J", SensorType: "EnergyJoules"})
	joules := len(res.readings) > n
	switch kwh := d.EnergykWh; {
	case kwh == nil || kwh.covered(cov):
	case joules && kwh.DataSourceURI == "":
		res.drop(sources.DropMerged, unnamedChassisEnergy, uri+"#/EnergykWh", res.readings[n].Id)
	default:
		m := len(res.readings)
		res.appendExcerpt(kwh, "", "", uri, "EnergykWh", v1.Reading{
			Name: unnamedChassisEnergy, Kind: v1.Kind_KIND_ENERGY, Unit: "kW.h", SensorType: "EnergykWh"})
		if len(res.readings) > m && len(res.meta[m].links) == 0 && d.EnergyJoules != nil && d.EnergyJoules.DataSourceURI != "" {
			res.meta[m].links = []string{canonicalURI(string(d.EnergyJoules.DataSourceURI))}
		}
	}
	res.cov = nil
	return res, nil
}

// fanDoc is a modern Fan (ThermalSubsystem/Fans/{id}).
type fanDoc struct {
	ODataID         str `json:"@odata.id"`
	ID              str `json:"Id"`
	Name            str
	SpeedPercent    *excerpt
	PhysicalContext str
	Status          status
}

// decodeFans decodes a ThermalSubsystem's Fans collection read from uri:
// expanded members become readings, bare links are returned in pending.
func decodeFans(body []byte, uri string, cov coverage) (docResult, error) {
	var d collectionDoc
	if err := decodeLenient(body, &d); err != nil {
		return docResult{}, err
	}
	res := docResult{cov: cov}
	if d.Members.bad {
		res.drop(sources.DropUnsupportedLayout, "Members", uri+"#/Members", "Members is not an array")
		res.layout = append(res.layout, uri+"#/Members is not an array")
	}
	for i, raw := range d.Members.raw {
		var f fanDoc
		if decodeLenient(raw, &f) != nil {
			res.drop(sources.DropMalformed, "", uri+"#/Members/"+strconv.Itoa(i), "member is not an object")
			continue
		}
		if bare(raw) && f.ODataID != "" {
			res.pending = append(res.pending, canonicalURI(string(f.ODataID)))
			continue
		}
		muri := canonicalURI(string(f.ODataID))
		if muri == "" {
			muri = uri + "#/Members/" + strconv.Itoa(i)
		}
		res.appendFan(&f, muri)
	}
	res.cov = nil
	return res, nil
}

// decodeFan decodes one Fan document read from uri.
func decodeFan(body []byte, uri string, cov coverage) (docResult, error) {
	var f fanDoc
	if err := decodeLenient(body, &f); err != nil {
		return docResult{}, err
	}
	res := docResult{cov: cov}
	res.appendFan(&f, uri)
	res.cov = nil
	return res, nil
}

func (res *docResult) appendFan(f *fanDoc, uri string) {
	name := string(f.Name)
	if name == "" {
		name = lastSegment(uri)
	}
	res.appendExcerpt(f.SpeedPercent, f.Status.State, f.Status.Health, uri, "SpeedPercent", v1.Reading{
		Name: name, Kind: v1.Kind_KIND_FAN, Unit: "Percent", Context: string(f.PhysicalContext), SensorType: "Fans"})
	if n := len(res.meta); n > 0 && res.readings[n-1].Id == uri+"#/SpeedPercent" {
		// The fan's own Id is the member id its Sensor may share
		// (Fan.Embedded.1A for both).
		res.meta[n-1].member = string(f.ID)
	}
}

// thermalMetricsDoc is a ThermalSubsystem's ThermalMetrics resource. Its
// TemperatureSummaryCelsius repeats sensors listed elsewhere and is not
// read.
type thermalMetricsDoc struct {
	TemperatureReadingsCelsius members
}

// decodeThermalMetrics decodes a ThermalMetrics document read from uri:
// each of its TemperatureReadingsCelsius that is not a copy of a Sensor in
// cov.
func decodeThermalMetrics(body []byte, uri string, cov coverage) (docResult, error) {
	var d thermalMetricsDoc
	if err := decodeLenient(body, &d); err != nil {
		return docResult{}, err
	}
	res := docResult{cov: cov}
	each(d.TemperatureReadingsCelsius, &res, uri, "TemperatureReadingsCelsius", func(i int, e *excerpt) {
		ptr := "TemperatureReadingsCelsius/" + strconv.Itoa(i)
		name := string(e.DeviceName)
		if name == "" && e.DataSourceURI != "" {
			name = lastSegment(string(e.DataSourceURI))
		}
		if name == "" {
			name = "Temperature " + strconv.Itoa(i)
		}
		res.appendExcerpt(e, "", "", uri, ptr, v1.Reading{
			Name: name, Kind: v1.Kind_KIND_TEMPERATURE, Unit: "Cel", SensorType: "Temperatures"})
	})
	res.cov = nil
	return res, nil
}

// lastSegment is the last path segment of a URI.
func lastSegment(uri string) string {
	uri = strings.TrimRight(uri, "/")
	if i := strings.LastIndexAny(uri, "/#"); i >= 0 {
		return uri[i+1:]
	}
	return uri
}

// canonicalURI makes two spellings of one resource's URI compare equal:
// no scheme and host, no trailing slash, no query.
func canonicalURI(u string) string {
	if i := strings.Index(u, "://"); i >= 0 {
		rest := u[i+3:]
		if j := strings.IndexByte(rest, '/'); j >= 0 {
			u = rest[j:]
		} else {
			u = "/"
		}
	}
	if i := strings.IndexByte(u, '?'); i >= 0 {
		u = u[:i]
	}
	if len(u) > 1 {
		u = strings.TrimRight(u, "/")
	}
	return u
}
