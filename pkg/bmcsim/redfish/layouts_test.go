package redfish_test

import (
	"encoding/json"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/bmcstream/bmcstream/pkg/bmcsim/model"
	"github.com/bmcstream/bmcstream/pkg/bmcsim/redfish"
)

// field walks a decoded document: keys for objects, decimal indexes for
// arrays ("Fans", "0", "Status", "Health").
func field(t *testing.T, doc any, keys ...string) any {
	t.Helper()
	v := doc
	for _, k := range keys {
		switch x := v.(type) {
		case map[string]any:
			var ok bool
			v, ok = x[k]
			require.True(t, ok, "no %q in %v", k, keys)
		case []any:
			i, err := strconv.Atoi(k)
			require.NoError(t, err, "index %q of %v", k, keys)
			require.Less(t, i, len(x), "index %q of %v", k, keys)
			v = x[i]
		default:
			require.Failf(t, "not a container", "%q of %v", k, keys)
		}
	}
	return v
}

// members returns a collection's member paths.
func members(t *testing.T, doc map[string]any) []string {
	t.Helper()
	var out []string
	for _, m := range doc["Members"].([]any) {
		out = append(out, m.(map[string]any)["@odata.id"].(string))
	}
	return out
}

// TestIncompleteSensorsCollection checks the layout of BMCs serving both
// schemas (ami): the Sensors collection leaves out the fans, the VRM voltage
// and the PSU output, which only the legacy Thermal and Power carry (and the
// subsystems quote without a DataSourceUri); what both schemas carry reads
// the same in both; legacy members link what they measure.
func TestIncompleteSensorsCollection(t *testing.T) {
	b, _, srv, clk := newService(t, "ami", redfish.Options{IgnoreSensorLatency: true})
	chassis := "/redfish/v1/Chassis/1"
	want := b.Readings(clk.Now())

	inSensors := map[string]float64{}
	for _, p := range members(t, getJSON(t, srv, chassis+"/Sensors")) {
		s := getJSON(t, srv, p)
		inSensors[s["Name"].(string)] = s["Reading"].(float64)
	}
	omitted := 0
	for _, r := range want {
		_, ok := inSensors[r.Spec.Name]
		require.Equal(t, !r.Spec.SensorsOmit, ok, "%s in the Sensors collection", r.Spec.Name)
		if r.Spec.SensorsOmit {
			omitted++
			resp, _ := do(t, srv, request{path: chassis + "/Sensors/" + r.Spec.Name})
			require.Equal(t, http.StatusNotFound, resp.StatusCode, "%s has no Sensor resource", r.Spec.Name)
		}
	}
	require.GreaterOrEqual(t, omitted, 4, "fans, a VRM voltage and PSU output are only in the legacy schema")

	legacy := map[string]float64{}
	thermal := getJSON(t, srv, chassis+"/Thermal")
	for _, k := range []string{"Temperatures", "Fans"} {
		for _, m := range thermal[k].([]any) {
			m := m.(map[string]any)
			v := m["Reading"]
			if k == "Temperatures" {
				v = m["ReadingCelsius"]
			}
			legacy[m["Name"].(string)] = v.(float64)
			related := m["RelatedItem"].([]any)
			require.Len(t, related, 1)
			target := related[0].(map[string]any)["@odata.id"].(string)
			require.Contains(t, []string{chassis, "/redfish/v1/Systems/1"}, target)
		}
	}
	power := getJSON(t, srv, chassis+"/Power")
	for _, m := range power["Voltages"].([]any) {
		m := m.(map[string]any)
		legacy[m["Name"].(string)] = m["ReadingVolts"].(float64)
	}
	for i, m := range power["PowerSupplies"].([]any) {
		m := m.(map[string]any)
		for _, r := range want {
			if r.Spec.Index == i && r.Spec.Source == model.SourcePSUOutput {
				require.InDelta(t, r.Value, m["PowerOutputWatts"].(float64), 1e-9, r.Spec.Name)
			}
			if r.Spec.Index == i && r.Spec.Source == model.SourcePSUInput {
				require.InDelta(t, r.Value, m["PowerInputWatts"].(float64), 1e-9, r.Spec.Name)
				require.InDelta(t, inSensors[r.Spec.Name], m["PowerInputWatts"].(float64), 1e-9, "%s: same in both schemas", r.Spec.Name)
			}
		}
	}
	both := 0
	for _, r := range want {
		lv, inLegacy := legacy[r.Spec.Name]
		if r.Spec.Kind == model.KindPower {
			continue // checked above: power is not keyed by sensor name in Power
		}
		require.True(t, inLegacy, "%s is in the legacy schema", r.Spec.Name)
		if sv, ok := inSensors[r.Spec.Name]; ok {
			both++
			require.InDelta(t, sv, lv, 1e-9, "%s: same value in both schemas", r.Spec.Name)
		}
	}
	require.GreaterOrEqual(t, both, 6)

	// The subsystem quotes a fan without a Sensor to point to.
	fan := getJSON(t, srv, chassis+"/ThermalSubsystem/Fans/FAN0")
	require.NotContains(t, fan["SpeedPercent"], "DataSourceUri")
	require.InDelta(t, legacy["FAN0"], field(t, fan, "SpeedPercent", "SpeedRPM").(float64), 1e-9)
}

// TestSubsystemOnlyChassis checks the layout of NVIDIA's OpenBMC (hgx): no
// Sensors collection and no legacy Thermal or Power; every reading is in the
// subsystems or EnvironmentMetrics, whose DataSourceUri links resolve.
func TestSubsystemOnlyChassis(t *testing.T) {
	b, _, srv, clk := newService(t, "hgx", redfish.Options{IgnoreSensorLatency: true})
	chassis := "/redfish/v1/Chassis/DGX"
	ch := getJSON(t, srv, chassis)
	for _, k := range []string{"Sensors", "Thermal", "Power"} {
		require.NotContains(t, ch, k)
		resp, _ := do(t, srv, request{path: chassis + "/" + k})
		require.Equal(t, http.StatusNotFound, resp.StatusCode, k)
	}
	for _, k := range []string{"ThermalSubsystem", "PowerSubsystem", "EnvironmentMetrics"} {
		require.Contains(t, ch, k)
	}

	seen := map[string]float64{}
	tm := getJSON(t, srv, chassis+"/ThermalSubsystem/ThermalMetrics")
	for _, e := range tm["TemperatureReadingsCelsius"].([]any) {
		e := e.(map[string]any)
		require.Equal(t, "Intake", e["PhysicalContext"], "hgx marks every temperature Intake")
		src := getJSON(t, srv, e["DataSourceUri"].(string))
		require.Equal(t, e["Reading"], src["Reading"])
		seen[e["DeviceName"].(string)] = e["Reading"].(float64)
	}
	require.Equal(t, "/redfish/v1/Chassis/DGX/Sensors/InletTemp", field(t, tm, "TemperatureSummaryCelsius", "Intake", "DataSourceUri"))
	for _, p := range members(t, getJSON(t, srv, chassis+"/ThermalSubsystem/Fans")) {
		f := getJSON(t, srv, p)
		seen[f["Name"].(string)] = field(t, f, "SpeedPercent", "SpeedRPM").(float64)
	}
	em := getJSON(t, srv, chassis+"/EnvironmentMetrics")
	seen["Total Power"] = field(t, em, "PowerWatts", "Reading").(float64)
	for _, p := range members(t, getJSON(t, srv, chassis+"/PowerSubsystem/PowerSupplies")) {
		psu := getJSON(t, srv, p)
		m := getJSON(t, srv, p+"/Metrics")
		seen[psu["Name"].(string)+" Input Power"] = field(t, m, "InputPowerWatts", "Reading").(float64)
		seen[psu["Name"].(string)+" Output Power"] = field(t, m, "OutputPowerWatts", "Reading").(float64)
	}
	room := 0.0
	for _, r := range b.Readings(clk.Now()) {
		v, ok := seen[r.Spec.Name]
		require.True(t, ok, "%s is somewhere in the subsystems", r.Spec.Name)
		require.InDelta(t, r.Value, v, 1e-9, r.Spec.Name)
		if r.Spec.Source == model.SourceIntake {
			room = v
		}
	}
	require.Greater(t, seen["GPU 3 Inlet"], room+5, "a GPU inlet is well above room air")
	require.Greater(t, seen["Board Inlet"], room)
	require.Greater(t, seen["PSU1 Inlet"], room)
}

// TestFaultsReachEveryLayout injects a failed fan, a failed PSU and hot
// intake air into every personality and checks each shows in every schema
// the personality serves: legacy Thermal/Power (current and iLO 4 shapes),
// Sensors, the subsystems and EnvironmentMetrics.
func TestFaultsReachEveryLayout(t *testing.T) {
	ps, err := model.Builtin()
	require.NoError(t, err)
	for _, name := range model.Names(ps) {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			b, _, srv, clk := newService(t, name, redfish.Options{IgnoreSensorLatency: true})
			p := b.Personality
			chassis := "/redfish/v1/Chassis/" + p.Redfish.ChassisID
			room := b.Intake(clk.Now())
			b.SetFaults(model.Faults{FanFailed: 1, PSUFailed: 1, IntakeOffset: 30})
			require.Equal(t, "Critical", field(t, getJSON(t, srv, chassis), "Status", "Health"))

			var fan0 string // the name of the fan with index 0
			for _, s := range p.Sensors {
				if s.Source == model.SourceFan && s.Index == 0 && !s.RedfishOmit && fan0 == "" {
					fan0 = s.Name
				}
			}
			require.NotEmpty(t, fan0)

			if p.Redfish.Legacy {
				suffix := ""
				if p.Redfish.Style == model.StyleILO4 {
					suffix = "/"
				}
				thermal := getJSON(t, srv, chassis+"/Thermal"+suffix)
				found := false
				for _, m := range thermal["Fans"].([]any) {
					m := m.(map[string]any)
					if m["Name"] != fan0 && m["FanName"] != fan0 {
						continue
					}
					found = true
					reading := m["Reading"]
					if p.Redfish.Style == model.StyleILO4 {
						reading = m["CurrentReading"]
					}
					require.EqualValues(t, 0, reading, fan0)
					require.Equal(t, "Critical", field(t, m, "Status", "Health"), fan0)
				}
				require.True(t, found, fan0)
				intake := thermal["Temperatures"].([]any)[0].(map[string]any)
				require.InDelta(t, room+30, intake["ReadingCelsius"].(float64), 0.6)

				power := getJSON(t, srv, chassis+"/Power"+suffix)
				psu := field(t, power, "PowerSupplies", "0").(map[string]any)
				require.Equal(t, "Critical", field(t, psu, "Status", "Health"))
				for _, k := range []string{"PowerInputWatts", "PowerOutputWatts", "LastPowerOutputWatts"} {
					if v, ok := psu[k]; ok {
						require.EqualValues(t, 0, v, k)
					}
				}
				require.Equal(t, "OK", field(t, power, "PowerSupplies", "1", "Status", "Health"))
			}
			if !p.Redfish.Modern {
				return
			}
			tm := getJSON(t, srv, chassis+"/ThermalSubsystem/ThermalMetrics")
			require.InDelta(t, room+30, field(t, tm, "TemperatureSummaryCelsius", "Intake", "Reading").(float64), 0.06)
			for _, fp := range members(t, getJSON(t, srv, chassis+"/ThermalSubsystem/Fans")) {
				f := getJSON(t, srv, fp)
				if f["Name"] != fan0 {
					continue
				}
				require.Equal(t, "Critical", field(t, f, "Status", "Health"))
				require.EqualValues(t, 0, field(t, f, "SpeedPercent", "Reading"))
			}
			if p.Redfish.EnvironmentMetrics {
				em := getJSON(t, srv, chassis+"/EnvironmentMetrics")
				require.Equal(t, fan0, field(t, em, "FanSpeedsPercent", "0", "DeviceName"))
				require.EqualValues(t, 0, field(t, em, "FanSpeedsPercent", "0", "Reading"))
			}
			bay := chassis + "/PowerSubsystem/PowerSupplies/Bay1"
			require.Equal(t, "Critical", field(t, getJSON(t, srv, bay), "Status", "Health"))
			require.Equal(t, "OK", field(t, getJSON(t, srv, chassis+"/PowerSubsystem/PowerSupplies/Bay2"), "Status", "Health"))
			metrics := getJSON(t, srv, bay+"/Metrics")
			require.Equal(t, "Critical", field(t, metrics, "Status", "Health"))
			if in, ok := metrics["InputPowerWatts"]; ok {
				require.EqualValues(t, 0, field(t, in, "Reading"))
			}
			require.Equal(t, "Critical", field(t, getJSON(t, srv, chassis+"/PowerSubsystem"), "Status", "Health"))
		})
	}
}

// TestNewShapesKeepProtocolBehaviour checks that the new resources behave as
// every sensor resource does: strong ETags answered with 304, the
// MalformedJSON and WrongTypes faults, and iLO 4's trailing-slash URIs
// answered with or without the slash.
func TestNewShapesKeepProtocolBehaviour(t *testing.T) {
	for _, tc := range []struct{ personality, path string }{
		{"ilo4", "/redfish/v1/Chassis/1/Thermal/"},
		{"ilo4", "/redfish/v1/Chassis/1/Power/"},
		{"hgx", "/redfish/v1/Chassis/DGX/EnvironmentMetrics"},
		{"hgx", "/redfish/v1/Chassis/DGX/Sensors/GPU3Inlet"},
	} {
		t.Run(tc.personality+tc.path, func(t *testing.T) {
			b, _, srv, clk := newService(t, tc.personality, redfish.Options{IgnoreSensorLatency: true})
			resp, body := do(t, srv, request{path: tc.path})
			require.Equal(t, http.StatusOK, resp.StatusCode)
			etag := resp.Header.Get("ETag")
			require.Regexp(t, `^"[0-9a-f]{16}"$`, etag)
			var doc map[string]any
			require.NoError(t, json.Unmarshal(body, &doc))
			require.Equal(t, tc.path, doc["@odata.id"])
			if v, ok := doc["@odata.etag"]; ok {
				require.Equal(t, etag, v)
			}
			resp, _ = do(t, srv, request{path: tc.path, header: map[string]string{"If-None-Match": etag}})
			require.Equal(t, http.StatusNotModified, resp.StatusCode)
			resp, _ = do(t, srv, request{path: strings.TrimSuffix(tc.path, "/"), header: map[string]string{"If-None-Match": etag}})
			require.Equal(t, http.StatusNotModified, resp.StatusCode, "the same resource without the trailing slash")
			clk.Advance(time.Minute)
			resp, _ = do(t, srv, request{path: tc.path, header: map[string]string{"If-None-Match": etag}})
			require.Equal(t, http.StatusOK, resp.StatusCode, "readings drift")

			b.SetFaults(model.Faults{MalformedJSON: true})
			_, body = do(t, srv, request{path: tc.path})
			require.False(t, json.Valid(body))

			b.SetFaults(model.Faults{WrongTypes: true})
			_, body = do(t, srv, request{path: tc.path})
			require.True(t, json.Valid(body))
			require.True(t, strings.Contains(string(body), `"N/A"`) || strings.Contains(string(body), `.5,`), "%s", body)
		})
	}
}

// TestPSUInputLost checks the PSUInputLost fault in every schema: the
// supply is Critical and reads nothing, and the modern PowerSupply says
// LossOfInput.
func TestPSUInputLost(t *testing.T) {
	ps, err := model.Builtin()
	require.NoError(t, err)
	for _, name := range model.Names(ps) {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			b, _, srv, _ := newService(t, name, redfish.Options{IgnoreSensorLatency: true})
			p := b.Personality
			chassis := "/redfish/v1/Chassis/" + p.Redfish.ChassisID
			b.SetFaults(model.Faults{PSUInputLost: 2})
			if p.Redfish.Legacy {
				power := getJSON(t, srv, chassis+"/Power/")
				require.Equal(t, "OK", field(t, power, "PowerSupplies", "0", "Status", "Health"))
				require.Equal(t, "Critical", field(t, power, "PowerSupplies", "1", "Status", "Health"))
			}
			if p.Redfish.Modern {
				for bay, want := range map[string][2]string{"Bay1": {"OK", "Normal"}, "Bay2": {"Critical", "LossOfInput"}} {
					psu := getJSON(t, srv, chassis+"/PowerSubsystem/PowerSupplies/"+bay)
					require.Equal(t, want[0], field(t, psu, "Status", "Health"), bay)
					require.Equal(t, want[1], psu["LineInputStatus"], bay)
				}
				m := getJSON(t, srv, chassis+"/PowerSubsystem/PowerSupplies/Bay2/Metrics")
				if in, ok := m["InputPowerWatts"]; ok {
					require.EqualValues(t, 0, field(t, in, "Reading"))
				}
			}
		})
	}
}
