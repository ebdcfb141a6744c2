// Package model is the shared heart of bmcsim: vendor personalities (loaded
// from data files), virtual BMCs, the room they sit in, the values their
// sensors read over time, and the faults injected into them. The Redfish and
// IPMI servers both read a BMC's sensors from here, so the two protocols
// report the same physical values for the same virtual BMC.
package model

import (
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"go.yaml.in/yaml/v2"
)

// Kinds of sensors a personality can declare.
const (
	KindTemperature = "temperature"
	KindFan         = "fan"
	KindPower       = "power"
	KindVoltage     = "voltage"
	KindCurrent     = "current"
)

// Sources name the physical behaviour a sensor follows (see Room and
// BMC.Readings).
const (
	SourceIntake       = "intake"        // the rack's inlet air
	SourceExhaust      = "exhaust"       // inlet plus heat from load
	SourceCPU          = "cpu"           // follows load
	SourceMemory       = "memory"        // follows load, milder
	SourcePSU          = "psu"           // PSU temperature
	SourceSystemBoard  = "system_board"  // between inlet and exhaust
	SourceGPU          = "gpu"           // follows load, hot
	SourceStorage      = "storage"       // drive bay
	SourceFan          = "fan"           // follows CPU temperature
	SourceChassisPower = "chassis_power" // total input power
	SourcePSUInput     = "psu_input"     // one PSU's share of input power
	SourcePSUOutput    = "psu_output"    // one PSU's output power
	SourceVoltage      = "voltage"       // nominal with tiny ripple
	SourceCurrent      = "current"       // input power / nominal voltage
	SourceMargin       = "margin"        // a thermal margin: negative degrees below throttle (Lenovo DTS)
	// Inlets inside the chassis: air entering one component, already
	// warmed by what sits upstream of it. Vendors name them "inlet" too
	// ("GPU 3 Inlet", "Board Inlet", "PSU1 Inlet"), but none is the room's
	// air: only SourceIntake is.
	SourceGPUInlet   = "gpu_inlet"   // a GPU's inlet, behind the CPUs and drives: hotter than the room
	SourceBoardInlet = "board_inlet" // the system board's inlet, just behind the front fans
	SourcePSUInlet   = "psu_inlet"   // a power supply's inlet
)

// Layout styles of the legacy Thermal and Power resources (RedfishTraits.Style).
const (
	// StyleCurrent is the Thermal.v1_7_0 and Power.v1_7_1 shapes.
	StyleCurrent = ""
	// StyleILO4 is what HPE iLO 4 serves: the pre-1.0 "#Thermal.1.1.0.Thermal"
	// and "#Power.1.0.1.Power" types, members without "@odata.id" or
	// MemberId, fans named by FanName reading CurrentReading in Units
	// "Percent", temperatures carrying CurrentReading beside ReadingCelsius,
	// power supplies reporting only LastPowerOutputWatts, and "@odata.id"
	// values ending in "/".
	StyleILO4 = "ilo4"
)

// Personality is a vendor's BMC as seen from outside: identity, which
// Redfish schema generations it serves, protocol traits, and its sensors
// with the names, units and physical contexts that vendor uses.
type Personality struct {
	Name         string `yaml:"name"`
	Manufacturer string `yaml:"manufacturer"`
	Model        string `yaml:"model"`
	Firmware     string `yaml:"firmware"`
	BIOS         string `yaml:"bios"`
	ManagerModel string `yaml:"manager_model"`

	Redfish RedfishTraits `yaml:"redfish"`
	IPMI    IPMITraits    `yaml:"ipmi"`

	Sensors []SensorSpec `yaml:"sensors"`
	PSUs    []PSUSpec    `yaml:"psus"`
}

// RedfishTraits are the Redfish habits of a vendor.
type RedfishTraits struct {
	// Legacy serves Chassis/{id}/Thermal and /Power.
	Legacy bool `yaml:"legacy"`
	// Modern serves ThermalSubsystem, PowerSubsystem and the Sensors
	// collection (with $expand).
	Modern bool `yaml:"modern"`
	// NoSensors leaves the Sensors collection (and the chassis's link to
	// it) out of a modern service: readings are only in the subsystems
	// (ThermalMetrics, Fans, PowerSupplyMetrics) and EnvironmentMetrics,
	// whose excerpts still name their Sensor by DataSourceUri, as NVIDIA's
	// OpenBMC does on chassis it does not list sensors for.
	NoSensors bool `yaml:"no_sensors"`
	// EnvironmentMetrics serves Chassis/{id}/EnvironmentMetrics (chassis
	// power, fan speeds) on a modern service.
	EnvironmentMetrics bool `yaml:"environment_metrics"`
	// Style is the shape of the legacy Thermal and Power (Style*).
	Style string `yaml:"style"`
	// RelatedItem links each legacy Thermal/Power member to the resource it
	// measures (the system for CPU and memory sensors, the chassis for the
	// rest), as Dell and Supermicro do.
	RelatedItem bool `yaml:"related_item"`
	// FanName repeats a legacy fan's Name under the deprecated FanName, as
	// iDRAC does.
	FanName bool `yaml:"fan_name"`
	// SensorLatencyMs is extra time the BMC takes to answer its sensor
	// resources (iDRAC's Thermal and Power take seconds).
	SensorLatencyMs int `yaml:"sensor_latency_ms"`
	// SessionLimit is how many sessions the BMC holds before answering 503.
	SessionLimit int `yaml:"session_limit"`
	// ChassisID and SystemID are the member ids ("1", "System.Embedded.1").
	ChassisID string `yaml:"chassis_id"`
	SystemID  string `yaml:"system_id"`
	ManagerID string `yaml:"manager_id"`
}

// IPMITraits are the IPMI habits of a vendor.
type IPMITraits struct {
	// DCMI answers DCMI Get Power Reading; otherwise it returns cc 0xC1.
	DCMI bool `yaml:"dcmi"`
	// SessionLimit is how many RMCP+ sessions the BMC holds.
	SessionLimit int `yaml:"session_limit"`
	// ManufacturerID is the IANA enterprise number in Get Device ID.
	ManufacturerID uint32 `yaml:"manufacturer_id"`
	ProductID      uint16 `yaml:"product_id"`
}

// SensorSpec declares one sensor of a personality.
type SensorSpec struct {
	// Name is the vendor's sensor name ("01-Inlet Ambient").
	Name string `yaml:"name"`
	Kind string `yaml:"kind"`
	// Source picks the physical behaviour (Source* constants).
	Source string `yaml:"source"`
	// Index distinguishes sensors of one source (CPU 1/2, fan 1..n, PSU 1/2).
	Index int `yaml:"index"`
	// Context is the Redfish PhysicalContext the vendor reports, which may
	// be wrong (AMI marks every temperature Intake).
	Context string `yaml:"context"`
	// Unit is the Redfish unit string the vendor reports: "Cel", "RPM",
	// "Percent", "W", "V", "A"; empty when the vendor omits it.
	Unit string `yaml:"unit"`
	// Nominal is the set point: volts for voltages, an offset in °C for
	// temperatures, the maximum RPM for fans.
	Nominal float64 `yaml:"nominal"`
	// Absent sensors are listed with reading 0 and Status.State Absent
	// (iLO does this for empty sockets and bays).
	Absent bool `yaml:"absent"`
	// Thresholds are the BMC's own limits, by Redfish name
	// (upper_caution, upper_critical, upper_fatal, lower_caution, ...).
	Thresholds map[string]float64 `yaml:"thresholds"`
	// IPMI describes the sensor in the SDR; Omit keeps it off IPMI.
	IPMI IPMISensor `yaml:"ipmi"`
	// RedfishOmit keeps the sensor off Redfish.
	RedfishOmit bool `yaml:"redfish_omit"`
	// SensorsOmit keeps the sensor out of the Sensors collection while the
	// legacy Thermal or Power still carries it (and the subsystems quote
	// it without a DataSourceUri): real BMCs serving both schemas list
	// fans, VRM voltages or PSU output only in the legacy ones.
	SensorsOmit bool `yaml:"sensors_omit"`
}

// IPMISensor is the SDR side of a sensor.
type IPMISensor struct {
	Number   uint8 `yaml:"number"`
	Entity   uint8 `yaml:"entity"`
	Instance uint8 `yaml:"instance"`
	Omit     bool  `yaml:"omit"`
}

// PSUSpec declares one power supply.
type PSUSpec struct {
	// Name as the vendor reports it (iLO gives every PSU the same name;
	// Supermicro "nil").
	Name       string  `yaml:"name"`
	RatedWatts float64 `yaml:"rated_watts"`
	Model      string  `yaml:"model"`
}

//go:embed personalities/*.yml
var builtin embed.FS

// Builtin returns the personalities shipped with bmcsim, by name.
func Builtin() (map[string]*Personality, error) {
	return loadFS(builtin, "personalities")
}

// LoadDir reads every *.yml file of a directory as a personality, so users
// add vendors without code.
func LoadDir(dir string) (map[string]*Personality, error) {
	return loadFS(os.DirFS(dir), ".")
}

func loadFS(fsys fs.FS, dir string) (map[string]*Personality, error) {
	entries, err := fs.ReadDir(fsys, dir)
	if err != nil {
		return nil, fmt.Errorf("read personalities: %w", err)
	}
	out := map[string]*Personality{}
	for _, e := range entries {
		if e.IsDir() || !strings.HasSuffix(e.Name(), ".yml") {
			continue
		}
		b, err := fs.ReadFile(fsys, filepath.Join(dir, e.Name()))
		if err != nil {
			return nil, err
		}
		p, err := ParsePersonality(b)
		if err != nil {
			return nil, fmt.Errorf("personality %s: %w", e.Name(), err)
		}
		if _, dup := out[p.Name]; dup {
			return nil, fmt.Errorf("personality %s: name %q defined twice", e.Name(), p.Name)
		}
		out[p.Name] = p
	}
	return out, nil
}

// ParsePersonality decodes and validates one personality document.
func ParsePersonality(b []byte) (*Personality, error) {
	var p Personality
	if err := yaml.UnmarshalStrict(b, &p); err != nil {
		return nil, err
	}
	if p.Redfish.ChassisID == "" {
		p.Redfish.ChassisID = "1"
	}
	if p.Redfish.SystemID == "" {
		p.Redfish.SystemID = "1"
	}
	if p.Redfish.ManagerID == "" {
		p.Redfish.ManagerID = "1"
	}
	if p.Redfish.SessionLimit == 0 {
		p.Redfish.SessionLimit = 8
	}
	if p.IPMI.SessionLimit == 0 {
		p.IPMI.SessionLimit = 4
	}
	return &p, p.Validate()
}

var validSources = map[string]string{
	SourceIntake: KindTemperature, SourceExhaust: KindTemperature, SourceCPU: KindTemperature,
	SourceMemory: KindTemperature, SourcePSU: KindTemperature, SourceSystemBoard: KindTemperature,
	SourceGPU: KindTemperature, SourceStorage: KindTemperature, SourceMargin: KindTemperature,
	SourceGPUInlet: KindTemperature, SourceBoardInlet: KindTemperature, SourcePSUInlet: KindTemperature,
	SourceFan: KindFan, SourceChassisPower: KindPower, SourcePSUInput: KindPower, SourcePSUOutput: KindPower,
	SourceVoltage: KindVoltage, SourceCurrent: KindCurrent,
}

// Validate checks a personality.
func (p *Personality) Validate() error {
	var errs []error
	if p.Name == "" {
		errs = append(errs, errors.New("name: must be set"))
	}
	rf := &p.Redfish
	if !rf.Legacy && !rf.Modern {
		errs = append(errs, errors.New("redfish: at least one of legacy, modern"))
	}
	if rf.NoSensors && !rf.Modern {
		errs = append(errs, errors.New("redfish: no_sensors needs modern"))
	}
	if rf.EnvironmentMetrics && !rf.Modern {
		errs = append(errs, errors.New("redfish: environment_metrics needs modern"))
	}
	switch rf.Style {
	case StyleCurrent:
	case StyleILO4:
		if !rf.Legacy || rf.Modern {
			errs = append(errs, errors.New("redfish: style ilo4 is a legacy-only service"))
		}
	default:
		errs = append(errs, fmt.Errorf("redfish: unknown style %q (known: %q, %q)", rf.Style, StyleCurrent, StyleILO4))
	}
	numbers := map[uint8]string{}
	for i, s := range p.Sensors {
		kind, ok := validSources[s.Source]
		switch {
		case !ok:
			errs = append(errs, fmt.Errorf("sensors[%d] %q: unknown source %q", i, s.Name, s.Source))
		case kind != s.Kind:
			errs = append(errs, fmt.Errorf("sensors[%d] %q: source %s is a %s, not a %s", i, s.Name, s.Source, kind, s.Kind))
		}
		if s.Name == "" {
			errs = append(errs, fmt.Errorf("sensors[%d]: name must be set", i))
		}
		if where := p.redfishHome(&p.Sensors[i]); where != "" {
			errs = append(errs, fmt.Errorf("sensors[%d] %q: %s", i, s.Name, where))
		}
		if (s.Source == SourcePSUInput || s.Source == SourcePSUOutput || s.Source == SourcePSU || s.Source == SourcePSUInlet) && s.Index >= len(p.PSUs) {
			errs = append(errs, fmt.Errorf("sensors[%d] %q: PSU index %d but %d PSUs", i, s.Name, s.Index, len(p.PSUs)))
		}
		if !s.IPMI.Omit {
			if s.IPMI.Number == 0 {
				errs = append(errs, fmt.Errorf("sensors[%d] %q: ipmi.number must be set (or ipmi.omit)", i, s.Name))
			} else if other, dup := numbers[s.IPMI.Number]; dup {
				errs = append(errs, fmt.Errorf("sensors[%d] %q: ipmi.number %d already used by %q", i, s.Name, s.IPMI.Number, other))
			}
			numbers[s.IPMI.Number] = s.Name
		}
	}
	return errors.Join(errs...)
}

// redfishHome says why a sensor shown on Redfish would have no resource to
// appear in under the personality's layout, or "" when it has one. Every
// sensor a BMC lists on Redfish must be readable there.
func (p *Personality) redfishHome(s *SensorSpec) string {
	rf := &p.Redfish
	if s.RedfishOmit {
		return ""
	}
	if s.SensorsOmit && (!rf.Legacy || !rf.Modern || rf.NoSensors) {
		return "sensors_omit needs both legacy and a Sensors collection (legacy and modern, not no_sensors)"
	}
	if rf.Style == StyleILO4 && s.Source == SourcePSUInput {
		return "iLO 4 style power supplies report no input power: use redfish_omit"
	}
	inSensors := rf.Modern && !rf.NoSensors && !s.SensorsOmit
	if rf.Legacy || inSensors {
		return ""
	}
	// Subsystems only: temperatures go to ThermalMetrics, fans to Fans,
	// PSU power to PowerSupplyMetrics, chassis power to EnvironmentMetrics.
	switch {
	case s.Kind == KindTemperature, s.Kind == KindFan, s.Source == SourcePSUInput, s.Source == SourcePSUOutput:
		return ""
	case s.Source == SourceChassisPower && rf.EnvironmentMetrics:
		return ""
	}
	return "no resource carries a " + s.Source + " reading without legacy Power or a Sensors collection: use redfish_omit"
}

// Names returns the sorted personality names of a set.
func Names(ps map[string]*Personality) []string {
	out := make([]string, 0, len(ps))
	for n := range ps {
		out = append(out, n)
	}
	sort.Strings(out)
	return out
}
