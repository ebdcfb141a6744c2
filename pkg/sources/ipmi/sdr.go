package ipmi

import (
	"errors"
	"fmt"
	"math"
	"strings"
	"time"

	v1 "github.com/bmcstream/bmcstream/proto/bmcstream/v1"
)

// SDR record types this package reads (IPMI v2.0 §43).
const (
	recordTypeFull    = 0x01
	recordTypeCompact = 0x02

	sdrHeaderLen  = 5
	fullFixedLen  = 48 // header and fixed body of a Full Sensor Record, before the ID string
	compactFixLen = 32 // the same for a Compact Sensor Record
	bmcAddress    = 0x20
)

// Event/Reading type code of threshold-based sensors (§42.1, Table 42-1).
const readingTypeThreshold = 0x01

// Threshold indexes, in the order of every IPMI threshold mask: bit i of
// the SDR readable mask (§43.1 byte 19), of the Get Sensor Thresholds mask
// (§35.9) and of the Get Sensor Reading comparison status (§35.14) all
// name the same threshold.
const (
	thLNC = iota // lower non-critical
	thLCR        // lower critical
	thLNR        // lower non-recoverable
	thUNC        // upper non-critical
	thUCR        // upper critical
	thUNR        // upper non-recoverable
	thCount
)

// thresholdKinds maps threshold indexes onto the wire schema's names.
var thresholdKinds = [thCount]v1.ThresholdKind{
	thLNC: v1.ThresholdKind_THRESHOLD_LOWER_CAUTION,
	thLCR: v1.ThresholdKind_THRESHOLD_LOWER_CRITICAL,
	thLNR: v1.ThresholdKind_THRESHOLD_LOWER_FATAL,
	thUNC: v1.ThresholdKind_THRESHOLD_UPPER_CAUTION,
	thUCR: v1.ThresholdKind_THRESHOLD_UPPER_CRITICAL,
	thUNR: v1.ThresholdKind_THRESHOLD_UPPER_FATAL,
}

// Analog data formats (§43.1 byte 21, bits 7:6).
const (
	formatUnsigned = 0
	formatOnes     = 1
	formatTwos     = 2
	formatNone     = 3 // no analog reading: a discrete sensor
)

// errTruncated reports a record shorter than its type requires.
var errTruncated = errors.New("record truncated")

// skipReason says why a well-formed sensor record is not polled; every
// one is an unsupported layout (sources.DropUnsupportedLayout) but for
// skipNotSensor, which is not a reading.
type skipReason string

const (
	skipNone       skipReason = ""
	skipNotSensor  skipReason = "not a sensor record"
	skipNonLinear  skipReason = "non-linear conversion"
	skipNoAnalog   skipReason = "threshold sensor without analog reading"
	skipDiscrete   skipReason = "discrete sensor"
	skipBridged    skipReason = "sensor owned by another controller"
	skipOEMReading skipReason = "OEM reading type"
)

// conversion turns a raw reading byte into a value (§36.3):
// y = (M × x + B × 10^Bexp) × 10^Rexp with x read in the analog data
// format and linear linearisation, the only one this package supports.
type conversion struct {
	m, b       int16 // 10-bit two's complement on the wire
	rExp, bExp int8  // 4-bit two's complement on the wire
	format     uint8 // formatUnsigned, formatOnes or formatTwos
}

// signExtend interprets the low bits of v as a two's complement number.
func signExtend(v uint16, bits uint) int16 {
	shift := 16 - bits
	return int16(v<<shift) >> shift
}

// raw returns x, the raw byte as a number in the sensor's data format.
func (c conversion) raw(b uint8) float64 {
	switch c.format {
	case formatOnes:
		if b&0x80 != 0 {
			return -float64(^b & 0x7F) // 0xFF is −0
		}
		return float64(b)
	case formatTwos:
		return float64(int8(b))
	}
	return float64(b)
}

// decimals is the number of decimal places a converted value can carry:
// M and B are integers, so M·x·10^R has −R and B·10^(Bexp+R) has
// −(Bexp+R). Rounding to it removes binary floating point noise
// (0.06 × 201 = 12.059999…) without losing anything the BMC said.
func (c conversion) decimals() int {
	return max(0, -int(c.rExp), -(int(c.bExp) + int(c.rExp)))
}

// value converts a raw reading byte.
func (c conversion) value(b uint8) float64 {
	y := (float64(c.m)*c.raw(b) + float64(c.b)*math.Pow10(int(c.bExp))) * math.Pow10(int(c.rExp))
	d := c.decimals()
	p := math.Pow10(d)
	if r := math.Round(y*p) / p; !math.IsInf(r, 0) && !math.IsNaN(r) {
		return r
	}
	return y
}

// step is the value of one raw count, the resolution of the sensor.
func (c conversion) step() float64 {
	return math.Abs(float64(c.m)) * math.Pow10(int(c.rExp))
}

// sensor is one sensor of the SDR repository, as the poll reads it.
type sensor struct {
	recordID    uint16
	recordType  uint8
	owner       uint8 // IPMB slave address or software ID of the owner
	lun         uint8
	channel     uint8
	number      uint8
	entityID    uint8
	entityInst  uint8
	sensorType  uint8
	readingType uint8
	name        string
	id          string // "0x04", or "<owner>.<lun>.<number>" off the BMC's LUN 0
	typeName    string
	unit        string
	kind        v1.Kind
	analog      bool // a threshold sensor with a converted reading
	conv        conversion
	// thresholdAccess is §43.1 byte 12 bits 3:2: 0 none, 1 readable,
	// 2 readable and settable, 3 fixed (in the SDR only).
	thresholdAccess uint8
	readable        uint8          // SDR readable threshold mask
	sdrThresholds   [thCount]uint8 // raw thresholds in the SDR
	thresholds      []v1.Threshold // converted; nil when the BMC has none
	// stateMask is a discrete sensor's reading mask (§43.1 bytes 19-20):
	// bit n set when the sensor can report offset n.
	stateMask uint16
	// The State and Health of the last states read, kept so a discrete
	// sensor whose states did not change costs no allocation.
	states      uint16
	statesKnown bool
	stateText   string
	stateHealth v1.Health

	// absent counts the polls in a row the BMC said the sensor is not
	// there; from absentPolls on it is asked again only at retryAt.
	absent  int
	retryAt time.Time
}

// decodeRecord decodes one SDR record (header included). Full and compact
// sensor records yield their sensors (a compact record may describe a run
// of shared sensors); other record types yield nothing with skipNotSensor.
// A sensor the poll cannot read (non-linear, no analog reading, OEM
// reading type, another controller's) is returned with its skip reason so
// the caller can count it; the error reports a malformed record.
func decodeRecord(rec []byte) ([]sensor, skipReason, error) {
	if len(rec) < sdrHeaderLen {
		return nil, skipNone, fmt.Errorf("%w: %d of %d header bytes", errTruncated, len(rec), sdrHeaderLen)
	}
	if want := sdrHeaderLen + int(rec[4]); len(rec) < want {
		return nil, skipNone, fmt.Errorf("%w: %d of %d bytes", errTruncated, len(rec), want)
	}
	rec = rec[:sdrHeaderLen+int(rec[4])]
	switch rec[3] {
	case recordTypeFull:
		s, skip, err := decodeFull(rec)
		if err != nil {
			return nil, skipNone, err
		}
		return []sensor{s}, skip, nil
	case recordTypeCompact:
		return decodeCompact(rec)
	}
	return nil, skipNotSensor, nil
}

// decodeCommon decodes the fields full and compact records share (§43.1
// and §43.2 bytes 6-23).
func decodeCommon(rec []byte) sensor {
	s := sensor{
		recordID:    uint16(rec[0]) | uint16(rec[1])<<8,
		recordType:  rec[3],
		owner:       rec[5],
		lun:         rec[6] & 0x03,
		channel:     rec[6] >> 4,
		number:      rec[7],
		entityID:    rec[8],
		entityInst:  rec[9] & 0x7F,
		sensorType:  rec[12],
		readingType: rec[13],
	}
	s.thresholdAccess = (rec[11] >> 2) & 0x03
	s.readable = rec[18] & 0x3F
	if s.readingType != readingTypeThreshold {
		s.stateMask = (uint16(rec[18]) | uint16(rec[19])<<8) & 0x7FFF
	}
	s.typeName = sensorTypeName(s.sensorType)
	s.unit = unitString(rec[20], rec[21], rec[22])
	s.kind = kindOf(rec[20], rec[21], s.sensorType)
	return s
}

// sensorID formats a sensor's id: its number when it belongs to the BMC's
// LUN 0 on the primary IPMB, "<owner>.<lun>.<number>" otherwise.
func sensorID(owner, channel, lun, number uint8) string {
	if owner == bmcAddress && lun == 0 && channel == 0 {
		return fmt.Sprintf("0x%02x", number)
	}
	return fmt.Sprintf("0x%02x.%d.0x%02x", owner, lun, number)
}

// local reports whether the owner is a controller this package can
// address without bridging: the BMC itself on the primary channel.
func (s *sensor) local() bool { return s.owner == bmcAddress && s.channel == 0 }

// decodeFull decodes a Full Sensor Record (§43.1).
func decodeFull(rec []byte) (sensor, skipReason, error) {
	if len(rec) < fullFixedLen {
		return sensor{}, skipNone, fmt.Errorf("%w: full sensor record of %d bytes, want at least %d", errTruncated, len(rec), fullFixedLen)
	}
	s := decodeCommon(rec)
	name, err := idString(rec[47], rec[fullFixedLen:])
	if err != nil {
		return sensor{}, skipNone, fmt.Errorf("record 0x%04x: %w", s.recordID, err)
	}
	s.name = name
	s.id = sensorID(s.owner, s.channel, s.lun, s.number)
	s.conv = conversion{
		m:      signExtend(uint16(rec[24])|uint16(rec[25]>>6)<<8, 10),
		b:      signExtend(uint16(rec[26])|uint16(rec[27]>>6)<<8, 10),
		rExp:   int8(signExtend(uint16(rec[29]>>4), 4)),
		bExp:   int8(signExtend(uint16(rec[29]&0x0F), 4)),
		format: rec[20] >> 6,
	}
	copy(s.sdrThresholds[:], []uint8{thLNC: rec[41], thLCR: rec[40], thLNR: rec[39], thUNC: rec[38], thUCR: rec[37], thUNR: rec[36]})
	switch {
	case !s.local():
		return s, skipBridged, nil
	case s.readingType != readingTypeThreshold:
		return s, discreteSkip(s.readingType), nil
	case s.conv.format == formatNone:
		return s, skipNoAnalog, nil
	case rec[23]&0x7F != 0:
		return s, skipNonLinear, nil
	}
	s.analog = true
	return s, skipNone, nil
}

// discreteSkip classifies a non-threshold reading type: generic and
// sensor-specific discrete sensors are read only when the Source is asked
// to; OEM reading types (70h-7Fh) never are.
func discreteSkip(readingType uint8) skipReason {
	if readingType >= 0x70 {
		return skipOEMReading
	}
	return skipDiscrete
}

// decodeCompact decodes a Compact Sensor Record (§43.2), expanding record
// sharing (bytes 24-25) into one sensor per shared number. Compact records
// carry no conversion factors, so their sensors are discrete.
func decodeCompact(rec []byte) ([]sensor, skipReason, error) {
	if len(rec) < compactFixLen {
		return nil, skipNone, fmt.Errorf("%w: compact sensor record of %d bytes, want at least %d", errTruncated, len(rec), compactFixLen)
	}
	base := decodeCommon(rec)
	name, err := idString(rec[31], rec[compactFixLen:])
	if err != nil {
		return nil, skipNone, fmt.Errorf("record 0x%04x: %w", base.recordID, err)
	}
	base.conv.format = formatNone
	skip := skipNone
	switch {
	case !base.local():
		skip = skipBridged
	case base.readingType >= 0x70:
		skip = skipOEMReading
	case base.readingType == readingTypeThreshold:
		skip = skipNoAnalog // a threshold sensor needs conversion factors
	default:
		skip = skipDiscrete
	}
	count := int(rec[23] & 0x0F)
	if count == 0 {
		count = 1
	}
	alpha := (rec[23]>>4)&0x03 == 0x01
	incrInstance := rec[24]&0x80 != 0
	offset := int(rec[24] & 0x7F)
	out := make([]sensor, 0, count)
	for i := range count {
		s := base
		s.number = base.number + uint8(i)
		if count > 1 {
			s.name = name + instanceSuffix(alpha, offset+i)
		} else {
			s.name = name
		}
		if incrInstance {
			s.entityInst = (base.entityInst + uint8(i)) & 0x7F
		}
		s.id = sensorID(s.owner, s.channel, s.lun, s.number)
		out = append(out, s)
	}
	return out, skip, nil
}

// instanceSuffix is the ID string modifier of shared sensor i (§43.2 byte
// 24): numeric ("0", "1", …) or alphabetic ("A" … "Z", "AA" … "BZ").
func instanceSuffix(alpha bool, i int) string {
	if !alpha {
		return fmt.Sprint(i)
	}
	const letters = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
	if i < 26 {
		return letters[i : i+1]
	}
	return letters[(i/26-1)%26:(i/26-1)%26+1] + letters[i%26:i%26+1]
}

// idString decodes an SDR ID string from its type/length byte and the
// record's remaining bytes (§43.15): 8-bit ASCII + Latin-1 (the usual),
// 6-bit packed ASCII, BCD plus, or Unicode (taken byte-wise as Latin-1, as
// ipmitool does). For the packed types the spec counts the length in
// characters (OpenIPMI's sdrcomp writes "FAN1" as 84h and three bytes);
// a record holding as many bytes as the length says was written counting
// bytes, and is read that way. Trailing NULs and spaces are trimmed;
// control characters become spaces so a name is always printable UTF-8.
func idString(typeLen uint8, data []byte) (string, error) {
	n := int(typeLen & 0x1F)
	var sb strings.Builder
	switch typeLen >> 6 {
	case 0x01: // BCD plus, two characters a byte
		chars, nb := packedLen(n, len(data), 2, 1)
		if nb > len(data) {
			return "", fmt.Errorf("%w: BCD plus ID string of %d characters, %d bytes present", errTruncated, n, len(data))
		}
		const bcd = "0123456789 -.:,_"
		for i := range chars {
			b := data[i/2]
			if i%2 == 1 {
				b >>= 4
			}
			sb.WriteByte(bcd[b&0x0F])
		}
	case 0x02: // 6-bit packed ASCII, four characters in three bytes, LSB first
		chars, nb := packedLen(n, len(data), 4, 3)
		if nb > len(data) {
			return "", fmt.Errorf("%w: 6-bit ID string of %d characters, %d bytes present", errTruncated, n, len(data))
		}
		var acc uint32
		var bits uint
		for _, b := range data[:nb] {
			acc |= uint32(b) << bits
			bits += 8
			for bits >= 6 && chars > 0 {
				sb.WriteByte(byte(acc&0x3F) + 0x20)
				acc >>= 6
				bits -= 6
				chars--
			}
		}
	default: // 8-bit ASCII + Latin-1, and Unicode
		if n > len(data) {
			return "", fmt.Errorf("%w: ID string of %d bytes, %d present", errTruncated, n, len(data))
		}
		for _, b := range data[:n] {
			switch {
			case b == 0:
				sb.WriteByte(0)
			case b < 0x20 || b == 0x7F || (b >= 0x80 && b < 0xA0):
				sb.WriteByte(' ')
			case b < 0x80:
				sb.WriteByte(b)
			default:
				sb.WriteRune(rune(b)) // Latin-1 is the first 256 code points
			}
		}
	}
	s := strings.TrimRight(sb.String(), "\x00 ")
	if i := strings.IndexByte(s, 0); i >= 0 {
		s = strings.TrimRight(s[:i], " ")
	}
	return s, nil
}

// packedLen interprets the length n of a packed ID string holding
// charsPer characters in bytesPer bytes, given avail bytes in the record:
// it returns the number of characters and of bytes to decode.
func packedLen(n, avail, charsPer, bytesPer int) (chars, nbytes int) {
	need := (n*bytesPer + charsPer - 1) / charsPer
	if avail >= n && n > need {
		return n * charsPer / bytesPer, n // written counting bytes
	}
	return n, need
}

// sensorTypeNames are the IPMI sensor type names (§42.2, Table 42-3).
var sensorTypeNames = [...]string{
	0x01: "Temperature",
	0x02: "Voltage",
	0x03: "Current",
	0x04: "Fan",
	0x05: "Physical Security",
	0x06: "Platform Security",
	0x07: "Processor",
	0x08: "Power Supply",
	0x09: "Power Unit",
	0x0A: "Cooling Device",
	0x0B: "Other Units-based",
	0x0C: "Memory",
	0x0D: "Drive Slot",
	0x0E: "POST Memory Resize",
	0x0F: "System Firmware Progress",
	0x10: "Event Logging Disabled",
	0x11: "Watchdog 1",
	0x12: "System Event",
	0x13: "Critical Interrupt",
	0x14: "Button / Switch",
	0x15: "Module / Board",
	0x16: "Microcontroller / Coprocessor",
	0x17: "Add-in Card",
	0x18: "Chassis",
	0x19: "Chip Set",
	0x1A: "Other FRU",
	0x1B: "Cable / Interconnect",
	0x1C: "Terminator",
	0x1D: "System Boot Initiated",
	0x1E: "Boot Error",
	0x1F: "OS Boot",
	0x20: "OS Critical Stop",
	0x21: "Slot / Connector",
	0x22: "System ACPI Power State",
	0x23: "Watchdog 2",
	0x24: "Platform Alert",
	0x25: "Entity Presence",
	0x26: "Monitor ASIC / IC",
	0x27: "LAN",
	0x28: "Management Subsystem Health",
	0x29: "Battery",
	0x2A: "Session Audit",
	0x2B: "Version Change",
	0x2C: "FRU State",
}

// sensorTypeName names an IPMI sensor type; OEM and unknown types are
// named by number.
func sensorTypeName(t uint8) string {
	if int(t) < len(sensorTypeNames) && sensorTypeNames[t] != "" {
		return sensorTypeNames[t]
	}
	if t >= 0xC0 {
		return fmt.Sprintf("OEM 0x%02x", t)
	}
	return fmt.Sprintf("Unknown 0x%02x", t)
}

// unitNames are the IPMI sensor unit type codes (§43.17, Table 43-15), as
// ipmitool prints them.
var unitNames = [...]string{
	"unspecified", "degrees C", "degrees F", "degrees K", "Volts", "Amps", "Watts", "Joules",
	"Coulombs", "VA", "Nits", "lumen", "lux", "Candela", "kPa", "PSI",
	"Newton", "CFM", "RPM", "Hz", "microsecond", "millisecond", "second", "minute",
	"hour", "day", "week", "mil", "inches", "feet", "cu in", "cu feet",
	"mm", "cm", "m", "cu cm", "cu m", "liters", "fluid ounce", "radians",
	"steradians", "revolutions", "cycles", "gravities", "ounce", "pound", "ft-lb", "oz-in",
	"gauss", "gilberts", "henry", "millihenry", "farad", "microfarad", "ohms", "siemens",
	"mole", "becquerel", "PPM", "reserved", "Decibels", "DbA", "DbC", "gray",
	"sievert", "color temp deg K", "bit", "kilobit", "megabit", "gigabit", "byte", "kilobyte",
	"megabyte", "gigabyte", "word", "dword", "qword", "line", "hit", "miss",
	"retry", "reset", "overrun", "underrun", "collision", "packets", "messages", "characters",
	"error", "correctable error", "uncorrectable error", "fatal error", "grams",
}

// Unit type codes this package maps onto kinds.
const (
	unitUnspecified = 0
	unitDegreesC    = 1
	unitDegreesF    = 2
	unitDegreesK    = 3
	unitVolts       = 4
	unitAmps        = 5
	unitWatts       = 6
	unitJoules      = 7
	unitKPa         = 14
	unitPSI         = 15
	unitCFM         = 17
	unitRPM         = 18
	unitHz          = 19
)

// unitName names a unit type code.
func unitName(u uint8) string {
	if int(u) < len(unitNames) {
		return unitNames[u]
	}
	return fmt.Sprintf("unit 0x%02x", u)
}

// rateSuffixes are the rate units of §43.1 byte 21 bits 5:3.
var rateSuffixes = [8]string{"", "/us", "/ms", "/s", "/min", "/h", "/d", ""}

// unitString renders a sensor's unit from §43.1 bytes 21-23: the base
// unit, combined with the modifier unit (base/modifier or base*modifier),
// a rate, and the percentage flag ("percent" alone when the base unit is
// unspecified, as HPE reports fan duty). An unspecified unit is "".
func unitString(units1, base, modifier uint8) string {
	pct := units1&0x01 != 0
	s := ""
	if base != unitUnspecified {
		s = unitName(base)
		switch (units1 >> 1) & 0x03 {
		case 1:
			s += "/" + unitName(modifier)
		case 2:
			s += "*" + unitName(modifier)
		}
		s += rateSuffixes[(units1>>3)&0x07]
	}
	switch {
	case pct && s == "":
		return "percent"
	case pct:
		return "% " + s
	}
	return s
}

// kindOf chooses the physical kind of a sensor from its base unit, then
// its sensor type when the unit is unspecified or a percentage.
func kindOf(units1, base, sensorType uint8) v1.Kind {
	if units1&0x01 == 0 || base != unitUnspecified {
		switch base {
		case unitDegreesC, unitDegreesF, unitDegreesK:
			return v1.Kind_KIND_TEMPERATURE
		case unitVolts:
			return v1.Kind_KIND_VOLTAGE
		case unitAmps:
			return v1.Kind_KIND_CURRENT
		case unitWatts:
			return v1.Kind_KIND_POWER
		case unitJoules:
			return v1.Kind_KIND_ENERGY
		case unitRPM:
			return v1.Kind_KIND_FAN
		case unitCFM:
			return v1.Kind_KIND_AIRFLOW
		case unitHz:
			return v1.Kind_KIND_FREQUENCY
		case unitKPa, unitPSI:
			return v1.Kind_KIND_PRESSURE
		}
	}
	switch sensorType {
	case 0x01:
		return v1.Kind_KIND_TEMPERATURE
	case 0x02:
		return v1.Kind_KIND_VOLTAGE
	case 0x03:
		return v1.Kind_KIND_CURRENT
	case 0x04:
		return v1.Kind_KIND_FAN
	}
	if units1&0x01 != 0 {
		return v1.Kind_KIND_PERCENT
	}
	return v1.Kind_KIND_UNSPECIFIED
}

// convertThresholds converts the thresholds of mask from raw bytes.
func convertThresholds(c conversion, mask uint8, raw [thCount]uint8) []v1.Threshold {
	var out []v1.Threshold
	for i := range thCount {
		if mask&(1<<i) == 0 {
			continue
		}
		out = append(out, v1.Threshold{Kind: thresholdKinds[i], Value: c.value(raw[i])})
	}
	return out
}

// reading is a decoded Get Sensor Reading response (§35.14).
type reading struct {
	raw uint8
	// unavailable is set when the BMC flags the reading unavailable or
	// scanning disabled (disabled): the raw byte means nothing then.
	unavailable bool
	disabled    bool
	// status is the threshold comparison status (bit i: at or beyond
	// threshold i) of a threshold sensor.
	status uint8
	// states are the asserted states 0-14 of a discrete sensor.
	states uint16
}

// decodeReading decodes the data of a Get Sensor Reading response.
func decodeReading(b []byte) (reading, error) {
	if len(b) < 2 {
		return reading{}, fmt.Errorf("%w: sensor reading of %d bytes, want at least 2", errTruncated, len(b))
	}
	r := reading{raw: b[0]}
	// Byte 2: bit 6 scanning enabled, bit 5 reading/state unavailable.
	r.disabled = b[1]&0x40 == 0
	r.unavailable = r.disabled || b[1]&0x20 != 0
	if len(b) > 2 {
		r.status = b[2] & 0x3F
		r.states = uint16(b[2])
	}
	if len(b) > 3 {
		r.states |= uint16(b[3]&0x7F) << 8
	}
	return r, nil
}

// health is a threshold sensor's health from its comparison status:
// beyond a non-recoverable or critical threshold is critical, beyond a
// non-critical one a warning.
func health(status uint8) v1.Health {
	switch {
	case status&(1<<thLCR|1<<thLNR|1<<thUCR|1<<thUNR) != 0:
		return v1.Health_HEALTH_CRITICAL
	case status&(1<<thLNC|1<<thUNC) != 0:
		return v1.Health_HEALTH_WARNING
	}
	return v1.Health_HEALTH_OK
}
