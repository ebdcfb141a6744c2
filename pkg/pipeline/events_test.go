package pipeline

import (
	"encoding/json"
	"fmt"
	"math"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/bmcstream/bmcstream/pkg/series"
	v1 "github.com/bmcstream/bmcstream/proto/bmcstream/v1"
)

// renderEvents renders events compactly: kind, sensor, previous>current and
// the threshold with its value.
func renderEvents(evs []Event) []string {
	var out []string
	for _, e := range evs {
		s := fmt.Sprintf("%s %s>%s", e.Kind, e.Previous, e.Current)
		if e.Sensor != "" {
			s += " " + e.Sensor
		}
		if e.Threshold != "" {
			s += " " + e.Threshold
			if e.ThresholdValue != nil {
				s += fmt.Sprintf("=%g", *e.ThresholdValue)
			}
			s += fmt.Sprintf(" at %g", e.Value)
		}
		out = append(out, s)
	}
	return out
}

// testUnits stands in for the normaliser's mapping of readings to series.
func testUnits(r *v1.Reading) (ReadingUnit, bool) {
	switch {
	case r.Kind == v1.Kind_KIND_TEMPERATURE && r.Unit == "Cel":
		return ReadingUnit{Metric: "bmc_temperature_celsius", Unit: "celsius"}, true
	case r.Kind == v1.Kind_KIND_TEMPERATURE && r.Unit == "F":
		return ReadingUnit{Metric: "bmc_temperature_celsius", Unit: "celsius", Convert: func(v float64) float64 { return (v - 32) * 5 / 9 }}, true
	case r.Kind == v1.Kind_KIND_FAN && r.Unit == "RPM":
		return ReadingUnit{Metric: "bmc_fan_speed_rpm", Unit: "rpm"}, true
	}
	return ReadingUnit{}, false
}

func evTemp(v float64, th ...float64) v1.Reading {
	r := v1.Reading{Name: "CPU1 Temp", Id: "0", Kind: v1.Kind_KIND_TEMPERATURE, Unit: "Cel", Value: v, Health: v1.Health_HEALTH_OK}
	kinds := []v1.ThresholdKind{
		v1.ThresholdKind_THRESHOLD_UPPER_CAUTION, v1.ThresholdKind_THRESHOLD_UPPER_CRITICAL, v1.ThresholdKind_THRESHOLD_UPPER_FATAL,
	}
	for i, x := range th {
		r.Thresholds = append(r.Thresholds, v1.Threshold{Kind: kinds[i], Value: x})
	}
	return r
}

func evHealth(h v1.Health) v1.Reading {
	return v1.Reading{Name: "PSU1", Id: "psu1", Kind: v1.Kind_KIND_POWER, Unit: "W", SensorType: "PowerSupplyInput", Value: 200, Health: h}
}

func evFan(v float64) v1.Reading {
	return v1.Reading{Name: "Fan1A", Kind: v1.Kind_KIND_FAN, Unit: "RPM", Value: v,
		Thresholds: []v1.Threshold{{Kind: v1.ThresholdKind_THRESHOLD_LOWER_CRITICAL, Value: 600}}}
}

type evStep struct {
	proto    v1.Protocol
	down     bool
	power    string
	readings []v1.Reading
	forget   bool
	want     []string
}

func evUp(want []string, rs ...v1.Reading) evStep { return evStep{readings: rs, want: want} }

func TestEvents(t *testing.T) {
	ok, warn, crit := v1.Health_HEALTH_OK, v1.Health_HEALTH_WARNING, v1.Health_HEALTH_CRITICAL
	none := []string(nil)
	for _, tc := range []struct {
		name  string
		steps []evStep
	}{
		{
			name: "down and up, once each way",
			steps: []evStep{
				evUp(none, evTemp(40)),
				{down: true, want: []string{"bmc_down up>down"}},
				{down: true},
				evUp([]string{"bmc_up down>up"}, evTemp(40)),
				evUp(none, evTemp(41)),
			},
		},
		{
			name: "first sight of a down BMC is reported, of an up one is not",
			steps: []evStep{
				{down: true, want: []string{"bmc_down unknown>down"}},
				{down: true},
				evUp([]string{"bmc_up down>up"}),
			},
		},
		{
			name: "health worsens and recovers, once per change",
			steps: []evStep{
				evUp(none, evHealth(ok)),
				evUp([]string{"health_worsened ok>warning PSU1"}, evHealth(warn)),
				evUp(none, evHealth(warn)),
				evUp([]string{"health_worsened warning>critical PSU1"}, evHealth(crit)),
				evUp(none, evHealth(v1.Health_HEALTH_UNSPECIFIED)), // no verdict: no change
				evUp([]string{"health_recovered critical>warning PSU1"}, evHealth(warn)),
				evUp([]string{"health_recovered warning>ok PSU1"}, evHealth(ok)),
				evUp([]string{"health_worsened ok>critical PSU1"}, evHealth(crit)),
				evUp([]string{"health_recovered critical>ok PSU1"}, evHealth(ok)),
			},
		},
		{
			name: "a sensor first seen unhealthy is reported",
			steps: []evStep{
				evUp([]string{"health_worsened unknown>critical PSU1"}, evHealth(crit)),
				evUp(none, evHealth(crit)),
			},
		},
		{
			name: "upper thresholds with hysteresis",
			steps: []evStep{
				evUp(none, evTemp(70, 80, 90)),
				evUp([]string{"threshold_crossed normal>upper_caution CPU1 Temp upper_caution=80 at 80"}, evTemp(80, 80, 90)),
				evUp(none, evTemp(86, 80, 90)),
				evUp([]string{"threshold_crossed upper_caution>upper_critical CPU1 Temp upper_critical=90 at 90.2"}, evTemp(90.2, 80, 90)),
				// Hovering at the limit: 90 - 2 % = 88.2 clears it.
				evUp(none, evTemp(89.8, 80, 90)),
				evUp(none, evTemp(90.1, 80, 90)),
				evUp(none, evTemp(88.3, 80, 90)),
				evUp([]string{"threshold_cleared upper_critical>upper_caution CPU1 Temp upper_critical=90 at 88.1"}, evTemp(88.1, 80, 90)),
				// 80 °C clears at 78.4 °C (2 %, more than the 1 °C floor).
				evUp(none, evTemp(78.5, 80, 90)),
				evUp([]string{"threshold_cleared upper_caution>normal CPU1 Temp upper_caution=80 at 78.3"}, evTemp(78.3, 80, 90)),
				evUp(none, evTemp(79.9, 80, 90)),
			},
		},
		{
			name: "a jump past several thresholds is one event each way",
			steps: []evStep{
				evUp(none, evTemp(50, 80, 90, 100)),
				evUp([]string{"threshold_crossed normal>upper_fatal CPU1 Temp upper_fatal=100 at 105"}, evTemp(105, 80, 90, 100)),
				evUp([]string{"threshold_cleared upper_fatal>normal CPU1 Temp upper_fatal=100 at 50"}, evTemp(50, 80, 90, 100)),
			},
		},
		{
			name: "low temperature limits clear by at least 1 °C",
			steps: []evStep{
				evUp(none, evTemp(20, 30)),
				evUp([]string{"threshold_crossed normal>upper_caution CPU1 Temp upper_caution=30 at 31"}, evTemp(31, 30)),
				evUp(none, evTemp(29.1, 30)), // 2 % would be 0.6 °C
				evUp([]string{"threshold_cleared upper_caution>normal CPU1 Temp upper_caution=30 at 28.9"}, evTemp(28.9, 30)),
			},
		},
		{
			name: "lower threshold of a fan",
			steps: []evStep{
				evUp(none, evFan(3000)),
				evUp([]string{"threshold_crossed normal>lower_critical Fan1A lower_critical=600 at 500"}, evFan(500)),
				evUp(none, evFan(610)), // 600 + 2 % = 612
				evUp([]string{"threshold_cleared lower_critical>normal Fan1A lower_critical=600 at 700"}, evFan(700)),
			},
		},
		{
			name: "a reading first seen past its threshold is reported",
			steps: []evStep{
				evUp([]string{"threshold_crossed unknown>upper_critical CPU1 Temp upper_critical=90 at 95"}, evTemp(95, 80, 90)),
				evUp(none, evTemp(95, 80, 90)),
			},
		},
		{
			name: "power state changes, not its first sight",
			steps: []evStep{
				{power: "Off"},
				{power: "Off"},
				{power: "On", want: []string{"power_on off>on"}},
				{power: ""}, // not reported: no change
				{power: "PoweringOff"},
				{power: "off", want: []string{"power_off on>off"}},
			},
		},
		{
			name: "a down BMC keeps its sensors' state",
			steps: []evStep{
				evUp([]string{"health_worsened unknown>warning PSU1"}, evHealth(warn)),
				{down: true, want: []string{"bmc_down up>down"}},
				evUp([]string{"bmc_up down>up"}, evHealth(warn)),
				evUp([]string{"health_recovered warning>ok PSU1"}, evHealth(ok)),
			},
		},
		{
			name: "both protocols keep their own state",
			steps: []evStep{
				{proto: protoRedfish, readings: []v1.Reading{evHealth(ok)}},
				{proto: protoIPMI, down: true, want: []string{"bmc_down unknown>down"}},
				{proto: protoRedfish, readings: []v1.Reading{evHealth(ok)}},
				{proto: protoIPMI, down: true},
				{proto: protoIPMI, readings: []v1.Reading{evHealth(crit)}, want: []string{"bmc_up down>up", "health_worsened unknown>critical PSU1"}},
				{proto: protoRedfish, readings: []v1.Reading{evHealth(ok)}},
			},
		},
		{
			name: "Forget starts over",
			steps: []evStep{
				evUp([]string{"health_worsened unknown>critical PSU1"}, evHealth(crit)),
				evUp(none, evHealth(crit)),
				{forget: true, readings: []v1.Reading{evHealth(crit)}, want: []string{"health_worsened unknown>critical PSU1"}},
				{forget: true, readings: []v1.Reading{evHealth(ok)}},
			},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ev := NewEvents()
			ev.Units = testUnits
			labels := map[string]string{"site": "ctc", "rack": "i5"}
			for i, st := range tc.steps {
				if st.forget {
					ev.Forget("srv-1")
				}
				snap := &v1.Snapshot{
					BmcId: "srv-1", PollerId: "poller-a", Protocol: st.proto, Up: !st.down,
					PollStartMs: int64(i+1) * 60_000, Readings: st.readings,
				}
				if snap.Protocol == 0 {
					snap.Protocol = protoRedfish
				}
				if st.power != "" {
					snap.Info = map[string]string{"power_state": st.power}
				}
				got := ev.Observe(nil, snap, labels)
				require.Equal(t, st.want, renderEvents(got), "step %d", i)
				for _, e := range got {
					require.Equal(t, SchemaVersion, e.Version)
					require.Equal(t, "srv-1", e.BMC)
					require.Equal(t, "ctc", e.Site)
					require.Equal(t, "i5", e.Rack)
					require.Equal(t, "poller-a", e.Poller)
					require.Equal(t, snap.PollStartMs, e.TimeMs)
					_, err := json.Marshal(e)
					require.NoError(t, err)
				}
			}
		})
	}
}

// TestEventJSON pins the wire format of each event kind. The same JSON is in
// docs/automation.md: change both together.
func TestEventJSON(t *testing.T) {
	labels := map[string]string{"site": "ctc", "room": "r1", "row": "r1-b", "rack": "i5", "position": "u22"}
	ev := NewEvents()
	n, err := NewNormaliser(NormaliserOptions{})
	require.NoError(t, err)
	ev.Normaliser = n // as the gateway runs it
	snap := func(t int64, up bool, power string, rs ...v1.Reading) *v1.Snapshot {
		s := &v1.Snapshot{BmcId: "10.0.5.22", PollerId: "poller-1", Protocol: protoRedfish, PollStartMs: t, Up: up, Readings: rs}
		if up {
			s.Info = map[string]string{"power_state": power}
		} else {
			s.Error, s.ErrorClass = "dial tcp 10.0.5.22:443: i/o timeout", "unreachable"
		}
		return s
	}
	cpu := func(v float64, h v1.Health) v1.Reading {
		return v1.Reading{Name: "CPU1 Temp", Id: "1", Kind: v1.Kind_KIND_TEMPERATURE, Unit: "Cel", Value: v, Health: h,
			Thresholds: []v1.Threshold{
				{Kind: v1.ThresholdKind_THRESHOLD_UPPER_CAUTION, Value: 85},
				{Kind: v1.ThresholdKind_THRESHOLD_UPPER_CRITICAL, Value: 95},
			}}
	}
	ok, warn := v1.Health_HEALTH_OK, v1.Health_HEALTH_WARNING
	var got []Event
	const t0 = 1_767_225_600_000
	for i, s := range []*v1.Snapshot{
		snap(t0, true, "On", cpu(60, ok)),
		snap(t0+60_000, false, ""),
		snap(t0+120_000, true, "On", cpu(60, ok)),
		snap(t0+180_000, true, "On", cpu(87, warn)),
		snap(t0+240_000, true, "On", cpu(82, ok)),
		snap(t0+300_000, true, "Off"),
		snap(t0+360_000, true, "On"),
	} {
		s.Sequence = uint64(i + 1)
		got = ev.Observe(got, s, labels)
	}
	want := []string{
		`{"version":1,"kind":"bmc_down","bmc":"10.0.5.22","site":"ctc","rack":"i5","labels":{"position":"u22","rack":"i5","room":"r1","row":"r1-b","site":"ctc"},"protocol":"redfish","metric":"bmc_up","value":0,"previous":"up","current":"down","time_ms":1767225660000,"poller":"poller-1","error":"dial tcp 10.0.5.22:443: i/o timeout","error_class":"unreachable"}`,
		`{"version":1,"kind":"bmc_up","bmc":"10.0.5.22","site":"ctc","rack":"i5","labels":{"position":"u22","rack":"i5","room":"r1","row":"r1-b","site":"ctc"},"protocol":"redfish","metric":"bmc_up","value":1,"previous":"down","current":"up","time_ms":1767225720000,"poller":"poller-1"}`,
		`{"version":1,"kind":"health_worsened","bmc":"10.0.5.22","site":"ctc","rack":"i5","labels":{"position":"u22","rack":"i5","room":"r1","row":"r1-b","site":"ctc"},"protocol":"redfish","sensor":"CPU1 Temp","sensor_id":"1","sensor_kind":"temperature","metric":"bmc_sensor_health","value":1,"previous":"ok","current":"warning","time_ms":1767225780000,"poller":"poller-1"}`,
		`{"version":1,"kind":"threshold_crossed","bmc":"10.0.5.22","site":"ctc","rack":"i5","labels":{"position":"u22","rack":"i5","room":"r1","row":"r1-b","site":"ctc"},"protocol":"redfish","sensor":"CPU1 Temp","sensor_id":"1","sensor_kind":"temperature","metric":"bmc_temperature_celsius","series_labels":{"context":"cpu","sensor":"cpu1"},"value":87,"unit":"celsius","threshold":"upper_caution","threshold_value":85,"previous":"normal","current":"upper_caution","time_ms":1767225780000,"poller":"poller-1"}`,
		`{"version":1,"kind":"health_recovered","bmc":"10.0.5.22","site":"ctc","rack":"i5","labels":{"position":"u22","rack":"i5","room":"r1","row":"r1-b","site":"ctc"},"protocol":"redfish","sensor":"CPU1 Temp","sensor_id":"1","sensor_kind":"temperature","metric":"bmc_sensor_health","value":0,"previous":"warning","current":"ok","time_ms":1767225840000,"poller":"poller-1"}`,
		`{"version":1,"kind":"threshold_cleared","bmc":"10.0.5.22","site":"ctc","rack":"i5","labels":{"position":"u22","rack":"i5","room":"r1","row":"r1-b","site":"ctc"},"protocol":"redfish","sensor":"CPU1 Temp","sensor_id":"1","sensor_kind":"temperature","metric":"bmc_temperature_celsius","series_labels":{"context":"cpu","sensor":"cpu1"},"value":82,"unit":"celsius","threshold":"upper_caution","threshold_value":85,"previous":"upper_caution","current":"normal","time_ms":1767225840000,"poller":"poller-1"}`,
		`{"version":1,"kind":"power_off","bmc":"10.0.5.22","site":"ctc","rack":"i5","labels":{"position":"u22","rack":"i5","room":"r1","row":"r1-b","site":"ctc"},"protocol":"redfish","metric":"bmc_chassis_powered_on","value":0,"previous":"on","current":"off","time_ms":1767225900000,"poller":"poller-1"}`,
		`{"version":1,"kind":"power_on","bmc":"10.0.5.22","site":"ctc","rack":"i5","labels":{"position":"u22","rack":"i5","room":"r1","row":"r1-b","site":"ctc"},"protocol":"redfish","metric":"bmc_chassis_powered_on","value":1,"previous":"off","current":"on","time_ms":1767225960000,"poller":"poller-1"}`,
	}
	var lines []string
	for _, e := range got {
		b, err := json.Marshal(e)
		require.NoError(t, err)
		lines = append(lines, string(b))
		// And back: a consumer decoding into the same struct sees it all.
		var back Event
		require.NoError(t, json.Unmarshal(b, &back))
		require.Equal(t, e, back)
	}
	require.Equal(t, want, lines)
}

func TestEventsThresholdsInBaseUnits(t *testing.T) {
	ev := NewEvents()
	ev.Units = testUnits
	// A Fahrenheit sensor: the event speaks Celsius, like the series.
	r := v1.Reading{Name: "Inlet", Kind: v1.Kind_KIND_TEMPERATURE, Unit: "F", Value: 70,
		Thresholds: []v1.Threshold{{Kind: v1.ThresholdKind_THRESHOLD_UPPER_CRITICAL, Value: 104}}}
	s := &v1.Snapshot{BmcId: "b", Up: true, PollStartMs: 1, Readings: []v1.Reading{r}}
	require.Empty(t, ev.Observe(nil, s, nil))
	s.Readings[0].Value = 113
	got := ev.Observe(nil, s, nil)
	require.Len(t, got, 1)
	require.Equal(t, "bmc_temperature_celsius", got[0].Metric)
	require.InDelta(t, 45, got[0].Value, 1e-9)
	require.InDelta(t, 40, *got[0].ThresholdValue, 1e-9)
	require.Equal(t, "celsius", got[0].Unit)

	// A reading the schema has no series for keeps its raw unit.
	p := v1.Reading{Name: "Air", Kind: v1.Kind_KIND_PRESSURE, Unit: "Pa", Value: 10,
		Thresholds: []v1.Threshold{{Kind: v1.ThresholdKind_THRESHOLD_LOWER_CAUTION, Value: 20}, {Kind: v1.ThresholdKind_THRESHOLD_UPPER_FATAL, Value: math.NaN()}}}
	s.Readings = []v1.Reading{p}
	got = ev.Observe(nil, s, nil)
	require.Len(t, got, 1)
	require.Empty(t, got[0].Metric)
	require.Equal(t, "Pa", got[0].Unit)
	require.Equal(t, "lower_caution", got[0].Threshold)
	_, err := json.Marshal(got[0])
	require.NoError(t, err)

	// Without Units, events speak the BMC's units.
	raw := NewEvents()
	s.Readings = []v1.Reading{r}
	s.Readings[0].Value = 70
	require.Empty(t, raw.Observe(nil, s, nil))
	s.Readings[0].Value = 113
	got = raw.Observe(nil, s, nil)
	require.Len(t, got, 1)
	require.Empty(t, got[0].Metric)
	require.Equal(t, 113.0, got[0].Value)
	require.Equal(t, 104.0, *got[0].ThresholdValue)
	require.Equal(t, "F", got[0].Unit)
}

func TestNewNormMessage(t *testing.T) {
	labels := map[string]string{"site": "ctc", "rack": "i5"}
	samples := []series.Sample{
		seriesSample("srv-1", "bmc_up", 1000, 1, "rack", "i5", "site", "ctc"),
		seriesSample("srv-1", "bmc_temperature_celsius", 1000, 21.5, "context", "intake", "rack", "i5", "sensor", "Inlet", "site", "ctc"),
		seriesSample("srv-1", "bmc_fan_speed_rpm", 990, 7200, "fan", "Fan1A", "rack", "i5", "site", "ctc"),
		seriesSample("srv-1", "bmc_voltage_volts", 1000, staleMarker(), "rack", "i5", "sensor", "12V", "site", "ctc"),
	}
	m := NewNormMessage("srv-1", labels, 1000, samples)
	b, err := json.Marshal(m)
	require.NoError(t, err)
	require.JSONEq(t, `{
		"version": 1, "bmc": "srv-1", "labels": {"rack": "i5", "site": "ctc"}, "time_ms": 1000,
		"samples": [
			{"name": "bmc_up", "value": 1},
			{"name": "bmc_temperature_celsius", "labels": {"context": "intake", "sensor": "Inlet"}, "value": 21.5},
			{"name": "bmc_fan_speed_rpm", "labels": {"fan": "Fan1A"}, "value": 7200, "time_ms": 990}
		]
	}`, string(b))
	require.True(t, strings.HasPrefix(string(b), `{"version":1,`))
}

func TestEventsSteadyStateDoesNotAllocate(t *testing.T) {
	ev := NewEvents()
	ev.Units = testUnits
	s := eventsBenchSnapshot("srv-1", 1)
	ev.Observe(nil, s, nil)
	dst := make([]Event, 0, 4)
	allocs := testing.AllocsPerRun(100, func() {
		s.PollStartMs += 60_000
		dst = ev.Observe(dst[:0], s, nil)
	})
	require.Zero(t, allocs)
	require.Empty(t, dst)
}

// eventsBenchSnapshot is a healthy BMC with thresholds on every reading, some of
// them crossed (the steady state of a warm server).
func eventsBenchSnapshot(id string, t int64) *v1.Snapshot {
	s := &v1.Snapshot{BmcId: id, PollerId: "a", Protocol: protoRedfish, Up: true, PollStartMs: t,
		Info: map[string]string{"power_state": "On"}}
	for i := range 60 {
		r := evTemp(40+float64(i%50), 80, 90)
		r.Name, r.Id = fmt.Sprintf("Temp %d", i), fmt.Sprint(i)
		s.Readings = append(s.Readings, r)
	}
	for i := range 20 {
		r := evFan(5000)
		r.Name = fmt.Sprintf("Fan %d", i)
		s.Readings = append(s.Readings, r)
	}
	return s
}

func BenchmarkEventsObserve(b *testing.B) {
	const bmcs = 1000
	ev := NewEvents()
	ev.Units = testUnits
	snaps := make([]*v1.Snapshot, bmcs)
	for i := range snaps {
		snaps[i] = eventsBenchSnapshot(fmt.Sprintf("10.0.%d.%d", i/256, i%256), 1_700_000_000_000)
	}
	labels := map[string]string{"site": "ctc", "rack": "i5"}
	var dst []Event
	for _, s := range snaps { // warm up: measure the steady state
		dst = ev.Observe(dst[:0], s, labels)
	}
	var n, readings int
	b.ReportAllocs()
	for b.Loop() {
		s := snaps[n%bmcs]
		s.PollStartMs += 60_000
		dst = ev.Observe(dst[:0], s, labels)
		readings += len(s.Readings)
		n++
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(readings), "ns/reading")
}

// TestEventsOneProtocolPerSeries: a BMC polled over both protocols reads
// one inlet over each; the series is fed by Redfish, so the crossing is
// one event (from Redfish), not two. When IPMI takes the series over, its
// state is current: no stale event fires at the takeover.
func TestEventsOneProtocolPerSeries(t *testing.T) {
	n, err := NewNormaliser(NormaliserOptions{})
	require.NoError(t, err)
	ev := NewEvents()
	ev.Normaliser = n
	inlet := func(v float64) v1.Reading {
		return v1.Reading{Name: "Inlet Temp", Id: "4", Kind: v1.Kind_KIND_TEMPERATURE, Unit: "Cel", Context: "Intake", Value: v,
			Thresholds: []v1.Threshold{{Kind: v1.ThresholdKind_THRESHOLD_UPPER_CRITICAL, Value: 42}}}
	}
	snap := func(p v1.Protocol, t int64, v float64) *v1.Snapshot {
		return &v1.Snapshot{BmcId: "b", Protocol: p, Up: true, PollStartMs: t, Info: map[string]string{"vendor": "Acme"},
			Readings: []v1.Reading{inlet(v)}}
	}
	redfishFeeds := func(p v1.Protocol) func(string, map[string]string) bool {
		return func(metric string, labels map[string]string) bool {
			require.Equal(t, "bmc_temperature_celsius", metric)
			require.Equal(t, map[string]string{"context": "intake", "sensor": "intake"}, labels)
			return p == v1.Protocol_PROTOCOL_REDFISH
		}
	}
	var got []Event
	for i, v := range []float64{30, 45, 46} {
		for _, p := range []v1.Protocol{v1.Protocol_PROTOCOL_REDFISH, v1.Protocol_PROTOCOL_IPMI} {
			got = ev.ObserveFed(got, snap(p, int64(2*i+int(p)), v), nil, redfishFeeds(p))
		}
	}
	require.Len(t, got, 1, "one crossing, one event: %+v", got)
	require.Equal(t, EventThresholdCrossed, got[0].Kind)
	// IPMI takes the series over (Redfish down): it knows the sensor is
	// past its threshold already, and says nothing until it recovers.
	ipmiFeeds := func(string, map[string]string) bool { return true }
	got = ev.ObserveFed(got[:0], snap(v1.Protocol_PROTOCOL_IPMI, 10, 46), nil, ipmiFeeds)
	require.Empty(t, got)
	got = ev.ObserveFed(got[:0], snap(v1.Protocol_PROTOCOL_IPMI, 11, 30), nil, ipmiFeeds)
	require.Len(t, got, 1)
	require.Equal(t, EventThresholdCleared, got[0].Kind)
}
