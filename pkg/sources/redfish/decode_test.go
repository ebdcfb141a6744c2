package redfish

import (
	"encoding/json"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/bmcstream/bmcstream/pkg/sources"
	v1 "github.com/bmcstream/bmcstream/proto/bmcstream/v1"
)

func TestNum(t *testing.T) {
	tests := []struct {
		in    string
		state numState
		v     float64
	}{
		{`30`, numOK, 30},
		{`-7.5`, numOK, -7.5},
		{`1e3`, numOK, 1000},
		{`"30"`, numOK, 30},
		{`" 30.5 "`, numOK, 30.5},
		{`null`, numNull, 0},
		{`"N/A"`, numNaN, 0},
		{`""`, numNaN, 0},
		{`"NaN"`, numNaN, 0},
		{`"Inf"`, numNaN, 0},
		{`1e999`, numNaN, 0},
		{`true`, numNaN, 0},
		{`{"Reading": 3}`, numNaN, 0},
		{`[1]`, numNaN, 0},
		{`"30 C"`, numNaN, 0},
	}
	for _, tc := range tests {
		t.Run(tc.in, func(t *testing.T) {
			var n num
			require.NoError(t, json.Unmarshal([]byte(tc.in), &n))
			require.Equal(t, tc.state, n.state)
			require.Equal(t, tc.v, n.v)
		})
	}
	var doc struct{ A, B num }
	require.NoError(t, json.Unmarshal([]byte(`{"B": 1}`), &doc))
	require.Equal(t, numAbsent, doc.A.state, "a missing member stays absent")
}

func TestStr(t *testing.T) {
	var doc struct{ A, B, C, D, E str }
	require.NoError(t, json.Unmarshal([]byte(`{"A": " x ", "B": 12345, "C": true, "D": {"x": 1}, "E": null}`), &doc))
	require.Equal(t, str("x"), doc.A)
	require.Equal(t, str("12345"), doc.B, "a serial number printed as a number")
	require.Equal(t, str("true"), doc.C)
	require.Empty(t, doc.D)
	require.Empty(t, doc.E)
}

// reading is a compact expectation.
type reading struct {
	name, id, unit, sensorType, parent string
	kind                               v1.Kind
	value                              float64
	health                             v1.Health
	thresholds                         []v1.Threshold
}

func compact(rs []v1.Reading) []reading {
	out := make([]reading, len(rs))
	for i, r := range rs {
		out[i] = reading{
			name: r.Name, id: r.Id, unit: r.Unit, sensorType: r.SensorType, parent: r.Parent,
			kind: r.Kind, value: r.Value, health: r.Health, thresholds: r.Thresholds,
		}
	}
	return out
}

const thermalURI = "/redfish/v1/Chassis/1/Thermal"

func TestDecodeThermal(t *testing.T) {
	tests := []struct {
		name    string
		doc     string
		want    []reading
		skipped map[string]int
		err     bool
	}{
		{
			name: "a reading and thresholds, strings where numbers belong",
			doc: `{"Temperatures": [{"@odata.id": "/t#/Temperatures/0", "Name": "Inlet", "ReadingCelsius": "21.5",
				"UpperThresholdCritical": "42", "UpperThresholdFatal": "N/A", "LowerThresholdNonCritical": 5,
				"Status": {"State": "Enabled", "Health": "Warning"}}]}`,
			want: []reading{{name: "Inlet", id: "/t#/Temperatures/0", unit: "Cel", sensorType: "Temperatures",
				kind: v1.Kind_KIND_TEMPERATURE, value: 21.5, health: v1.Health_HEALTH_WARNING,
				thresholds: []v1.Threshold{
					{Kind: v1.ThresholdKind_THRESHOLD_LOWER_CAUTION, Value: 5},
					{Kind: v1.ThresholdKind_THRESHOLD_UPPER_CRITICAL, Value: 42},
				}}},
		},
		{
			name: "one bad member costs one reading",
			doc: `{"Temperatures": [
				{"Name": "A", "ReadingCelsius": "N/A"},
				{"Name": "B", "ReadingCelsius": null},
				{"Name": "C"},
				{"Name": "D", "ReadingCelsius": 0, "Status": {"State": "Absent"}},
				{"Name": "E", "ReadingCelsius": 3, "Status": {"State": "UnavailableOffline"}},
				{"Name": "F", "ReadingCelsius": 3, "Status": {"State": "Disabled"}},
				{"Name": "G", "ReadingCelsius": true},
				42, "x", null, [],
				{"Name": "H", "ReadingCelsius": 30}]}`,
			want: []reading{{name: "H", id: thermalURI + "#/Temperatures/11", unit: "Cel", sensorType: "Temperatures",
				kind: v1.Kind_KIND_TEMPERATURE, value: 30}},
			skipped: map[string]int{"not_a_number": 2, "null": 2, "absent": 1, "disabled": 2, "malformed": 4},
		},
		{
			name: "fractions where integers belong are readings",
			doc:  `{"Fans": [{"MemberId": "3", "Reading": 5820.5, "ReadingUnits": "RPM", "LowerThresholdCritical": 480.5}]}`,
			want: []reading{{name: "Fans 3", id: thermalURI + "#/Fans/0", unit: "RPM", sensorType: "Fans", kind: v1.Kind_KIND_FAN,
				value: 5820.5, thresholds: []v1.Threshold{{Kind: v1.ThresholdKind_THRESHOLD_LOWER_CRITICAL, Value: 480.5}}}},
		},
		{
			name: "Thermal v1.0 fans: FanName and ReadingRPM",
			doc:  `{"Fans": [{"FanName": "Fan 1", "ReadingRPM": 2100}, {"Name": "Fan 2", "Reading": 40, "ReadingUnits": "Percent"}, {"Name": "Fan 3", "Reading": 4000}]}`,
			want: []reading{
				{name: "Fan 1", id: thermalURI + "#/Fans/0", unit: "RPM", sensorType: "Fans", kind: v1.Kind_KIND_FAN, value: 2100},
				{name: "Fan 2", id: thermalURI + "#/Fans/1", unit: "Percent", sensorType: "Fans", kind: v1.Kind_KIND_FAN, value: 40},
				{name: "Fan 3", id: thermalURI + "#/Fans/2", sensorType: "Fans", kind: v1.Kind_KIND_FAN, value: 4000},
			},
		},
		{
			name: "wrong shapes around the readings",
			doc: `{"Temperatures": "none", "Fans": [{"Name": 7, "Reading": 1, "Status": "OK",
				"UpperThresholdCritical": {"Reading": 3}}]}`,
			want:    []reading{{name: "7", id: thermalURI + "#/Fans/0", sensorType: "Fans", kind: v1.Kind_KIND_FAN, value: 1}},
			skipped: map[string]int{"unsupported_layout": 1},
		},
		{name: "empty", doc: `{}`},
		{name: "truncated", doc: `{"Temperatures": [{"Name": "A", "Readi`, err: true},
		{name: "not an object", doc: `[{"Name": "A"}]`, err: true},
		{name: "nothing", doc: ``, err: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			res, err := decodeThermal([]byte(tc.doc), thermalURI)
			if tc.err {
				require.Error(t, err)
				return
			}
			require.NoError(t, err)
			require.Equal(t, tc.want, nilIfEmpty(compact(res.readings)))
			require.Equal(t, tc.skipped, dropCounts(res.drops))
		})
	}
}

func nilIfEmpty(rs []reading) []reading {
	if len(rs) == 0 {
		return nil
	}
	return rs
}

func TestDecodePower(t *testing.T) {
	const uri = "/redfish/v1/Chassis/1/Power"
	tests := []struct {
		name    string
		doc     string
		want    []reading
		skipped map[string]int
	}{
		{
			name: "chassis power, PSUs named alike, voltages",
			doc: `{"PowerControl": [{"Name": "Server Power", "PowerConsumedWatts": 342.5}],
				"PowerSupplies": [
					{"MemberId": "0", "Name": "HpeServerPowerSupply", "PowerInputWatts": 171, "LastPowerOutputWatts": 161},
					{"MemberId": "1", "Name": "HpeServerPowerSupply", "PowerInputWatts": "172", "PowerOutputWatts": "N/A", "Status": {"Health": "Critical"}}],
				"Voltages": [{"Name": "12V", "ReadingVolts": 12.1, "LowerThresholdCritical": 10.2}]}`,
			want: []reading{
				{name: "Server Power", id: uri + "#/PowerControl/0", unit: "W", sensorType: "PowerControl", kind: v1.Kind_KIND_POWER, value: 342.5},
				{name: "PSU1", id: uri + "#/PowerSupplies/0/PowerInputWatts", unit: "W", sensorType: "PowerSupplyInput", parent: "HpeServerPowerSupply", kind: v1.Kind_KIND_POWER, value: 171},
				{name: "PSU1", id: uri + "#/PowerSupplies/0/PowerOutputWatts", unit: "W", sensorType: "PowerSupplyOutput", parent: "HpeServerPowerSupply", kind: v1.Kind_KIND_POWER, value: 161},
				{name: "PSU2", id: uri + "#/PowerSupplies/1/PowerInputWatts", unit: "W", sensorType: "PowerSupplyInput", parent: "HpeServerPowerSupply", kind: v1.Kind_KIND_POWER, value: 172, health: v1.Health_HEALTH_CRITICAL},
				{name: "12V", id: uri + "#/Voltages/0", unit: "V", sensorType: "Voltages", kind: v1.Kind_KIND_VOLTAGE, value: 12.1,
					thresholds: []v1.Threshold{{Kind: v1.ThresholdKind_THRESHOLD_LOWER_CRITICAL, Value: 10.2}}},
			},
			skipped: map[string]int{"not_a_number": 1},
		},
		{
			name: "PSU names: unique kept, placeholders numbered, absent bays skipped",
			doc: `{"PowerSupplies": [
				{"Name": "PS1 Status", "PowerInputWatts": 100},
				{"Name": "nil", "PowerInputWatts": 101},
				{"Name": "PS3 Status", "PowerInputWatts": 0, "Status": {"State": "Absent"}},
				{"Name": "PS4 Status"}]}`,
			want: []reading{
				{name: "PS1 Status", id: uri + "#/PowerSupplies/0/PowerInputWatts", unit: "W", sensorType: "PowerSupplyInput", parent: "PS1 Status", kind: v1.Kind_KIND_POWER, value: 100},
				{name: "PSU2", id: uri + "#/PowerSupplies/1/PowerInputWatts", unit: "W", sensorType: "PowerSupplyInput", parent: "nil", kind: v1.Kind_KIND_POWER, value: 101},
			},
			skipped: map[string]int{"absent": 1},
		},
		{
			// A PSU's output is PowerOutputWatts, else LastPowerOutputWatts:
			// a null or a string in one does not hide a number in the other.
			name: "PSU output under either name",
			doc: `{"PowerSupplies": [
				{"Name": "PS1", "PowerOutputWatts": null, "LastPowerOutputWatts": 358},
				{"Name": "PS2", "PowerOutputWatts": 300, "LastPowerOutputWatts": null},
				{"Name": "PS3", "PowerOutputWatts": "N/A", "LastPowerOutputWatts": 290},
				{"Name": "PS4", "PowerOutputWatts": null, "LastPowerOutputWatts": "N/A"},
				{"Name": "PS5", "LastPowerOutputWatts": null}]}`,
			want: []reading{
				{name: "PS1", id: uri + "#/PowerSupplies/0/PowerOutputWatts", unit: "W", sensorType: "PowerSupplyOutput", parent: "PS1", kind: v1.Kind_KIND_POWER, value: 358},
				{name: "PS2", id: uri + "#/PowerSupplies/1/PowerOutputWatts", unit: "W", sensorType: "PowerSupplyOutput", parent: "PS2", kind: v1.Kind_KIND_POWER, value: 300},
				{name: "PS3", id: uri + "#/PowerSupplies/2/PowerOutputWatts", unit: "W", sensorType: "PowerSupplyOutput", parent: "PS3", kind: v1.Kind_KIND_POWER, value: 290},
			},
			skipped: map[string]int{"null": 2},
		},
		{
			name:    "chassis power missing",
			doc:     `{"PowerControl": [{"Name": "Server Power"}]}`,
			skipped: map[string]int{"null": 1},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			res, err := decodePower([]byte(tc.doc), uri)
			require.NoError(t, err)
			require.Equal(t, tc.want, nilIfEmpty(compact(res.readings)))
			require.Equal(t, tc.skipped, dropCounts(res.drops))
		})
	}
}

func TestDecodeSensors(t *testing.T) {
	const uri = "/redfish/v1/Chassis/c/Sensors"
	cl := claims{
		uri + "/ps0_in":   {sensorType: sensorTypePSUInput, kind: v1.Kind_KIND_POWER, name: "PSU1", parent: "powersupply0"},
		uri + "/fan0_pwm": {kind: v1.Kind_KIND_FAN, parent: "fan0"},
	}
	doc := `{"Members": [
		{"@odata.id": "` + uri + `/inlet", "Name": "inlet", "Reading": 21.5, "ReadingType": "Temperature", "ReadingUnits": "Cel",
		 "PhysicalContext": "Intake", "Status": {"State": "Enabled", "Health": "OK"},
		 "Thresholds": {"UpperCaution": {"Reading": 40}, "UpperCritical": {"Reading": "45"}, "LowerFatal": {"Reading": null}}},
		{"@odata.id": "` + uri + `/ps0_in/", "Name": "ps0_input_power", "Reading": 171, "ReadingType": "Power", "ReadingUnits": "W"},
		{"@odata.id": "` + uri + `/fan0_pwm", "Id": "fan0_pwm", "Reading": 49, "ReadingType": "Percent", "ReadingUnits": "%"},
		{"@odata.id": "` + uri + `/hum", "Name": "humidity", "Reading": 40, "ReadingType": "Percent"},
		{"@odata.id": "` + uri + `/pwm2", "Name": "pwm2", "Reading": 30, "ReadingType": "Percent", "PhysicalContext": "Fan"},
		{"@odata.id": "` + uri + `/old", "Name": "old", "Reading": 1200, "ReadingUnits": "RPM"},
		{"@odata.id": "` + uri + `/na", "Name": "na", "Reading": "N/A", "ReadingType": "Power"},
		{"@odata.id": "` + uri + `/off", "Name": "off", "Status": {"State": "Absent"}},
		{"@odata.id": "` + uri + `/noread", "Name": "no reading at all", "Status": {"State": "Enabled"}},
		{"@odata.id": "` + uri + `/bare"},
		7
	]}`
	res, err := decodeSensors([]byte(doc), uri, cl)
	require.NoError(t, err)
	require.Equal(t, []reading{
		{name: "inlet", id: uri + "/inlet", unit: "Cel", sensorType: "Temperature", kind: v1.Kind_KIND_TEMPERATURE, value: 21.5,
			health: v1.Health_HEALTH_OK, thresholds: []v1.Threshold{
				{Kind: v1.ThresholdKind_THRESHOLD_UPPER_CAUTION, Value: 40},
				{Kind: v1.ThresholdKind_THRESHOLD_UPPER_CRITICAL, Value: 45},
			}},
		{name: "PSU1", id: uri + "/ps0_in", unit: "W", sensorType: "PowerSupplyInput", parent: "powersupply0", kind: v1.Kind_KIND_POWER, value: 171},
		{name: "fan0_pwm", id: uri + "/fan0_pwm", unit: "%", sensorType: "Percent", parent: "fan0", kind: v1.Kind_KIND_FAN, value: 49},
		{name: "humidity", id: uri + "/hum", sensorType: "Percent", kind: v1.Kind_KIND_PERCENT, value: 40},
		{name: "pwm2", id: uri + "/pwm2", sensorType: "Percent", kind: v1.Kind_KIND_FAN, value: 30},
		{name: "old", id: uri + "/old", unit: "RPM", sensorType: "Sensor", kind: v1.Kind_KIND_FAN, value: 1200},
	}, compact(res.readings))
	require.Equal(t, []string{uri + "/bare"}, res.pending)
	require.Equal(t, map[string]int{"not_a_number": 1, "absent": 1, "malformed": 1, "null": 1}, dropCounts(res.drops),
		"a Sensor without a Reading is a null drop")

	one, err := decodeSensor([]byte(`{"Name": "x", "Reading": 3, "ReadingType": "Current"}`), uri+"/x", nil)
	require.NoError(t, err)
	require.Equal(t, []reading{{name: "x", id: uri + "/x", sensorType: "Current", kind: v1.Kind_KIND_CURRENT, value: 3}}, compact(one.readings))
}

func TestDecodeMetrics(t *testing.T) {
	const uri = "/redfish/v1/Chassis/c/PowerSubsystem/PowerSupplies/Bay1/Metrics"
	res, err := decodePSUMetrics([]byte(`{"InputPowerWatts": {"Reading": 171}, "OutputPowerWatts": {"Reading": "N/A"},
		"Status": {"State": "Enabled", "Health": "OK"}}`), uri, "PSU1", "nil", nil)
	require.NoError(t, err)
	require.Equal(t, []reading{{name: "PSU1", id: uri + "#/InputPowerWatts", unit: "W", sensorType: "PowerSupplyInput", parent: "nil",
		kind: v1.Kind_KIND_POWER, value: 171, health: v1.Health_HEALTH_OK}}, compact(res.readings))
	require.Equal(t, map[string]int{"not_a_number": 1}, dropCounts(res.drops))

	const env = "/redfish/v1/Chassis/c/EnvironmentMetrics"
	res, err = decodeEnvMetrics([]byte(`{"PowerWatts": {"Reading": 342}}`), env, nil)
	require.NoError(t, err)
	require.Equal(t, []reading{{name: "Chassis Power", id: env + "#/PowerWatts", unit: "W", sensorType: "PowerControl",
		kind: v1.Kind_KIND_POWER, value: 342}}, compact(res.readings))

	// Energy: EnergykWh on its own is a reading in kW.h.
	res, err = decodeEnvMetrics([]byte(`{"EnergykWh": {"Reading": 0.0835}}`), env, nil)
	require.NoError(t, err)
	require.Equal(t, []reading{{name: "Chassis Energy", id: env + "#/EnergykWh", unit: "kW.h", sensorType: "EnergykWh",
		kind: v1.Kind_KIND_ENERGY, value: 0.0835}}, compact(res.readings))
	require.Empty(t, res.drops)

	// EnergyJoules copies a Sensor the poll reads: not read; EnergykWh,
	// with no DataSourceUri of its own, names that Sensor for the merge.
	const sensor = "/redfish/v1/Chassis/c/Sensors/energy"
	doc := `{"EnergyJoules": {"Reading": 300790.9, "DataSourceUri": "` + sensor + `"}, "EnergykWh": {"Reading": 0.0835}}`
	res, err = decodeEnvMetrics([]byte(doc), env, coverage{"/redfish/v1/Chassis/c/Sensors"})
	require.NoError(t, err)
	require.Equal(t, []reading{{name: "Chassis Energy", id: env + "#/EnergykWh", unit: "kW.h", sensorType: "EnergykWh",
		kind: v1.Kind_KIND_ENERGY, value: 0.0835}}, compact(res.readings))
	require.Equal(t, []string{sensor}, res.meta[0].links)

	// Neither copies a Sensor read: the joules are the reading, the kWh
	// its copy.
	res, err = decodeEnvMetrics([]byte(doc), env, nil)
	require.NoError(t, err)
	require.Equal(t, []reading{{name: "Chassis Energy", id: env + "#/EnergyJoules", unit: "J", sensorType: "EnergyJoules",
		kind: v1.Kind_KIND_ENERGY, value: 300790.9}}, compact(res.readings))
	require.Equal(t, []sources.Drop{{Reason: sources.DropMerged, Name: "Chassis Energy", ID: env + "#/EnergykWh", Detail: env + "#/EnergyJoules"}}, res.drops)

	// EnergykWh naming a Sensor the poll reads is that Sensor's copy.
	res, err = decodeEnvMetrics([]byte(`{"EnergykWh": {"Reading": 0.0835, "DataSourceUri": "`+sensor+`"}}`), env, coverage{"/redfish/v1/Chassis/c/Sensors"})
	require.NoError(t, err)
	require.Empty(t, res.readings)
	require.Empty(t, res.drops)
}

func TestGuessChassisPower(t *testing.T) {
	power := func(name, context, typ string) v1.Reading {
		return v1.Reading{Name: name, Kind: v1.Kind_KIND_POWER, Context: context, SensorType: typ}
	}
	tests := []struct {
		name string
		in   []v1.Reading
		want int // index marked PowerControl, -1 for none
	}{
		{"the one unclaimed power sensor named so", []v1.Reading{power("p0", "", "PowerSupplyInput"), power("total_power", "", "Power")}, 1},
		{"CPU power is not the chassis'", []v1.Reading{power("cpu0 total", "CPU", "Power")}, -1},
		{"a lone power sensor of no name", []v1.Reading{power("gpu0_power", "", "Power")}, -1},
		{"the one in the chassis context", []v1.Reading{power("total a", "", "Power"), power("input", "Chassis", "Power")}, 1},
		{"several: the name decides", []v1.Reading{power("fan_power", "", "Power"), power("Sys Power", "SystemBoard", "Power")}, 1},
		{"several, no name decides", []v1.Reading{power("a", "", "Power"), power("b", "", "Power")}, -1},
		{"several named alike", []v1.Reading{power("total a", "", "Power"), power("total b", "", "Power")}, -1},
		{"none", nil, -1},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			guessChassisPower(tc.in)
			for i, r := range tc.in {
				require.Equal(t, i == tc.want, r.SensorType == sensorTypeChassisPower, r.Name)
			}
		})
	}
}

func TestCanonicalURI(t *testing.T) {
	for in, want := range map[string]string{
		"/redfish/v1/Chassis/1/":                  "/redfish/v1/Chassis/1",
		"https://10.0.0.5/redfish/v1/Chassis/1":   "/redfish/v1/Chassis/1",
		"https://10.0.0.5:8443":                   "/",
		"/redfish/v1/Chassis/1/Sensors?$expand=.": "/redfish/v1/Chassis/1/Sensors",
		"/":                                     "/",
		"":                                      "",
		"/redfish/v1/Chassis/1/Thermal#/Fans/0": "/redfish/v1/Chassis/1/Thermal#/Fans/0",
		"http://h/redfish/v1/Systems/1/?x=1":    "/redfish/v1/Systems/1",
		"/redfish/v1/SessionService/Sessions/abc/": "/redfish/v1/SessionService/Sessions/abc",
	} {
		require.Equal(t, want, canonicalURI(in), in)
	}
}

func TestRedfishMessage(t *testing.T) {
	id, msg := redfishMessage([]byte(`{"error": {"code": "Base.1.0.GeneralError", "message": "See ExtendedInfo",
		"@Message.ExtendedInfo": [{"MessageId": "Base.1.16.SessionLimitExceeded", "Message": "Too many sessions."}]}}`))
	require.Equal(t, "Base.1.16.SessionLimitExceeded", id)
	require.Equal(t, "Too many sessions.", msg)
	require.True(t, sessionLimit(id, msg, nil))

	id, msg = redfishMessage([]byte(`{"error": {"code": "X", "message": "RAC0218: The maximum number of user sessions is reached."}}`))
	require.True(t, sessionLimit(id, msg, nil))

	id, msg = redfishMessage([]byte(`<html>busy</html>`))
	require.Empty(t, id)
	require.Empty(t, msg)
}

// dropCounts counts drops by reason, nil for none.
func dropCounts(ds []sources.Drop) map[string]int {
	if len(ds) == 0 {
		return nil
	}
	out := map[string]int{}
	for _, d := range ds {
		out[d.Reason]++
	}
	return out
}
