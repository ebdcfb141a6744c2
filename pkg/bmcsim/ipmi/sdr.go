package ipmi

import (
	"encoding/binary"
	"fmt"
	"math"
	"strings"
	"unicode/utf8"

	"github.com/bmcstream/bmcstream/pkg/bmcsim/model"
)

// SDR wire constants (IPMI v2.0 §43.1, Full Sensor Record).
const (
	sdrVersion         = 0x51 // SDR command set version 1.5 (§33.9)
	sdrTypeFull        = 0x01
	sdrHeaderLen       = 5
	sdrTypeCompact     = 0x02
	sdrFullFixedLen    = 48 // header + fixed body, before the ID string bytes
	sdrCompactFixedLen = 32 // the same for a Compact Sensor Record (§43.2)
	sdrIDMaxLen        = 16 // §43.1 byte 48: at most 16 ID string bytes
	sdrOwnerBMC        = 0x20
	eventReadingThres  = 0x01 // threshold-based sensor (§42.1)
)

// IPMI sensor types (§42.2, Table 42-3) and units (§43.17, Table 43-15).
const (
	sensorTypeTemperature = 0x01
	sensorTypeVoltage     = 0x02
	sensorTypeCurrent     = 0x03
	sensorTypeFan         = 0x04
	sensorTypePowerSupply = 0x08
	sensorTypeOtherUnits  = 0x0B

	unitDegreesC = 1
	unitVolts    = 4
	unitAmps     = 5
	unitWatts    = 6
	unitRPM      = 18
)

// maxChassisWatts bounds model.BMC.ChassisPower, which peaks at
// 140 + 360 × 0.95 = 482 W; it sizes the conversion of power and current
// sensors so their raw byte never saturates.
const maxChassisWatts = 500.0

// Thresholds are indexed in the order every IPMI threshold mask uses: bit i
// of the readable mask (§43.1 bytes 19-20), of the Get Sensor Thresholds
// mask (§35.9) and of the Get Sensor Reading comparison status (§35.14) all
// name the same threshold.
const (
	thLNC = iota // lower non-critical  ← model lower_caution
	thLCR        // lower critical      ← model lower_critical
	thLNR        // lower non-recoverable ← model lower_fatal
	thUNC        // upper non-critical  ← model upper_caution
	thUCR        // upper critical      ← model upper_critical
	thUNR        // upper non-recoverable ← model upper_fatal
	thCount
)

// thresholdKey is the model's (Redfish) name of IPMI threshold i.
func thresholdKey(i int) string {
	switch i {
	case thLNC:
		return "lower_caution"
	case thLCR:
		return "lower_critical"
	case thLNR:
		return "lower_fatal"
	case thUNC:
		return "upper_caution"
	case thUCR:
		return "upper_critical"
	case thUNR:
		return "upper_fatal"
	}
	return ""
}

// conversion is the linear reading conversion of one sensor (§36.3):
// value = M × raw × 10^R, with B = 0 and no linearisation.
type conversion struct {
	m      int16 // 10-bit two's complement on the wire; 1..10 here
	rExp   int8  // 4-bit two's complement on the wire
	signed bool  // raw bytes are two's complement (temperatures go negative)
}

// step is the value of one raw count.
func (c conversion) step() float64 { return float64(c.m) * math.Pow10(int(c.rExp)) }

// encode is the inverse conversion: the raw byte nearest to v, saturated at
// the ends of the raw range.
func (c conversion) encode(v float64) uint8 {
	x := math.Round(v / c.step())
	if c.signed {
		return uint8(int8(math.Max(-128, math.Min(127, x))))
	}
	return uint8(math.Max(0, math.Min(255, x)))
}

// decode is the conversion a client applies to a raw byte.
func (c conversion) decode(raw uint8) float64 {
	x := float64(raw)
	if c.signed {
		x = float64(int8(raw))
	}
	return x * c.step()
}

// conversionFor chooses the factors of a sensor: temperatures read whole
// degrees in a signed byte (−128..127 °C covers DTS margins and every
// limit); every other kind gets the finest step M × 10^R (M in 1..9) whose
// 255 counts still cover the sensor's full scale and all of its thresholds.
func conversionFor(s *model.SensorSpec, nPSU int) conversion {
	if s.Kind == model.KindTemperature {
		return conversion{m: 1, signed: true}
	}
	full := fullScale(s, nPSU)
	for _, v := range s.Thresholds {
		full = math.Max(full, math.Abs(v)*1.05)
	}
	if !(full > 0) || math.IsInf(full, 0) {
		full = 255
	}
	step := full / 255
	r := int(math.Floor(math.Log10(step)))
	m := int(math.Ceil(step/math.Pow10(r) - 1e-9))
	if m >= 10 {
		m, r = 1, r+1
	}
	return conversion{m: int16(m), rExp: int8(r)}
}

// fullScale is the largest value a sensor of this kind reads in the model.
func fullScale(s *model.SensorSpec, nPSU int) float64 {
	switch s.Kind {
	case model.KindTemperature:
		return 127 // the signed byte's top in whole degrees
	case model.KindFan:
		if s.Nominal > 0 {
			return s.Nominal // the model never spins a fan past its nominal maximum
		}
		return 16000
	case model.KindPower:
		if s.Source == model.SourcePSUInput || s.Source == model.SourcePSUOutput {
			return maxChassisWatts / float64(max(1, nPSU)) * 1.02
		}
		return maxChassisWatts * 1.02
	case model.KindVoltage:
		if s.Nominal > 0 {
			return s.Nominal * 1.25
		}
		return 15
	case model.KindCurrent:
		// The model draws current as chassis power over 230 V.
		return maxChassisWatts / 230 * 1.25
	}
	return 255
}

// typeAndUnit returns the IPMI sensor type and base unit of a sensor. Total
// power is an "other units-based" sensor (as OpenBMC reports it); a PSU's
// input or output power belongs to the power supply.
func typeAndUnit(s *model.SensorSpec) (sensorType, unit uint8) {
	switch s.Kind {
	case model.KindTemperature:
		return sensorTypeTemperature, unitDegreesC
	case model.KindVoltage:
		return sensorTypeVoltage, unitVolts
	case model.KindCurrent:
		return sensorTypeCurrent, unitAmps
	case model.KindFan:
		return sensorTypeFan, unitRPM
	case model.KindPower:
		if s.Source == model.SourcePSUInput || s.Source == model.SourcePSUOutput {
			return sensorTypePowerSupply, unitWatts
		}
		return sensorTypeOtherUnits, unitWatts
	}
	return sensorTypeOtherUnits, 0
}

// direction is the SDR sensor direction (§43.1 byte 29): 01b input, 10b output.
func direction(s *model.SensorSpec) uint8 {
	switch s.Source {
	case model.SourcePSUInput:
		return 0x01
	case model.SourcePSUOutput:
		return 0x02
	}
	return 0
}

// sdrSensor is one model sensor as IPMI sees it.
type sdrSensor struct {
	spec       int // index in Personality.Sensors
	number     uint8
	id         string
	conv       conversion
	absent     bool             // numbered, but kept out of the SDR (model Absent)
	present    uint8            // bit i set: threshold i exists (readable, status returned)
	thresholds [thCount]float64 // model values, compared against readings
	raw        [thCount]uint8   // thresholds as raw bytes
	// disc is the discrete sensor this is (spec is then −1), nil for a
	// threshold sensor.
	disc *model.DiscreteSpec
}

// status is the threshold comparison status of value v (§35.14 byte 3):
// bit i set when v is at or beyond threshold i. Every crossed threshold is
// reported, so a reading past UCR also reports UNC, as the spec asks.
func (s *sdrSensor) status(v float64) uint8 {
	var st uint8
	for i := range thCount {
		if s.present&(1<<i) == 0 {
			continue
		}
		if (i >= thUNC && v >= s.thresholds[i]) || (i < thUNC && v <= s.thresholds[i]) {
			st |= 1 << i
		}
	}
	return st
}

// profile is what all virtual BMCs of one personality share: the sensor
// table, the SDR repository bytes and the Get Device ID identity. It is
// immutable once built.
type profile struct {
	sensors   []sdrSensor
	discrete  []model.DiscreteSpec
	bySensor  [256]int16 // sensor number → index in sensors, −1 when unknown
	records   [][]byte   // record ID i+1 is records[i]
	recordIDs []uint16
	fwMajor   uint8
	fwMinor   uint8 // BCD
}

// newProfile builds the IPMI view of a personality.
func newProfile(p *model.Personality) (*profile, error) {
	pr := &profile{}
	for i := range pr.bySensor {
		pr.bySensor[i] = -1
	}
	ids := SensorIDs(p)
	for i := range p.Sensors {
		spec := &p.Sensors[i]
		if spec.IPMI.Omit {
			continue
		}
		if spec.IPMI.Number == 0 || spec.IPMI.Number == 0xFF {
			return nil, fmt.Errorf("sensor %q: ipmi number %d is reserved", spec.Name, spec.IPMI.Number)
		}
		if pr.bySensor[spec.IPMI.Number] >= 0 {
			return nil, fmt.Errorf("sensor %q: ipmi number %d used twice", spec.Name, spec.IPMI.Number)
		}
		sn := sdrSensor{
			spec:   i,
			number: spec.IPMI.Number,
			id:     ids[i],
			conv:   conversionFor(spec, len(p.PSUs)),
			absent: spec.Absent,
		}
		for t := range thCount {
			v, ok := spec.Thresholds[thresholdKey(t)]
			if !ok {
				continue
			}
			sn.present |= 1 << t
			sn.thresholds[t] = v
			sn.raw[t] = sn.conv.encode(v)
		}
		pr.bySensor[sn.number] = int16(len(pr.sensors))
		pr.sensors = append(pr.sensors, sn)
		if sn.absent {
			continue
		}
		id := uint16(len(pr.records) + 1)
		pr.records = append(pr.records, fullSensorRecord(id, &sn, spec))
		pr.recordIDs = append(pr.recordIDs, id)
	}
	pr.discrete = p.Discrete()
	for i := range pr.discrete {
		d := &pr.discrete[i]
		if pr.bySensor[d.Number] >= 0 {
			return nil, fmt.Errorf("discrete sensor %q: ipmi number %d used twice", d.Name, d.Number)
		}
		pr.bySensor[d.Number] = int16(len(pr.sensors))
		pr.sensors = append(pr.sensors, sdrSensor{spec: -1, number: d.Number, id: d.Name, disc: d})
		id := uint16(len(pr.records) + 1)
		pr.records = append(pr.records, compactSensorRecord(id, d))
		pr.recordIDs = append(pr.recordIDs, id)
	}
	pr.fwMajor, pr.fwMinor = firmwareRevision(p.Firmware)
	return pr, nil
}

// sensor returns the sensor with an IPMI number, or nil.
func (pr *profile) sensor(number uint8) *sdrSensor {
	i := pr.bySensor[number]
	if i < 0 {
		return nil
	}
	return &pr.sensors[i]
}

// fullSensorRecord encodes a Full Sensor Record (§43.1). It is written by
// hand rather than with go-ipmi's types.SDRFull.Pack, whose threshold masks
// (bytes 15-20) are byte-swapped against the spec and ipmitool.
func fullSensorRecord(recordID uint16, sn *sdrSensor, spec *model.SensorSpec) []byte {
	id := []byte(sn.id)
	rec := make([]byte, sdrFullFixedLen+len(id))
	binary.LittleEndian.PutUint16(rec[0:], recordID)
	rec[2] = sdrVersion
	rec[3] = sdrTypeFull
	rec[4] = byte(len(rec) - sdrHeaderLen)

	rec[5] = sdrOwnerBMC // sensor owner: BMC at IPMB 20h
	rec[6] = 0x00        // channel 0, LUN 0
	rec[7] = sn.number
	rec[8] = spec.IPMI.Entity
	rec[9] = spec.IPMI.Instance & 0x7F // physical entity
	// Initialisation: init scanning, init events, event generation and
	// scanning enabled.
	rec[10] = 0x63
	// Capabilities: auto re-arm, no hysteresis, thresholds readable per the
	// mask, per-threshold event control.
	rec[11] = 0x40 | 0x01<<2
	sensorType, unit := typeAndUnit(spec)
	rec[12] = sensorType
	rec[13] = eventReadingThres

	// Masks (§43.1 bytes 15-20), 16-bit little-endian each: events for the
	// thresholds that exist (upper ones going high, lower ones going low),
	// comparison status returned for them, and readable.
	var assertLower, deassertUpper uint16
	for t := range thCount {
		if sn.present&(1<<t) == 0 {
			continue
		}
		// Event bits run LNC-low, LNC-high, LCR-low, … UNR-high (bits 0-11).
		ev := uint16(1) << (2 * t)
		if t >= thUNC {
			ev <<= 1 // going high
		}
		assertLower |= ev
		deassertUpper |= ev
		if t < thUNC {
			assertLower |= 1 << (12 + t) // lower comparison returned: bits 12-14
		} else {
			deassertUpper |= 1 << (12 + t - thUNC) // upper: bits 12-14
		}
	}
	binary.LittleEndian.PutUint16(rec[14:], assertLower)
	binary.LittleEndian.PutUint16(rec[16:], deassertUpper)
	rec[18] = sn.present // readable thresholds (LS byte)
	rec[19] = 0x00       // settable thresholds: none

	if sn.conv.signed {
		rec[20] = 0x02 << 6 // analog data format: 2's complement
	}
	rec[21] = unit
	rec[22] = 0x00 // modifier unit
	rec[23] = 0x00 // linear
	m := uint16(sn.conv.m) & 0x3FF
	rec[24] = byte(m)
	rec[25] = byte(m>>8) << 6 // tolerance 0
	rec[26] = 0               // B = 0
	rec[27] = 0               // accuracy 0
	rec[28] = direction(spec)
	rec[29] = (uint8(sn.conv.rExp) & 0x0F) << 4 // R exponent high nibble; B exponent 0

	if spec.Kind == model.KindVoltage && spec.Nominal > 0 {
		rec[30] = 0x01 // nominal reading specified
		rec[31] = sn.conv.encode(spec.Nominal)
	}
	if sn.conv.signed {
		rec[34], rec[35] = 0x7F, 0x80 // sensor maximum / minimum reading
	} else {
		rec[34], rec[35] = 0xFF, 0x00
	}
	rec[36] = sn.raw[thUNR]
	rec[37] = sn.raw[thUCR]
	rec[38] = sn.raw[thUNC]
	rec[39] = sn.raw[thLNR]
	rec[40] = sn.raw[thLCR]
	rec[41] = sn.raw[thLNC]
	// 42-43 hysteresis 0, 44-45 reserved, 46 OEM.
	rec[47] = 0xC0 | byte(len(id)) // 8-bit ASCII + Latin 1
	copy(rec[sdrFullFixedLen:], id)
	return rec
}

// compactSensorRecord encodes a discrete sensor as a Compact Sensor Record
// (§43.2): the sensor type and event/reading type, and the offsets it
// supports as both its assertion event mask (bytes 15-16) and its discrete
// reading mask (bytes 19-20), which ipmitool and the poller read to know
// which states the sensor can report.
func compactSensorRecord(recordID uint16, d *model.DiscreteSpec) []byte {
	id := []byte(truncate(d.Name, sdrIDMaxLen))
	rec := make([]byte, sdrCompactFixedLen+len(id))
	binary.LittleEndian.PutUint16(rec[0:], recordID)
	rec[2] = sdrVersion
	rec[3] = sdrTypeCompact
	rec[4] = byte(len(rec) - sdrHeaderLen)

	rec[5] = sdrOwnerBMC
	rec[6] = 0x00 // channel 0, LUN 0
	rec[7] = d.Number
	rec[8] = d.Entity
	rec[9] = d.Instance & 0x7F
	rec[10] = 0x63 // init scanning and events; events and scanning enabled
	rec[11] = 0x40 // auto re-arm, no hysteresis, no thresholds, per-state event control
	rec[12] = d.SensorType
	rec[13] = d.ReadingType
	mask := d.Supported & 0x7FFF
	binary.LittleEndian.PutUint16(rec[14:], mask) // assertion event mask
	binary.LittleEndian.PutUint16(rec[16:], mask) // deassertion event mask
	binary.LittleEndian.PutUint16(rec[18:], mask) // discrete reading mask
	// 20-22 units: none; 23-24 no record sharing; 25-26 hysteresis;
	// 27-29 reserved; 30 OEM.
	rec[31] = 0xC0 | byte(len(id)) // 8-bit ASCII + Latin 1
	copy(rec[sdrCompactFixedLen:], id)
	return rec
}

// SensorIDs returns the SDR ID string of every sensor of p, in personality
// order, with "" for sensors kept off IPMI (ipmi.omit). The ID string is the
// vendor's sensor name when it fits the 16 bytes an SDR holds (§43.1).
// Longer names lose leading words first ("System Board Fan1A" becomes
// "Board Fan1A"), as vendors shorten their IPMI names, and are cut at 16
// bytes only when a single word is too long; names that would then
// collide within the personality end in "#" and the sensor number in hex.
// The poller and the tests use this to match IPMI sensors to Redfish ones.
func SensorIDs(p *model.Personality) []string {
	out := make([]string, len(p.Sensors))
	seen := make(map[string]bool, len(p.Sensors))
	for i := range p.Sensors {
		s := &p.Sensors[i]
		if s.IPMI.Omit {
			continue
		}
		id := shortID(s.Name)
		if seen[id] {
			id = fmt.Sprintf("%s#%02X", truncate(id, sdrIDMaxLen-3), s.IPMI.Number)
		}
		seen[id] = true
		out[i] = id
	}
	return out
}

// shortID fits a sensor name into an SDR ID string.
func shortID(name string) string {
	name = strings.TrimSpace(name)
	for len(name) > sdrIDMaxLen {
		_, rest, ok := strings.Cut(name, " ")
		rest = strings.TrimSpace(rest)
		if !ok || rest == "" {
			break
		}
		name = rest
	}
	return truncate(name, sdrIDMaxLen)
}

// truncate cuts s to at most n bytes without splitting a UTF-8 sequence.
func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n]
}

// firmwareRevision extracts the first "major.minor" of a vendor firmware
// string ("iLO 5 v2.72" → 2, 0x72) for Get Device ID: major in 7 bits,
// minor as two BCD digits.
func firmwareRevision(fw string) (major, minorBCD uint8) {
	for i := 0; i < len(fw); i++ {
		if !isDigit(fw[i]) || (i > 0 && isDigit(fw[i-1])) {
			continue
		}
		j := i
		for j < len(fw) && isDigit(fw[j]) {
			j++
		}
		if j+1 >= len(fw) || fw[j] != '.' || !isDigit(fw[j+1]) {
			continue
		}
		maj := 0
		for _, c := range fw[i:j] {
			maj = min(127, maj*10+int(c-'0'))
		}
		d1 := fw[j+1] - '0'
		var d2 uint8
		if j+2 < len(fw) && isDigit(fw[j+2]) {
			d2 = fw[j+2] - '0'
		} else {
			d1, d2 = 0, d1 // "2.6" is minor 06
		}
		return uint8(maj), d1<<4 | d2
	}
	return 0, 0
}

func isDigit(c byte) bool { return c >= '0' && c <= '9' }
