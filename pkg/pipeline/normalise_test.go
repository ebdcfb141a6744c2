package pipeline

import (
	"fmt"
	"math"
	"os"
	"strings"
	"sync"
	"testing"

	"github.com/prometheus/prometheus/prompb"
	"github.com/stretchr/testify/require"

	"github.com/bmcstream/bmcstream/pkg/series"
	v1 "github.com/bmcstream/bmcstream/proto/bmcstream/v1"
)

const (
	kTemp    = v1.Kind_KIND_TEMPERATURE
	kFan     = v1.Kind_KIND_FAN
	kPower   = v1.Kind_KIND_POWER
	kCurrent = v1.Kind_KIND_CURRENT
	pRedfish = v1.Protocol_PROTOCOL_REDFISH
	pIPMI    = v1.Protocol_PROTOCOL_IPMI
)

func thr(k v1.ThresholdKind, v float64) v1.Threshold { return v1.Threshold{Kind: k, Value: v} }

// vendorSnap is a snapshot of bmc "b" by vendor over proto.
func vendorSnap(vendor string, proto v1.Protocol, rs ...v1.Reading) *v1.Snapshot {
	s := &v1.Snapshot{BmcId: "b", Protocol: proto, PollStartMs: 1000, PollEndMs: 1200, Up: true, Readings: rs}
	if vendor != "" {
		s.Info = map[string]string{"vendor": vendor}
	}
	return s
}

// readingLines normalises s and keeps the lines of its readings' value
// and threshold series (not bmc_up, bmc_info, health or sensor info), with
// the bmc label left out.
func readingLines(t *testing.T, n *Normaliser, s *v1.Snapshot) ([]string, Stats) {
	t.Helper()
	var st Stats
	out := n.Normalise(nil, s, []prompb.Label{{Name: "bmc", Value: s.BmcId}}, &st)
	var lines []string
	for _, l := range expoLines(t, out) {
		name, _, _ := strings.Cut(l, "{")
		if name == metricSensorHealth || name == metricSensorInfo || strings.HasPrefix(name, "bmc_chassis_") || name == metricUp || name == metricPollDuration || name == metricInfo {
			continue
		}
		l = strings.Replace(l, `{bmc="b"}`, "{}", 1)
		l = strings.Replace(l, `bmc="b",`, "", 1)
		lines = append(lines, l)
	}
	return lines, st
}

// TestNormaliseVendorCorrections checks each correction of a vendor's
// misreport, and the label rules, on readings shaped as each source
// reports them.
func TestNormaliseVendorCorrections(t *testing.T) {
	n, err := NewNormaliser(NormaliserOptions{})
	require.NoError(t, err)
	tests := []struct {
		name  string
		snap  *v1.Snapshot
		want  []string
		stats Stats
	}{
		{
			name: "AMI marks every temperature Intake: the names decide",
			snap: vendorSnap("AMI", pRedfish,
				v1.Reading{Name: "Temp_Inlet", Kind: kTemp, Context: "Intake", Value: 21},
				v1.Reading{Name: "Temp_CPU0", Kind: kTemp, Context: "Intake", Value: 60},
				v1.Reading{Name: "Temp_Outlet", Kind: kTemp, Context: "Intake", Value: 35},
				v1.Reading{Name: "Temp_GPU0", Kind: kTemp, Context: "Intake", Value: 70}),
			want: []string{
				`bmc_temperature_celsius{context="cpu",sensor="cpu1"} 60`,
				`bmc_temperature_celsius{context="exhaust",sensor="exhaust"} 35`,
				`bmc_temperature_celsius{context="gpu",sensor="gpu1"} 70`,
				`bmc_temperature_celsius{context="intake",sensor="intake"} 21`,
			},
		},
		{
			name: "Supermicro's lone Intake is trusted only when the name agrees",
			snap: vendorSnap("Supermicro", pRedfish, v1.Reading{Name: "CPU Temp", Kind: kTemp, Unit: "Cel", Context: "Intake", Value: 60}),
			want: []string{`bmc_temperature_celsius{context="cpu",sensor="cpu1"} 60`},
		},
		{
			name: "Supermicro's Intake with an inlet name stays intake",
			snap: vendorSnap("Supermicro", pRedfish, v1.Reading{Name: "Inlet Temp", Kind: kTemp, Unit: "Cel", Context: "Intake", Value: 22}),
			want: []string{`bmc_temperature_celsius{context="intake",sensor="intake"} 22`},
		},
		{
			name: "any vendor putting every temperature at Intake is not believed",
			snap: vendorSnap("Acme", pRedfish,
				v1.Reading{Name: "Board Temp", Kind: kTemp, Unit: "Cel", Context: "Intake", Value: 30},
				v1.Reading{Name: "Zone 3", Kind: kTemp, Unit: "Cel", Context: "Intake", Value: 31},
				v1.Reading{Name: "Inlet", Kind: kTemp, Unit: "Cel", Context: "Intake", Value: 20}),
			want: []string{
				`bmc_temperature_celsius{context="intake",sensor="intake"} 20`,
				`bmc_temperature_celsius{context="other",sensor="zone_3"} 31`,
				`bmc_temperature_celsius{context="system_board",sensor="board_temp"} 30`,
			},
		},
		{
			name: "a single temperature at Intake is believed",
			snap: vendorSnap("Acme", pRedfish, v1.Reading{Name: "Zone 1", Kind: kTemp, Unit: "Cel", Context: "Intake", Value: 19}),
			want: []string{`bmc_temperature_celsius{context="intake",sensor="intake"} 19`},
		},
		{
			name: "Lenovo DTS is a margin, negated to headroom, thresholds flipped",
			snap: vendorSnap("Lenovo", pIPMI, v1.Reading{Name: "CPU1 DTS", Kind: kTemp, Unit: "degrees C", Value: -29, EntityId: 3, EntityInstance: 1,
				Thresholds: []v1.Threshold{thr(v1.ThresholdKind_THRESHOLD_UPPER_CRITICAL, -2)}}),
			want: []string{
				`bmc_temperature_margin_celsius{context="cpu",sensor="cpu1"} 29`,
				`bmc_temperature_margin_lower_critical_celsius{context="cpu",sensor="cpu1"} 2`,
			},
		},
		{
			name: "Dell's watts under an IPMI Current-typed sensor are chassis power",
			snap: vendorSnap("Dell Inc.", pIPMI, v1.Reading{Name: "Pwr Consumption", Kind: kCurrent, Unit: "Watts", SensorType: "Current", EntityId: 7, EntityInstance: 1, Value: 238}),
			want: []string{`bmc_power_watts{} 238`},
		},
		{
			name: "DCMI wins over the SDR power sensor, which lends its thresholds",
			snap: vendorSnap("Dell Inc.", pIPMI,
				v1.Reading{Name: "Pwr Consumption", Kind: kPower, Unit: "Watts", SensorType: "Other Units-based", EntityId: 7, EntityInstance: 1, Value: 238,
					Health: v1.Health_HEALTH_OK, Thresholds: []v1.Threshold{thr(v1.ThresholdKind_THRESHOLD_UPPER_CRITICAL, 1512)}},
				v1.Reading{Name: "Chassis Input Power", Id: "dcmi", Kind: kPower, Unit: "Watts", SensorType: "PowerControl", Value: 235}),
			want: []string{
				`bmc_power_upper_critical_watts{} 1512`,
				`bmc_power_watts{} 235`,
			},
			stats: Stats{Duplicate: 1},
		},
		{
			name: "IPMI watts on the power unit entity are chassis power",
			snap: vendorSnap("Acme", pIPMI, v1.Reading{Name: "PS Power", Kind: kPower, Unit: "Watts", SensorType: "Other Units-based", EntityId: 0x13, Value: 448}),
			want: []string{`bmc_power_watts{} 448`},
		},
		{
			name: "IPMI power supplies: entity instance numbers them, the name tells output",
			snap: vendorSnap("Acme", pIPMI,
				v1.Reading{Name: "PSU Input", Kind: kPower, Unit: "Watts", SensorType: "Power Supply", EntityId: 0x0A, EntityInstance: 2, Value: 150},
				v1.Reading{Name: "Pout", Kind: kPower, Unit: "Watts", SensorType: "Power Supply", EntityId: 0x0A, EntityInstance: 1, Value: 140}),
			want: []string{
				`bmc_psu_input_watts{psu="psu2"} 150`,
				`bmc_psu_output_watts{psu="psu1"} 140`,
			},
		},
		{
			name: "Redfish power supplies by sensor type, numbered by name",
			snap: vendorSnap("Dell Inc.", pRedfish,
				v1.Reading{Name: "PS2 Status", Kind: kPower, Unit: "W", SensorType: "PowerSupplyInput", Context: "PowerSupply", Value: 171},
				v1.Reading{Name: "PSU1", Kind: kPower, Unit: "W", SensorType: "PowerSupplyOutput", Parent: "HpeServerPowerSupply", Value: 161}),
			want: []string{
				`bmc_psu_input_watts{psu="psu2"} 171`,
				`bmc_psu_output_watts{psu="psu1"} 161`,
			},
		},
		{
			name: "a subsystem's PowerControl is not the chassis'",
			snap: vendorSnap("Lenovo", pRedfish,
				v1.Reading{Name: "Server Power Control", Kind: kPower, Unit: "W", SensorType: "PowerControl", Value: 300},
				v1.Reading{Name: "CPU Sub-system Power", Kind: kPower, Unit: "W", SensorType: "PowerControl", Context: "CPUSubsystem", Value: 120},
				v1.Reading{Name: "Memory Sub-system Power", Kind: kPower, Unit: "W", SensorType: "PowerControl", Context: "MemorySubsystem", Value: 40},
				v1.Reading{Name: "Planar Fan Sub-system Power", Kind: kPower, Unit: "W", SensorType: "PowerControl", Context: "Fan", Value: 20}),
			// Each name shortened as IPMI would hold it (16 bytes) is
			// "Sub-system Power": their full names tell them apart.
			want: []string{
				`bmc_power_watts{} 300`,
				`bmc_sensor_power_watts{sensor="cpu_sub_system_power"} 120`,
				`bmc_sensor_power_watts{sensor="memory_sub_system_power"} 40`,
				`bmc_sensor_power_watts{sensor="planar_fan_sub_system_power"} 20`,
			},
		},
		{
			name: "HPE's numbered names, and its SystemBoard context beaten by names",
			snap: vendorSnap("HPE", pRedfish,
				v1.Reading{Name: "01-Inlet Ambient", Kind: kTemp, Unit: "Cel", Context: "Intake", Value: 21},
				v1.Reading{Name: "02-CPU 1", Kind: kTemp, Unit: "Cel", Context: "CPU", Value: 60},
				v1.Reading{Name: "05-P2 DIMM 7-12", Kind: kTemp, Unit: "Cel", Context: "SystemBoard", Value: 40},
				v1.Reading{Name: "12-HD Max", Kind: kTemp, Unit: "Cel", Context: "SystemBoard", Value: 33},
				v1.Reading{Name: "14-Chipset", Kind: kTemp, Unit: "Cel", Context: "SystemBoard", Value: 50}),
			want: []string{
				`bmc_temperature_celsius{context="cpu",sensor="cpu1"} 60`,
				`bmc_temperature_celsius{context="intake",sensor="intake"} 21`,
				`bmc_temperature_celsius{context="memory",sensor="memory2"} 40`,
				`bmc_temperature_celsius{context="storage",sensor="storage1"} 33`,
				`bmc_temperature_celsius{context="system_board",sensor="chipset"} 50`,
			},
		},
		{
			name: "a truncated IPMI name on the system board entity: the name says inlet",
			snap: vendorSnap("Dell Inc.", pIPMI,
				v1.Reading{Name: "Board Inlet Temp", Kind: kTemp, Unit: "degrees C", EntityId: 7, EntityInstance: 1, Value: 22,
					Thresholds: []v1.Threshold{{Kind: v1.ThresholdKind_THRESHOLD_UPPER_CAUTION, Value: 38}, {Kind: v1.ThresholdKind_THRESHOLD_UPPER_CRITICAL, Value: 42}}},
				v1.Reading{Name: "Board Fan1A", Kind: kFan, Unit: "RPM", EntityId: 7, EntityInstance: 1, Value: 5200},
				v1.Reading{Name: "Board Fan1B", Kind: kFan, Unit: "RPM", EntityId: 7, EntityInstance: 1, Value: 5100}),
			want: []string{
				`bmc_fan_speed_rpm{fan="fan1a"} 5200`,
				`bmc_fan_speed_rpm{fan="fan1b"} 5100`,
				`bmc_temperature_celsius{context="intake",sensor="intake"} 22`,
				`bmc_temperature_upper_caution_celsius{context="intake",sensor="intake"} 38`,
				`bmc_temperature_upper_critical_celsius{context="intake",sensor="intake"} 42`,
			},
		},
		{
			name: "nameless IPMI CPU temperatures are numbered by entity instance",
			snap: vendorSnap("Dell Inc.", pIPMI,
				v1.Reading{Name: "Temp", Kind: kTemp, Unit: "degrees C", EntityId: 3, EntityInstance: 1, Value: 50},
				v1.Reading{Name: "Temp", Kind: kTemp, Unit: "degrees C", EntityId: 3, EntityInstance: 2, Value: 51}),
			want: []string{
				`bmc_temperature_celsius{context="cpu",sensor="cpu1"} 50`,
				`bmc_temperature_celsius{context="cpu",sensor="cpu2"} 51`,
			},
		},
		{
			name: "OpenBMC counts from 0; a fan's RPM and PWM share its label",
			snap: vendorSnap("OpenBMC", pRedfish,
				v1.Reading{Name: "fan0", Kind: kFan, Unit: "RPM", Value: 5800},
				v1.Reading{Name: "fan1", Kind: kFan, Unit: "RPM", Value: 5900},
				v1.Reading{Name: "fan0_pwm", Kind: kFan, Unit: "%", Parent: "fan0", Value: 49},
				v1.Reading{Name: "cpu0_core_temp", Kind: kTemp, Unit: "Cel", Context: "CPU", Value: 62}),
			want: []string{
				`bmc_fan_speed_ratio{fan="fan1"} 0.49`,
				`bmc_fan_speed_rpm{fan="fan1"} 5800`,
				`bmc_fan_speed_rpm{fan="fan2"} 5900`,
				`bmc_temperature_celsius{context="cpu",sensor="cpu1"} 62`,
			},
		},
		{
			name: "a PSU's fan is not a system fan",
			snap: vendorSnap("Acme", pIPMI,
				v1.Reading{Name: "PSU2 Fan", Kind: kFan, Unit: "RPM", EntityId: 0x0A, EntityInstance: 2, Value: 9000},
				v1.Reading{Name: "Fan 2", Kind: kFan, Unit: "RPM", EntityId: 0x1D, EntityInstance: 2, Value: 8000}),
			want: []string{
				`bmc_fan_speed_rpm{fan="fan2"} 8000`,
				`bmc_fan_speed_rpm{fan="psu2_fan"} 9000`,
			},
		},
		{
			name: "units: the unit decides the kind, values convert to base units",
			snap: vendorSnap("Acme", pRedfish,
				v1.Reading{Name: "Inlet", Unit: "F", Value: 68},
				v1.Reading{Name: "Exhaust", Unit: "K", Value: 308.15},
				v1.Reading{Name: "P3V3", Unit: "mV", Value: 3300},
				v1.Reading{Name: "Total Power", Unit: "kW", Value: 0.5},
				v1.Reading{Name: "Humidity", Kind: v1.Kind_KIND_HUMIDITY, Unit: "%", Value: 45},
				v1.Reading{Name: "Energy", Unit: "kW.h", Value: 2},
				v1.Reading{Name: "Airflow", Unit: "[ft_i]3/min", Value: 60},
				v1.Reading{Name: "Fan3", SensorType: "Rotational", Value: 7000}),
			want: []string{
				`bmc_airflow_cubic_meters_per_second{sensor="airflow"} 0.028316846592`,
				`bmc_energy_joules_total{sensor="energy"} 7.2e+06`,
				`bmc_fan_speed_rpm{fan="fan3"} 7000`,
				`bmc_humidity_ratio{sensor="humidity"} 0.45`,
				`bmc_power_watts{} 500`,
				`bmc_temperature_celsius{context="exhaust",sensor="exhaust"} 35`,
				`bmc_temperature_celsius{context="intake",sensor="intake"} 20`,
				`bmc_voltage_volts{sensor="p3v3"} 3.3`,
			},
		},
		{
			name: "absent sensors are dropped; unknown units and discrete sensors unmapped; NaN invalid",
			snap: vendorSnap("Acme", pRedfish,
				v1.Reading{Name: "05-P2 DIMM", Kind: kTemp, Unit: "Cel", State: "Absent"},
				v1.Reading{Name: "Odd", Kind: kTemp, Unit: "furlongs", Value: 1},
				v1.Reading{Name: "Intrusion", Kind: v1.Kind_KIND_DISCRETE, Value: 1},
				v1.Reading{Name: "Inlet", Kind: kTemp, Unit: "Cel", Value: nan()}),
			stats: Stats{Absent: 1, Unmapped: 1, Discrete: 1, Invalid: 1},
		},
		{
			name: "a Latin-1 name is made valid UTF-8; a kind from a newer schema is unmapped",
			snap: vendorSnap("Acme", pIPMI,
				v1.Reading{Name: "Temp \xb0C Zone", Kind: kTemp, Unit: "degrees C", EntityId: 0x17, Value: 30},
				v1.Reading{Name: "Future", Kind: v1.Kind(99), Value: 1},
				v1.Reading{Name: "Past", Kind: v1.Kind(-3), Value: 1}),
			want:  []string{"bmc_temperature_celsius{context=\"system_board\",sensor=\"temp_c_zone\"} 30"},
			stats: Stats{Unmapped: 2},
		},
		{
			name: "two intake candidates: room air (front panel) beats an inlet, whatever the names' lengths",
			snap: vendorSnap("Acme", pRedfish,
				v1.Reading{Name: "Front Panel Temp", Kind: kTemp, Unit: "Cel", Context: "Intake", Value: 23},
				v1.Reading{Name: "Inlet Temp", Kind: kTemp, Unit: "Cel", Context: "Intake", Value: 22},
				v1.Reading{Name: "CPU1 Temp", Kind: kTemp, Unit: "Cel", Context: "CPU", Value: 60},
				v1.Reading{Name: "Temp", Kind: kTemp, Unit: "Cel", Value: 40},
				v1.Reading{Name: "Temp", Kind: kTemp, Unit: "Cel", Value: 41}),
			want: []string{
				`bmc_temperature_celsius{context="cpu",sensor="cpu1"} 60`,
				`bmc_temperature_celsius{context="intake",sensor="inlet_temp"} 22`,
				`bmc_temperature_celsius{context="intake",sensor="intake"} 23`,
				`bmc_temperature_celsius{context="other",sensor="temp"} 40`,
				`bmc_temperature_celsius{context="other",sensor="temp_2"} 41`,
			},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, st := readingLines(t, n, tc.snap)
			require.Equal(t, tc.want, got)
			require.Equal(t, tc.stats, st)
		})
	}
}

// TestNormaliseHeadSeries checks the series that do not come from one
// reading: up, poll duration, identity, power state, chassis faults.
func TestNormaliseHeadSeries(t *testing.T) {
	n, err := NewNormaliser(NormaliserOptions{})
	require.NoError(t, err)
	// An inventory label named like a series' own label gives way to it;
	// empty values are left out.
	base := []prompb.Label{{Name: "bmc", Value: "b"}, {Name: "protocol", Value: "both"}, {Name: "rack", Value: ""}}
	tests := []struct {
		name string
		snap *v1.Snapshot
		want []string
	}{
		{
			name: "redfish: health rolls up into a fault of kind health",
			snap: &v1.Snapshot{BmcId: "b", Protocol: pRedfish, PollStartMs: 1000, PollEndMs: 1500, Up: true,
				Info: map[string]string{"vendor": "HPE", "model": "DL380", "serial": "SN1", "firmware": "2.1", "power_state": "PoweringOff", "health": "Warning"}},
			want: []string{
				`bmc_chassis_fault{bmc="b",kind="health",protocol="both"} 1`,
				`bmc_chassis_health{bmc="b",protocol="both"} 1`,
				`bmc_chassis_powered_on{bmc="b",protocol="both"} 1`,
				`bmc_info{bmc="b",firmware="2.1",model="DL380",protocol="redfish",serial="SN1",vendor="HPE"} 1`,
				`bmc_poll_duration_seconds{bmc="b",protocol="redfish"} 0.5`,
				`bmc_up{bmc="b",protocol="redfish"} 1`,
			},
		},
		{
			name: "ipmi: chassis status bits, no model or serial",
			snap: &v1.Snapshot{BmcId: "b", Protocol: pIPMI, PollStartMs: 1000, PollEndMs: 1100, Up: true,
				Info: map[string]string{"vendor": "Dell Inc.", "firmware": "6.10", "power_state": "Off", "chassis_cooling_fault": "true",
					"chassis_power_fault": "false", "chassis_drive_fault": "false", "chassis_intrusion": "garbage"}},
			want: []string{
				`bmc_chassis_fault{bmc="b",kind="cooling",protocol="both"} 1`,
				`bmc_chassis_fault{bmc="b",kind="drive",protocol="both"} 0`,
				`bmc_chassis_fault{bmc="b",kind="power",protocol="both"} 0`,
				`bmc_chassis_powered_on{bmc="b",protocol="both"} 0`,
				`bmc_info{bmc="b",firmware="6.10",protocol="ipmi",vendor="Dell Inc."} 1`,
				`bmc_poll_duration_seconds{bmc="b",protocol="ipmi"} 0.1`,
				`bmc_up{bmc="b",protocol="ipmi"} 1`,
			},
		},
		{
			name: "down, with a poll end before its start",
			snap: &v1.Snapshot{BmcId: "b", Protocol: pIPMI, PollStartMs: 1000, PollEndMs: 999},
			want: []string{`bmc_up{bmc="b",protocol="ipmi"} 0`},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var st Stats
			out := n.Normalise(nil, tc.snap, base, &st)
			require.Equal(t, tc.want, expoLines(t, out))
			for _, s := range out {
				require.Equal(t, tc.snap.PollStartMs, s.T)
			}
		})
	}
}

func TestNormaliseTimestamps(t *testing.T) {
	n, err := NewNormaliser(NormaliserOptions{})
	require.NoError(t, err)
	s := vendorSnap("Acme", pRedfish,
		v1.Reading{Name: "Inlet", Kind: kTemp, Unit: "Cel", Value: 20, TimestampMs: 900, Health: v1.Health_HEALTH_CRITICAL,
			Thresholds: []v1.Threshold{thr(v1.ThresholdKind_THRESHOLD_UPPER_CRITICAL, 19)}},
		v1.Reading{Name: "CPU1", Kind: kTemp, Unit: "Cel", Value: 50})
	var st Stats
	for _, smp := range n.Normalise(nil, s, []prompb.Label{{Name: "bmc", Value: "b"}}, &st) {
		want := int64(1000)
		if smp.Series.Labels.Get("sensor") == "intake" {
			want = 900 // the reading's own time, for all its series
		}
		require.Equal(t, want, smp.T, "%v", smp.Series.Labels)
		if smp.Series.Labels.Get("__name__") == metricSensorHealth {
			require.Equal(t, 2.0, smp.V)
		}
	}
}

// TestNormaliseUserRules extends and overrides the built-in rules with a
// user's file.
func TestNormaliseUserRules(t *testing.T) {
	user := RuleFile{Name: "site.yml", Data: []byte(`
units:
  - {aliases: [dC, Cel], kind: temperature, base: celsius, divide: 10}
contexts:
  physical:
    - {physical_context: Intake, context: other}
rules:
  - match: {vendor: '^Acme$', name: '^Accel (\d+) Die$'}
    set: {class: temperature, context: gpu, sensor: 'gpu${1}_die'}
  - match: {name: '^Noise$'}
    set: {drop: true}
  - match: {vendor: '^Supermicro$', name: '^Peripheral Temp$'}
    set: {context: exhaust, sensor: exhaust}
`)}
	n, err := NewNormaliser(NormaliserOptions{RuleFiles: []RuleFile{user}})
	require.NoError(t, err)
	got, st := readingLines(t, n, vendorSnap("Acme", pRedfish,
		v1.Reading{Name: "Accel 3 Die", Unit: "dC", Value: 715},
		v1.Reading{Name: "Noise", Kind: kTemp, Unit: "Cel", Value: 1},
		v1.Reading{Name: "Room", Kind: kTemp, Unit: "Cel", Context: "Intake", Value: 210}))
	require.Equal(t, []string{
		`bmc_temperature_celsius{context="gpu",sensor="gpu3_die"} 71.5`,
		`bmc_temperature_celsius{context="other",sensor="room"} 21`,
	}, got, "the user's Cel alias and Intake context win over the built-in ones")
	require.Equal(t, Stats{RuleDrop: 1}, st)

	got, _ = readingLines(t, n, vendorSnap("Supermicro", pIPMI,
		v1.Reading{Name: "Peripheral Temp", Kind: kTemp, Unit: "degrees C", EntityId: 7, EntityInstance: 2, Value: 40}))
	require.Equal(t, []string{`bmc_temperature_celsius{context="exhaust",sensor="exhaust"} 40`}, got)
}

func TestReadRuleFiles(t *testing.T) {
	dir := t.TempDir()
	require.NoError(t, writeFile(dir+"/b.yml", "rules:\n  - match: {name: x}\n    set: {drop: true}\n"))
	require.NoError(t, writeFile(dir+"/a.yaml", "name_prefixes: ['^x-']\n"))
	require.NoError(t, writeFile(dir+"/notes.txt", "not yaml"))
	files, err := ReadRuleFiles(dir)
	require.NoError(t, err)
	require.Len(t, files, 2)
	require.Equal(t, dir+"/a.yaml", files[0].Name)
	_, err = NewNormaliser(NormaliserOptions{RuleFiles: files})
	require.NoError(t, err)
	_, err = ReadRuleFiles(dir + "/missing")
	require.ErrorContains(t, err, "read mapping file")
}

// TestRuleFileErrors checks that bad mapping files are refused with the
// file, the line and what is wrong.
func TestRuleFileErrors(t *testing.T) {
	tests := []struct {
		name, yaml string
		want       []string
	}{
		{"unknown key", "units:\n  - {aliases: [x], base: celsius, scale: 2}\n", []string{"u.yml", "line 2", "scale"}},
		{"bad pattern", "rules:\n  - match: {name: '(unclosed'}\n    set: {drop: true}\n", []string{"u.yml:2", "rules[0].match.name", "missing closing )"}},
		{"unknown context", "contexts:\n  names:\n    - {name: x, context: attic}\n", []string{"u.yml:3", `context "attic"`}},
		{"unknown class", "rules:\n  - match: {name: x}\n    set: {class: wattage}\n", []string{"u.yml:3", `class "wattage"`}},
		{"unknown base", "units:\n  - {aliases: [x], base: furlongs}\n", []string{"u.yml:2", `base "furlongs"`}},
		{"alias twice", "units:\n  - {aliases: [qq], base: celsius}\n  - {aliases: [QQ], base: celsius}\n", []string{`alias "QQ" is defined twice`}},
		{"zero divide", "units:\n  - {aliases: [x], base: celsius, divide: 0}\n", []string{"non-zero"}},
		{"rule without matcher", "rules:\n  - set: {drop: true}\n", []string{"at least one matcher"}},
		{"rule without setting", "rules:\n  - match: {name: x}\n", []string{"at least one setting"}},
		{"bad index base", "rules:\n  - match: {name: x}\n    set: {index_base: 2}\n", []string{"index_base must be 0 or 1"}},
		{"group without pattern", "rules:\n  - match: {vendor: x}\n    set: {sensor: 'cpu$1'}\n", []string{"no name pattern"}},
		{"bad entity", "contexts:\n  entities:\n    - {entity: 300, context: cpu}\n", []string{"entity 300"}},
		{"default unit of another kind", "kinds:\n  - {kind: fan, default_unit: Cel}\n", []string{`default_unit "Cel" of fan measures temperature`}},
		{"fault kind health", "chassis_faults:\n  - {info: x, kind: health}\n", []string{"kind health is taken"}},
		{"unknown protocol", "rules:\n  - match: {protocol: snmp}\n    set: {drop: true}\n", []string{`protocol "snmp"`}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := NewNormaliser(NormaliserOptions{RuleFiles: []RuleFile{{Name: "u.yml", Data: []byte(tc.yaml)}}})
			require.Error(t, err)
			for _, w := range tc.want {
				require.ErrorContains(t, err, w)
			}
		})
	}
}

// TestBuiltinRuleFiles checks the shipped files parse on their own, in
// their order.
func TestBuiltinRuleFiles(t *testing.T) {
	files, err := BuiltinRuleFiles()
	require.NoError(t, err)
	require.GreaterOrEqual(t, len(files), 4)
	for i := 1; i < len(files); i++ {
		require.Less(t, files[i-1].Name, files[i].Name)
	}
	rs, err := parseRules(files)
	require.NoError(t, err)
	for k := range kindNames {
		kind := v1.Kind(k)
		if c := defaultClass(kind); c != classNone {
			require.NotNil(t, rs.kindDefaults[kind], "kind %s has a default unit", kindNames[k])
		}
	}
}

// TestNormaliserPlanCache checks that a known shape reuses its label sets,
// that a change of shape replans, and that a BMC's vendor sticks when a
// snapshot lacks identity.
func TestNormaliserPlanCache(t *testing.T) {
	n, err := NewNormaliser(NormaliserOptions{})
	require.NoError(t, err)
	base := []prompb.Label{{Name: "bmc", Value: "b"}}
	amiSnap := func(info bool, names ...string) *v1.Snapshot {
		s := vendorSnap("", pIPMI)
		if info {
			s.Info = map[string]string{"vendor": "AMI"}
		}
		for _, nm := range names {
			s.Readings = append(s.Readings, v1.Reading{Name: nm, Kind: kFan, Unit: "RPM", Value: 100, EntityId: 0x1D})
		}
		return s
	}
	var st Stats
	first := n.Normalise(nil, amiSnap(true, "Fan_SYS0"), base, &st)
	again := n.Normalise(nil, amiSnap(true, "Fan_SYS0"), base, &st)
	require.Equal(t, len(first), len(again))
	for i := range first {
		require.Same(t, first[i].Series, again[i].Series, "interned label set %v", first[i].Series.Labels)
	}
	// Identity missing: AMI's rules (counting from 0) still apply.
	got, _ := readingLines(t, n, amiSnap(false, "Fan_SYS0", "Fan_SYS1"))
	require.Equal(t, []string{`bmc_fan_speed_rpm{fan="fan1"} 100`, `bmc_fan_speed_rpm{fan="fan2"} 100`}, got)

	// New base labels (an inventory reload) replan.
	moved := n.Normalise(nil, amiSnap(true, "Fan_SYS0"), []prompb.Label{{Name: "bmc", Value: "b"}, {Name: "rack", Value: "r2"}}, &st)
	require.Equal(t, "r2", moved[0].Series.Labels.Get("rack"))

	n.Forget("b")
	require.Contains(t, n.String(), "0 BMCs cached")
}

func TestNormaliserCacheGenerations(t *testing.T) {
	n, err := NewNormaliser(NormaliserOptions{})
	require.NoError(t, err)
	n.cacheSize = 2
	var st Stats
	norm := func(id string) []series.Sample {
		s := vendorSnap("Acme", pRedfish, v1.Reading{Name: "Inlet", Kind: kTemp, Unit: "Cel", Value: 20})
		s.BmcId = id
		return n.Normalise(nil, s, []prompb.Label{{Name: "bmc", Value: id}}, &st)
	}
	a := norm("a")
	norm("b")
	norm("c") // a and b move to the previous generation
	require.Len(t, n.cur, 1)
	require.Len(t, n.prev, 2)
	a2 := norm("a") // found in the previous generation, promoted
	require.Same(t, a[0].Series, a2[0].Series)
	norm("d") // current is full (c, a): b is forgotten
	require.NotContains(t, n.cur, "b")
	require.NotContains(t, n.prev, "b")
	require.LessOrEqual(t, len(n.cur)+len(n.prev), 2*n.cacheSize)
}

// TestNormaliseConcurrent normalises from several goroutines at once, as
// the gateway's sinks do with one shared Normaliser (run with -race).
func TestNormaliseConcurrent(t *testing.T) {
	n, err := NewNormaliser(NormaliserOptions{})
	require.NoError(t, err)
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var dst []series.Sample
			var st Stats
			for i := range 200 {
				s := benchSnapshotN(fmt.Sprintf("bmc-%d", i%13), 20+g%3)
				dst = n.Normalise(dst[:0], s, []prompb.Label{{Name: "bmc", Value: s.BmcId}}, &st)
				if len(dst) == 0 {
					t.Error("no samples")
					return
				}
			}
		}()
	}
	wg.Wait()
}

// TestNormaliseDoesNotAllocate asserts the steady state allocates nothing
// beyond the caller's dst.
func TestNormaliseDoesNotAllocate(t *testing.T) {
	n, err := NewNormaliser(NormaliserOptions{})
	require.NoError(t, err)
	s := benchSnapshotN("bmc-1", 60)
	base := []prompb.Label{{Name: "bmc", Value: "bmc-1"}, {Name: "rack", Value: "r1"}, {Name: "site", Value: "s"}}
	var st Stats
	dst := n.Normalise(nil, s, base, &st)
	allocs := testing.AllocsPerRun(100, func() {
		s.PollStartMs++
		dst = n.Normalise(dst[:0], s, base, &st)
	})
	require.Zero(t, allocs)
}

// TestDocsListEveryFamily checks docs/metrics.md names every value family
// and every series that does not come from a reading.
func TestDocsListEveryFamily(t *testing.T) {
	doc, err := readFile("../../docs/metrics.md")
	require.NoError(t, err)
	for _, f := range families() {
		if strings.Contains(f.help, "threshold for") {
			continue // documented as a pattern
		}
		require.Contains(t, doc, "`"+f.name, "docs/metrics.md documents %s", f.name)
	}
	for _, c := range Contexts {
		require.Contains(t, doc, "`"+c+"`")
	}
}

func nan() float64 { return math.NaN() }

func writeFile(path, data string) error { return os.WriteFile(path, []byte(data), 0o644) }

func readFile(path string) (string, error) {
	b, err := os.ReadFile(path)
	return string(b), err
}

// TestDocsExampleRuleFile checks the mapping file example in
// docs/metrics.md is a valid mapping file.
func TestDocsExampleRuleFile(t *testing.T) {
	doc, err := readFile("../../docs/metrics.md")
	require.NoError(t, err)
	_, rest, ok := strings.Cut(doc, "## Mapping files")
	require.True(t, ok)
	_, rest, ok = strings.Cut(rest, "```yaml\n")
	require.True(t, ok)
	example, _, ok := strings.Cut(rest, "```")
	require.True(t, ok)
	_, err = NewNormaliser(NormaliserOptions{RuleFiles: []RuleFile{{Name: "docs example", Data: []byte(example)}}})
	require.NoError(t, err)
}

func TestNormaliserOptions(t *testing.T) {
	_, err := NewNormaliser(NormaliserOptions{PlanCacheSize: -1})
	require.ErrorContains(t, err, "plan cache size")
	n, err := NewNormaliser(NormaliserOptions{PlanCacheSize: 3})
	require.NoError(t, err)
	require.Equal(t, 3, n.cacheSize)
}
