package ipmi

import (
	"context"
	"encoding/binary"
	"sync"

	"github.com/bougou/go-ipmi/pkg/handlers"
	"github.com/bougou/go-ipmi/pkg/types"
)

// SEL constants (IPMI v2.0 §31-32).
const (
	selVersion      = 0x51 // SEL command set version 1.5
	selRecordLen    = 16
	selTypeSystem   = 0x02 // system event record
	selEvMRev       = 0x04 // IPMI v1.5 and later event message format
	selMaxEntries   = 512  // a full SEL records nothing more, as most BMCs do
	selDeassertion  = 0x80 // event dir bit of byte 13
	selOpReserve    = 0x02 // Get SEL Info operation support: Reserve SEL
	selFirstEntry   = 0x0000
	selLastEntry    = 0xFFFF
	selWholeRecord  = 0xFF
	selUnspecified2 = 0xFF // event data 2 and 3: unspecified
)

// selLog is a virtual BMC's System Event Log: an entry for every state a
// discrete sensor asserts or deasserts, from the healthy baseline
// (DiscreteSpec.Normal) on. The BMC notices a change when a client asks
// about it (the SEL, or the sensor's reading): an entry's time is then,
// which a real BMC's scan cycle also makes later than the fault. A BMC
// whose sensors never left their baseline holds nothing but the mutex.
type selLog struct {
	mu      sync.Mutex
	last    []uint16 // per profile.discrete; nil while all are at baseline
	entries [][selRecordLen]byte
	added   uint32 // timestamp of the last entry
	resID   uint16
}

// observe records the changes of the discrete sensors since the last look.
func (s *Server) observe() {
	disc := s.profile.discrete
	s.sel.mu.Lock()
	defer s.sel.mu.Unlock()
	var now uint32
	for i := range disc {
		d := &disc[i]
		st := s.b.DiscreteState(d) & d.Supported
		prev := d.Normal
		if s.sel.last != nil {
			prev = s.sel.last[i]
		}
		if st == prev {
			continue
		}
		if s.sel.last == nil {
			s.sel.last = make([]uint16, len(disc))
			for j := range disc {
				s.sel.last[j] = disc[j].Normal
			}
		}
		if now == 0 {
			now = uint32(s.now().Unix())
		}
		for off := range 15 {
			bit := uint16(1) << off
			switch {
			case st&bit != 0 && prev&bit == 0:
				s.sel.add(now, d.SensorType, d.Number, d.ReadingType, uint8(off))
			case st&bit == 0 && prev&bit != 0:
				s.sel.add(now, d.SensorType, d.Number, d.ReadingType|selDeassertion, uint8(off))
			}
		}
		s.sel.last[i] = st
	}
}

// add appends a system event record (§32.1) unless the log is full.
func (l *selLog) add(at uint32, sensorType, number, dirType, offset uint8) {
	if len(l.entries) >= selMaxEntries {
		return
	}
	var r [selRecordLen]byte
	binary.LittleEndian.PutUint16(r[0:], uint16(len(l.entries)+1))
	r[2] = selTypeSystem
	binary.LittleEndian.PutUint32(r[3:], at)
	r[7], r[8] = sdrOwnerBMC, 0x00 // generator: the BMC on IPMB, channel 0, LUN 0
	r[9] = selEvMRev
	r[10] = sensorType
	r[11] = number
	r[12] = dirType
	r[13] = offset & 0x0F // event data 2 and 3 unspecified
	r[14], r[15] = selUnspecified2, selUnspecified2
	l.entries = append(l.entries, r)
	l.added = at
}

// handleGetSELInfo implements Get SEL Info (Storage 40h, §31.2).
func handleGetSELInfo(_ context.Context, hctx *handlers.HandlerContext, _ []byte) ([]byte, types.CompletionCode, error) {
	s := serverOf(hctx)
	if s == nil {
		return nil, types.CodeUnspecifiedError, nil
	}
	s.observe()
	s.sel.mu.Lock()
	defer s.sel.mu.Unlock()
	resp := make([]byte, 14)
	resp[0] = selVersion
	binary.LittleEndian.PutUint16(resp[1:], uint16(len(s.sel.entries)))
	binary.LittleEndian.PutUint16(resp[3:], uint16((selMaxEntries-len(s.sel.entries))*selRecordLen))
	binary.LittleEndian.PutUint32(resp[5:], s.sel.added)
	binary.LittleEndian.PutUint32(resp[9:], uint32(s.bootTime.Unix())) // never erased since boot
	resp[13] = selOpReserve
	return resp, types.CodeOK, nil
}

// handleReserveSEL implements Reserve SEL (Storage 42h, §31.4).
func handleReserveSEL(_ context.Context, hctx *handlers.HandlerContext, _ []byte) ([]byte, types.CompletionCode, error) {
	s := serverOf(hctx)
	if s == nil {
		return nil, types.CodeUnspecifiedError, nil
	}
	s.sel.mu.Lock()
	defer s.sel.mu.Unlock()
	s.sel.resID++
	if s.sel.resID == 0 {
		s.sel.resID = 1 // 0000h means "no reservation"
	}
	return []byte{byte(s.sel.resID), byte(s.sel.resID >> 8)}, types.CodeOK, nil
}

// handleGetSELEntry implements Get SEL Entry (Storage 43h, §31.5): record
// 0000h is the first, FFFFh the last; the next record ID is FFFFh after
// the last. The SEL is never erased, so a reservation is not required.
func handleGetSELEntry(_ context.Context, hctx *handlers.HandlerContext, req []byte) ([]byte, types.CompletionCode, error) {
	s := serverOf(hctx)
	if s == nil {
		return nil, types.CodeUnspecifiedError, nil
	}
	if len(req) < 6 {
		return nil, types.CodeRequestDataLengthInvalid, nil
	}
	s.observe()
	s.sel.mu.Lock()
	defer s.sel.mu.Unlock()
	n := len(s.sel.entries)
	id := int(binary.LittleEndian.Uint16(req[2:]))
	switch id {
	case selFirstEntry:
		id = 1
	case selLastEntry:
		id = n
	}
	if id < 1 || id > n {
		return nil, types.CodeRequestedDataNotPresent, nil
	}
	offset, count := int(req[4]), int(req[5])
	if offset > selRecordLen {
		return nil, types.CodeParameterOutOfRange, nil
	}
	if count == selWholeRecord || offset+count > selRecordLen {
		count = selRecordLen - offset
	}
	next := uint16(id + 1)
	if id == n {
		next = selLastEntry
	}
	rec := s.sel.entries[id-1]
	resp := make([]byte, 0, 2+count)
	resp = append(resp, byte(next), byte(next>>8))
	return append(resp, rec[offset:offset+count]...), types.CodeOK, nil
}

// handleGetSELTime implements Get SEL Time (Storage 48h, §31.10).
func handleGetSELTime(_ context.Context, hctx *handlers.HandlerContext, _ []byte) ([]byte, types.CompletionCode, error) {
	s := serverOf(hctx)
	if s == nil {
		return nil, types.CodeUnspecifiedError, nil
	}
	resp := make([]byte, 4)
	binary.LittleEndian.PutUint32(resp, uint32(s.now().Unix()))
	return resp, types.CodeOK, nil
}
