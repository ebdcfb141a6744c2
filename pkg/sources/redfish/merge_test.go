package redfish

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/bmcstream/bmcstream/pkg/sources"
	v1 "github.com/bmcstream/bmcstream/proto/bmcstream/v1"
)

// TestMergeReadings checks each rule of the merge, and what it must not
// merge.
func TestMergeReadings(t *testing.T) {
	temp := func(id, name string, v float64, th int) v1.Reading {
		r := v1.Reading{Id: id, Name: name, Kind: v1.Kind_KIND_TEMPERATURE, Unit: "Cel", Value: v}
		for range th {
			r.Thresholds = append(r.Thresholds, v1.Threshold{Kind: v1.ThresholdKind_THRESHOLD_UPPER_CRITICAL, Value: 90})
		}
		return r
	}
	psu := func(id, name, typ string, v float64) v1.Reading {
		return v1.Reading{Id: id, Name: name, Kind: v1.Kind_KIND_POWER, Unit: "W", Value: v, SensorType: typ}
	}
	volt := func(id, name string, v float64, th int) v1.Reading {
		r := v1.Reading{Id: id, Name: name, Kind: v1.Kind_KIND_VOLTAGE, Unit: "V", Value: v}
		for range th {
			r.Thresholds = append(r.Thresholds, v1.Threshold{Kind: v1.ThresholdKind_THRESHOLD_UPPER_CRITICAL, Value: 13})
		}
		return r
	}
	leg := meta{group: groupLegacy, chassis: "/c/1"}
	sen := meta{group: groupSensor, chassis: "/c/1"}
	exc := meta{group: groupExcerpt, chassis: "/c/1"}
	with := func(m meta, member string, links ...string) meta { m.member, m.links = member, links; return m }
	type in struct {
		r v1.Reading
		m meta
	}
	tests := []struct {
		name string
		in   []in
		kept []string // ids
		drop map[string]string
	}{
		{
			"names and values, the richer kept",
			[]in{{temp("/t#/0", "CPU1 Temp", 40, 0), leg}, {temp("/s/cpu1", "CPU1_Temperature", 40.4, 1), sen}},
			[]string{"/s/cpu1"}, map[string]string{"/t#/0": "/s/cpu1"},
		},
		{
			"values apart are not one",
			[]in{{temp("/t#/0", "CPU1 Temp", 40, 0), leg}, {temp("/s/cpu1", "CPU1 Temp", 45, 0), sen}},
			[]string{"/t#/0", "/s/cpu1"}, nil,
		},
		{
			// The drift bound: max(2 units, 5 %).
			"names, values a drift apart",
			[]in{{temp("/t#/0", "12V_HSS ECB Temperature", 28, 0), leg}, {temp("/s/vr0", "12V_HSS ECB", 30, 0), sen}},
			[]string{"/s/vr0"}, map[string]string{"/t#/0": "/s/vr0"},
		},
		{
			"names, values further apart, one set of thresholds",
			[]in{{temp("/t#/0", "TEMP_CPU0", 31, 2), leg}, {temp("/s/cpu0", "TEMP_CPU0", 55, 2), sen}},
			[]string{"/s/cpu0"}, map[string]string{"/t#/0": "/s/cpu0"},
		},
		{
			"names, values further apart, thresholds of one only",
			[]in{{temp("/t#/0", "TEMP_CPU0", 31, 0), leg}, {temp("/s/cpu0", "TEMP_CPU0", 55, 2), sen}},
			[]string{"/t#/0", "/s/cpu0"}, nil,
		},
		{
			"a trailing reading word",
			[]in{{temp("/t#/0", "PCIe 8 Temp", 25, 0), leg}, {temp("/m#/3", "PCIe 8 Reading", 26, 0), exc}},
			[]string{"/t#/0"}, map[string]string{"/m#/3": "/t#/0"},
		},
		{
			// Rule 5: the qualifier a legacy name adds is in one Sensor's
			// Id, not the other's, of the two Sensors so named.
			"a name qualified by the member id",
			[]in{{volt("/p#/6", "12V_HSS ECB Voltage Input", 12.125, 5), leg}, {volt("/p#/7", "12V_HSS ECB Voltage Output", 12.1, 0), leg},
				{volt("/s/in", "12V_HSS ECB", 12.125, 5), with(sen, "ChassisVoltageRegulator0InputVoltage")},
				{volt("/s/out", "12V_HSS ECB", 12.125, 0), with(sen, "ChassisVoltageRegulator0OutputVoltage")}},
			[]string{"/s/in", "/s/out"}, map[string]string{"/p#/6": "/s/in", "/p#/7": "/s/out"},
		},
		{
			"a qualifier two member ids carry is no match",
			[]in{{volt("/p#/6", "VR Voltage Input", 12, 0), leg},
				{volt("/s/a", "VR", 12, 0), with(sen, "VR0InputVoltage")}, {volt("/s/b", "VR", 12, 0), with(sen, "VR1InputVoltage")}},
			[]string{"/p#/6", "/s/a", "/s/b"}, nil,
		},
		{
			"a qualifier the member id lacks is no match",
			[]in{{volt("/p#/6", "VR Voltage Input", 12, 0), leg}, {volt("/s/a", "VR", 12, 0), with(sen, "VR0")}},
			[]string{"/p#/6", "/s/a"}, nil,
		},
		{
			"a name twice in one group is no match",
			[]in{{temp("/t#/0", "GPU", 40, 0), leg}, {temp("/t#/1", "GPU", 50, 0), leg}, {temp("/s/g", "GPU", 40, 0), sen}},
			[]string{"/t#/0", "/t#/1", "/s/g"}, nil,
		},
		{
			"another chassis is another sensor",
			[]in{{temp("/t#/0", "CPU0", 40, 0), leg}, {temp("/s/cpu0", "CPU0", 40, 0), meta{group: groupSensor, chassis: "/c/2"}}},
			[]string{"/t#/0", "/s/cpu0"}, nil,
		},
		{
			"one group is never merged",
			[]in{{temp("/s/a", "X", 40, 0), sen}, {temp("/s/b", "X", 40, 0), sen}},
			[]string{"/s/a", "/s/b"}, nil,
		},
		{
			"a link wins over names and values",
			[]in{{temp("/t#/0", "Inlet", 20, 0), leg}, {temp("/s/amb", "Ambient", 25, 2), with(sen, "", "/t#/0")}},
			[]string{"/s/amb"}, map[string]string{"/t#/0": "/s/amb"},
		},
		{
			"member ids, not bare numbers",
			[]in{{temp("/t#/0", "A", 20, 0), with(leg, "Temp.1")}, {temp("/s/t1", "B", 21, 0), with(sen, "temp_1")},
				{temp("/t#/1", "C", 30, 0), with(leg, "2")}, {temp("/s/2", "D", 31, 0), with(sen, "2")}},
			[]string{"/s/t1", "/t#/1", "/s/2"}, map[string]string{"/t#/0": "/s/t1"},
		},
		{
			"a role and a PSU label are one quantity whatever the values",
			[]in{{psu("/p#/0/in", "PSU1", sensorTypePSUInput, 303), leg}, {psu("/m#/in", "PSU1", sensorTypePSUInput, 280), exc}},
			[]string{"/p#/0/in"}, map[string]string{"/m#/in": "/p#/0/in"},
		},
		{
			// The Sensor is the excerpt by name and value, the excerpt the
			// legacy member by role: one cluster; the Sensor is kept (as
			// rich, and a Sensor), with the role.
			"rules chain across three groups",
			[]in{{psu("/p#/0/in", "PSU1", sensorTypePSUInput, 303), leg}, {psu("/s/ps1in", "PSU1", "Power", 300), sen},
				{psu("/m#/in", "PSU1", sensorTypePSUInput, 301), exc}},
			[]string{"/s/ps1in"}, map[string]string{"/p#/0/in": "/s/ps1in", "/m#/in": "/s/ps1in"},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			rs := make([]v1.Reading, len(tc.in))
			ms := make([]meta, len(tc.in))
			for i, x := range tc.in {
				rs[i], ms[i] = x.r, x.m
			}
			merged := make([]mergeRule, len(rs))
			kept, drops := mergeReadings(rs, ms, merged)
			var ids []string
			for _, r := range kept {
				ids = append(ids, r.Id)
				if want := tc.in[0].r.SensorType; role(want) {
					require.Equal(t, want, r.SensorType, "the role travels to the kept copy")
				}
			}
			for i := range merged {
				_, dropped := tc.drop[tc.in[i].r.Id]
				require.Equal(t, dropped, merged[i] != ruleNone, tc.in[i].r.Id)
			}
			require.Equal(t, tc.kept, ids)
			got := map[string]string{}
			for _, d := range drops {
				require.Equal(t, sources.DropMerged, d.Reason)
				got[d.ID] = d.Detail
			}
			if tc.drop == nil {
				tc.drop = map[string]string{}
			}
			require.Equal(t, tc.drop, got)
		})
	}
}

// TestMergeCompletes checks the kept copy takes what it lacks from the
// others: the role (with its name and parent), context, unit, thresholds.
func TestMergeCompletes(t *testing.T) {
	rs := []v1.Reading{
		{Id: "/p#/0/in", Name: "PSU1", Kind: v1.Kind_KIND_POWER, Value: 171, SensorType: sensorTypePSUInput, Parent: "PS1 Status", Context: "PowerSupply"},
		{Id: "/s/in", Name: "PS1 Input Power", Kind: v1.Kind_KIND_POWER, Unit: "W", Value: 171, SensorType: "Power",
			Context: "PowerSupply", Thresholds: []v1.Threshold{{Kind: v1.ThresholdKind_THRESHOLD_UPPER_CRITICAL, Value: 900}}},
	}
	ms := []meta{{group: groupLegacy, chassis: "/c"}, {group: groupSensor, chassis: "/c", links: []string{"/p#/0/in"}}}
	kept, drops := mergeReadings(rs, ms, nil)
	require.Len(t, kept, 1)
	require.Equal(t, "/s/in", kept[0].Id, "more thresholds")
	require.Equal(t, sensorTypePSUInput, kept[0].SensorType)
	require.Equal(t, "PSU1", kept[0].Name)
	require.Equal(t, "PS1 Status", kept[0].Parent)
	require.Equal(t, []sources.Drop{{Reason: sources.DropMerged, Name: "PSU1", ID: "/p#/0/in", Detail: "/s/in"}}, drops)
}
