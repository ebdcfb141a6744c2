package pipeline

import (
	"math"
	"strings"

	"github.com/prometheus/prometheus/prompb"

	"github.com/bmcstream/bmcstream/pkg/series"
	v1 "github.com/bmcstream/bmcstream/proto/bmcstream/v1"
)

// Contexts is the closed set of values of the `context` label of
// bmc_temperature_celsius.
var Contexts = []string{"intake", "exhaust", "cpu", "memory", "psu", "system_board", "gpu", "storage", "network", "other"}

// mapping says how one reading becomes a series.
type mapping struct {
	// base and unit make the metric name bmc_<base>_<unit>; thresholds
	// become bmc_<base>_<threshold>_<unit>.
	base, unit string
	// label is the name of the label that carries the sensor's name.
	label string
	// scale and div convert the raw unit into the base unit (v*scale/div,
	// dividing so 35 % becomes exactly 0.35); offset is added after.
	scale, div, offset float64
	// withContext adds the `context` label.
	withContext bool
}

// Stats counts what normalisation skipped, by reason.
type Stats struct {
	// Unmapped readings had a kind or unit the schema has no series for.
	Unmapped int
	// Invalid readings had a NaN or infinite value.
	Invalid int
}

// Normalise turns a decoded snapshot into samples, appending to dst.
// base are the labels every series of this BMC carries (bmc and inventory
// labels), sorted by name; they are copied, never retained.
//
// This is the first, unit-driven normalisation: kind and unit choose the
// metric, the Redfish PhysicalContext or the sensor name chooses the
// temperature context. Vendor-specific corrections come with the mapping
// data files.
func Normalise(dst []series.Sample, s *v1.Snapshot, base []prompb.Label, st *Stats) []series.Sample {
	t := s.PollStartMs
	up := 0.0
	if s.Up {
		up = 1
	}
	dst = appendSample(dst, base, "bmc_up", nil, t, up)
	if s.PollEndMs >= s.PollStartMs {
		dst = appendSample(dst, base, "bmc_poll_duration_seconds", nil, t, float64(s.PollEndMs-s.PollStartMs)/1000)
	}
	if len(s.Info) > 0 {
		info := []prompb.Label{
			{Name: "firmware", Value: s.Info["firmware"]},
			{Name: "model", Value: s.Info["model"]},
			{Name: "protocol", Value: protocolName(s.Protocol)},
			{Name: "serial", Value: s.Info["serial"]},
			{Name: "vendor", Value: s.Info["vendor"]},
		}
		dst = appendSample(dst, base, "bmc_info", info, t, 1)
		switch strings.ToLower(s.Info["power_state"]) {
		case "on":
			dst = appendSample(dst, base, "bmc_chassis_powered_on", nil, t, 1)
		case "off":
			dst = appendSample(dst, base, "bmc_chassis_powered_on", nil, t, 0)
		}
	}
	for i := range s.Readings {
		r := &s.Readings[i]
		ts := t
		if r.TimestampMs > 0 {
			ts = r.TimestampMs
		}
		m, ok := mapReading(r)
		if !ok {
			st.Unmapped++
			continue
		}
		if math.IsNaN(r.Value) || math.IsInf(r.Value, 0) {
			st.Invalid++
			continue
		}
		extra := []prompb.Label{{Name: m.label, Value: sensorName(r)}}
		if m.withContext {
			extra = append(extra, prompb.Label{Name: "context", Value: temperatureContext(r)})
		}
		name := "bmc_" + m.base + "_" + m.unit
		dst = appendSample(dst, base, name, extra, ts, m.convert(r.Value))
		for _, th := range r.Thresholds {
			tn, ok := thresholdNames[th.Kind]
			if !ok {
				continue
			}
			dst = appendSample(dst, base, "bmc_"+m.base+"_"+tn+"_"+m.unit, extra, ts, m.convert(th.Value))
		}
		if h, ok := healthValue(r.Health); ok {
			hl := []prompb.Label{{Name: "kind", Value: kindName(r.Kind)}, {Name: "sensor", Value: sensorName(r)}}
			dst = appendSample(dst, base, "bmc_sensor_health", hl, ts, h)
		}
	}
	return dst
}

func (m mapping) convert(v float64) float64 {
	v *= m.scale
	if m.div != 0 {
		v /= m.div
	}
	return v + m.offset
}

var thresholdNames = map[v1.ThresholdKind]string{
	v1.ThresholdKind_THRESHOLD_LOWER_CAUTION:  "lower_caution",
	v1.ThresholdKind_THRESHOLD_LOWER_CRITICAL: "lower_critical",
	v1.ThresholdKind_THRESHOLD_LOWER_FATAL:    "lower_fatal",
	v1.ThresholdKind_THRESHOLD_UPPER_CAUTION:  "upper_caution",
	v1.ThresholdKind_THRESHOLD_UPPER_CRITICAL: "upper_critical",
	v1.ThresholdKind_THRESHOLD_UPPER_FATAL:    "upper_fatal",
}

func healthValue(h v1.Health) (float64, bool) {
	switch h {
	case v1.Health_HEALTH_OK:
		return 0, true
	case v1.Health_HEALTH_WARNING:
		return 1, true
	case v1.Health_HEALTH_CRITICAL:
		return 2, true
	}
	return 0, false
}

func mapReading(r *v1.Reading) (mapping, bool) {
	u := strings.ToLower(strings.TrimSpace(r.Unit))
	switch r.Kind {
	case v1.Kind_KIND_TEMPERATURE:
		m := mapping{base: "temperature", unit: "celsius", label: "sensor", scale: 1, withContext: true}
		switch u {
		case "", "cel", "c", "celsius", "degrees c", "°c":
		case "k", "kelvin":
			m.offset = -273.15
		case "f", "degrees f", "fahrenheit":
			// (v-32)*5/9 = v*5/9 - 160/9
			m.scale, m.offset = 5.0/9, -160.0/9
		default:
			return m, false
		}
		return m, true
	case v1.Kind_KIND_FAN:
		switch u {
		case "rpm", "{rev}/min", "":
			return mapping{base: "fan_speed", unit: "rpm", label: "fan", scale: 1}, true
		case "%", "percent":
			return mapping{base: "fan_speed", unit: "ratio", label: "fan", scale: 1, div: 100}, true
		}
	case v1.Kind_KIND_POWER:
		m := mapping{unit: "watts", scale: 1}
		switch u {
		case "", "w", "watts":
		case "kw":
			m.scale = 1000
		default:
			return m, false
		}
		switch r.SensorType {
		case "PowerControl", "ChassisPower":
			m.base, m.label = "power", "sensor"
		case "PowerSupplyInput":
			m.base, m.label = "psu_input", "psu"
		case "PowerSupplyOutput":
			m.base, m.label = "psu_output", "psu"
		default:
			m.base, m.label = "sensor_power", "sensor"
		}
		return m, true
	case v1.Kind_KIND_VOLTAGE:
		switch u {
		case "", "v", "volts":
			return mapping{base: "voltage", unit: "volts", label: "sensor", scale: 1}, true
		case "mv":
			return mapping{base: "voltage", unit: "volts", label: "sensor", scale: 1, div: 1000}, true
		}
	case v1.Kind_KIND_CURRENT:
		switch u {
		case "", "a", "amps", "amperes":
			return mapping{base: "current", unit: "amperes", label: "sensor", scale: 1}, true
		case "ma":
			return mapping{base: "current", unit: "amperes", label: "sensor", scale: 1, div: 1000}, true
		}
	case v1.Kind_KIND_ENERGY:
		switch u {
		case "j", "joules":
			return mapping{base: "energy", unit: "joules", label: "sensor", scale: 1}, true
		case "kwh", "kw.h":
			return mapping{base: "energy", unit: "joules", label: "sensor", scale: 3.6e6}, true
		}
	case v1.Kind_KIND_HUMIDITY:
		if u == "%" || u == "percent" {
			return mapping{base: "humidity", unit: "ratio", label: "sensor", scale: 1, div: 100}, true
		}
	}
	return mapping{}, false
}

func sensorName(r *v1.Reading) string {
	if r.Name != "" {
		return r.Name
	}
	return r.Id
}

// temperatureContext maps the Redfish PhysicalContext, then the sensor
// name, onto the closed set in Contexts.
func temperatureContext(r *v1.Reading) string {
	switch strings.ToLower(r.Context) {
	case "intake", "room", "ambient":
		return "intake"
	case "exhaust":
		return "exhaust"
	case "cpu", "cpusubsystem":
		return "cpu"
	case "memory", "memorysubsystem":
		return "memory"
	case "powersupply", "powersubsystem", "voltageregulator":
		return "psu"
	case "systemboard", "baseboard", "chassis":
		return "system_board"
	case "gpu", "gpusubsystem", "accelerator":
		return "gpu"
	case "storagedevice", "storagesubsystem", "backplane":
		return "storage"
	case "networkingdevice", "networkinterface":
		return "network"
	}
	n := strings.ToLower(r.Name)
	switch {
	case strings.Contains(n, "inlet") || strings.Contains(n, "ambient") || strings.Contains(n, "intake"):
		return "intake"
	case strings.Contains(n, "exhaust") || strings.Contains(n, "outlet"):
		return "exhaust"
	case strings.Contains(n, "cpu") || strings.Contains(n, "proc"):
		return "cpu"
	case strings.Contains(n, "dimm") || strings.Contains(n, "mem"):
		return "memory"
	case strings.Contains(n, "psu") || strings.Contains(n, "power supply"):
		return "psu"
	case strings.Contains(n, "gpu"):
		return "gpu"
	}
	return "other"
}

func kindName(k v1.Kind) string {
	return strings.ToLower(strings.TrimPrefix(k.String(), "KIND_"))
}

func protocolName(p v1.Protocol) string {
	return strings.ToLower(strings.TrimPrefix(p.String(), "PROTOCOL_"))
}

// appendSample builds one sample's sorted label set: base, __name__ and
// extra. Labels in extra win over base labels of the same name.
func appendSample(dst []series.Sample, base []prompb.Label, name string, extra []prompb.Label, t int64, v float64) []series.Sample {
	ls := make([]prompb.Label, 0, len(base)+1+len(extra))
	ls = append(ls, prompb.Label{Name: "__name__", Value: name})
	for _, b := range base {
		if !has(extra, b.Name) {
			ls = append(ls, b)
		}
	}
	ls = append(ls, extra...)
	series.Sort(ls)
	return append(dst, series.Sample{Labels: ls, Hash: series.Hash(ls), T: t, V: v})
}

func has(ls []prompb.Label, name string) bool {
	for i := range ls {
		if ls[i].Name == name {
			return true
		}
	}
	return false
}
