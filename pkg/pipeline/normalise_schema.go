package pipeline

import (
	v1 "github.com/bmcstream/bmcstream/proto/bmcstream/v1"
)

// This file is the metric schema as code: the series a reading can become,
// their names, labels and help texts. docs/metrics.md describes the same
// schema for users; a test checks every family named here is documented
// there.

// Contexts is the closed set of values of the `context` label of
// bmc_temperature_celsius and bmc_temperature_margin_celsius. It is a
// read-only table: never modify it.
var Contexts = []string{"intake", "exhaust", "cpu", "memory", "psu", "system_board", "gpu", "storage", "network", "other"}

// place is a value of the context label, an index into Contexts.
type place uint8

const (
	placeIntake place = iota
	placeExhaust
	placeCPU
	placeMemory
	placePSU
	placeSystemBoard
	placeGPU
	placeStorage
	placeNetwork
	placeOther
	numPlaces
)

func (p place) String() string { return Contexts[p] }

// counted reports whether sensors at this place are numbered components
// (cpu1, psu2) rather than one spot (intake) or a catch-all (other).
func (p place) counted() bool {
	switch p {
	case placeCPU, placeMemory, placePSU, placeGPU, placeStorage, placeNetwork:
		return true
	}
	return false
}

func placeByName(s string) (place, bool) {
	for i, c := range Contexts {
		if c == s {
			return place(i), true
		}
	}
	return 0, false
}

// base is a base unit: the last word of a metric name.
type base uint8

const (
	baseNone base = iota
	baseCelsius
	baseRPM
	baseRatio
	baseWatts
	baseVolts
	baseAmperes
	baseJoules
	baseHertz
	basePascals
	baseCubicMetersPerSecond
	numBases
)

var baseNames = [numBases]string{
	baseCelsius:              "celsius",
	baseRPM:                  "rpm",
	baseRatio:                "ratio",
	baseWatts:                "watts",
	baseVolts:                "volts",
	baseAmperes:              "amperes",
	baseJoules:               "joules",
	baseHertz:                "hertz",
	basePascals:              "pascals",
	baseCubicMetersPerSecond: "cubic_meters_per_second",
}

func baseByName(s string) (base, bool) {
	for i, n := range baseNames {
		if n != "" && n == s {
			return base(i), true
		}
	}
	return baseNone, false
}

// kindNames names the physical kinds of readings as rule files spell them:
// the proto's Kind names without the prefix, lower case.
var kindNames = [...]string{
	v1.Kind_KIND_TEMPERATURE: "temperature",
	v1.Kind_KIND_FAN:         "fan",
	v1.Kind_KIND_POWER:       "power",
	v1.Kind_KIND_VOLTAGE:     "voltage",
	v1.Kind_KIND_CURRENT:     "current",
	v1.Kind_KIND_ENERGY:      "energy",
	v1.Kind_KIND_HUMIDITY:    "humidity",
	v1.Kind_KIND_FREQUENCY:   "frequency",
	v1.Kind_KIND_PERCENT:     "percent",
	v1.Kind_KIND_AIRFLOW:     "airflow",
	v1.Kind_KIND_PRESSURE:    "pressure",
	v1.Kind_KIND_DISCRETE:    "discrete",
}

func kindByName(s string) (v1.Kind, bool) {
	for i, n := range kindNames {
		if n != "" && n == s {
			return v1.Kind(i), true
		}
	}
	return v1.Kind_KIND_UNSPECIFIED, false
}

// class is what a reading measures once normalised; it chooses the series.
type class uint8

const (
	classNone class = iota
	classTemperature
	classTemperatureMargin
	classFan
	classChassisPower
	classPSUInput
	classPSUOutput
	classSensorPower
	classVoltage
	classCurrent
	classEnergy
	classHumidity
	classFrequency
	classAirflow
	classPressure
	numClasses
)

// classInfo describes the series of one class.
type classInfo struct {
	// name is the class as rule files spell it, and the `kind` label of
	// bmc_sensor_health and bmc_sensor_info.
	name string
	// stem and the base unit make the metric name bmc_<stem>_<base>;
	// thresholds are bmc_<stem>_<threshold>_<base>.
	stem string
	// label carries the canonical sensor name; empty for the one chassis
	// power series of a BMC.
	label string
	// context adds the `context` label.
	context bool
	// counter series are cumulative: named …_total, with no thresholds.
	counter bool
	// kind is the physical kind the class measures.
	kind v1.Kind
	// bases are the base units the class accepts.
	bases []base
	// help is the HELP text of the value series, %s replaced by the base
	// unit.
	help string
}

var classes = [numClasses]classInfo{
	classTemperature: {name: "temperature", stem: "temperature", label: "sensor", context: true, kind: v1.Kind_KIND_TEMPERATURE, bases: []base{baseCelsius},
		help: "Temperature a BMC sensor reads, in %s; context says where (intake air, exhaust air, a CPU...)."},
	classTemperatureMargin: {name: "temperature_margin", stem: "temperature_margin", label: "sensor", context: true, kind: v1.Kind_KIND_TEMPERATURE, bases: []base{baseCelsius},
		help: "Thermal headroom below a component's throttle point, in %s (Intel DTS and similar margins; positive is safe)."},
	classFan: {name: "fan", stem: "fan_speed", label: "fan", kind: v1.Kind_KIND_FAN, bases: []base{baseRPM, baseRatio},
		help: "Fan speed, in %s (ratio: duty cycle or share of the fan's maximum speed, 0 to 1)."},
	classChassisPower: {name: "chassis_power", stem: "power", kind: v1.Kind_KIND_POWER, bases: []base{baseWatts},
		help: "Input power of the whole chassis, in %s (Redfish PowerControl, IPMI DCMI or the power unit sensor)."},
	classPSUInput: {name: "psu_input", stem: "psu_input", label: "psu", kind: v1.Kind_KIND_POWER, bases: []base{baseWatts},
		help: "Input power of one power supply, in %s."},
	classPSUOutput: {name: "psu_output", stem: "psu_output", label: "psu", kind: v1.Kind_KIND_POWER, bases: []base{baseWatts},
		help: "Output power of one power supply, in %s."},
	classSensorPower: {name: "sensor_power", stem: "sensor_power", label: "sensor", kind: v1.Kind_KIND_POWER, bases: []base{baseWatts},
		help: "Power a BMC sensor reads that is neither the chassis' nor a power supply's (a CPU, memory, a GPU...), in %s."},
	classVoltage: {name: "voltage", stem: "voltage", label: "sensor", kind: v1.Kind_KIND_VOLTAGE, bases: []base{baseVolts},
		help: "Voltage a BMC sensor reads, in %s."},
	classCurrent: {name: "current", stem: "current", label: "sensor", kind: v1.Kind_KIND_CURRENT, bases: []base{baseAmperes},
		help: "Current a BMC sensor reads, in %s."},
	classEnergy: {name: "energy", stem: "energy", label: "sensor", counter: true, kind: v1.Kind_KIND_ENERGY, bases: []base{baseJoules},
		help: "Energy a BMC has counted since its counter was reset, in %s."},
	classHumidity: {name: "humidity", stem: "humidity", label: "sensor", kind: v1.Kind_KIND_HUMIDITY, bases: []base{baseRatio},
		help: "Relative humidity a BMC sensor reads, as a %s (0 to 1)."},
	classFrequency: {name: "frequency", stem: "frequency", label: "sensor", kind: v1.Kind_KIND_FREQUENCY, bases: []base{baseHertz},
		help: "Frequency a BMC sensor reads, in %s."},
	classAirflow: {name: "airflow", stem: "airflow", label: "sensor", kind: v1.Kind_KIND_AIRFLOW, bases: []base{baseCubicMetersPerSecond},
		help: "Air flow through the chassis, in %s."},
	classPressure: {name: "pressure", stem: "pressure", label: "sensor", kind: v1.Kind_KIND_PRESSURE, bases: []base{basePascals},
		help: "Pressure a BMC sensor reads, in %s."},
}

func classByName(s string) (class, bool) {
	for i := range classes {
		if classes[i].name != "" && classes[i].name == s {
			return class(i), true
		}
	}
	return classNone, false
}

// defaultClass is the class of a reading of kind k no rule classifies.
func defaultClass(k v1.Kind) class {
	for i := range classes {
		c := class(i)
		// Power defaults to a component's power: the chassis' and the
		// PSUs' are chosen by sensor type, entity or name.
		if classes[i].kind == k && c != classTemperatureMargin && c != classChassisPower && c != classPSUInput && c != classPSUOutput {
			return c
		}
	}
	return classNone
}

func (c class) accepts(b base) bool {
	for _, x := range classes[c].bases {
		if x == b {
			return true
		}
	}
	return false
}

// thresholdWords names the proto's threshold kinds in metric names.
var thresholdWords = [...]string{
	v1.ThresholdKind_THRESHOLD_LOWER_CAUTION:  "lower_caution",
	v1.ThresholdKind_THRESHOLD_LOWER_CRITICAL: "lower_critical",
	v1.ThresholdKind_THRESHOLD_LOWER_FATAL:    "lower_fatal",
	v1.ThresholdKind_THRESHOLD_UPPER_CAUTION:  "upper_caution",
	v1.ThresholdKind_THRESHOLD_UPPER_CRITICAL: "upper_critical",
	v1.ThresholdKind_THRESHOLD_UPPER_FATAL:    "upper_fatal",
}

const numThresholdKinds = len(thresholdWords)

// flipped is the threshold of the opposite side: a conversion that negates
// values (a margin read as a negative temperature) turns an upper limit
// into a lower one.
func flipped(k v1.ThresholdKind) v1.ThresholdKind {
	switch k {
	case v1.ThresholdKind_THRESHOLD_LOWER_CAUTION:
		return v1.ThresholdKind_THRESHOLD_UPPER_CAUTION
	case v1.ThresholdKind_THRESHOLD_LOWER_CRITICAL:
		return v1.ThresholdKind_THRESHOLD_UPPER_CRITICAL
	case v1.ThresholdKind_THRESHOLD_LOWER_FATAL:
		return v1.ThresholdKind_THRESHOLD_UPPER_FATAL
	case v1.ThresholdKind_THRESHOLD_UPPER_CAUTION:
		return v1.ThresholdKind_THRESHOLD_LOWER_CAUTION
	case v1.ThresholdKind_THRESHOLD_UPPER_CRITICAL:
		return v1.ThresholdKind_THRESHOLD_LOWER_CRITICAL
	case v1.ThresholdKind_THRESHOLD_UPPER_FATAL:
		return v1.ThresholdKind_THRESHOLD_LOWER_FATAL
	}
	return k
}

// Names of the series that do not come from one reading.
const (
	metricUp            = "bmc_up"
	metricPollDuration  = "bmc_poll_duration_seconds"
	metricInfo          = "bmc_info"
	metricPoweredOn     = "bmc_chassis_powered_on"
	metricChassisFault  = "bmc_chassis_fault"
	metricChassisHealth = "bmc_chassis_health"
	metricSensorHealth  = "bmc_sensor_health"
	metricSensorInfo    = "bmc_sensor_info"
	metricPSUPresent    = "bmc_psu_present"
	metricPSUFailed     = "bmc_psu_failed"
)

// chassisSensor is the sensor label of the chassis power reading in
// bmc_sensor_health and bmc_sensor_info (its value series has none).
const chassisSensor = "chassis"

// family is one metric family as an exposition shows it.
type family struct {
	name, typ, help string
}

// headFamilies are the families that do not come from one reading.
var headFamilies = []family{
	{metricUp, "gauge", "Whether the BMC answered its last poll over this protocol (1) or not (0)."},
	{metricPollDuration, "gauge", "How long the last poll of the BMC over this protocol took, in seconds."},
	{metricInfo, "gauge", "Identity of the BMC as the protocol reports it; always 1."},
	{metricPoweredOn, "gauge", "Whether the chassis is powered on (1) or off (0)."},
	{metricChassisFault, "gauge", "Whether the BMC reports a chassis fault of this kind (1) or not (0)."},
	{metricChassisHealth, "gauge", "The BMC's rolled-up chassis health: 0 ok, 1 warning, 2 critical."},
	{metricSensorHealth, "gauge", "The BMC's verdict on one sensor: 0 ok, 1 warning, 2 critical."},
	{metricPSUPresent, "gauge", "Whether a power supply is present (1) or its slot is empty (0), from its IPMI discrete sensor."},
	{metricPSUFailed, "gauge", "Whether a power supply reports a failure or lost or out-of-range input (1) or not (0), from its IPMI discrete sensor."},
	{metricSensorInfo, "gauge", "Maps a sensor's canonical label to the vendor's own name for it over this protocol; always 1."},
}

// metricName is the value series of class c in base unit b.
func metricName(c class, b base) string {
	n := "bmc_" + classes[c].stem + "_" + baseNames[b]
	if classes[c].counter {
		n += "_total"
	}
	return n
}

// thresholdName is the series of threshold k of class c in base unit b.
func thresholdName(c class, b base, k v1.ThresholdKind) string {
	return "bmc_" + classes[c].stem + "_" + thresholdWords[k] + "_" + baseNames[b]
}

// families lists every family the schema can produce, value and threshold
// series included, for documentation and exposition.
func families() []family {
	out := append([]family(nil), headFamilies...)
	for c := class(1); c < numClasses; c++ {
		ci := &classes[c]
		for _, b := range ci.bases {
			typ := "gauge"
			if ci.counter {
				typ = "counter"
			}
			out = append(out, family{metricName(c, b), typ, sprintfUnit(ci.help, baseNames[b])})
			if ci.counter {
				continue
			}
			for k := range thresholdWords {
				if thresholdWords[k] == "" {
					continue
				}
				tk := v1.ThresholdKind(k)
				out = append(out, family{thresholdName(c, b, tk), "gauge",
					"The BMC's own " + spaced(thresholdWords[k]) + " threshold for " + metricName(c, b) + ", in " + spaced(baseNames[b]) + "."})
			}
		}
	}
	return out
}

func sprintfUnit(help, unit string) string {
	for i := 0; i+1 < len(help); i++ {
		if help[i] == '%' && help[i+1] == 's' {
			return help[:i] + spaced(unit) + help[i+2:]
		}
	}
	return help
}

func spaced(s string) string {
	b := []byte(s)
	for i := range b {
		if b[i] == '_' {
			b[i] = ' '
		}
	}
	return string(b)
}
