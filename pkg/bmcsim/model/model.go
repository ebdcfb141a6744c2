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
	SourceFan: KindFan, SourceChassisPower: KindPower, SourcePSUInput: KindPower, SourcePSUOutput: KindPower,
	SourceVoltage: KindVoltage, SourceCurrent: KindCurrent,
}

// Validate checks a personality.
func (p *Personality) Validate() error {
	var errs []error
	if p.Name == "" {
		errs = append(errs, errors.New("name: must be set"))
	}
	if !p.Redfish.Legacy && !p.Redfish.Modern {
		errs = append(errs, errors.New("redfish: at least one of legacy, modern"))
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
		if (s.Source == SourcePSUInput || s.Source == SourcePSUOutput || s.Source == SourcePSU) && s.Index >= len(p.PSUs) {
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

// Names returns the sorted personality names of a set.
func Names(ps map[string]*Personality) []string {
	out := make([]string, 0, len(ps))
	for n := range ps {
		out = append(out, n)
	}
	sort.Strings(out)
	return out
}
