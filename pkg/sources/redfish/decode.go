package redfish

import (
	"bytes"
	"encoding/json"
	"errors"
	"math"
	"strconv"
	"strings"

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
}

// UnmarshalJSON implements json.Unmarshaler.
func (n *num) UnmarshalJSON(b []byte) error {
	b = bytes.TrimSpace(b)
	*n = num{state: numNaN}
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

// skips counts readings left out, by reason. Stats exposes the totals.
type skips struct {
	unavailable, noReading, notANumber, malformed uint64
}

func (k *skips) add(o skips) {
	k.unavailable += o.unavailable
	k.noReading += o.noReading
	k.notANumber += o.notANumber
	k.malformed += o.malformed
}

func (k skips) total() uint64 { return k.unavailable + k.noReading + k.notANumber + k.malformed }

// unavailable reports whether a Status.State says the sensor has nothing to
// read: an empty socket or bay (iLO lists those with reading 0), a disabled
// sensor, a device offline.
func unavailable(state str) bool {
	switch strings.ToLower(string(state)) {
	case "absent", "disabled", "unavailableoffline":
		return true
	}
	return false
}

// value applies the reading rules to one quantity: nothing when the
// sensor's state is unavailable, nothing when the value is missing (if
// required), null or not a number; each counted under its reason. A
// quantity that is optional in its schema (a PSU's output watts) and
// absent is no reading and no skip.
func (k *skips) value(state str, n num, required bool) (float64, bool) {
	if n.state == numAbsent && !required {
		return 0, false
	}
	if unavailable(state) {
		k.unavailable++
		return 0, false
	}
	switch n.state {
	case numOK:
		return n.v, true
	case numAbsent, numNull:
		k.noReading++
	default:
		k.notANumber++
	}
	return 0, false
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

// each decodes every member into a fresh T and calls fn with it and its
// index; members that are not objects are counted as malformed (and so is
// an array that is not one).
func each[T any](m members, k *skips, fn func(i int, v *T)) {
	if m.bad {
		k.malformed++
	}
	for i, raw := range m.raw {
		var v T
		if decodeLenient(raw, &v) != nil {
			k.malformed++
			continue
		}
		fn(i, &v)
	}
}

// docResult is what one document yields: readings, what was skipped, and
// for a collection whose members came as bare links, the members still to
// fetch.
type docResult struct {
	readings []v1.Reading
	skipped  skips
	// pending are member URIs of a collection that was not expanded.
	pending []string
}

// memberName is a legacy member's display name: Name, else MemberId, else
// its position.
func memberName(name, memberID str, i int) string {
	switch {
	case name != "":
		return string(name)
	case memberID != "":
		return string(memberID)
	}
	return strconv.Itoa(i)
}

// memberID is a legacy member's id: its @odata.id, else one made from the
// document's URI and the array it sits in, as the @odata.id would read.
func memberID(odataID, memberID str, uri, array string, i int) string {
	if odataID != "" {
		return string(odataID)
	}
	id := string(memberID)
	if id == "" {
		id = strconv.Itoa(i)
	}
	return uri + "#/" + array + "/" + id
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
// and ReadingRPM included).
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
	legacyThresholds
}

type fanMember struct {
	ODataID         str `json:"@odata.id"`
	MemberID        str `json:"MemberId"`
	Name            str
	FanName         str
	Reading         num
	ReadingRPM      num
	ReadingUnits    str
	PhysicalContext str
	Status          status
	legacyThresholds
}

// decodeThermal decodes a legacy Thermal document read from uri.
func decodeThermal(body []byte, uri string) (docResult, error) {
	var d thermalDoc
	if err := decodeLenient(body, &d); err != nil {
		return docResult{}, err
	}
	var res docResult
	each(d.Temperatures, &res.skipped, func(i int, m *temperatureMember) {
		v, ok := res.skipped.value(m.Status.State, m.ReadingCelsius, true)
		if !ok {
			return
		}
		res.readings = append(res.readings, v1.Reading{
			Name:       memberName(m.Name, m.MemberID, i),
			Id:         memberID(m.ODataID, m.MemberID, uri, "Temperatures", i),
			Kind:       v1.Kind_KIND_TEMPERATURE,
			Unit:       "Cel",
			Value:      v,
			Context:    string(m.PhysicalContext),
			SensorType: "Temperatures",
			Health:     health(m.Status.Health),
			State:      string(m.Status.State),
			Thresholds: m.list(),
		})
	})
	each(d.Fans, &res.skipped, func(i int, m *fanMember) {
		reading, unit := m.Reading, string(m.ReadingUnits)
		if reading.state == numAbsent && m.ReadingRPM.state != numAbsent {
			// Thermal v1.0: ReadingRPM, always in RPM.
			reading = m.ReadingRPM
			if unit == "" {
				unit = "RPM"
			}
		}
		v, ok := res.skipped.value(m.Status.State, reading, true)
		if !ok {
			return
		}
		name := m.Name
		if name == "" {
			name = m.FanName
		}
		res.readings = append(res.readings, v1.Reading{
			Name:       memberName(name, m.MemberID, i),
			Id:         memberID(m.ODataID, m.MemberID, uri, "Fans", i),
			Kind:       v1.Kind_KIND_FAN,
			Unit:       unit,
			Value:      v,
			Context:    string(m.PhysicalContext),
			SensorType: "Fans",
			Health:     health(m.Status.Health),
			State:      string(m.Status.State),
			Thresholds: m.list(),
		})
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
}

type voltageMember struct {
	ODataID         str `json:"@odata.id"`
	MemberID        str `json:"MemberId"`
	Name            str
	ReadingVolts    num
	PhysicalContext str
	Status          status
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
}

// decodePower decodes a legacy Power document read from uri: chassis input
// power (PowerControl), each PSU's input and output power, and voltages.
func decodePower(body []byte, uri string) (docResult, error) {
	var d powerDoc
	if err := decodeLenient(body, &d); err != nil {
		return docResult{}, err
	}
	var res docResult
	each(d.PowerControl, &res.skipped, func(i int, m *powerControlMember) {
		v, ok := res.skipped.value(m.Status.State, m.PowerConsumedWatts, true)
		if !ok {
			return
		}
		res.readings = append(res.readings, v1.Reading{
			Name:       memberName(m.Name, m.MemberID, i),
			Id:         memberID(m.ODataID, m.MemberID, uri, "PowerControl", i),
			Kind:       v1.Kind_KIND_POWER,
			Unit:       "W",
			Value:      v,
			Context:    string(m.PhysicalContext),
			SensorType: sensorTypeChassisPower,
			Health:     health(m.Status.Health),
			State:      string(m.Status.State),
		})
	})

	// PSUs first in a pass of their own: their labels depend on all their
	// names (iLO names every PSU alike, Supermicro names them "nil").
	var psus []*powerSupplyMember
	var pos []int
	each(d.PowerSupplies, &res.skipped, func(i int, m *powerSupplyMember) {
		psus = append(psus, m)
		pos = append(pos, i)
	})
	names := make([]string, len(psus))
	for i, m := range psus {
		names[i] = string(m.Name)
	}
	labels := psuLabels(names, pos)
	for i, m := range psus {
		id := memberID(m.ODataID, m.MemberID, uri, "PowerSupplies", pos[i])
		out := m.PowerOutputWatts
		if out.state == numAbsent {
			out = m.LastPowerOutputWatts
		}
		for _, q := range []struct {
			n          num
			sensorType string
			prop       string
		}{
			{m.PowerInputWatts, sensorTypePSUInput, "PowerInputWatts"},
			{out, sensorTypePSUOutput, "PowerOutputWatts"},
		} {
			v, ok := res.skipped.value(m.Status.State, q.n, false)
			if !ok {
				continue
			}
			res.readings = append(res.readings, v1.Reading{
				Name:       labels[i],
				Id:         id + "/" + q.prop,
				Kind:       v1.Kind_KIND_POWER,
				Unit:       "W",
				Value:      v,
				Context:    "PowerSupply",
				SensorType: q.sensorType,
				Health:     health(m.Status.Health),
				State:      string(m.Status.State),
				Parent:     string(m.Name),
			})
		}
	}

	each(d.Voltages, &res.skipped, func(i int, m *voltageMember) {
		v, ok := res.skipped.value(m.Status.State, m.ReadingVolts, true)
		if !ok {
			return
		}
		res.readings = append(res.readings, v1.Reading{
			Name:       memberName(m.Name, m.MemberID, i),
			Id:         memberID(m.ODataID, m.MemberID, uri, "Voltages", i),
			Kind:       v1.Kind_KIND_VOLTAGE,
			Unit:       "V",
			Value:      v,
			Context:    string(m.PhysicalContext),
			SensorType: "Voltages",
			Health:     health(m.Status.Health),
			State:      string(m.Status.State),
			Thresholds: m.list(),
		})
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
}

// bare reports whether the member is a bare link (collection not expanded).
func (m *sensorMember) bare(raw json.RawMessage) bool {
	if m.ODataID == "" || m.Status != nil || m.Name != "" || m.ReadingType != "" || m.Reading.state != numAbsent {
		return false
	}
	var keys map[string]json.RawMessage
	return json.Unmarshal(raw, &keys) == nil && len(keys) == 1
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
		res.skipped.malformed++
	}
	for i, raw := range d.Members.raw {
		var m sensorMember
		if decodeLenient(raw, &m) != nil {
			res.skipped.malformed++
			continue
		}
		if m.bare(raw) {
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
	v, ok := res.skipped.value(st.State, m.Reading, true)
	if !ok {
		return
	}
	id := string(m.ODataID)
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
	if c, ok := cl[canonicalURI(id)]; ok {
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
	res.readings = append(res.readings, r)
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

// excerpt is a SensorExcerpt (PSU metrics, environment metrics, fans).
type excerpt struct {
	DataSourceURI str `json:"DataSourceUri"`
	Reading       num
}

// psuMetricsDoc is a PowerSupplyMetrics resource.
type psuMetricsDoc struct {
	InputPowerWatts  *excerpt
	OutputPowerWatts *excerpt
	Status           status
}

// decodePSUMetrics decodes a PowerSupplyMetrics document read from uri, for
// a PSU whose readings are not in its chassis' Sensors collection: label is
// its psu label and parent its own name.
func decodePSUMetrics(body []byte, uri, label, parent string) (docResult, error) {
	var d psuMetricsDoc
	if err := decodeLenient(body, &d); err != nil {
		return docResult{}, err
	}
	var res docResult
	for _, q := range []struct {
		e          *excerpt
		sensorType string
		prop       string
	}{
		{d.InputPowerWatts, sensorTypePSUInput, "InputPowerWatts"},
		{d.OutputPowerWatts, sensorTypePSUOutput, "OutputPowerWatts"},
	} {
		if q.e == nil {
			continue
		}
		v, ok := res.skipped.value(d.Status.State, q.e.Reading, true)
		if !ok {
			continue
		}
		res.readings = append(res.readings, v1.Reading{
			Name:       label,
			Id:         uri + "#/" + q.prop,
			Kind:       v1.Kind_KIND_POWER,
			Unit:       "W",
			Value:      v,
			Context:    "PowerSupply",
			SensorType: q.sensorType,
			Health:     health(d.Status.Health),
			State:      string(d.Status.State),
			Parent:     parent,
		})
	}
	return res, nil
}

// envMetricsDoc is a chassis' EnvironmentMetrics resource.
type envMetricsDoc struct {
	Name       str
	PowerWatts *excerpt
}

// decodeEnvMetrics decodes a chassis' EnvironmentMetrics read from uri, for
// a chassis whose input power is not a sensor of its own.
func decodeEnvMetrics(body []byte, uri string) (docResult, error) {
	var d envMetricsDoc
	if err := decodeLenient(body, &d); err != nil {
		return docResult{}, err
	}
	var res docResult
	if d.PowerWatts == nil {
		return res, nil
	}
	v, ok := res.skipped.value("", d.PowerWatts.Reading, true)
	if !ok {
		return res, nil
	}
	res.readings = append(res.readings, v1.Reading{
		Name:       "Chassis Power",
		Id:         uri + "#/PowerWatts",
		Kind:       v1.Kind_KIND_POWER,
		Unit:       "W",
		Value:      v,
		Context:    "Chassis",
		SensorType: sensorTypeChassisPower,
	})
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
