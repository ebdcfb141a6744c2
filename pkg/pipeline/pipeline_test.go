package pipeline

import (
	"fmt"
	"sort"
	"strings"
	"testing"

	"github.com/prometheus/prometheus/prompb"
	"github.com/stretchr/testify/require"

	"github.com/bmcstream/bmcstream/pkg/inventory"
	"github.com/bmcstream/bmcstream/pkg/series"
	v1 "github.com/bmcstream/bmcstream/proto/bmcstream/v1"
)

func render(ss []series.Sample) []string {
	out := make([]string, 0, len(ss))
	for _, s := range ss {
		var b strings.Builder
		b.WriteString(s.Series.Labels.Get("__name__"))
		b.WriteString("{")
		first := true
		for _, l := range s.Series.Labels.Prom() {
			if l.Name == "__name__" {
				continue
			}
			if !first {
				b.WriteString(",")
			}
			first = false
			fmt.Fprintf(&b, "%s=%q", l.Name, l.Value)
		}
		fmt.Fprintf(&b, "} %g @%d", s.V, s.T)
		out = append(out, b.String())
		if s.Series.Hash != series.Hash(s.Series.Labels.Prom()) {
			panic("hash mismatch")
		}
		if ls := s.Series.Labels.Prom(); !sort.SliceIsSorted(ls, func(i, j int) bool { return ls[i].Name < ls[j].Name }) {
			panic("labels not sorted")
		}
	}
	sort.Strings(out)
	return out
}

func TestNormalise(t *testing.T) {
	snap := &v1.Snapshot{
		BmcId: "srv-1", Protocol: v1.Protocol_PROTOCOL_REDFISH, PollStartMs: 1000, PollEndMs: 1250, Up: true,
		Info: map[string]string{"vendor": "HPE", "model": "DL380", "serial": "SN1", "firmware": "2.1", "power_state": "On"},
		Readings: []v1.Reading{
			{Name: "01-Inlet Ambient", Kind: v1.Kind_KIND_TEMPERATURE, Unit: "Cel", Value: 21.5, Context: "Intake", Health: v1.Health_HEALTH_OK,
				Thresholds: []v1.Threshold{{Kind: v1.ThresholdKind_THRESHOLD_UPPER_CRITICAL, Value: 42}}},
			{Name: "CPU1 Temp", Kind: v1.Kind_KIND_TEMPERATURE, Value: 50},
			{Name: "Fan 1", Kind: v1.Kind_KIND_FAN, Unit: "Percent", Value: 35},
			{Name: "Fan1A", Kind: v1.Kind_KIND_FAN, Unit: "RPM", Value: 7200, TimestampMs: 1100},
			{Name: "System Power", Kind: v1.Kind_KIND_POWER, Unit: "W", SensorType: "PowerControl", Value: 310},
			{Name: "PSU1", Kind: v1.Kind_KIND_POWER, Unit: "W", SensorType: "PowerSupplyInput", Value: 160},
			{Name: "12V", Kind: v1.Kind_KIND_VOLTAGE, Unit: "mV", Value: 12100},
			{Name: "weird", Kind: v1.Kind_KIND_DISCRETE, Value: 1},
		},
	}
	missing, found := BaseLabels(nil, "srv-1")
	require.False(t, found)
	require.Equal(t, []prompb.Label{{Name: "bmc", Value: "srv-1"}, {Name: "inventory", Value: "missing"}}, missing)
	base := []prompb.Label{{Name: "bmc", Value: "srv-1"}}
	var st Stats
	got := render(newTestNormaliser(t).Normalise(nil, snap, base, &st))
	// Canonical labels (docs/metrics.md): the vendor's names are in
	// bmc_sensor_info.
	require.Equal(t, []string{
		`bmc_chassis_powered_on{bmc="srv-1"} 1 @1000`,
		`bmc_fan_speed_ratio{bmc="srv-1",fan="fan1"} 0.35 @1000`,
		`bmc_fan_speed_rpm{bmc="srv-1",fan="fan1a"} 7200 @1100`,
		`bmc_info{bmc="srv-1",firmware="2.1",model="DL380",protocol="redfish",serial="SN1",vendor="HPE"} 1 @1000`,
		`bmc_poll_duration_seconds{bmc="srv-1",protocol="redfish"} 0.25 @1000`,
		`bmc_power_watts{bmc="srv-1"} 310 @1000`,
		`bmc_psu_input_watts{bmc="srv-1",psu="psu1"} 160 @1000`,
		`bmc_sensor_health{bmc="srv-1",kind="temperature",sensor="intake"} 0 @1000`,
		`bmc_sensor_info{bmc="srv-1",kind="chassis_power",name="System Power",protocol="redfish",sensor="chassis"} 1 @1000`,
		`bmc_sensor_info{bmc="srv-1",kind="fan",name="Fan 1",protocol="redfish",sensor="fan1"} 1 @1000`,
		`bmc_sensor_info{bmc="srv-1",kind="fan",name="Fan1A",protocol="redfish",sensor="fan1a"} 1 @1100`,
		`bmc_sensor_info{bmc="srv-1",kind="psu_input",name="PSU1",protocol="redfish",sensor="psu1"} 1 @1000`,
		`bmc_sensor_info{bmc="srv-1",kind="temperature",name="01-Inlet Ambient",protocol="redfish",sensor="intake"} 1 @1000`,
		`bmc_sensor_info{bmc="srv-1",kind="temperature",name="CPU1 Temp",protocol="redfish",sensor="cpu1"} 1 @1000`,
		`bmc_sensor_info{bmc="srv-1",kind="voltage",name="12V",protocol="redfish",sensor="12v"} 1 @1000`,
		`bmc_temperature_celsius{bmc="srv-1",context="cpu",sensor="cpu1"} 50 @1000`,
		`bmc_temperature_celsius{bmc="srv-1",context="intake",sensor="intake"} 21.5 @1000`,
		`bmc_temperature_upper_critical_celsius{bmc="srv-1",context="intake",sensor="intake"} 42 @1000`,
		`bmc_up{bmc="srv-1",protocol="redfish"} 1 @1000`,
		`bmc_voltage_volts{bmc="srv-1",sensor="12v"} 12.1 @1000`,
	}, got)
	require.Equal(t, 1, st.Discrete, "a discrete sensor without health or mapping is counted")
}

func TestNormaliseDownAndInventory(t *testing.T) {
	inv, err := inventory.Parse([]byte("bmcs:\n  - id: srv-2\n    address: x\n    labels: {site: ctc, rack: i5, sensor_owner: ops}\n"))
	require.NoError(t, err)
	base, found := BaseLabels(inv, "srv-2")
	require.True(t, found)
	var st Stats
	got := render(newTestNormaliser(t).Normalise(nil, &v1.Snapshot{BmcId: "srv-2", PollStartMs: 5, PollEndMs: 4}, base, &st))
	require.Equal(t, []string{`bmc_up{bmc="srv-2",rack="i5",sensor_owner="ops",site="ctc"} 0 @5`}, got)
}

func TestDecode(t *testing.T) {
	good := &v1.Snapshot{BmcId: "a", PollStartMs: 1, Readings: []v1.Reading{{Name: "x"}}}
	b, err := good.Marshal()
	require.NoError(t, err)
	var s v1.Snapshot
	require.NoError(t, Decode(b, &s))
	require.Equal(t, "a", s.BmcId)
	require.Len(t, s.Readings, 1)
	// Decoding again reuses, not appends.
	require.NoError(t, Decode(b, &s))
	require.Len(t, s.Readings, 1)

	noID, _ := (&v1.Snapshot{PollStartMs: 1}).Marshal()
	noTime, _ := (&v1.Snapshot{BmcId: "a"}).Marshal()
	for name, in := range map[string][]byte{"empty": nil, "garbage": []byte("\xff\xff\xff"), "no id": noID, "no time": noTime} {
		t.Run(name, func(t *testing.T) {
			require.ErrorIs(t, Decode(in, &s), ErrMalformed)
		})
	}
}

func FuzzDecodeNormalise(f *testing.F) {
	good, _ := (&v1.Snapshot{BmcId: "a", PollStartMs: 1, Up: true, Readings: []v1.Reading{{Name: "t", Kind: v1.Kind_KIND_TEMPERATURE, Value: 3}}}).Marshal()
	f.Add(good)
	f.Add([]byte{0x0a, 0x01, 'a'})
	n := newTestNormaliser(f)
	f.Fuzz(func(t *testing.T, b []byte) {
		var s v1.Snapshot
		if err := Decode(b, &s); err != nil {
			return
		}
		var st Stats
		base := []prompb.Label{{Name: "bmc", Value: s.BmcId}}
		for _, smp := range n.Normalise(nil, &s, base, &st) {
			if smp.Series.Labels.Get("__name__") == "" || smp.T <= 0 {
				t.Fatalf("bad sample %+v", smp)
			}
		}
	})
}

func TestEnricher(t *testing.T) {
	inv, err := inventory.Parse([]byte("bmcs:\n  - id: srv-2\n    address: x\n    labels: {site: ctc, rack: i5}\n"))
	require.NoError(t, err)
	e := NewEnricher(inv)
	for _, id := range []string{"srv-2", "nope"} {
		want, wantFound := BaseLabels(inv, id)
		got, found := e.Labels(id)
		require.Equal(t, wantFound, found)
		require.Equal(t, want, got)
	}
	require.Zero(t, testing.AllocsPerRun(100, func() { e.Labels("srv-2") }), "a known BMC costs no allocation")
}

// newTestNormaliser builds a Normaliser of the built-in rules.
func newTestNormaliser(tb testing.TB) *Normaliser {
	tb.Helper()
	n, err := NewNormaliser(NormaliserOptions{})
	require.NoError(tb, err)
	return n
}
