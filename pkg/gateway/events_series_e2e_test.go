package gateway_test

import (
	"context"
	"encoding/json"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/stretchr/testify/require"

	"github.com/bmcstream/bmcstream/internal/synth"
	"github.com/bmcstream/bmcstream/internal/testbed"
	v1 "github.com/bmcstream/bmcstream/proto/bmcstream/v1"
)

// TestEventsSpeakTheSeries runs snapshots through a gateway's automation
// stream and checks every field docs/automation.md shows for a
// threshold_crossed event, against a reading whose BMC speaks Fahrenheit:
// the event names the series the sinks get (metric and its labels) and
// carries value and threshold in its base unit, as the samples in
// Prometheus; and a discrete power supply sensor's health event carries
// its asserted states.
func TestEventsSpeakTheSeries(t *testing.T) {
	t.Parallel()
	prom := testbed.StartPrometheus(t)
	srv := testbed.StartNATS(t)
	pub, _ := publisher(t, srv.ClientURL())
	fleet := synth.NewFleet(1)
	b := fleet.BMCs[0]

	nc, err := nats.Connect(srv.ClientURL())
	require.NoError(t, err)
	defer nc.Close()
	var mu sync.Mutex
	var raw []map[string]any
	_, err = nc.Subscribe("bmc.v1.events.>", func(m *nats.Msg) {
		var e map[string]any
		require.NoError(t, json.Unmarshal(m.Data, &e))
		mu.Lock()
		raw = append(raw, e)
		mu.Unlock()
	})
	require.NoError(t, err)
	require.NoError(t, nc.Flush())
	_, reg := startGatewayInProcess(t, srv.ClientURL(), writeInventory(t, fleet), prom.WriteURL(), "")

	snap := func(seq uint64, at time.Time, inletF float64, psu v1.Health, psuState string) *v1.Snapshot {
		s := fleet.Snapshot(0, at, "poller-1", 1, seq)
		// The BMC reports its inlet in °F with a caution at 95 °F (35 °C).
		s.Readings[0].Unit, s.Readings[0].Value = "F", inletF
		s.Readings[0].Thresholds = []v1.Threshold{{Kind: v1.ThresholdKind_THRESHOLD_UPPER_CAUTION, Value: 95}}
		s.Readings = append(s.Readings, v1.Reading{Name: "PS1 Status", Id: "40", Kind: v1.Kind_KIND_DISCRETE, SensorType: "Power Supply",
			EntityId: 0x0A, EntityInstance: 1, Value: 1, Health: psu, State: psuState},
			// A power-good line typed Voltage: counted, never volts.
			v1.Reading{Name: "PWR_GOOD_P1V8", Id: "41", Kind: v1.Kind_KIND_VOLTAGE, Unit: "V", Value: 1})
		return s
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	t0 := time.Now().Add(-time.Minute).Truncate(time.Second)
	require.NoError(t, pub.Publish(ctx, snap(1, t0, 71.6, v1.Health_HEALTH_OK, "presence_detected")))
	t1 := t0.Add(10 * time.Second)
	require.NoError(t, pub.Publish(ctx, snap(2, t1, 104, v1.Health_HEALTH_CRITICAL, "presence_detected,failure_detected")))

	find := func(kind string) map[string]any {
		mu.Lock()
		defer mu.Unlock()
		for _, e := range raw {
			if e["kind"] == kind {
				return e
			}
		}
		return nil
	}
	require.Eventually(t, func() bool { return find("threshold_crossed") != nil && find("health_worsened") != nil }, 20*time.Second, 20*time.Millisecond)

	crossed := find("threshold_crossed")
	require.Equal(t, map[string]any{
		"version":         float64(1),
		"kind":            "threshold_crossed",
		"bmc":             b.ID,
		"site":            b.Labels["site"],
		"rack":            b.Labels["rack"],
		"labels":          toAny(b.Labels),
		"protocol":        "redfish",
		"sensor":          "Inlet Temp",
		"sensor_id":       "0",
		"sensor_kind":     "temperature",
		"metric":          "bmc_temperature_celsius",
		"series_labels":   map[string]any{"sensor": "intake", "context": "intake"},
		"value":           float64(40),
		"unit":            "celsius",
		"threshold":       "upper_caution",
		"threshold_value": float64(35),
		"previous":        "normal",
		"current":         "upper_caution",
		"time_ms":         float64(t1.UnixMilli()),
		"poller":          "poller-1",
	}, crossed)

	health := find("health_worsened")
	require.Equal(t, "PS1 Status", health["sensor"])
	require.Equal(t, "bmc_sensor_health", health["metric"])
	require.Equal(t, float64(2), health["value"])
	require.Equal(t, "ok", health["previous"])
	require.Equal(t, "critical", health["current"])
	require.Equal(t, "presence_detected,failure_detected", health["state"])

	// The event's series is the one Prometheus holds, in the same unit.
	prom.WaitFor(ctx, t, `bmc_temperature_celsius{bmc="`+b.ID+`",sensor="intake",context="intake"} == 40`, func(s []testbed.Series) bool { return len(s) == 1 })
	prom.WaitFor(ctx, t, `bmc_psu_failed{bmc="`+b.ID+`",psu="psu1"} == 1`, func(s []testbed.Series) bool { return len(s) == 1 })

	// What made no series is counted by reason, per sink.
	require.Eventually(t, func() bool {
		return testbed.MustMetricValue(t, reg, "bmcstream_gateway_readings_skipped_total", "reason", "status_signal", "sink", "prom") == 2
	}, 10*time.Second, 20*time.Millisecond)
	require.Zero(t, testbed.MustMetricValue(t, reg, "bmcstream_gateway_readings_skipped_total", "reason", "unmapped", "sink", "prom"))
}

func toAny(m map[string]string) map[string]any {
	out := make(map[string]any, len(m))
	for k, v := range m {
		out[k] = v
	}
	return out
}
