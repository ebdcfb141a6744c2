package corpus

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/bmcstream/bmcstream/pkg/pipeline"
	"github.com/bmcstream/bmcstream/pkg/sources"
	v1 "github.com/bmcstream/bmcstream/proto/bmcstream/v1"
)

// The IPMI dumps are not served (neither is a byte-level SDR): each is
// turned into the readings the IPMI source delivers for such sensors
// (pkg/sources/ipmi: unit names, kinds, thresholds, ids; docs/metrics.md,
// "Discrete sensors": asserted-state bitmask and state names), plus the
// drops it reports, and then normalised and checked like a Redfish capture.

// ipmiDump is one converted dump: the readings, the drops, and how many
// sensors the dump listed.
type ipmiDump struct {
	readings []v1.Reading
	drops    []sources.Drop
	listed   int
}

// ipmiConverters convert each file under testdata/ipmi, by name.
var ipmiConverters = map[string]func([]byte) (ipmiDump, error){
	"asrockrack-e3c246d4i-nl-megarac-api-sensors.json": megaracSensors,
	"ibm-systemx-ipmitool-sdr.txt":                     ipmitoolSDR,
}

// megaracSensor is one entry of AMI MegaRAC's /api/sensors, which mirrors
// the sensor's SDR and its last Get Sensor Reading.
type megaracSensor struct {
	SensorNumber  uint8   `json:"sensor_number"`
	Name          string  `json:"name"`
	OwnerID       uint8   `json:"owner_id"`
	OwnerLUN      uint8   `json:"owner_lun"`
	TypeNumber    uint8   `json:"type_number"`
	Reading       float64 `json:"reading"`
	DiscreteState uint8   `json:"discrete_state"`
	Unit          string  `json:"unit"`
	LNR           float64 `json:"lower_non_recoverable_threshold"`
	LCR           float64 `json:"lower_critical_threshold"`
	LNC           float64 `json:"lower_non_critical_threshold"`
	UNC           float64 `json:"higher_non_critical_threshold"`
	UCR           float64 `json:"higher_critical_threshold"`
	UNR           float64 `json:"higher_non_recoverable_threshold"`
}

// ipmiUnits maps the dumps' unit spellings onto the IPMI source's unit
// names (the IPMI unit type names) and kinds.
var ipmiUnits = map[string]struct {
	unit string
	kind v1.Kind
}{
	"°c": {"degrees C", v1.Kind_KIND_TEMPERATURE}, "degrees c": {"degrees C", v1.Kind_KIND_TEMPERATURE},
	"v": {"Volts", v1.Kind_KIND_VOLTAGE}, "volts": {"Volts", v1.Kind_KIND_VOLTAGE},
	"a": {"Amps", v1.Kind_KIND_CURRENT}, "amps": {"Amps", v1.Kind_KIND_CURRENT},
	"w": {"Watts", v1.Kind_KIND_POWER}, "watts": {"Watts", v1.Kind_KIND_POWER},
	"rpm":  {"RPM", v1.Kind_KIND_FAN},
	"feet": {"feet", v1.Kind_KIND_UNSPECIFIED},
}

// megaracSensors converts a MegaRAC /api/sensors dump. A threshold of 0.0
// means the sensor has none (MegaRAC prints every threshold); a sensor
// with no known unit is discrete, its reading the asserted-state bitmask
// (bit 15 is not a state offset: offsets run 0-14).
func megaracSensors(b []byte) (ipmiDump, error) {
	var ss []megaracSensor
	if err := json.Unmarshal(b, &ss); err != nil {
		return ipmiDump{}, err
	}
	d := ipmiDump{listed: len(ss)}
	for _, s := range ss {
		id := fmt.Sprintf("0x%02x", s.SensorNumber)
		if s.OwnerID != 0x20 || s.OwnerLUN != 0 {
			id = fmt.Sprintf("0x%02x.%d.0x%02x", s.OwnerID, s.OwnerLUN, s.SensorNumber)
		}
		r := v1.Reading{Name: s.Name, Id: id, SensorType: ipmiSensorType(s.TypeNumber), State: "Enabled"}
		u, ok := ipmiUnits[strings.ToLower(s.Unit)]
		if !ok {
			states := uint16(s.Reading) & 0x7FFF
			r.Kind, r.Value = v1.Kind_KIND_DISCRETE, float64(states)
			r.State, r.Health = discreteStates(s.TypeNumber, s.DiscreteState, states)
			d.readings = append(d.readings, r)
			continue
		}
		r.Kind, r.Unit, r.Value = u.kind, u.unit, s.Reading
		for _, th := range []struct {
			k v1.ThresholdKind
			v float64
		}{
			{v1.ThresholdKind_THRESHOLD_LOWER_CAUTION, s.LNC}, {v1.ThresholdKind_THRESHOLD_LOWER_CRITICAL, s.LCR},
			{v1.ThresholdKind_THRESHOLD_LOWER_FATAL, s.LNR}, {v1.ThresholdKind_THRESHOLD_UPPER_CAUTION, s.UNC},
			{v1.ThresholdKind_THRESHOLD_UPPER_CRITICAL, s.UCR}, {v1.ThresholdKind_THRESHOLD_UPPER_FATAL, s.UNR},
		} {
			if th.v != 0 {
				r.Thresholds = append(r.Thresholds, v1.Threshold{Kind: th.k, Value: th.v})
			}
		}
		r.Health = thresholdHealth(r.Value, r.Thresholds)
		d.readings = append(d.readings, r)
	}
	return d, nil
}

// thresholdHealth is the health the BMC's threshold comparison gives: at
// or beyond a critical or fatal threshold critical, a caution one warning.
func thresholdHealth(v float64, ths []v1.Threshold) v1.Health {
	h := v1.Health_HEALTH_OK
	for _, th := range ths {
		var beyond bool
		switch th.Kind {
		case v1.ThresholdKind_THRESHOLD_LOWER_CAUTION, v1.ThresholdKind_THRESHOLD_LOWER_CRITICAL, v1.ThresholdKind_THRESHOLD_LOWER_FATAL:
			beyond = v <= th.Value
		default:
			beyond = v >= th.Value
		}
		if !beyond {
			continue
		}
		switch th.Kind {
		case v1.ThresholdKind_THRESHOLD_LOWER_CAUTION, v1.ThresholdKind_THRESHOLD_UPPER_CAUTION:
			h = max(h, v1.Health_HEALTH_WARNING)
		default:
			h = v1.Health_HEALTH_CRITICAL
		}
	}
	return h
}

// ipmiSensorType names the sensor types the dumps hold as the IPMI source
// does (§42.2, Table 42-3).
func ipmiSensorType(t uint8) string {
	switch t {
	case 0x01:
		return "Temperature"
	case 0x02:
		return "Voltage"
	case 0x03:
		return "Current"
	case 0x04:
		return "Fan"
	case 0x07:
		return "Processor"
	case 0x08:
		return "Power Supply"
	}
	return fmt.Sprintf("0x%02x", t)
}

// processorStates are the Processor sensor-specific offsets (Table 42-3).
var processorStates = []string{
	"ierr", "thermal_trip", "frb1_bist_failure", "frb2_hang", "frb3_failure", "configuration_error",
	"uncorrectable_cpu_complex_error", "presence_detected", "disabled", "terminator_presence",
	"throttled", "uncorrectable_machine_check", "correctable_machine_check",
}

// discreteStates names the asserted offsets of a discrete reading and
// derives its health, as docs/metrics.md ("Discrete sensors") defines them
// for the states these dumps can hold.
func discreteStates(sensorType, eventType uint8, states uint16) (string, v1.Health) {
	var names []string
	h := v1.Health_HEALTH_OK
	for n := range 15 {
		if states&(1<<n) == 0 {
			continue
		}
		name := "state_" + strconv.Itoa(n)
		if sensorType == 0x07 && eventType == 0x6F && n < len(processorStates) {
			name = processorStates[n]
		}
		switch name {
		case "ierr", "thermal_trip", "uncorrectable_cpu_complex_error", "uncorrectable_machine_check",
			"frb1_bist_failure", "frb2_hang", "frb3_failure":
			h = v1.Health_HEALTH_CRITICAL
		case "configuration_error", "throttled":
			h = max(h, v1.Health_HEALTH_WARNING)
		}
		names = append(names, name)
	}
	return strings.Join(names, ","), h
}

// ipmitoolSDR converts `ipmitool sdr` output: "name | value unit |
// status". A discrete sensor prints its state bytes ("0x00": none
// asserted); "Not Readable" is a reading the BMC flagged unavailable, a
// null drop. ipmitool sdr prints no sensor numbers or types: the name
// stands in for the id, and a discrete sensor's type is unknown.
func ipmitoolSDR(b []byte) (ipmiDump, error) {
	var d ipmiDump
	sc := bufio.NewScanner(bytes.NewReader(b))
	for line := 1; sc.Scan(); line++ {
		if strings.TrimSpace(sc.Text()) == "" {
			continue
		}
		f := strings.Split(sc.Text(), "|")
		if len(f) != 3 {
			return d, fmt.Errorf("line %d: %d fields, want 3", line, len(f))
		}
		d.listed++
		name, val, status := strings.TrimSpace(f[0]), strings.TrimSpace(f[1]), strings.TrimSpace(f[2])
		r := v1.Reading{Name: name, Id: name, State: "Enabled", Health: sdrHealth(status)}
		switch {
		case val == "Not Readable" || status == "ns":
			d.drops = append(d.drops, sources.Drop{Reason: sources.DropNull, Name: name, ID: name, Detail: val})
			continue
		case strings.HasPrefix(val, "0x"):
			st, err := strconv.ParseUint(val[2:], 16, 16)
			if err != nil {
				return d, fmt.Errorf("line %d: state %q: %w", line, val, err)
			}
			r.Kind, r.Value = v1.Kind_KIND_DISCRETE, float64(st)
			r.State, _ = discreteStates(0, 0, uint16(st))
			r.Health = sdrHealth(status)
		default:
			num, unit, _ := strings.Cut(val, " ")
			v, err := strconv.ParseFloat(num, 64)
			if err != nil {
				return d, fmt.Errorf("line %d: value %q: %w", line, val, err)
			}
			u, ok := ipmiUnits[strings.ToLower(unit)]
			if !ok {
				return d, fmt.Errorf("line %d: unit %q unknown", line, unit)
			}
			r.Kind, r.Unit, r.Value = u.kind, u.unit, v
		}
		d.readings = append(d.readings, r)
	}
	return d, sc.Err()
}

// sdrHealth maps ipmitool's status column (ok, nc, cr, nr).
func sdrHealth(status string) v1.Health {
	switch status {
	case "nc":
		return v1.Health_HEALTH_WARNING
	case "cr", "nr":
		return v1.Health_HEALTH_CRITICAL
	}
	return v1.Health_HEALTH_OK
}

// TestIPMICorpus converts each IPMI dump, normalises its readings and
// checks the invariants and goldens of the Redfish captures.
func TestIPMICorpus(t *testing.T) {
	ents, err := os.ReadDir(filepath.Join("testdata", "ipmi"))
	require.NoError(t, err)
	norm, err := pipeline.NewNormaliser(pipeline.NormaliserOptions{})
	require.NoError(t, err)
	for _, e := range ents {
		t.Run(e.Name(), func(t *testing.T) {
			t.Parallel()
			convert, ok := ipmiConverters[e.Name()]
			require.True(t, ok, "testdata/ipmi/%s has a converter in ipmiConverters", e.Name())
			b, err := os.ReadFile(filepath.Join("testdata", "ipmi", e.Name()))
			require.NoError(t, err)
			d, err := convert(b)
			require.NoError(t, err)
			name := "ipmi-" + strings.TrimSuffix(e.Name(), filepath.Ext(e.Name()))
			snap := &v1.Snapshot{
				BmcId: name, Protocol: v1.Protocol_PROTOCOL_IPMI, PollerId: "corpus", Up: true,
				PollStartMs: pollStart, PollEndMs: pollStart + 1000, Readings: d.readings,
			}
			var st pipeline.Stats
			ss := norm.Normalise(nil, snap, baseLabels(name), &st)
			t.Logf("%s: %d sensors listed, %d readings, %d series, drops %s, normaliser %+v",
				name, d.listed, len(d.readings), len(ss), dropSummary(d.drops), st)
			require.Equal(t, d.listed, len(d.readings)+len(d.drops), "every sensor listed is a reading or a drop")
			for _, r := range d.readings {
				require.False(t, math.IsNaN(r.Value), r.Name)
			}

			t.Run("golden", func(t *testing.T) { checkGolden(t, name, expoLines(ss)) })
			t.Run("normaliser_accounts", func(t *testing.T) { report(t, normaliserAccounts(t, snap, name)) })
			for _, inv := range seriesInvariants {
				t.Run(inv.name, func(t *testing.T) { report(t, inv.check(ss)) })
			}
			t.Run("promtool", func(t *testing.T) { promtoolCheck(t, ss) })
		})
	}
}

// TestIPMIConverters pins what the converters make of each quirk of the
// dumps.
func TestIPMIConverters(t *testing.T) {
	d, err := megaracSensors([]byte(`[
		{"sensor_number": 1, "name": "3VSB", "owner_id": 32, "reading": 3.36, "unit": "V", "type_number": 2,
		 "lower_non_recoverable_threshold": 2.82, "lower_critical_threshold": 2.97, "lower_non_critical_threshold": 0.0,
		 "higher_non_critical_threshold": 0.0, "higher_critical_threshold": 3.63, "higher_non_recoverable_threshold": 3.78},
		{"sensor_number": 2, "name": "CPU Temp", "owner_id": 32, "reading": 101, "unit": "°C", "type_number": 1,
		 "higher_non_critical_threshold": 99.0, "higher_critical_threshold": 100.0},
		{"sensor_number": 153, "name": "CPU_CATERR", "owner_id": 32, "reading": 32768.0, "unit": "unknown", "type_number": 7, "discrete_state": 111},
		{"sensor_number": 154, "name": "CPU_THERMTRIP", "owner_id": 32, "reading": 32770.0, "unit": "unknown", "type_number": 7, "discrete_state": 111}
	]`))
	require.NoError(t, err)
	require.Len(t, d.readings, 4)
	vsb := d.readings[0]
	require.Equal(t, "0x01", vsb.Id)
	require.Equal(t, v1.Kind_KIND_VOLTAGE, vsb.Kind)
	require.Equal(t, "Volts", vsb.Unit)
	require.Len(t, vsb.Thresholds, 4, "0.0 means no threshold")
	require.Equal(t, v1.Health_HEALTH_OK, vsb.Health)
	require.Equal(t, "degrees C", d.readings[1].Unit)
	require.Equal(t, v1.Health_HEALTH_CRITICAL, d.readings[1].Health, "at its upper critical threshold")
	caterr := d.readings[2]
	require.Equal(t, v1.Kind_KIND_DISCRETE, caterr.Kind)
	require.Equal(t, "Processor", caterr.SensorType)
	require.Zero(t, caterr.Value, "bit 15 is no state")
	require.Empty(t, caterr.State)
	trip := d.readings[3]
	require.Equal(t, float64(2), trip.Value)
	require.Equal(t, "thermal_trip", trip.State)
	require.Equal(t, v1.Health_HEALTH_CRITICAL, trip.Health)

	d, err = ipmitoolSDR([]byte("Ambient Temp     | 20 degrees C      | ok\nFan 1            | 0x00              | ok\nDASD Backplane 3 | Not Readable      | ns\nPlanar 12V       | 12.04 Volts       | cr\n"))
	require.NoError(t, err)
	require.Equal(t, 4, d.listed)
	require.Len(t, d.readings, 3)
	require.Equal(t, v1.Kind_KIND_TEMPERATURE, d.readings[0].Kind)
	require.Equal(t, v1.Kind_KIND_DISCRETE, d.readings[1].Kind)
	require.Empty(t, d.readings[1].State, "0x00 asserts nothing")
	require.Equal(t, v1.Health_HEALTH_CRITICAL, d.readings[2].Health)
	require.Equal(t, []sources.Drop{{Reason: sources.DropNull, Name: "DASD Backplane 3", ID: "DASD Backplane 3", Detail: "Not Readable"}}, d.drops)

	_, err = ipmitoolSDR([]byte("Odd | 3 furlongs | ok\n"))
	require.ErrorContains(t, err, `unit "furlongs" unknown`)
}
