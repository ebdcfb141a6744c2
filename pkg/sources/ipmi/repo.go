package ipmi

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/bougou/go-ipmi/pkg/types"

	"github.com/bmcstream/bmcstream/pkg/sources"
)

// Limits of an SDR repository scan.
const (
	// maxRecords bounds a scan: the record IDs form a linked list the BMC
	// controls, and a broken one must not loop forever.
	maxRecords = 4096
	// readWhole asks Get SDR for the entire record (§33.12).
	readWhole = 0xFF
	// firstChunk is the partial read size tried after a BMC refuses whole
	// records; it halves down to minChunk on "cannot return that many".
	firstChunk = 32
	minChunk   = 8
	// maxReserveRetries bounds re-reservations of one record read.
	maxReserveRetries = 3
)

// fingerprint identifies a version of the SDR repository (§33.9): its
// record count and most recent addition and erase timestamps.
type fingerprint struct {
	count            uint16
	addition, erasal uint32
	known            bool
}

// decodeRepoInfo decodes Get SDR Repository Info.
func decodeRepoInfo(b []byte) (fingerprint, error) {
	if len(b) < 13 {
		return fingerprint{}, fmt.Errorf("%w: sdr repository info of %d bytes, want at least 13", errTruncated, len(b))
	}
	return fingerprint{
		count:    binary.LittleEndian.Uint16(b[1:3]),
		addition: binary.LittleEndian.Uint32(b[5:9]),
		erasal:   binary.LittleEndian.Uint32(b[9:13]),
		known:    true,
	}, nil
}

// repository is the cached SDR repository: the sensors a poll reads, in
// repository order, with their conversions and thresholds.
type repository struct {
	fp      fingerprint
	sensors []sensor
	// unread are the drops every poll reports for the repository's
	// sensors it does not read and its undecodable records.
	unread []sources.Drop
}

// scanState is an SDR repository read in progress. A read that a poll
// deadline interrupts resumes at the next poll, so a large repository on a
// slow BMC is read across polls instead of never.
type scanState struct {
	fp       fingerprint
	next     uint16 // next record ID; 0xFFFF when the records are read
	records  int
	reserved bool
	resID    uint16
	sensors  []sensor
	unread   []sources.Drop
	skipped  int
	bad      int
	thIdx    int // thresholds are read up to this sensor
}

// checkRepository checks the SDR repository's fingerprint when due (on a
// new session and every InfoInterval) and reads the repository when it
// changed or was never read.
func (s *Source) checkRepository(ctx context.Context, p *poll) error {
	if s.scan == nil && s.repo != nil && s.now().Sub(s.repoChecked) < s.opts.InfoInterval {
		return nil
	}
	if s.scan == nil && s.repo == nil && s.scanErr != nil && s.now().Sub(s.repoChecked) < s.opts.InfoInterval {
		p.record(s.scanErr) // the repository stays unreadable until the next try
		return nil
	}
	fp, err := s.readFingerprint(ctx, p)
	if err != nil {
		return err
	}
	switch {
	case s.scan != nil && s.scan.fp != fp:
		s.log.Debug("sdr repository changed during its read, restarting it")
		s.scan = &scanState{fp: fp}
	case s.scan == nil && s.repo != nil && s.repo.fp == fp:
		s.repoChecked = s.now()
		return nil
	case s.scan == nil:
		if s.repo != nil {
			s.log.Debug("sdr repository changed, reading it again")
		}
		// Never poll with conversions a changed repository no longer has.
		s.repo = nil
		s.scan = &scanState{fp: fp}
	}
	return s.continueScan(ctx, p)
}

// readFingerprint reads Get SDR Repository Info. A BMC that refuses it
// yields an unknown fingerprint: its repository is read once per Source.
func (s *Source) readFingerprint(ctx context.Context, p *poll) (fingerprint, error) {
	data, err := s.exchange(ctx, 0, types.CommandGetSDRRepoInfo)
	if err != nil {
		if _, ok := completionCode(err); ok {
			return fingerprint{}, nil
		}
		return fingerprint{}, s.check(ctx, p, err, "read sdr repository info")
	}
	fp, err := decodeRepoInfo(data)
	if err != nil {
		return fingerprint{}, s.check(ctx, p, err, "decode sdr repository info")
	}
	return fp, nil
}

// continueScan reads records and then thresholds from where the scan
// stands. When it completes, the repository replaces the cache.
func (s *Source) continueScan(ctx context.Context, p *poll) error {
	sc := s.scan
	for sc.next != 0xFFFF {
		if sc.records >= maxRecords {
			return s.abandonScan(p, sources.Errorf(sources.ClassDecode, "read sdr repository of %s: more than %d records", s.addr, maxRecords))
		}
		rec, next, err := s.readRecord(ctx, sc, sc.next)
		if err != nil {
			if cc, ok := completionCode(err); ok && cc == ccNotPresent && sc.records == 0 {
				break // an empty repository
			}
			if expired(ctx) || errors.Is(err, errNoAnswer) {
				return s.check(ctx, p, err, "read sdr record 0x%04x", sc.next)
			}
			class := sources.ClassProtocol
			if errors.Is(err, errTruncated) {
				class = sources.ClassDecode
			}
			return s.abandonScan(p, sources.Errorf(class, "read sdr record 0x%04x of %s: %w", sc.next, s.addr, err))
		}
		s.addRecord(sc, rec)
		if next == sc.next {
			return s.abandonScan(p, sources.Errorf(sources.ClassDecode, "read sdr repository of %s: record 0x%04x links to itself", s.addr, next))
		}
		sc.next = next
		sc.records++
	}
	sc.next = 0xFFFF
	for ; sc.thIdx < len(sc.sensors); sc.thIdx++ {
		if err := s.readThresholds(ctx, p, &sc.sensors[sc.thIdx]); err != nil {
			return err
		}
	}
	s.repo = &repository{fp: sc.fp, sensors: sc.sensors, unread: sc.unread}
	s.scan, s.scanErr = nil, nil
	s.repoChecked = s.now()
	s.stats.SDRReads++
	s.stats.SkippedSensors = uint64(sc.skipped)
	s.stats.BadRecords = uint64(sc.bad)
	s.log.Debug("sdr repository read", "records", sc.records, "sensors", len(sc.sensors),
		"skipped_sensors", sc.skipped, "bad_records", sc.bad)
	return nil
}

// abandonScan gives up a repository read that the BMC refuses: the error
// is reported by this poll and every poll until the next try, an
// InfoInterval later.
func (s *Source) abandonScan(p *poll, err *sources.Error) error {
	s.scan = nil
	s.scanErr = err
	s.repoChecked = s.now()
	p.record(err)
	return nil
}

// addRecord decodes one record into the scan's sensors.
func (s *Source) addRecord(sc *scanState, rec []byte) {
	sensors, skip, err := decodeRecord(rec)
	switch {
	case err != nil:
		sc.bad++
		s.log.Debug("skip undecodable sdr record", "err", err)
		id := "record"
		if len(rec) >= 2 {
			id = fmt.Sprintf("record 0x%04x", binary.LittleEndian.Uint16(rec))
		}
		sc.unread = append(sc.unread, sources.Drop{Reason: sources.DropMalformed, ID: id, Detail: err.Error()})
	case skip == skipNone, skip == skipDiscrete && !s.opts.SkipDiscrete:
		sc.sensors = append(sc.sensors, sensors...)
	case skip != skipNotSensor:
		sc.skipped += len(sensors)
		detail := string(skip)
		if skip == skipDiscrete {
			detail += " (discrete sensors are not read)"
		}
		for i := range sensors {
			sc.unread = append(sc.unread, sources.Drop{Reason: sources.DropUnsupportedLayout,
				Name: sensors[i].name, ID: sensors[i].id, Detail: detail})
		}
	}
}

// readRecord reads one SDR record with Get SDR (§33.12), reserving the
// repository once per scan and again only when the BMC cancels the
// reservation (it does on any change to the repository).
func (s *Source) readRecord(ctx context.Context, sc *scanState, id uint16) ([]byte, uint16, error) {
	for range maxReserveRetries {
		if !sc.reserved {
			data, err := s.exchange(ctx, 0, types.CommandReserveSDRRepo)
			if err != nil {
				return nil, 0, err
			}
			if len(data) < 2 {
				return nil, 0, fmt.Errorf("%w: reservation of %d bytes", errTruncated, len(data))
			}
			sc.resID, sc.reserved = binary.LittleEndian.Uint16(data), true
		}
		rec, next, err := s.getRecord(ctx, sc.resID, id)
		if cc, ok := completionCode(err); ok && cc == ccReservationCancel {
			sc.reserved = false
			continue
		}
		return rec, next, err
	}
	return nil, 0, fmt.Errorf("reservation canceled %d times", maxReserveRetries)
}

// getRecord reads a whole record in one request while the BMC allows it,
// and in partial reads (header, then chunks) once it does not. The chunk
// size the BMC accepts is remembered for the Source.
func (s *Source) getRecord(ctx context.Context, resID, id uint16) ([]byte, uint16, error) {
	if s.sdrChunk == 0 {
		data, err := s.getSDR(ctx, resID, id, 0, readWhole)
		if err == nil && len(data) >= 2+sdrHeaderLen && len(data)-2 >= sdrHeaderLen+int(data[2+4]) {
			rec := append([]byte(nil), data[2:2+sdrHeaderLen+int(data[2+4])]...)
			return rec, binary.LittleEndian.Uint16(data), nil
		}
		if cc, ok := completionCode(err); err != nil && !(ok && tooMany(cc)) {
			return nil, 0, err
		}
		s.sdrChunk = firstChunk // refused, or a short answer: read in parts from now on
	}
	data, err := s.getSDR(ctx, resID, id, 0, sdrHeaderLen)
	if err != nil {
		return nil, 0, err
	}
	if len(data) < 2+sdrHeaderLen {
		return nil, 0, fmt.Errorf("%w: sdr record header of %d bytes", errTruncated, len(data)-2)
	}
	next := binary.LittleEndian.Uint16(data)
	total := sdrHeaderLen + int(data[2+4])
	rec := make([]byte, 0, total)
	rec = append(rec, data[2:2+sdrHeaderLen]...)
	for len(rec) < total {
		n := min(s.sdrChunk, total-len(rec))
		data, err := s.getSDR(ctx, resID, id, uint8(len(rec)), uint8(n))
		if cc, ok := completionCode(err); ok && tooMany(cc) && s.sdrChunk > minChunk {
			s.sdrChunk /= 2
			continue
		}
		if err != nil {
			return nil, 0, err
		}
		if len(data) <= 2 {
			return nil, 0, fmt.Errorf("%w: no data at offset %d of sdr record 0x%04x", errTruncated, len(rec), id)
		}
		got := data[2:]
		rec = append(rec, got[:min(len(got), total-len(rec))]...)
	}
	return rec, next, nil
}

// tooMany reports completion codes by which a BMC refuses to return as
// many bytes as asked.
func tooMany(cc uint8) bool {
	return cc == ccCannotReturnBytes || cc == ccLengthInvalid || cc == ccLengthTooLong || cc == 0xFF
}

// getSDR sends one Get SDR request: next record ID (2 bytes) and data.
func (s *Source) getSDR(ctx context.Context, resID, id uint16, offset, n uint8) ([]byte, error) {
	data, err := s.exchange(ctx, 0, types.CommandGetSDR,
		byte(resID), byte(resID>>8), byte(id), byte(id>>8), offset, n)
	if err == nil && len(data) < 2 {
		return nil, fmt.Errorf("%w: get sdr answer of %d bytes", errTruncated, len(data))
	}
	return data, err
}

// readThresholds fills a sensor's thresholds: from Get Sensor Thresholds
// (§35.9), the BMC's current values, when the SDR says they are readable,
// and from the SDR record when they are fixed or the command is refused.
func (s *Source) readThresholds(ctx context.Context, p *poll, sn *sensor) error {
	if !sn.analog || sn.readable == 0 || sn.thresholdAccess == 0 {
		return nil
	}
	sdrValues := func() { sn.thresholds = convertThresholds(sn.conv, sn.readable, sn.sdrThresholds) }
	if sn.thresholdAccess == 3 { // fixed: the SDR holds them
		sdrValues()
		return nil
	}
	data, err := s.exchange(ctx, sn.lun, types.CommandGetSensorThresholds, sn.number)
	if err != nil {
		if _, ok := completionCode(err); ok {
			sdrValues()
			return nil
		}
		return s.check(ctx, p, err, "read thresholds of sensor %s (%s)", sn.id, sn.name)
	}
	if len(data) < 1+thCount {
		sdrValues()
		return nil
	}
	var raw [thCount]uint8
	copy(raw[:], data[1:1+thCount])
	sn.thresholds = convertThresholds(sn.conv, data[0]&0x3F, raw)
	return nil
}
