package pipeline

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	v1 "github.com/bmcstream/bmcstream/proto/bmcstream/v1"
)

// TestNormaliseRealNaming checks the general rules real BMCs need
// (docs/metrics.md, "The canonical intake", "Canonical sensor labels",
// "Normalisation rules"), on readings named as real BMCs name them.
func TestNormaliseRealNaming(t *testing.T) {
	n, err := NewNormaliser(NormaliserOptions{})
	require.NoError(t, err)
	temp := func(name, id, ctx string, v float64) v1.Reading {
		return v1.Reading{Name: name, Id: id, Kind: kTemp, Unit: "Cel", Context: ctx, Value: v}
	}
	tests := []struct {
		name  string
		snap  *v1.Snapshot
		want  []string
		stats Stats
	}{
		{
			name: "component and board inlets are their component's; the room-air reading is intake",
			snap: vendorSnap("HPE", pRedfish,
				temp("15-Board Inlet", "/t/10", "SystemBoard", 30),
				temp("GPU 3 Inlet", "/t/11", "", 40),
				temp("54-P/S 1 Inlet", "/t/34", "PowerSupply", 28),
				temp("DIMM Inlet", "/t/12", "", 27),
				temp("01-Inlet Ambient", "/t/0", "Intake", 16)),
			want: []string{
				`bmc_temperature_celsius{context="gpu",sensor="gpu3_inlet"} 40`,
				`bmc_temperature_celsius{context="intake",sensor="intake"} 16`,
				`bmc_temperature_celsius{context="memory",sensor="memory1_inlet"} 27`,
				`bmc_temperature_celsius{context="psu",sensor="psu1_inlet"} 28`,
				`bmc_temperature_celsius{context="system_board",sensor="board_inlet"} 30`,
			},
		},
		{
			name: "Intake on every temperature, contradicted by names: only the agreeing name is intake",
			snap: vendorSnap("NVIDIA", pRedfish,
				temp("TEMP_CPU0", "/s/TEMP_CPU0", "Intake", 55),
				temp("TEMP_CPU1", "/s/TEMP_CPU1", "Intake", 51),
				temp("TEMP_INTB", "/s/TEMP_INTB", "Intake", 25),
				temp("TEMP_AMBIENT", "/s/TEMP_AMBIENT", "Intake", 22),
				temp("TEMP_MB_INLET", "/s/TEMP_MB_INLET", "Intake", 25)),
			want: []string{
				`bmc_temperature_celsius{context="cpu",sensor="cpu1"} 55`,
				`bmc_temperature_celsius{context="cpu",sensor="cpu2"} 51`,
				`bmc_temperature_celsius{context="intake",sensor="intake"} 22`,
				`bmc_temperature_celsius{context="other",sensor="temp_intb"} 25`,
				`bmc_temperature_celsius{context="system_board",sensor="temp_mb_inlet"} 25`,
			},
		},
		{
			name: "a board inlet alarmed like room air stands in for the room when no room-air reading exists",
			snap: vendorSnap("Dell Inc.", pRedfish,
				withUpper(temp("System Board Inlet Temp", "/s/SystemBoardInletTemp", "SystemBoard", 25), 38, 42),
				temp("System Board Exhaust Temp", "/s/SystemBoardExhaustTemp", "SystemBoard", 38)),
			want: []string{
				`bmc_temperature_celsius{context="exhaust",sensor="exhaust"} 38`,
				`bmc_temperature_celsius{context="intake",sensor="intake"} 25`,
				`bmc_temperature_upper_caution_celsius{context="intake",sensor="intake"} 38`,
				`bmc_temperature_upper_critical_celsius{context="intake",sensor="intake"} 42`,
			},
		},
		{
			name: "a board inlet alarmed above room air's limits is the board's, even alone",
			snap: vendorSnap("Intel Corporation", pRedfish,
				withUpper(temp("BB Inlet Temp", "/t/0", "", 22), 60, 65),
				temp("BB Outlet Temp", "/t/1", "", 26)),
			want: []string{
				`bmc_temperature_celsius{context="system_board",sensor="bb_inlet_temp"} 22`,
				`bmc_temperature_celsius{context="system_board",sensor="bb_outlet_temp"} 26`,
				`bmc_temperature_upper_caution_celsius{context="system_board",sensor="bb_inlet_temp"} 60`,
				`bmc_temperature_upper_critical_celsius{context="system_board",sensor="bb_inlet_temp"} 65`,
			},
		},
		{
			name: "an ambient alarmed above room air's limits is not intake; a fatal threshold is not read",
			snap: vendorSnap("HPE", pRedfish,
				withUpper(temp("NC TEMP SENSOR ambient", "/s/ambient", "Chassis", 32), 60, 70),
				withFatal(withUpper(temp("01-Front Ambient", "/t/0", "Intake", 15), 45, 48), 52)),
			want: []string{
				`bmc_temperature_celsius{context="intake",sensor="intake"} 15`,
				`bmc_temperature_celsius{context="other",sensor="sensor_ambient"} 32`,
				`bmc_temperature_upper_caution_celsius{context="intake",sensor="intake"} 45`,
				`bmc_temperature_upper_caution_celsius{context="other",sensor="sensor_ambient"} 60`,
				`bmc_temperature_upper_critical_celsius{context="intake",sensor="intake"} 48`,
				`bmc_temperature_upper_critical_celsius{context="other",sensor="sensor_ambient"} 70`,
				`bmc_temperature_upper_fatal_celsius{context="intake",sensor="intake"} 52`,
			},
		},
		{
			name: "a board inlet without thresholds says nothing of room air: the board's",
			snap: vendorSnap("NVIDIA", pRedfish,
				temp("PDB 0 Inlet Temp 0", "/s/PDB_0_Inlet_Temp_0", "", 34)),
			want: []string{
				`bmc_temperature_celsius{context="system_board",sensor="pdb_0_inlet_temp"} 34`,
			},
		},
		{
			name: "ties are broken by sensor id in natural order, never by name length",
			snap: vendorSnap("Acme", pRedfish,
				temp("Inlet B", "/t/10", "Intake", 23),
				temp("Inlet Temp Rear", "/t/2", "Intake", 21)),
			want: []string{
				`bmc_temperature_celsius{context="intake",sensor="inlet_b"} 23`,
				`bmc_temperature_celsius{context="intake",sensor="intake"} 21`,
			},
		},
		{
			name: "underscore names: DTS margins are margins, positive or negative; numbering from the BMC's sensor 0",
			snap: vendorSnap("Supermicro", pIPMI,
				v1.Reading{Name: "CPU0_DTS", Kind: kTemp, Unit: "degrees C", Value: 60},
				v1.Reading{Name: "CPU1_DTS", Kind: kTemp, Unit: "degrees C", Value: 58},
				v1.Reading{Name: "CPU0_TEMP", Kind: kTemp, Unit: "degrees C", Value: 40},
				v1.Reading{Name: "VR_P0_TEMP", Kind: kTemp, Unit: "degrees C", Value: 45},
				v1.Reading{Name: "Amb_Temp", Kind: kTemp, Unit: "degrees C", Value: 21},
				v1.Reading{Name: "P1 DTS Therm Mgn", Kind: kTemp, Unit: "degrees C", Value: -61},
				v1.Reading{Name: "P1 DIMM Thrm 1", Kind: kTemp, Unit: "degrees C", Value: -58}),
			want: []string{
				`bmc_temperature_celsius{context="cpu",sensor="cpu1"} 40`,
				`bmc_temperature_celsius{context="intake",sensor="intake"} 21`,
				`bmc_temperature_celsius{context="system_board",sensor="vr_p0_temp"} 45`,
				`bmc_temperature_margin_celsius{context="cpu",sensor="cpu1"} 60`,
				`bmc_temperature_margin_celsius{context="cpu",sensor="cpu1_p1_dts_therm_mgn"} 61`,
				`bmc_temperature_margin_celsius{context="cpu",sensor="cpu2"} 58`,
				`bmc_temperature_margin_celsius{context="memory",sensor="memory1"} 58`,
			},
		},
		{
			name: "numbering base from the data, not the vendor: an OpenBMC without a fan 0 counts from 1",
			snap: vendorSnap("OpenBMC", pRedfish,
				v1.Reading{Name: "fan1", Kind: kFan, Unit: "RPM", Value: 5000},
				v1.Reading{Name: "fan2", Kind: kFan, Unit: "RPM", Value: 5100},
				v1.Reading{Name: "cpu0_core_temp", Kind: kTemp, Unit: "Cel", Value: 50}),
			want: []string{
				`bmc_fan_speed_rpm{fan="fan1"} 5000`,
				`bmc_fan_speed_rpm{fan="fan2"} 5100`,
				`bmc_temperature_celsius{context="cpu",sensor="cpu1"} 50`,
			},
		},
		{
			name: "power-good lines are counted as status signals, never volts",
			snap: vendorSnap("Acme", pRedfish,
				v1.Reading{Name: "PWR_GOOD_P1V8", Kind: v1.Kind_KIND_VOLTAGE, Unit: "V", Value: 1},
				v1.Reading{Name: "P3V3_PG", Kind: v1.Kind_KIND_VOLTAGE, Unit: "V", Value: 1},
				v1.Reading{Name: "PWRGD_GB1_GPU", SensorType: "Sensor", Value: 0},
				v1.Reading{Name: "P1V8", Kind: v1.Kind_KIND_VOLTAGE, Unit: "V", Value: 1.79}),
			want:  []string{`bmc_voltage_volts{sensor="p1v8"} 1.79`},
			stats: Stats{StatusSignal: 3},
		},
		{
			name: "names keep the number that starts them; prefixes go only before a letter",
			snap: vendorSnap("HPE", pRedfish,
				v1.Reading{Name: "Processor Module 1 Frequency", Kind: v1.Kind_KIND_FREQUENCY, Unit: "MHz", Value: 3400},
				v1.Reading{Name: "48-12V TMP ADC", Kind: kTemp, Unit: "Cel", Context: "SystemBoard", Value: 34}),
			want: []string{
				`bmc_frequency_hertz{sensor="module_1_frequen"} 3.4e+09`,
				`bmc_temperature_celsius{context="system_board",sensor="48_12v_tmp_adc"} 34`,
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

// TestNormaliseUserIndexBase checks a user rule's index_base still wins
// over the base read from the data.
func TestNormaliseUserIndexBase(t *testing.T) {
	user := RuleFile{Name: "user.yml", Data: []byte(`
rules:
  - match: {vendor: '^Acme$', kinds: [fan]}
    set: {index_base: 0}
`)}
	n, err := NewNormaliser(NormaliserOptions{RuleFiles: []RuleFile{user}})
	require.NoError(t, err)
	got, _ := readingLines(t, n, vendorSnap("Acme", pRedfish,
		v1.Reading{Name: "Fan1", Kind: kFan, Unit: "RPM", Value: 5000},
		v1.Reading{Name: "Fan2", Kind: kFan, Unit: "RPM", Value: 5100}))
	require.Equal(t, []string{`bmc_fan_speed_rpm{fan="fan2"} 5000`, `bmc_fan_speed_rpm{fan="fan3"} 5100`}, got)
}

// TestNormaliseDiscrete checks the IPMI discrete readings as the IPMI
// source makes them (CONTRACTS of the sources, docs/metrics.md step 7).
func TestNormaliseDiscrete(t *testing.T) {
	n, err := NewNormaliser(NormaliserOptions{})
	require.NoError(t, err)
	disc := func(name, typ string, entity, inst uint32, h v1.Health, state string) v1.Reading {
		return v1.Reading{Name: name, Id: name, Kind: v1.Kind_KIND_DISCRETE, SensorType: typ, EntityId: entity, EntityInstance: inst, Health: h, State: state}
	}
	ok, warn, crit := v1.Health_HEALTH_OK, v1.Health_HEALTH_WARNING, v1.Health_HEALTH_CRITICAL
	s := vendorSnap("Acme", pIPMI,
		v1.Reading{Name: "PS1 Input Power", Kind: kPower, Unit: "Watts", EntityId: 0x0A, EntityInstance: 1, Value: 200},
		disc("PS1 Status", "Power Supply", 0x0A, 1, crit, "presence_detected,failure_detected"),
		disc("PS2 Status", "Power Supply", 0x0A, 2, ok, "absent"),
		disc("PS3 Status", "Power Supply", 0x0A, 3, ok, ""),
		disc("Fan Redundancy", "Fan", 0x1D, 1, crit, "redundancy_lost"),
		disc("PSU Redundancy", "Power Supply", 0x13, 1, warn, "non_redundant_sufficient"),
		disc("CPU2 Status", "Processor", 0x03, 2, warn, "presence_detected,throttled"),
		disc("Drive 3", "Drive Slot", 0x04, 3, ok, "drive_presence"),
		disc("Intrusion", "Physical Security", 0x17, 1, v1.Health_HEALTH_UNSPECIFIED, "state_0"))
	var st Stats
	out := n.Normalise(nil, s, nil, &st)
	var got []string
	for _, l := range expoLines(t, out) {
		name, _, _ := strings.Cut(l, "{")
		switch name {
		case metricSensorHealth, metricPSUPresent, metricPSUFailed, metricChassisFault, "bmc_psu_input_watts":
			if !strings.Contains(l, `kind="health"`) {
				got = append(got, l)
			}
		}
	}
	require.Equal(t, []string{
		`bmc_chassis_fault{kind="fan_redundancy"} 1`,
		`bmc_chassis_fault{kind="power_redundancy"} 0`,
		`bmc_psu_failed{psu="psu1"} 1`,
		`bmc_psu_failed{psu="psu2"} 0`,
		`bmc_psu_failed{psu="psu3"} 0`,
		`bmc_psu_input_watts{psu="psu1"} 200`,
		`bmc_psu_present{psu="psu1"} 1`,
		`bmc_psu_present{psu="psu2"} 0`,
		`bmc_sensor_health{kind="drive",sensor="storage3"} 0`,
		`bmc_sensor_health{kind="fan",sensor="fan_redundancy"} 2`,
		`bmc_sensor_health{kind="processor",sensor="cpu2"} 1`,
		`bmc_sensor_health{kind="psu",sensor="psu1"} 2`,
		`bmc_sensor_health{kind="psu",sensor="psu2"} 0`,
		`bmc_sensor_health{kind="psu",sensor="psu3"} 0`,
		`bmc_sensor_health{kind="psu",sensor="psu_redundancy"} 1`,
	}, got)
	require.Equal(t, Stats{Discrete: 1}, st, "the intrusion sensor has nothing to map and is counted")
}

// TestExplain checks Explain names each reading's series or its reason,
// and records nothing.
func TestExplain(t *testing.T) {
	n, err := NewNormaliser(NormaliserOptions{})
	require.NoError(t, err)
	s := vendorSnap("Acme", pRedfish,
		v1.Reading{Name: "Inlet Temp", Id: "0", Kind: kTemp, Unit: "Cel", Context: "Intake", Value: 21},
		v1.Reading{Name: "Odd", Id: "1", Kind: kTemp, Unit: "furlongs", Value: 1},
		v1.Reading{Name: "Slot 3", Id: "2", Kind: kTemp, Unit: "Cel", State: "Absent"},
		v1.Reading{Name: "P5V_PG", Id: "3", Kind: v1.Kind_KIND_VOLTAGE, Unit: "V", Value: 1},
		v1.Reading{Name: "CPU1 Temp", Id: "4", Kind: kTemp, Unit: "Cel", Value: nan()})
	fates := n.Explain(s, nil)
	require.Len(t, fates, 5)
	require.Equal(t, 0, fates[0].Reading)
	require.Empty(t, fates[0].Dropped)
	require.Equal(t, []string{
		`bmc_temperature_celsius{context="intake",sensor="intake"}`,
		`bmc_sensor_info{kind="temperature",name="Inlet Temp",protocol="redfish",sensor="intake"}`,
	}, fates[0].Series)
	require.Contains(t, fates[0].Detail, "physical context Intake")
	require.Contains(t, fates[0].Detail, "canonical intake")
	for i, want := range []string{"", "unmapped", "absent", "status_signal", "invalid"} {
		require.Equal(t, want, fates[i].Dropped, "reading %d", i)
		if want != "" {
			require.Empty(t, fates[i].Series)
			require.NotEmpty(t, fates[i].Detail)
		}
	}
	require.Contains(t, fates[1].Detail, `"furlongs"`)
	require.Zero(t, len(n.cur)+len(n.prev), "Explain caches no plan")

	// Every reading is accounted for once: Normalise's counts match.
	var st Stats
	n.Normalise(nil, s, nil, &st)
	require.Equal(t, Stats{Unmapped: 1, Absent: 1, StatusSignal: 1, Invalid: 1}, st)
}

func TestWords(t *testing.T) {
	for in, want := range map[string]string{
		"CPU0_DTS":             "cpu0 dts",
		"Amb_Temp":             "amb temp",
		"SystemBoardInletTemp": "system board inlet temp",
		"PS1-Inlet":            "ps1 inlet",
		"Fan1A":                "fan1a",
		"TEMP_U.2_NVME0":       "temp u 2 nvme0",
		"  P/S 1 Inlet ":       "p s 1 inlet",
		"PCIeSwitch":           "pcie switch",
		"HGX_GPU_SXM_1_TEMP_0": "hgx gpu sxm 1 temp 0",
		"":                     "",
	} {
		require.Equal(t, want, words(in), in)
	}
	require.True(t, naturalLess("/t/2", "/t/10"))
	require.False(t, naturalLess("/t/10", "/t/2"))
	require.True(t, naturalLess("a", "b"))
	require.True(t, hasState("presence_detected, failure_detected", "failure_detected"))
	require.False(t, hasState("presence_detected", "failure"))
}

// withUpper gives r upper caution and critical thresholds, in its unit.
func withUpper(r v1.Reading, caution, critical float64) v1.Reading {
	r.Thresholds = append(r.Thresholds,
		v1.Threshold{Kind: v1.ThresholdKind_THRESHOLD_UPPER_CAUTION, Value: caution},
		v1.Threshold{Kind: v1.ThresholdKind_THRESHOLD_UPPER_CRITICAL, Value: critical})
	return r
}

// withFatal gives r an upper fatal threshold, in its unit.
func withFatal(r v1.Reading, fatal float64) v1.Reading {
	r.Thresholds = append(r.Thresholds, v1.Threshold{Kind: v1.ThresholdKind_THRESHOLD_UPPER_FATAL, Value: fatal})
	return r
}
