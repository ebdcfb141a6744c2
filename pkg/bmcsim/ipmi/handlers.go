package ipmi

import (
	"context"
	"encoding/binary"
	"math"
	"time"

	"github.com/bougou/go-ipmi/pkg/command/chassis"
	"github.com/bougou/go-ipmi/pkg/command/storage"
	"github.com/bougou/go-ipmi/pkg/handlers"
	"github.com/bougou/go-ipmi/pkg/types"

	"github.com/bmcstream/bmcstream/pkg/bmcsim/model"
)

// DCMI constants (DCMI v1.5 §6.6.1).
const (
	dcmiGroupID         = 0xDC
	dcmiModeSystemPower = 0x01
	// dcmiWindow is the statistics window of Get Power Reading: minimum,
	// maximum and average over the last minute, sampled every 5 s.
	dcmiWindow = time.Minute
	dcmiSample = 5 * time.Second
)

// newRegistry builds the command table every virtual BMC dispatches
// through: go-ipmi's standard handlers plus what its server lacks (sensor
// reading and thresholds, system GUID, DCMI power) and what it answers too
// generically for a simulator (chassis status faults, stable SDR repository
// timestamps). Handlers find their Server through the HAL, so one table
// serves the whole fleet.
func newRegistry() *handlers.Registry {
	reg := handlers.NewRegistry()
	handlers.RegisterAllHandlers(reg)
	reg.RegisterFunc(types.CommandGetSystemGUID, handleGetSystemGUID)
	reg.RegisterFunc(types.CommandGetChassisStatus, handleGetChassisStatus)
	reg.RegisterFunc(types.CommandGetSDRRepoInfo, handleGetSDRRepoInfo)
	reg.RegisterFunc(types.CommandGetSensorReading, handleGetSensorReading)
	reg.RegisterFunc(types.CommandGetSensorThresholds, handleGetSensorThresholds)
	reg.RegisterFunc(types.CommandGetDCMICapParam, handleGetDCMICapabilities)
	reg.RegisterFunc(types.CommandGetDCMIPowerReading, handleGetDCMIPowerReading)
	reg.RegisterFunc(types.CommandGetSELInfo, handleGetSELInfo)
	reg.RegisterFunc(types.CommandReserveSEL, handleReserveSEL)
	reg.RegisterFunc(types.CommandGetSELEntry, handleGetSELEntry)
	reg.RegisterFunc(types.CommandGetSELTime, handleGetSELTime)
	return reg
}

// serverOf returns the Server a request is addressed to.
func serverOf(hctx *handlers.HandlerContext) *Server {
	if hctx == nil || hctx.BMC == nil {
		return nil
	}
	h, ok := hctx.BMC.HAL().(*simHAL)
	if !ok {
		return nil
	}
	return h.s
}

// handleGetSystemGUID implements Get System GUID (App 37h, §22.14): the
// model's UUID in the SMBIOS byte order (first three fields little-endian),
// which is how BMCs encode it in practice and how go-ipmi's client and
// ipmitool decode it by default.
func handleGetSystemGUID(_ context.Context, hctx *handlers.HandlerContext, _ []byte) ([]byte, types.CompletionCode, error) {
	s := serverOf(hctx)
	if s == nil {
		return nil, types.CodeUnspecifiedError, nil
	}
	g := smbiosGUID(s.b.UUID)
	return g[:], types.CodeOK, nil
}

// smbiosGUID encodes an RFC 4122 UUID in SMBIOS order (DSP0134 §7.2.1).
func smbiosGUID(u [16]byte) [16]byte {
	g := u
	g[0], g[1], g[2], g[3] = u[3], u[2], u[1], u[0]
	g[4], g[5] = u[5], u[4]
	g[6], g[7] = u[7], u[6]
	return g
}

// handleGetChassisStatus implements Get Chassis Status (Chassis 01h, §28.2)
// from the model: power state, and a cooling/fan fault while a fan has
// failed. go-ipmi's own handler reports no faults at all.
func handleGetChassisStatus(_ context.Context, hctx *handlers.HandlerContext, _ []byte) ([]byte, types.CompletionCode, error) {
	s := serverOf(hctx)
	if s == nil {
		return nil, types.CodeUnspecifiedError, nil
	}
	resp := chassis.GetChassisStatusResponse{
		PowerRestorePolicy:       chassis.PowerRestorePolicyPrevious,
		PowerIsOn:                s.b.PoweredOn(),
		ChassisIdentifySupported: true,
		CollingFanFault:          fanFailed(s.b),
	}
	return resp.Pack(), types.CodeOK, nil
}

// fanFailed reports whether the FanFailed fault names a fan the BMC has.
func fanFailed(b *model.BMC) bool {
	n := b.Faults().FanFailed
	if n <= 0 {
		return false
	}
	for i := range b.Personality.Sensors {
		s := &b.Personality.Sensors[i]
		if s.Source == model.SourceFan && s.Index == n-1 && !s.Absent {
			return true
		}
	}
	return false
}

// handleGetSDRRepoInfo implements Get SDR Repository Info (Storage 20h,
// §33.9). go-ipmi reports "now" as the last addition and erase time, which
// changes on every call; SDR caches (freeipmi's, and the poller's) key on
// those timestamps, so the simulator reports the time the BMC came up.
func handleGetSDRRepoInfo(_ context.Context, hctx *handlers.HandlerContext, _ []byte) ([]byte, types.CompletionCode, error) {
	s := serverOf(hctx)
	if s == nil {
		return nil, types.CodeUnspecifiedError, nil
	}
	used := 0
	for _, r := range s.profile.records {
		used += len(r)
	}
	resp := storage.GetSDRRepoInfoResponse{
		SDRVersion:             sdrVersion,
		RecordCount:            uint16(len(s.profile.records)),
		FreeSpaceBytes:         uint16(max(0, 0xFFFE-used)),
		MostRecentAdditionTime: s.bootTime,
		MostRecentEraseTime:    s.bootTime,
		SDROperationSupport: storage.SDROperationSupport{
			SupportReserveSDRRepo:      true,
			SupportGetSDRRepoAllocInfo: true,
		},
	}
	return resp.Pack(), types.CodeOK, nil
}

// handleGetSensorReading implements Get Sensor Reading (Sensor/Event 2Dh,
// §35.14): the raw byte of the model's value at request time and its
// threshold comparison status. A sensor the model marks absent reads as
// unavailable with scanning disabled; an unknown number is CBh.
func handleGetSensorReading(_ context.Context, hctx *handlers.HandlerContext, req []byte) ([]byte, types.CompletionCode, error) {
	s := serverOf(hctx)
	if s == nil {
		return nil, types.CodeUnspecifiedError, nil
	}
	if len(req) < 1 {
		return nil, types.CodeRequestDataLengthInvalid, nil
	}
	sn := s.profile.sensor(req[0])
	if sn == nil {
		return nil, types.CodeRequestedDataNotPresent, nil
	}
	// Byte 2: bit 7 event messages enabled, bit 6 scanning enabled,
	// bit 5 reading unavailable. Byte 3: bits 7:6 reserved (1b), 5:0 status.
	if sn.disc != nil {
		// A discrete sensor: no reading byte; bytes 3-4 are the asserted
		// states 0-7 and 8-14 (byte 4 bit 7 reserved, returned as 1b).
		s.observe()
		st := s.b.DiscreteState(sn.disc) & 0x7FFF
		return []byte{0x00, 0xC0, byte(st), 0x80 | byte(st>>8)}, types.CodeOK, nil
	}
	if sn.absent {
		return []byte{0x00, 0x20, 0xC0}, types.CodeOK, nil
	}
	r := s.b.Readings(s.now())[sn.spec]
	if r.State == "Absent" {
		return []byte{0x00, 0x20, 0xC0}, types.CodeOK, nil
	}
	return []byte{sn.conv.encode(r.Value), 0xC0, 0xC0 | sn.status(r.Value)}, types.CodeOK, nil
}

// handleGetSensorThresholds implements Get Sensor Thresholds (Sensor/Event
// 27h, §35.9) from the personality's limits.
func handleGetSensorThresholds(_ context.Context, hctx *handlers.HandlerContext, req []byte) ([]byte, types.CompletionCode, error) {
	s := serverOf(hctx)
	if s == nil {
		return nil, types.CodeUnspecifiedError, nil
	}
	if len(req) < 1 {
		return nil, types.CodeRequestDataLengthInvalid, nil
	}
	sn := s.profile.sensor(req[0])
	if sn == nil {
		return nil, types.CodeRequestedDataNotPresent, nil
	}
	return []byte{
		sn.present,
		sn.raw[thLNC], sn.raw[thLCR], sn.raw[thLNR],
		sn.raw[thUNC], sn.raw[thUCR], sn.raw[thUNR],
	}, types.CodeOK, nil
}

// dcmiRequest checks the group extension of a DCMI request: personalities
// without DCMI answer C1h (invalid command) as such BMCs do.
func dcmiRequest(hctx *handlers.HandlerContext, req []byte) (*Server, types.CompletionCode) {
	s := serverOf(hctx)
	switch {
	case s == nil:
		return nil, types.CodeUnspecifiedError
	case !s.b.Personality.IPMI.DCMI:
		return nil, types.CodeInvalidCommand
	case len(req) < 1:
		return nil, types.CodeRequestDataLengthInvalid
	case req[0] != dcmiGroupID:
		return nil, types.CodeRequestDataFieldInvalid
	}
	return s, types.CodeOK
}

// handleGetDCMICapabilities implements Get DCMI Capabilities Info (DCMI
// v1.5 §6.1.1) for the parameters "ipmitool dcmi discover" reads: the DCMI
// revision and power management as the one supported platform capability.
func handleGetDCMICapabilities(_ context.Context, hctx *handlers.HandlerContext, req []byte) ([]byte, types.CompletionCode, error) {
	if _, cc := dcmiRequest(hctx, req); cc != types.CodeOK {
		return nil, cc, nil
	}
	if len(req) < 2 {
		return nil, types.CodeRequestDataLengthInvalid, nil
	}
	// Response: group ID, DCMI spec conformance 1.5, parameter revision 02h, data.
	head := []byte{dcmiGroupID, 0x01, 0x05, 0x02}
	switch req[1] {
	case 0x01: // supported DCMI capabilities
		// Reserved; platform: bit 0 power management; manageability
		// access: bit 0 in-band system interface (the primary LAN channel
		// is mandatory and has no bit).
		return append(head, 0x00, 0x01, 0x01), types.CodeOK, nil
	case 0x02: // mandatory platform attributes: SEL 0 entries, no identification, temperature sampling none
		return append(head, 0x00, 0x00, 0x00, 0x00, 0x00), types.CodeOK, nil
	case 0x03: // optional platform attributes: power mgmt controller is the BMC (20h), channel 0
		return append(head, 0x20, 0x00), types.CodeOK, nil
	case 0x04: // manageability access attributes: primary LAN channel 1
		return append(head, 0x01, 0xFF, 0xFF), types.CodeOK, nil
	}
	return nil, types.CodeParameterOutOfRange, nil
}

// handleGetDCMIPowerReading implements DCMI Get Power Reading (DCMI v1.5
// §6.6.1, system power statistics mode): the model's chassis input power
// now, and its minimum, maximum and average over the last minute.
func handleGetDCMIPowerReading(_ context.Context, hctx *handlers.HandlerContext, req []byte) ([]byte, types.CompletionCode, error) {
	s, cc := dcmiRequest(hctx, req)
	if cc != types.CodeOK {
		return nil, cc, nil
	}
	if len(req) < 2 {
		return nil, types.CodeRequestDataLengthInvalid, nil
	}
	if req[1] != dcmiModeSystemPower {
		return nil, types.CodeRequestDataFieldInvalid, nil
	}
	now := s.now()
	cur := s.b.ChassisPower(now)
	lo, hi, sum, n := cur, cur, 0.0, 0
	for t := time.Duration(0); t <= dcmiWindow; t += dcmiSample {
		w := s.b.ChassisPower(now.Add(-t))
		lo, hi, sum, n = math.Min(lo, w), math.Max(hi, w), sum+w, n+1
	}
	resp := make([]byte, 18)
	resp[0] = dcmiGroupID
	binary.LittleEndian.PutUint16(resp[1:], watts(cur))
	binary.LittleEndian.PutUint16(resp[3:], watts(lo))
	binary.LittleEndian.PutUint16(resp[5:], watts(hi))
	binary.LittleEndian.PutUint16(resp[7:], watts(sum/float64(n)))
	binary.LittleEndian.PutUint32(resp[9:], uint32(now.Unix()))
	binary.LittleEndian.PutUint32(resp[13:], uint32(dcmiWindow/time.Millisecond))
	resp[17] = 0x40 // power measurement active
	return resp, types.CodeOK, nil
}

// watts rounds a power to the 16-bit whole watts DCMI carries.
func watts(v float64) uint16 { return uint16(math.Max(0, math.Min(0xFFFF, math.Round(v)))) }
