package pipeline

import (
	"strings"

	v1 "github.com/bmcstream/bmcstream/proto/bmcstream/v1"
)

// This file keeps the first, context-free unit mapping for the events
// stage (events.go), which describes a reading by the series it feeds
// without a Normaliser at hand. It agrees with the Normaliser on metric
// names for the common cases; the Normaliser's rule files are the
// reference. TODO(lead): give Events a *Normaliser and drop this file.

// mapping says how one reading becomes a series, without vendor context.
type mapping struct {
	// base and unit make the metric name bmc_<base>_<unit>.
	base, unit string
	// scale and div convert the raw unit into the base unit (v*scale/div,
	// dividing so 35 % becomes exactly 0.35); offset is added after.
	scale, div, offset float64
}

func (m mapping) convert(v float64) float64 {
	v *= m.scale
	if m.div != 0 {
		v /= m.div
	}
	return v + m.offset
}

// mapReading maps a reading by kind, unit and sensor type alone.
func mapReading(r *v1.Reading) (mapping, bool) {
	u := strings.ToLower(strings.TrimSpace(r.Unit))
	switch r.Kind {
	case v1.Kind_KIND_TEMPERATURE:
		m := mapping{base: "temperature", unit: "celsius", scale: 1}
		switch u {
		case "", "cel", "c", "celsius", "degrees c", "°c":
		case "k", "kelvin", "degrees k":
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
			return mapping{base: "fan_speed", unit: "rpm", scale: 1}, true
		case "%", "percent":
			return mapping{base: "fan_speed", unit: "ratio", scale: 1, div: 100}, true
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
			m.base = "power"
		case "PowerSupplyInput":
			m.base = "psu_input"
		case "PowerSupplyOutput":
			m.base = "psu_output"
		default:
			m.base = "sensor_power"
		}
		return m, true
	case v1.Kind_KIND_VOLTAGE:
		switch u {
		case "", "v", "volts":
			return mapping{base: "voltage", unit: "volts", scale: 1}, true
		case "mv":
			return mapping{base: "voltage", unit: "volts", scale: 1, div: 1000}, true
		}
	case v1.Kind_KIND_CURRENT:
		switch u {
		case "", "a", "amps", "amperes":
			return mapping{base: "current", unit: "amperes", scale: 1}, true
		case "ma":
			return mapping{base: "current", unit: "amperes", scale: 1, div: 1000}, true
		}
	case v1.Kind_KIND_ENERGY:
		switch u {
		case "j", "joules":
			return mapping{base: "energy", unit: "joules", scale: 1}, true
		case "kwh", "kw.h":
			return mapping{base: "energy", unit: "joules", scale: 3.6e6}, true
		}
	case v1.Kind_KIND_HUMIDITY:
		if u == "%" || u == "percent" {
			return mapping{base: "humidity", unit: "ratio", scale: 1, div: 100}, true
		}
	}
	return mapping{}, false
}
