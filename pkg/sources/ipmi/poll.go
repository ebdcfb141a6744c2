package ipmi

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/bougou/go-ipmi/pkg/types"

	"github.com/bmcstream/bmcstream/pkg/sources"
	v1 "github.com/bmcstream/bmcstream/proto/bmcstream/v1"
)

// infoKeys are the Snapshot.Info keys a Source owns.
var infoKeys = [...]string{
	"vendor", "manufacturer_id", "product_id", "firmware", "guid", "power_state",
	"chassis_power_fault", "chassis_cooling_fault", "chassis_drive_fault", "chassis_intrusion",
}

// dcmiState is what a session knows about DCMI Get Power Reading.
type dcmiState uint8

const (
	dcmiUnknown dcmiState = iota
	dcmiSupported
	dcmiUnsupported // asked and refused: not again until the next session
)

// DCMI Get Power Reading (DCMI v1.5 §6.6.1) in system power statistics mode.
const (
	dcmiGroupID         = 0xDC
	dcmiModeSystemPower = 0x01
)

// poll is the state of one poll attempt.
type poll struct {
	dst *v1.Snapshot
	// err is the poll's main error and more the count of others.
	err  *sources.Error
	more int
	// session is set once a session is established: failures after it
	// make the snapshot partial rather than empty.
	session bool
	partial bool
	// drops are the readings this attempt left out, counted once the
	// poll's attempt is chosen.
	drops []sources.Drop
}

func newPoll(dst *v1.Snapshot, drops []sources.Drop) *poll { return &poll{dst: dst, drops: drops} }

// drop records a reading left out of the snapshot.
func (p *poll) drop(reason, name, id, detail string) {
	p.drops = append(p.drops, sources.Drop{Reason: reason, Name: name, ID: id, Detail: detail})
}

// record keeps a non-fatal error: the first one is reported, the others
// counted.
func (p *poll) record(err *sources.Error) {
	p.partial = p.partial || p.session
	if p.err == nil {
		p.err = err
		return
	}
	p.more++
}

// fail records the error that ended the poll; it becomes the main error.
func (p *poll) fail(err error) {
	var se *sources.Error
	if !errors.As(err, &se) {
		class := sources.ClassProtocol
		if errors.Is(err, errSessionDead) || errors.Is(err, errNoAnswer) ||
			errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled) {
			class = sources.ClassTimeout
		}
		se = &sources.Error{Class: class, Err: err}
	}
	if p.err != nil {
		p.more++
	}
	p.err = se
	p.partial = p.partial || p.session
}

// check sorts the error of a poll step. It returns nil when the poll may
// go on (with err, if any, recorded) and an error when it must stop: the
// poll deadline passed, or the session went silent.
func (s *Source) check(ctx context.Context, p *poll, err error, format string, args ...any) error {
	action := fmt.Sprintf(format, args...)
	switch {
	case expired(ctx):
		return sources.Errorf(sources.ClassTimeout, "%s of %s: poll deadline: %w", action, s.addr, deadlineErr(ctx))
	case errors.Is(err, errNoAnswer), isUnreachable(err):
		// Silence, or an ICMP error: the session (or the BMC) is gone.
		return fmt.Errorf("%s of %s: %w: %w", action, s.addr, errSessionDead, err)
	case errors.Is(err, errTruncated):
		p.record(sources.Errorf(sources.ClassDecode, "%s of %s: %w", action, s.addr, err))
	default:
		p.record(sources.Errorf(sources.ClassProtocol, "%s of %s: %w", action, s.addr, err))
	}
	return nil
}

// poll runs one poll attempt: it opens a session when needed, then reads
// chassis status, DCMI power, identity and SDR repository changes when
// due, and every cached sensor.
func (s *Source) poll(ctx context.Context, p *poll) error {
	if err := ctx.Err(); err != nil {
		return sources.Errorf(sources.ClassTimeout, "poll %s: %w", s.addr, err)
	}
	if s.c != nil && s.now().Sub(s.lastHeard) > s.opts.SessionTimeout {
		// The BMC has forgotten this session by now: asking it would only
		// cost a timeout, and so would Close Session.
		s.stats.Expired++
		s.log.Debug("ipmi session idle past the session timeout, replacing it", "idle", s.now().Sub(s.lastHeard))
		s.discard()
	}
	if s.c == nil {
		if err := s.open(ctx); err != nil {
			return err
		}
		// A new session asks DCMI again and re-reads the identity and the
		// repository's fingerprint (a BMC reset drops sessions).
		s.dcmi = dcmiUnknown
		s.identAt, s.repoChecked = time.Time{}, time.Time{}
		if s.scan != nil {
			s.scan.reserved = false // reservations need not outlive a session
		}
	}
	p.session = true
	if err := s.readChassis(ctx, p); err != nil {
		return err
	}
	if err := s.readDCMI(ctx, p); err != nil {
		return err
	}
	if err := s.readIdentity(ctx, p); err != nil {
		return err
	}
	if err := s.checkRepository(ctx, p); err != nil {
		return err
	}
	return s.readSensors(ctx, p)
}

// readChassis reads Get Chassis Status (§28.2) into the snapshot's info.
func (s *Source) readChassis(ctx context.Context, p *poll) error {
	data, err := s.exchange(ctx, 0, types.CommandGetChassisStatus)
	if err != nil {
		return s.check(ctx, p, err, "read chassis status")
	}
	cs, err := decodeChassis(data)
	if err != nil {
		return s.check(ctx, p, err, "decode chassis status")
	}
	cs.fill(p.dst.Info)
	return nil
}

// readDCMI reads the chassis input power with DCMI Get Power Reading,
// unless this session's BMC said it has no DCMI.
func (s *Source) readDCMI(ctx context.Context, p *poll) error {
	if s.dcmi == dcmiUnsupported {
		return nil
	}
	data, err := s.exchange(ctx, 0, types.CommandGetDCMIPowerReading, dcmiGroupID, dcmiModeSystemPower, 0, 0)
	if cc, ok := completionCode(err); ok && dcmiRefusal(cc) {
		s.dcmi = dcmiUnsupported
		s.log.Debug("dcmi power reading unsupported for this session", "err", err)
		return nil
	}
	if err != nil {
		return s.check(ctx, p, err, "read dcmi power")
	}
	s.dcmi = dcmiSupported
	watts, active, err := decodePowerReading(data)
	if err != nil {
		return s.check(ctx, p, err, "decode dcmi power")
	}
	if !active {
		s.stats.Unavailable++
		p.drop(sources.DropNull, "Chassis Input Power", "dcmi", "power measurement not active")
		return nil
	}
	r := nextReading(p.dst)
	r.Name = "Chassis Input Power"
	r.Id = "dcmi"
	r.Kind = v1.Kind_KIND_POWER
	r.Unit = unitNames[unitWatts]
	r.Value = watts
	r.SensorType = "PowerControl"
	r.Health = v1.Health_HEALTH_UNSPECIFIED
	r.State = "Enabled"
	return nil
}

// dcmiRefusal reports completion codes that mean "this BMC (or this
// session's privilege) has no DCMI power reading": invalid command, not
// for this LUN, invalid field (the mode), insufficient privilege (ipmi_sim
// at USER), sub-function disabled.
func dcmiRefusal(cc uint8) bool {
	switch cc {
	case ccInvalidCommand, ccInvalidForLUN, ccInvalidField, ccInsufficientPriv, ccSubfuncDisabled, ccNotPresent:
		return true
	}
	return false
}

// readIdentity reads Get Device ID and Get System GUID when due. Failures
// other than silence are not poll errors: they are retried next poll.
func (s *Source) readIdentity(ctx context.Context, p *poll) error {
	if s.now().Sub(s.identAt) < s.opts.InfoInterval {
		return nil
	}
	data, err := s.exchange(ctx, 0, types.CommandGetDeviceID)
	if err != nil {
		if expired(ctx) || errors.Is(err, errNoAnswer) {
			return s.check(ctx, p, err, "read device id")
		}
		s.log.Debug("read device id", "err", err)
		return nil
	}
	id, err := decodeDeviceID(data)
	if err != nil {
		s.log.Debug("decode device id", "err", err)
		return nil
	}
	data, err = s.exchange(ctx, 0, types.CommandGetSystemGUID)
	switch {
	case err == nil:
		id.guid = decodeGUID(data)
	case expired(ctx) || errors.Is(err, errNoAnswer):
		return s.check(ctx, p, err, "read system guid")
	}
	s.ident = id
	s.identAt = s.now()
	return nil
}

// readSensors reads every cached sensor (§35.14).
func (s *Source) readSensors(ctx context.Context, p *poll) error {
	if s.repo == nil {
		return nil
	}
	// The records and sensors the repository holds but no poll reads.
	p.drops = append(p.drops, s.repo.unread...)
	now := s.now()
	for i := range s.repo.sensors {
		sn := &s.repo.sensors[i]
		if sn.absent >= absentPolls && now.Before(sn.retryAt) {
			p.drop(sources.DropAbsent, sn.name, sn.id, "not present (asked again later)")
			continue
		}
		data, err := s.exchange(ctx, sn.lun, types.CommandGetSensorReading, sn.number)
		if err != nil {
			if cc, ok := completionCode(err); ok && readingAbsent(cc) {
				s.stats.Unavailable++
				if sn.absent++; sn.absent >= absentPolls {
					sn.retryAt = now.Add(s.opts.InfoInterval)
				}
				p.drop(sources.DropAbsent, sn.name, sn.id, absentDetail(cc))
				continue
			}
			if err := s.check(ctx, p, err, "read sensor %s (%s)", sn.id, sn.name); err != nil {
				return err
			}
			continue
		}
		sn.absent = 0
		rd, err := decodeReading(data)
		if err != nil {
			if err := s.check(ctx, p, err, "decode sensor %s (%s)", sn.id, sn.name); err != nil {
				return err
			}
			continue
		}
		if rd.unavailable {
			s.stats.Unavailable++ // never published as a zero
			if rd.disabled {
				p.drop(sources.DropDisabled, sn.name, sn.id, "sensor scanning disabled")
			} else {
				p.drop(sources.DropNull, sn.name, sn.id, "reading unavailable")
			}
			continue
		}
		appendReading(p.dst, sn, rd)
	}
	return nil
}

// appendReading appends a sensor's reading to dst. Once dst has room, it
// allocates nothing: strings come from the cache, thresholds are copied
// into the reused backing array.
func appendReading(dst *v1.Snapshot, sn *sensor, rd reading) {
	r := nextReading(dst)
	r.Name = sn.name
	r.Id = sn.id
	r.SensorType = sn.typeName
	r.EntityId = uint32(sn.entityID)
	r.EntityInstance = uint32(sn.entityInst)
	r.State = "Enabled"
	if sn.analog {
		r.Kind = sn.kind
		r.Unit = sn.unit
		r.Value = sn.conv.value(rd.raw)
		r.Health = health(rd.status)
		r.Thresholds = append(r.Thresholds, sn.thresholds...)
		return
	}
	r.Kind = v1.Kind_KIND_DISCRETE
	r.Value = float64(rd.states)
	if !sn.statesKnown || sn.states != rd.states {
		sn.stateText, sn.stateHealth = discreteState(sn.sensorType, sn.readingType, sn.stateMask, rd.states)
		sn.states, sn.statesKnown = rd.states, true
	}
	r.State = sn.stateText
	r.Health = sn.stateHealth
}

// absentPolls is how many polls in a row a sensor may answer "not
// present" before it is asked only once per InfoInterval: SDRs list
// sensors of empty sockets and DIMM slots, dozens on a large server.
const absentPolls = 3

// readingAbsent reports completion codes by which BMCs say a sensor of
// their SDR has no reading: not present (CBh, the spec's), an invalid
// sensor number (CCh: ipmi_sim, and BMCs listing sensors of unpopulated
// sockets) and not readable in the present state (D5h, some BMCs with the
// host powered off). They are counted as unavailable, not errors, or a
// BMC's SDR quirk would make every poll partial.
func readingAbsent(cc uint8) bool {
	return cc == ccNotPresent || cc == ccInvalidField || cc == 0xD5
}

// absentDetail words the completion code by which a BMC said a sensor has
// no reading.
func absentDetail(cc uint8) string {
	switch cc {
	case ccNotPresent:
		return "not present (completion code 0xcb)"
	case ccInvalidField:
		return "not present (completion code 0xcc)"
	}
	return "not readable now (completion code 0xd5)"
}

// nextReading appends a zero reading to dst, reusing the memory of one
// left beyond its length (and its thresholds' backing array).
func nextReading(dst *v1.Snapshot) *v1.Reading {
	n := len(dst.Readings)
	if n < cap(dst.Readings) {
		dst.Readings = dst.Readings[:n+1]
		th := dst.Readings[n].Thresholds[:0]
		dst.Readings[n] = v1.Reading{Thresholds: th}
	} else {
		dst.Readings = append(dst.Readings, v1.Reading{})
	}
	return &dst.Readings[n]
}

// chassisStatus is a decoded Get Chassis Status response.
type chassisStatus struct {
	powerOn, powerFault, coolingFault, driveFault, intrusion bool
}

// decodeChassis decodes Get Chassis Status (§28.2, Table 28-3). A power
// fault is a main power fault, a power control fault or an overload.
func decodeChassis(b []byte) (chassisStatus, error) {
	if len(b) < 3 {
		return chassisStatus{}, fmt.Errorf("%w: chassis status of %d bytes, want at least 3", errTruncated, len(b))
	}
	return chassisStatus{
		powerOn:      b[0]&0x01 != 0,
		powerFault:   b[0]&(0x02|0x08|0x10) != 0,
		intrusion:    b[2]&0x01 != 0,
		driveFault:   b[2]&0x04 != 0,
		coolingFault: b[2]&0x08 != 0,
	}, nil
}

func (c chassisStatus) fill(info map[string]string) {
	info["power_state"] = "Off"
	if c.powerOn {
		info["power_state"] = "On"
	}
	info["chassis_power_fault"] = strconv.FormatBool(c.powerFault)
	info["chassis_cooling_fault"] = strconv.FormatBool(c.coolingFault)
	info["chassis_drive_fault"] = strconv.FormatBool(c.driveFault)
	info["chassis_intrusion"] = strconv.FormatBool(c.intrusion)
}

// decodePowerReading decodes DCMI Get Power Reading: the current input
// power in watts, and whether the BMC is measuring at all (byte 18 bit 6).
func decodePowerReading(b []byte) (watts float64, active bool, err error) {
	if len(b) < 18 {
		return 0, false, fmt.Errorf("%w: dcmi power reading of %d bytes, want 18", errTruncated, len(b))
	}
	if b[0] != dcmiGroupID {
		return 0, false, fmt.Errorf("dcmi power reading: group extension 0x%02x, want 0x%02x", b[0], dcmiGroupID)
	}
	return float64(binary.LittleEndian.Uint16(b[1:3])), b[17]&0x40 != 0, nil
}

// identity is what Get Device ID and Get System GUID tell about a BMC.
type identity struct {
	known          bool
	manufacturerID uint32
	productID      uint16
	firmware       string
	guid           string
}

// decodeDeviceID decodes Get Device ID (§20.1, Table 20-2).
func decodeDeviceID(b []byte) (identity, error) {
	if len(b) < 11 {
		return identity{}, fmt.Errorf("%w: device id of %d bytes, want at least 11", errTruncated, len(b))
	}
	return identity{
		known:          true,
		manufacturerID: uint32(b[6]) | uint32(b[7])<<8 | uint32(b[8]&0x0F)<<16,
		productID:      binary.LittleEndian.Uint16(b[9:11]),
		// The minor revision is two BCD digits: 0x72 is "72".
		firmware: fmt.Sprintf("%d.%02x", b[2]&0x7F, b[3]),
	}, nil
}

// decodeGUID formats Get System GUID (§22.14) as an RFC 4122 string,
// reading the bytes in the SMBIOS order (first three fields little-endian)
// BMCs use in practice, so it matches the Redfish system UUID.
func decodeGUID(b []byte) string {
	if len(b) < 16 {
		return ""
	}
	return fmt.Sprintf("%08x-%04x-%04x-%x-%x",
		binary.LittleEndian.Uint32(b[0:4]), binary.LittleEndian.Uint16(b[4:6]),
		binary.LittleEndian.Uint16(b[6:8]), b[8:10], b[10:16])
}

// fill writes the identity into a snapshot's info.
func (id identity) fill(info map[string]string) {
	if !id.known {
		return
	}
	info["vendor"] = vendorName(id.manufacturerID)
	info["manufacturer_id"] = strconv.FormatUint(uint64(id.manufacturerID), 10)
	info["product_id"] = strconv.FormatUint(uint64(id.productID), 10)
	info["firmware"] = id.firmware
	if id.guid != "" {
		info["guid"] = id.guid
	}
}

// vendorName names the IANA enterprise numbers of BMC makers, spelled as
// their Redfish services spell Manufacturer where they have one, and
// falls back to the number.
func vendorName(iana uint32) string {
	switch iana {
	case 2:
		return "IBM"
	case 11:
		return "HPE"
	case 343:
		return "Intel Corporation"
	case 674:
		return "Dell Inc."
	case 2011:
		return "Huawei"
	case 4753:
		return "MontaVista"
	case 5703:
		return "NVIDIA"
	case 5771:
		return "Cisco"
	case 7244:
		return "Quanta"
	case 10368:
		return "Fujitsu"
	case 10876, 47488:
		return "Supermicro"
	case 19046:
		return "Lenovo"
	case 20974:
		return "AMI"
	case 49871:
		return "OpenBMC"
	}
	return strconv.FormatUint(uint64(iana), 10)
}
