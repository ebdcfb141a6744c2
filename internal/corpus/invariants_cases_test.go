package corpus

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/prometheus/prometheus/prompb"
	"github.com/stretchr/testify/require"

	"github.com/bmcstream/bmcstream/pkg/series"
	"github.com/bmcstream/bmcstream/pkg/sources"
	v1 "github.com/bmcstream/bmcstream/proto/bmcstream/v1"
)

// sample builds a sample from "name", then label name/value pairs.
func sample(v float64, name string, kv ...string) series.Sample {
	ls := []prompb.Label{{Name: "__name__", Value: name}, {Name: "bmc", Value: "b"}}
	for i := 0; i+1 < len(kv); i += 2 {
		ls = append(ls, prompb.Label{Name: kv[i], Value: kv[i+1]})
	}
	slices.SortFunc(ls, func(a, b prompb.Label) int { return strings.Compare(a.Name, b.Name) })
	return series.Sample{Series: series.New(ls), V: v}
}

func temp(v float64, sensor, context, name string) []series.Sample {
	return []series.Sample{
		sample(v, metricTemperature, "sensor", sensor, "context", context),
		sample(1, metricSensorInfo, "kind", "temperature", "sensor", sensor, "name", name, "protocol", "redfish"),
	}
}

// TestInvariantsCatch shows each invariant failing on the series it
// exists to catch, and passing on sound ones: an invariant that cannot
// fail would prove nothing about the corpus.
func TestInvariantsCatch(t *testing.T) {
	sound := slices.Concat(
		temp(22, "intake", "intake", "System Board Inlet Temp"),
		temp(45, "cpu1", "cpu", "CPU1 Temp"),
		temp(30, "board_inlet", "system_board", "15-Board Inlet"),
		[]series.Sample{sample(1, metricSensorInfo, "kind", "temperature_margin", "sensor", "cpu1_dts", "name", "CPU1 DTSMargin", "protocol", "redfish")},
	)
	for _, inv := range seriesInvariants {
		require.Empty(t, inv.check(sound), inv.name)
	}
	tests := []struct {
		inv string
		ss  []series.Sample
	}{
		{"intake_at_most_one", slices.Concat(temp(22, "intake", "intake", "Inlet Temp"), []series.Sample{sample(23, metricTemperature, "sensor", "intake", "context", "intake", "rack", "x")})},
		{"intake_is_room_air", temp(40, "intake", "intake", "GPU Inlet Temp")},
		{"intake_is_room_air", temp(40, "intake_2", "intake", "55-P/S 2 Inlet")},
		{"intake_is_room_air", temp(40, "intake", "intake", "BB Inlet Temp")},
		{"intake_is_room_air", temp(40, "intake", "intake", "TEMP_MB_INLET")},
		{"temperature_range", temp(-58, "dimm1", "memory", "P1 DIMM Thrm 1")},
		{"temperature_range", temp(151, "cpu1", "cpu", "CPU1 Temp")},
		{"margins_not_temperatures", temp(-20, "cpu1_dts", "cpu", "CPU1_DTSMargin")},
		{"margins_not_temperatures", temp(-20, "p1", "cpu", "P1 DTS Therm Mgn")},
		{"margins_not_temperatures", temp(10, "cpu", "cpu", "CPU Thermal Headroom")},
		{"one_protocol_per_sensor", []series.Sample{
			sample(1, metricSensorInfo, "kind", "fan", "sensor", "fan1", "name", "Fan1", "protocol", "redfish"),
			sample(1, metricSensorInfo, "kind", "fan", "sensor", "fan1", "name", "FAN 1", "protocol", "ipmi"),
		}},
		{"no_duplicate_series", []series.Sample{sample(1, "bmc_up"), sample(0, "bmc_up")}},
	}
	for _, tc := range tests {
		i := slices.IndexFunc(seriesInvariants, func(inv invariant) bool { return inv.name == tc.inv })
		require.GreaterOrEqual(t, i, 0, tc.inv)
		require.NotEmpty(t, seriesInvariants[i].check(tc.ss), "%s must catch %v", tc.inv, expoLines(tc.ss))
	}
}

func TestTokens(t *testing.T) {
	for in, want := range map[string]string{
		"CPU1_DTSMargin":          "cpu 1 dts margin",
		"P1 DTS Therm Mgn":        "p 1 dts therm mgn",
		"55-P/S 2 Inlet":          "55 p s 2 inlet",
		"HGX ProcessorModule 1":   "hgx processor module 1",
		"TEMP_GB1_INLET2":         "temp gb 1 inlet 2",
		"System Board Inlet Temp": "system board inlet temp",
	} {
		require.Equal(t, want, strings.Join(tokens(in), " "), in)
	}
}

// TestCoverageCatches shows the coverage invariant failing on a reading
// the snapshot lost, and accepting it as a reading, a drop or under its
// other ids.
func TestCoverageCatches(t *testing.T) {
	dir := t.TempDir()
	writeDoc(t, dir, "Chassis/1/Thermal", `{"@odata.id": "/redfish/v1/Chassis/1/Thermal/", "@odata.type": "#Thermal.1.1.0.Thermal",
		"Temperatures": [{"Name": "Inlet", "CurrentReading": 21, "ReadingCelsius": 21, "Status": {"State": "Enabled"}},
		                 {"Name": "CPU 2", "ReadingCelsius": 0, "Status": {"State": "Absent"}}],
		"Fans": [{"FanName": "Fan 1", "CurrentReading": 40, "Units": "Percent"}]}`)
	writeDoc(t, dir, "Chassis/1/Power", `{"@odata.type": "#Power.v1_5_0.Power",
		"PowerSupplies": [{"@odata.id": "/redfish/v1/Chassis/1/Power#/PowerSupplies/0", "PowerInputWatts": 300, "LastPowerOutputWatts": 280}]}`)
	writeDoc(t, dir, "Chassis/1/EnvironmentMetrics", `{"@odata.type": "#EnvironmentMetrics.v1_3_0.EnvironmentMetrics",
		"PowerWatts": {"Reading": 500, "DataSourceUri": "/redfish/v1/Chassis/1/Sensors/Total"},
		"PowerLimitWatts": {"Reading": 500, "SetPoint": 800}}`)
	docs, err := captureDocs(dir)
	require.NoError(t, err)
	raw := rawReadings(docs)
	require.ElementsMatch(t, []string{
		"/redfish/v1/Chassis/1/Thermal#/Temperatures/0", "/redfish/v1/Chassis/1/Thermal#/Temperatures/1",
		"/redfish/v1/Chassis/1/Thermal#/Fans/0",
		"/redfish/v1/Chassis/1/Power#/PowerSupplies/0/PowerInputWatts", "/redfish/v1/Chassis/1/Power#/PowerSupplies/0/LastPowerOutputWatts",
		"/redfish/v1/Chassis/1/EnvironmentMetrics#/PowerWatts",
	}, sortedKeys(raw))

	snap := &v1.Snapshot{Readings: []v1.Reading{
		{Id: "/redfish/v1/Chassis/1/Thermal#/Temperatures/0"},
		{Id: "/redfish/v1/Chassis/1/Power#/PowerSupplies/0/PowerInputWatts"},
		{Id: "/redfish/v1/Chassis/1/Power#/PowerSupplies/0/PowerOutputWatts"},
		{Id: "/redfish/v1/Chassis/1/Sensors/Total"},
	}}
	got := coverage(raw, snap, nil, false)
	require.Len(t, got, 1, "%v", got)
	require.Contains(t, got[0], "Fans/0", "the iLO 4 fan is lost")
	fan := "/redfish/v1/Chassis/1/Thermal#/Fans/0"
	require.Empty(t, coverage(raw, snap, []sources.Drop{{Reason: sources.DropMerged, ID: fan}}, false))
	got = coverage(raw, snap, []sources.Drop{{Reason: sources.DropNull, ID: fan}}, false)
	require.Len(t, got, 1, "%v", got)
	require.Contains(t, got[0], "dropped as [null]", "a working fan with a number is not null")

	// The absent CPU 2 is listed: it must be a drop.
	got = coverage(raw, snap, nil, true)
	require.Len(t, got, 1, "%v", got)
	require.Contains(t, got[0], "Temperatures/1")
	require.Empty(t, coverage(raw, snap, []sources.Drop{{Reason: sources.DropAbsent, ID: "/redfish/v1/Chassis/1/Thermal#/Temperatures/1"}}, true))
}

// writeDoc writes a capture document for uri (below /redfish/v1) in the
// flat layout, the service root included so the capture is found.
func writeDoc(t *testing.T, dir, uri, body string) {
	t.Helper()
	for p, b := range map[string]string{uri: body, "": `{"@odata.id": "/redfish/v1"}`} {
		file := filepath.Join(dir, filepath.FromSlash(p), "index.json")
		require.NoError(t, os.MkdirAll(filepath.Dir(file), 0o755))
		require.NoError(t, os.WriteFile(file, []byte(b), 0o644))
	}
}
