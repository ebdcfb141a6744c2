package corpus

import (
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/bmcstream/bmcstream/pkg/pipeline"
	"github.com/bmcstream/bmcstream/pkg/sources"
	v1 "github.com/bmcstream/bmcstream/proto/bmcstream/v1"
)

// This file checks that the Redfish source merges the copies of one
// reading that a chassis lists through several schemas (docs/metrics.md,
// "Reading Redfish: layouts, merging and cost"), judging by what the
// snapshot says alone: a name and an id.

// copyWords are the last words a vendor name may carry or leave out for
// one sensor ("PCIe 8 Temp" and the Sensor "PCIe 8").
var copyWords = map[string]bool{"temp": true, "temperature": true, "reading": true}

// copyName is a vendor name normalised for comparison: its lower-case
// words (tokens of the lower-cased name: "PCIe8" and "pcie_8" alike),
// trailing "temp", "temperature" and "reading" words left out
// unless nothing else is left.
func copyName(name string) string {
	ws := tokens(strings.ToLower(name))
	for len(ws) > 1 && copyWords[ws[len(ws)-1]] {
		ws = ws[:len(ws)-1]
	}
	return strings.Join(ws, " ")
}

// readingSchema says which generation of Redfish resources a reading id
// comes from: "legacy" (Thermal, Power), "sensor" (a Sensor) or "excerpt"
// (the subsystems and metrics); and the chassis it sits in.
func readingSchema(id string) (chassis, schema string) {
	u, _, _ := strings.Cut(id, "#")
	parts := strings.Split(strings.Trim(u, "/"), "/")
	for i, p := range parts {
		if p == "Chassis" && i+1 < len(parts) {
			chassis = parts[i+1]
			break
		}
	}
	switch {
	case slices.Contains(parts, "Sensors"):
		return chassis, "sensor"
	case slices.Contains(parts, "Thermal") || slices.Contains(parts, "Power"):
		return chassis, "legacy"
	}
	return chassis, "excerpt"
}

// unmergedCopies: within one chassis, no two readings of one kind whose
// names are equal after copyName come from different schemas. Such a pair
// is one sensor read twice (the legacy Thermal's "PCIe 8 Temp" and the
// Sensor "PCIe 8"), a series counted twice.
func unmergedCopies(s *v1.Snapshot) []string {
	type key struct{ chassis, kind, name string }
	by := map[key][]int{}
	for i := range s.Readings {
		r := &s.Readings[i]
		chassis, _ := readingSchema(r.Id)
		k := key{chassis, r.Kind.String(), copyName(r.Name)}
		by[k] = append(by[k], i)
	}
	var out []string
	for k, is := range by {
		for x, i := range is {
			for _, j := range is[x+1:] {
				a, b := &s.Readings[i], &s.Readings[j]
				_, sa := readingSchema(a.Id)
				_, sb := readingSchema(b.Id)
				if sa == sb {
					continue
				}
				out = append(out, fmt.Sprintf("chassis %q %s %q: %s (%q = %g %s, %s) and %s (%q = %g %s, %s) are one sensor read twice",
					k.chassis, k.kind, k.name, a.Id, a.Name, a.Value, a.Unit, sa, b.Id, b.Name, b.Value, b.Unit, sb))
			}
		}
	}
	// Qualified names: "X Voltage Input" beside a Sensor "X" whose id
	// says Input (ChassisVoltageRegulator0InputVoltage) is that Sensor.
	for i := range s.Readings {
		for j := range s.Readings {
			a, b := &s.Readings[i], &s.Readings[j]
			ca, sa := readingSchema(a.Id)
			cb, sb := readingSchema(b.Id)
			if i == j || sa == sb || ca != cb || a.Kind != b.Kind {
				continue
			}
			if rest, ok := qualifier(a.Name, b.Name, b.Id); ok {
				out = append(out, fmt.Sprintf("chassis %q %s: %s (%q = %g %s, %s) is %s (%q = %g %s, %s) qualified by %q, read twice",
					ca, a.Kind, a.Id, a.Name, a.Value, a.Unit, sa, b.Id, b.Name, b.Value, b.Unit, sb, rest))
			}
		}
	}
	slices.Sort(out)
	return out
}

// qualifierSkip are words a qualified name may add without saying
// anything of the sensor's identity.
var qualifierSkip = map[string]bool{"temp": true, "temperature": true, "reading": true, "voltage": true, "volts": true,
	"power": true, "current": true, "speed": true}

// qualifier reports whether long is short's name followed by words each
// of which the last segment of short's id carries ("Input" in
// ChassisVoltageRegulator0InputVoltage), and which words.
func qualifier(long, short, shortID string) (string, bool) {
	lw, sw := tokens(strings.ToLower(long)), tokens(strings.ToLower(short))
	if len(sw) == 0 || len(lw) <= len(sw) || !slices.Equal(lw[:len(sw)], sw) {
		return "", false
	}
	idw := tokens(lastSegment(shortID))
	var rest []string
	for _, w := range lw[len(sw):] {
		if qualifierSkip[w] {
			continue
		}
		if !slices.Contains(idw, w) {
			return "", false
		}
		rest = append(rest, w)
	}
	return strings.Join(rest, " "), len(rest) > 0
}

// TestRedfishCopiesMerged checks every capture's first snapshot for
// copies left unmerged, and logs every merge the source made by the name
// rule (a merged drop whose kept reading is neither named by a link nor
// shares a member id), so that each can be checked against the capture.
func TestRedfishCopiesMerged(t *testing.T) {
	for _, name := range captures(t, "redfish") {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			p := poll(t, filepath.Join("testdata", "redfish", name), false)
			report(t, unmergedCopies(p.first))
			var merged int
			for _, d := range p.drops {
				if d.Reason == sources.DropMerged {
					merged++
				}
			}
			t.Logf("%s: %d readings, %d merged", name, len(p.first.Readings), merged)
		})
	}
}

// TestUnmergedCopiesCatches shows the invariant failing on copies left
// unmerged and passing on distinct sensors.
func TestUnmergedCopiesCatches(t *testing.T) {
	temp := func(id, name string, v float64) v1.Reading {
		return v1.Reading{Id: id, Name: name, Kind: v1.Kind_KIND_TEMPERATURE, Unit: "Cel", Value: v}
	}
	sound := &v1.Snapshot{Readings: []v1.Reading{
		temp("/redfish/v1/Chassis/1/Thermal#/Temperatures/0", "PCIe 8 Temp", 25),
		temp("/redfish/v1/Chassis/1/Thermal#/Temperatures/1", "PCIe 8", 25),                        // one schema: two sensors
		temp("/redfish/v1/Chassis/2/Sensors/PCIe_8", "PCIe 8", 26),                                 // another chassis
		temp("/redfish/v1/Chassis/1/Sensors/PCIe_9", "PCIe 9", 26),                                 // another name
		{Id: "/redfish/v1/Chassis/1/Sensors/PCIe_8_V", Name: "PCIe 8", Kind: v1.Kind_KIND_VOLTAGE}, // another kind
	}}
	require.Empty(t, unmergedCopies(sound))
	for _, r := range []v1.Reading{
		temp("/redfish/v1/Chassis/1/Sensors/PCIe_8", "PCIe 8", 26),
		temp("/redfish/v1/Chassis/1/Sensors/PCIe_8", "pcie_8_temperature", 26),
		temp("/redfish/v1/Chassis/1/ThermalSubsystem/ThermalMetrics#/TemperatureReadingsCelsius/3", "PCIe8 Reading", 26),
	} {
		s := &v1.Snapshot{Readings: append(slices.Clone(sound.Readings[:1]), r)}
		require.Len(t, unmergedCopies(s), 1, "%s must be caught", r.Name)
	}
	for id, want := range map[string]string{
		"/redfish/v1/Chassis/1/Thermal#/Temperatures/0":                                 "legacy",
		"/redfish/v1/Chassis/1/Thermal/Temperatures/0":                                  "legacy",
		"/redfish/v1/Chassis/1/Power#/PowerSupplies/0/PowerOutputWatts":                 "legacy",
		"/redfish/v1/Chassis/1/Sensors/CPU1":                                            "sensor",
		"/redfish/v1/Chassis/1/ThermalSubsystem/Fans/1#/SpeedPercent":                   "excerpt",
		"/redfish/v1/Chassis/1/PowerSubsystem/PowerSupplies/0/Metrics#/InputPowerWatts": "excerpt",
		"/redfish/v1/Chassis/1/EnvironmentMetrics#/PowerWatts":                          "excerpt",
	} {
		chassis, got := readingSchema(id)
		require.Equal(t, want, got, id)
		require.Equal(t, "1", chassis, id)
	}
	qualified := &v1.Snapshot{Readings: []v1.Reading{
		{Id: "/redfish/v1/Chassis/E/Power#/Voltages/6", Name: "12V_HSS ECB Voltage Input", Kind: v1.Kind_KIND_VOLTAGE, Value: 12.125},
		{Id: "/redfish/v1/Chassis/E/Sensors/ChassisVoltageRegulator0OutputVoltage", Name: "12V_HSS ECB", Kind: v1.Kind_KIND_VOLTAGE, Value: 12.125},
	}}
	require.Empty(t, unmergedCopies(qualified), "Input is not the output's")
	qualified.Readings = append(qualified.Readings, v1.Reading{
		Id: "/redfish/v1/Chassis/E/Sensors/ChassisVoltageRegulator0InputVoltage", Name: "12V_HSS ECB", Kind: v1.Kind_KIND_VOLTAGE, Value: 12.125})
	require.Len(t, unmergedCopies(qualified), 1, "the input voltage read twice")
	require.Equal(t, "pcie 8", copyName("PCIe 8 Temp"))
	require.Equal(t, "temp", copyName("Temp"))
	require.Equal(t, "cpu 1 margin", copyName("CPU1_Margin_Temperature_Reading"))
}

// TestEnergykWhNormalised checks that an EnvironmentMetrics EnergykWh
// reading, as the Redfish source reads it, becomes bmc_energy_joules_total
// in joules, and that on the captures listing one the chassis' energy is
// one series however many units the capture gives it in.
func TestEnergykWhNormalised(t *testing.T) {
	norm, err := pipeline.NewNormaliser(pipeline.NormaliserOptions{})
	require.NoError(t, err)
	snap := &v1.Snapshot{BmcId: "b", Up: true, Protocol: v1.Protocol_PROTOCOL_REDFISH, PollStartMs: pollStart, PollEndMs: pollStart + 1000,
		Readings: []v1.Reading{{Id: "/redfish/v1/Chassis/1/EnvironmentMetrics#/EnergykWh", Name: "Chassis Energy",
			Kind: v1.Kind_KIND_ENERGY, Unit: "kW.h", SensorType: "EnergykWh", Value: 0.0835}}}
	var st pipeline.Stats
	var got []float64
	for _, s := range norm.Normalise(nil, snap, baseLabels("b"), &st) {
		if s.Series.Labels.Get("__name__") == "bmc_energy_joules_total" {
			got = append(got, s.V)
		}
	}
	require.Len(t, got, 1, "%+v", st)
	require.InDelta(t, 0.0835*3.6e6, got[0], 1e-6)

	for _, name := range []string{"nvidia-gh200", "nvidia-gb200-compute-tray", "nvidia-dgx-h100-viking"} {
		p := poll(t, filepath.Join("testdata", "redfish", name), false)
		perChassis := map[string]int{}
		for _, r := range p.first.Readings {
			if r.Kind == v1.Kind_KIND_ENERGY {
				c, _ := readingSchema(r.Id)
				perChassis[c]++
				require.NotContains(t, r.Id, "EnergykWh", "%s: the kWh copy merges into the Sensor its EnergyJoules names", name)
			}
		}
		kwh := 0
		for _, d := range p.drops {
			if strings.HasSuffix(d.ID, "#/EnergykWh") {
				require.Equal(t, sources.DropMerged, d.Reason, name)
				require.Contains(t, d.Detail, "/Sensors/", name)
				kwh++
			}
		}
		require.Positive(t, kwh, name)
		t.Logf("%s: %d EnergykWh merged into their Sensors; energy readings per chassis %v", name, kwh, perChassis)
	}
}
