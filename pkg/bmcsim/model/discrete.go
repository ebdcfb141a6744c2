package model

import "fmt"

// Discrete sensors report states rather than numbers: is a power supply
// there, has it failed, has it lost its input, are the fans still
// redundant. A personality does not declare them: every BMC has one status
// sensor per power supply, one per processor and one fan redundancy sensor
// when it has fans, derived from its PSUs and sensors by Discrete, and the
// faults PSUFailed, PSUInputLost and FanRedundancyLost assert them.

// IPMI codes of the discrete sensors (IPMI v2.0 Tables 42-1, 42-3, 43-13).
const (
	DiscreteTypeProcessor   = 0x07 // sensor type Processor
	DiscreteTypePowerSupply = 0x08 // sensor type Power Supply
	DiscreteTypeFan         = 0x04 // sensor type Fan

	ReadingTypeRedundancy     = 0x0B // generic redundancy states
	ReadingTypeSensorSpecific = 0x6F // the sensor type's own offsets

	EntityProcessor   = 0x03
	EntityPowerSupply = 0x0A
	EntityCoolingUnit = 0x1E
)

// State offsets the simulated sensors assert (Table 42-3 for Power Supply
// and Processor, Table 42-2 for redundancy).
const (
	PSUPresence  = 0 // Presence detected
	PSUFailure   = 1 // Power Supply Failure detected
	PSUPredict   = 2 // Predictive Failure
	PSUInputLost = 3 // Power Supply input lost (AC/DC)

	CPUIERR        = 0 // IERR
	CPUThermalTrip = 1 // Thermal Trip
	CPUPresence    = 7 // Processor Presence detected

	FullyRedundant = 0 // Fully Redundant
	RedundancyLost = 1 // Redundancy Lost
	RedundancyDeg  = 2 // Redundancy Degraded
)

// Roles of discrete sensors: what a sensor reports on.
const (
	RolePSU           = "psu"
	RoleProcessor     = "processor"
	RoleFanRedundancy = "fan_redundancy"
)

// firstDiscreteNumber is where Discrete starts looking for free sensor
// numbers: above every number the built-in personalities use.
const firstDiscreteNumber = 0xD0

// DiscreteSpec is one discrete sensor of a personality.
type DiscreteSpec struct {
	// Name is the sensor's name (the SDR ID string): "PS1 Status".
	Name string
	// Role is one of the Role* constants and Index the 0-based PSU or
	// processor it reports on.
	Role  string
	Index int
	// SensorType, ReadingType, Entity and Instance are the SDR's codes.
	SensorType  uint8
	ReadingType uint8
	Entity      uint8
	Instance    uint8
	// Number is the IPMI sensor number, one the personality leaves free.
	Number uint8
	// Supported has bit n set when the sensor can assert offset n (the
	// SDR's assertion and reading masks).
	Supported uint16
	// Normal are the states of a healthy BMC: the baseline from which a
	// BMC's event log records changes.
	Normal uint16
}

// Discrete returns the discrete sensors of a personality, in a stable
// order: one status sensor per PSU, one per processor (the distinct
// indexes of its CPU temperature sensors), and a fan redundancy sensor
// when it has two fans or more. Their numbers are the first free ones from
// 0xD0 on.
func (p *Personality) Discrete() []DiscreteSpec {
	used := map[uint8]bool{}
	cpus, fans := 0, 0
	for i := range p.Sensors {
		s := &p.Sensors[i]
		if !s.IPMI.Omit {
			used[s.IPMI.Number] = true
		}
		switch s.Source {
		case SourceCPU:
			cpus = max(cpus, s.Index+1)
		case SourceFan:
			fans++
		}
	}
	next := uint8(firstDiscreteNumber)
	number := func() uint8 {
		for used[next] && next < 0xFE {
			next++
		}
		used[next] = true
		return next
	}
	var out []DiscreteSpec
	for i := range p.PSUs {
		out = append(out, DiscreteSpec{
			Name: fmt.Sprintf("PS%d Status", i+1), Role: RolePSU, Index: i,
			SensorType: DiscreteTypePowerSupply, ReadingType: ReadingTypeSensorSpecific,
			Entity: EntityPowerSupply, Instance: uint8(i + 1), Number: number(),
			Supported: 1<<PSUPresence | 1<<PSUFailure | 1<<PSUPredict | 1<<PSUInputLost,
			Normal:    1 << PSUPresence,
		})
	}
	for i := range cpus {
		out = append(out, DiscreteSpec{
			Name: fmt.Sprintf("CPU%d Status", i+1), Role: RoleProcessor, Index: i,
			SensorType: DiscreteTypeProcessor, ReadingType: ReadingTypeSensorSpecific,
			Entity: EntityProcessor, Instance: uint8(i + 1), Number: number(),
			Supported: 1<<CPUIERR | 1<<CPUThermalTrip | 1<<CPUPresence,
			Normal:    1 << CPUPresence,
		})
	}
	if fans >= 2 {
		out = append(out, DiscreteSpec{
			Name: "Fan Redundancy", Role: RoleFanRedundancy,
			SensorType: DiscreteTypeFan, ReadingType: ReadingTypeRedundancy,
			Entity: EntityCoolingUnit, Instance: 1, Number: number(),
			Supported: 1<<FullyRedundant | 1<<RedundancyLost | 1<<RedundancyDeg,
			Normal:    1 << FullyRedundant,
		})
	}
	return out
}

// DiscreteState returns the asserted states of a discrete sensor of the
// BMC now (bit n: offset n asserted), from its faults: a PSU is present,
// and failed or without input while PSUFailed or PSUInputLost name it; a
// processor is present; the fans are fully redundant until a fan fails or
// FanRedundancyLost is set.
func (b *BMC) DiscreteState(d *DiscreteSpec) uint16 {
	f := b.faults.Load()
	switch d.Role {
	case RolePSU:
		st := uint16(1) << PSUPresence
		if f.PSUFailed == d.Index+1 {
			st |= 1 << PSUFailure
		}
		if f.PSUInputLost == d.Index+1 {
			st |= 1 << PSUInputLost
		}
		return st
	case RoleProcessor:
		return 1 << CPUPresence
	case RoleFanRedundancy:
		if f.FanRedundancyLost || f.FanFailed > 0 {
			return 1 << RedundancyLost
		}
		return 1 << FullyRedundant
	}
	return 0
}
