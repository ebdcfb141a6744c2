package redfish

import (
	"encoding/json"
	"math"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/bmcstream/bmcstream/pkg/sources"
	v1 "github.com/bmcstream/bmcstream/proto/bmcstream/v1"
)

// simGolden is where bmcsim keeps every document each personality serves.
const simGolden = "../../bmcsim/redfish/testdata/golden"

// seeds adds to f the documents of bmcsim's golden files whose path
// matches, plus the same documents as the WrongTypes fault serves them
// ("N/A" for every reading) and cut in half as MalformedJSON does, plus
// extra.
func seeds(f *testing.F, match func(path string) bool, extra ...string) {
	files, err := filepath.Glob(filepath.Join(simGolden, "*.json"))
	require.NoError(f, err)
	require.NotEmpty(f, files)
	for _, file := range files {
		b, err := os.ReadFile(file)
		require.NoError(f, err)
		var docs map[string]json.RawMessage
		require.NoError(f, json.Unmarshal(b, &docs))
		keys := make([]string, 0, len(docs))
		for k := range docs {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			if !match(k) {
				continue
			}
			doc := string(docs[k])
			f.Add(doc)
			f.Add(strings.NewReplacer(`"Reading": `, `"Reading": "N/A", "x": `, `"ReadingCelsius": `, `"ReadingCelsius": "N/A", "x": `).Replace(doc))
			f.Add(doc[:len(doc)/2])
		}
	}
	for _, e := range extra {
		f.Add(e)
	}
}

// checkResult holds a decoder's output to its contract: a failed document
// yields nothing; every reading has a name, an id, a finite value and
// finite thresholds of known kinds.
func checkResult(t *testing.T, res docResult, err error) {
	if err != nil {
		require.Empty(t, res.readings)
		require.Empty(t, res.drops)
		return
	}
	for _, r := range res.readings {
		require.NotEmpty(t, r.Id)
		require.False(t, math.IsNaN(r.Value) || math.IsInf(r.Value, 0), "%v", r.Value)
		for _, th := range r.Thresholds {
			require.False(t, math.IsNaN(th.Value) || math.IsInf(th.Value, 0))
			require.True(t, th.Kind >= v1.ThresholdKind_THRESHOLD_LOWER_CAUTION && th.Kind <= v1.ThresholdKind_THRESHOLD_UPPER_FATAL)
		}
		require.NotEqual(t, "", r.SensorType)
	}
	for _, p := range res.pending {
		require.NotEmpty(t, p)
	}
}

func FuzzDecodeThermal(f *testing.F) {
	seeds(f, func(p string) bool { return strings.HasSuffix(p, "/Thermal") },
		`{"Temperatures": [{"ReadingCelsius": "30"}, 1, null, {"ReadingCelsius": 1e999}], "Fans": {"x": 1}}`,
		`{"Fans": [{"FanName": "F", "ReadingRPM": "2100", "Status": {"State": "Absent"}}]}`,
	)
	f.Fuzz(func(t *testing.T, doc string) {
		res, err := decodeThermal([]byte(doc), thermalURI)
		checkResult(t, res, err)
		for _, r := range res.readings {
			require.Contains(t, []v1.Kind{v1.Kind_KIND_TEMPERATURE, v1.Kind_KIND_FAN}, r.Kind)
			require.NotEmpty(t, r.Name)
		}
	})
}

func FuzzDecodePower(f *testing.F) {
	seeds(f, func(p string) bool { return strings.HasSuffix(p, "/Power") || strings.HasSuffix(p, "/Metrics") },
		`{"PowerSupplies": [{"Name": "nil", "PowerInputWatts": "N/A"}, {"Name": "nil", "LastPowerOutputWatts": 3}], "PowerControl": [[]]}`,
		`{"PowerSupplies": [{"Name": "PS2", "PowerOutputWatts": null, "LastPowerOutputWatts": 358}],
		  "EnergyJoules": {"Reading": 300790.9, "DataSourceUri": "/s/e"}, "EnergykWh": {"Reading": "0.08"}, "PowerWatts": {"Reading": null}}`,
	)
	f.Fuzz(func(t *testing.T, doc string) {
		res, err := decodePower([]byte(doc), "/redfish/v1/Chassis/1/Power")
		checkResult(t, res, err)
		labels := map[string]int{}
		for _, r := range res.readings {
			require.NotEmpty(t, r.Name)
			if r.SensorType == sensorTypePSUInput {
				labels[r.Name]++
				require.Equal(t, 1, labels[r.Name], "PSU label %q names one PSU", r.Name)
			}
		}
		res, err = decodePSUMetrics([]byte(doc), "/m", "PSU1", "p", nil)
		checkResult(t, res, err)
		res, err = decodeEnvMetrics([]byte(doc), "/e", nil)
		checkResult(t, res, err)
		res, err = decodeThermalMetrics([]byte(doc), "/tm", coverage{"/redfish/v1/Chassis/1/Sensors"})
		checkResult(t, res, err)
		res, err = decodeFans([]byte(doc), "/f", nil)
		checkResult(t, res, err)
		res, err = decodeFan([]byte(doc), "/f/1", nil)
		checkResult(t, res, err)
	})
}

// FuzzMerge merges the readings of a Thermal, a Power and a Sensors
// document decoded from the fuzzer's bytes: whatever they hold, every
// reading is kept or dropped as merged into a kept one, exactly once.
func FuzzMerge(f *testing.F) {
	seeds(f, func(p string) bool { return strings.HasSuffix(p, "/Thermal") || strings.HasSuffix(p, "/Sensors") },
		`{"Voltages": [{"Name": "VR Voltage Input", "ReadingVolts": 12}, {"Name": "VR Voltage Output", "ReadingVolts": 1.2}],
		  "Members": [{"@odata.id": "/s/in", "Id": "VR0InputVoltage", "Name": "VR", "Reading": 12, "ReadingType": "Voltage"},
		              {"@odata.id": "/s/out", "Id": "VR0OutputVoltage", "Name": "VR", "Reading": 1.2, "ReadingType": "Voltage"}],
		  "EnergykWh": {"Reading": 1}, "EnergyJoules": {"Reading": 3600000}}`,
	)
	f.Fuzz(func(t *testing.T, doc string) {
		var rs []v1.Reading
		var ms []meta
		for _, dec := range []func([]byte) (docResult, error){
			func(b []byte) (docResult, error) { return decodeThermal(b, thermalURI) },
			func(b []byte) (docResult, error) { return decodePower(b, "/redfish/v1/Chassis/1/Power") },
			func(b []byte) (docResult, error) { return decodeSensors(b, "/redfish/v1/Chassis/1/Sensors", nil) },
			func(b []byte) (docResult, error) { return decodeThermalMetrics(b, "/tm", nil) },
			func(b []byte) (docResult, error) { return decodeEnvMetrics(b, "/e", nil) },
		} {
			res, err := dec([]byte(doc))
			if err != nil {
				continue
			}
			require.Len(t, res.meta, len(res.readings))
			rs = append(rs, res.readings...)
			ms = append(ms, res.meta...)
		}
		n := len(rs)
		ids := make([]string, n)
		for i := range rs {
			ids[i] = rs[i].Id
		}
		rules := make([]mergeRule, n)
		kept, drops := mergeReadings(rs, ms, rules)
		require.Equal(t, n, len(kept)+len(drops))
		merged := 0
		for _, r := range rules {
			if r != ruleNone {
				merged++
			}
		}
		require.Equal(t, len(drops), merged, "each drop names the rule that merged it")
		keptIDs := map[string]bool{}
		for _, r := range kept {
			keptIDs[r.Id] = true
		}
		for _, d := range drops {
			require.Equal(t, sources.DropMerged, d.Reason)
			require.True(t, keptIDs[d.Detail], "%s merged into a kept reading, not %s", d.ID, d.Detail)
		}
	})
}

func FuzzDecodeSensors(f *testing.F) {
	seeds(f, func(p string) bool { return strings.Contains(p, "/Sensors") },
		`{"Members": [{"@odata.id": "/s/a"}, {"@odata.id": "/s/b", "Reading": "7", "Thresholds": {"UpperFatal": {"Reading": "N/A"}}}, 3]}`,
		`{"@odata.id": "/s/c", "Reading": 3, "ReadingType": "Percent", "PhysicalContext": "Fan", "Status": null}`,
	)
	cl := claims{"/redfish/v1/Chassis/chassis/Sensors/ps0_input_power": {sensorType: sensorTypePSUInput, kind: v1.Kind_KIND_POWER, name: "PSU1"}}
	f.Fuzz(func(t *testing.T, doc string) {
		res, err := decodeSensors([]byte(doc), "/s", cl)
		checkResult(t, res, err)
		guessChassisPower(res.readings)
		res, err = decodeSensor([]byte(doc), "/s/x", cl)
		checkResult(t, res, err)
		for _, r := range res.readings {
			require.NotEmpty(t, r.Name)
		}
	})
}

// FuzzDecodeService feeds the discovery documents (service root, chassis,
// systems, managers, collections) and error bodies to their decoders: they
// must keep what fits and never fail on a wrong type.
func FuzzDecodeService(f *testing.F) {
	seeds(f, func(p string) bool { return !strings.Contains(p, "/Sensors/") && !strings.HasSuffix(p, "/Thermal") },
		`{"error": {"code": "Base.1.16.SessionLimitExceeded", "@Message.ExtendedInfo": [{"MessageId": 3}, 1]}}`,
		`{"UUID": 7, "ProtocolFeaturesSupported": {"ExpandQuery": "yes"}, "Chassis": "x", "Links": {"Sessions": [1]}}`,
	)
	f.Fuzz(func(t *testing.T, doc string) {
		b := []byte(doc)
		var (
			root rootDoc
			ch   chassisDoc
			sys  systemDoc
			mgr  managerDoc
			coll collectionDoc
		)
		for _, v := range []any{&root, &ch, &sys, &mgr, &coll} {
			err := decodeLenient(b, v)
			if err == nil {
				require.True(t, json.Valid(b), "a document decoded is JSON")
			}
		}
		id, msg := redfishMessage(b)
		require.LessOrEqual(t, len(id), 80)
		require.LessOrEqual(t, len(msg), 240+len("…"))
		_ = sessionLimit(id, msg, b)
	})
}
