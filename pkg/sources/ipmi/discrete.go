package ipmi

import (
	"strconv"
	"strings"

	v1 "github.com/bmcstream/bmcstream/proto/bmcstream/v1"
)

// Event/Reading type codes of discrete sensors (IPMI v2.0 §42.1, Table
// 42-1): generic ones (02h-0Ch) share Table 42-2's offsets whatever the
// sensor type; sensor-specific ones (6Fh) use the offsets of the sensor
// type in Table 42-3.
const (
	readingTypeRedundancy     = 0x0B
	readingTypePresence       = 0x08
	readingTypeSensorSpecific = 0x6F
)

// Sensor types with sensor-specific offsets this package names (Table 42-3).
const (
	sensorTypeProcessor   = 0x07
	sensorTypePowerSupply = 0x08
	sensorTypeMemory      = 0x0C
	sensorTypeDriveSlot   = 0x0D
)

// stateNames are the snake_case names of the offsets of one table, by
// offset. An offset beyond a table, or named "", is "state_<n>".
type stateNames []string

// Sensor-specific offsets, Table 42-3.
var (
	powerSupplyStates = stateNames{
		"presence_detected", "failure_detected", "predictive_failure", "input_lost",
		"input_lost_or_out_of_range", "input_out_of_range", "configuration_error", "inactive",
	}
	processorStates = stateNames{
		"ierr", "thermal_trip", "frb1_bist_failure", "frb2_hang", "frb3_failure",
		"configuration_error", "uncorrectable_cpu_complex_error", "presence_detected", "disabled",
		"terminator_presence", "throttled", "uncorrectable_machine_check", "correctable_machine_check",
	}
	memoryStates = stateNames{
		"correctable_ecc", "uncorrectable_ecc", "parity", "scrub_failed", "device_disabled",
		"correctable_ecc_limit", "presence_detected", "configuration_error", "spare", "throttled",
		"critical_overtemperature",
	}
	driveSlotStates = stateNames{
		"drive_presence", "drive_fault", "predictive_failure", "hot_spare", "consistency_check",
		"in_critical_array", "in_failed_array", "rebuild", "rebuild_aborted",
	}
)

// Generic offsets, Table 42-2. Redundancy offsets 03h-05h are the three
// "non-redundant" states: sufficient resources (from redundant), sufficient
// resources from insufficient (non_redundant: recovering, still without
// redundancy) and insufficient resources.
var (
	redundancyStates = stateNames{
		"fully_redundant", "redundancy_lost", "redundancy_degraded", "non_redundant_sufficient",
		"non_redundant", "non_redundant_insufficient", "redundancy_degraded_from_full",
		"redundancy_degraded_from_non_redundant",
	}
	presenceStates = stateNames{"device_absent", "device_present"}
)

// discreteTable returns the offset names of a sensor, and the offset of
// its presence state (−1 when it has none).
func discreteTable(sensorType, readingType uint8) (stateNames, int) {
	switch readingType {
	case readingTypeRedundancy:
		return redundancyStates, -1
	case readingTypePresence:
		return presenceStates, -1
	case readingTypeSensorSpecific:
		switch sensorType {
		case sensorTypePowerSupply:
			return powerSupplyStates, 0
		case sensorTypeProcessor:
			return processorStates, 7
		case sensorTypeMemory:
			return memoryStates, 6
		case sensorTypeDriveSlot:
			return driveSlotStates, 0
		}
	}
	return nil, -1
}

// stateAbsent is listed in State when a sensor whose SDR says it reports
// presence does not assert it: "not present", told apart from "cannot
// tell".
const stateAbsent = "absent"

// criticalStates and warningStates derive a discrete sensor's health from
// the states it asserts; the frb* states are critical too (isCritical).
var (
	criticalStates = map[string]bool{
		"failure_detected": true, "input_lost": true, "input_lost_or_out_of_range": true,
		"ierr": true, "thermal_trip": true, "uncorrectable_cpu_complex_error": true,
		"uncorrectable_machine_check": true, "uncorrectable_ecc": true,
		"critical_overtemperature": true, "drive_fault": true, "in_failed_array": true,
		"redundancy_lost": true, "non_redundant_insufficient": true,
	}
	warningStates = map[string]bool{
		"predictive_failure": true, "input_out_of_range": true, "configuration_error": true,
		"correctable_ecc_limit": true, "non_redundant_sufficient": true, "non_redundant": true,
		"throttled": true, "in_critical_array": true, "rebuild_aborted": true,
	}
)

// stateHealth is the health one asserted state implies.
func stateHealth(name string) v1.Health {
	switch {
	case criticalStates[name], strings.HasPrefix(name, "frb"):
		return v1.Health_HEALTH_CRITICAL
	case warningStates[name], strings.HasPrefix(name, "redundancy_degraded"):
		return v1.Health_HEALTH_WARNING
	}
	return v1.Health_HEALTH_OK
}

// discreteState names a discrete sensor's asserted states (bit n: offset
// n) in offset order, comma-separated, followed by "absent" when the
// sensor reports presence (its SDR reading mask has the presence offset)
// and does not assert it; and derives its health: the worst any asserted
// state implies.
func discreteState(sensorType, readingType uint8, readMask, states uint16) (string, v1.Health) {
	names, presence := discreteTable(sensorType, readingType)
	var sb strings.Builder
	h := v1.Health_HEALTH_OK
	for n := range 15 {
		if states&(1<<n) == 0 {
			continue
		}
		name := ""
		if n < len(names) {
			name = names[n]
		}
		if sb.Len() > 0 {
			sb.WriteByte(',')
		}
		if name == "" {
			sb.WriteString("state_")
			sb.WriteString(strconv.Itoa(n))
			continue
		}
		sb.WriteString(name)
		if sh := stateHealth(name); sh == v1.Health_HEALTH_CRITICAL || (sh == v1.Health_HEALTH_WARNING && h == v1.Health_HEALTH_OK) {
			h = sh
		}
	}
	if presence >= 0 && readMask&(1<<presence) != 0 && states&(1<<presence) == 0 {
		if sb.Len() > 0 {
			sb.WriteByte(',')
		}
		sb.WriteString(stateAbsent)
	}
	return sb.String(), h
}
