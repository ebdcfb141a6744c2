// Package pipeline holds the gateway's stages: decode a snapshot, normalise
// its readings into bmcstream's metric schema, and join inventory labels.
// Stages are pure: no I/O, no goroutines, no logging; they report problems
// as errors and counts for the caller to act on.
package pipeline

import (
	"encoding/binary"
	"errors"
	"fmt"
	"time"

	v1 "github.com/bmcstream/bmcstream/proto/bmcstream/v1"
)

// ErrMalformed marks a message that can never be processed: bad bytes or a
// snapshot missing what every consumer relies on. Such messages are
// terminated, not redelivered.
var ErrMalformed = errors.New("malformed snapshot")

// Kinds of malformed snapshots the gateway counts apart. Both match
// ErrMalformed with errors.Is.
var (
	// ErrOversized marks a snapshot over one of the Limits.
	ErrOversized = fmt.Errorf("%w: over a limit", ErrMalformed)
	// ErrBadTime marks a snapshot whose poll time is outside the window
	// Limits.CheckTimes accepts.
	ErrBadTime = fmt.Errorf("%w: time out of range", ErrMalformed)
)

// Limits bound what the gateway accepts of one snapshot, so that a broken
// or hostile publisher on bmc.v1.raw.> can neither exhaust the gateway's
// memory nor write absurd series. A real BMC reports a few hundred sensors
// with names of a few dozen bytes; every bound is ten times that or more.
// A snapshot over a bound is refused whole (ErrOversized): cutting it
// would publish a partial, silently different view of the BMC.
//
// A zero field takes its value from DefaultLimits.
type Limits struct {
	// MaxReadings bounds the readings of one snapshot. It is checked on
	// the encoded bytes, before decoding: 500 000 empty readings fit in a
	// 1 MiB message and would take about 100 MB decoded.
	MaxReadings int
	// MaxInfo bounds the entries of the snapshot's info map.
	MaxInfo int
	// MaxThresholds bounds the thresholds of one reading (a BMC has six
	// kinds).
	MaxThresholds int
	// MaxStringLen bounds, in bytes, every string that can become a label
	// value or a key of the gateway's state: the BMC, poller and sensor
	// ids and names, units, contexts, states, info keys and values.
	MaxStringLen int
	// MaxFuture and MaxAge bound sample times around the gateway's clock
	// (CheckTimes). A sample from the future would make every later
	// sample of its series look out of order, and Prometheus refuses
	// samples far older than its newest with the whole request they
	// travel in.
	MaxFuture time.Duration
	MaxAge    time.Duration
}

// DefaultLimits: 4096 readings is ten times the largest BMC seen (and
// about 750 KB decoded); 64 info entries against the dozen a source sets;
// 16 thresholds against 6 kinds; 1 KiB strings against sensor names of a
// few dozen bytes and Redfish URIs of a hundred. Clocks: a poll may be 10
// minutes in the future (clock skew between poller hosts and the gateway)
// and 25 hours old (the stream's default 24 h retention, plus an hour).
var DefaultLimits = Limits{
	MaxReadings:   4096,
	MaxInfo:       64,
	MaxThresholds: 16,
	MaxStringLen:  1024,
	MaxFuture:     10 * time.Minute,
	MaxAge:        25 * time.Hour,
}

func (l Limits) withDefaults() Limits {
	d := DefaultLimits
	if l.MaxReadings > 0 {
		d.MaxReadings = l.MaxReadings
	}
	if l.MaxInfo > 0 {
		d.MaxInfo = l.MaxInfo
	}
	if l.MaxThresholds > 0 {
		d.MaxThresholds = l.MaxThresholds
	}
	if l.MaxStringLen > 0 {
		d.MaxStringLen = l.MaxStringLen
	}
	if l.MaxFuture > 0 {
		d.MaxFuture = l.MaxFuture
	}
	if l.MaxAge > 0 {
		d.MaxAge = l.MaxAge
	}
	return d
}

// Decode unmarshals a snapshot into s with DefaultLimits (see
// Limits.Decode).
func Decode(data []byte, s *v1.Snapshot) error {
	return DefaultLimits.Decode(data, s)
}

// Decode unmarshals a snapshot into s, reusing the capacity of s.Readings,
// and checks the fields every later stage relies on and the limits.
// Fields it does not know (a newer schema's) are skipped.
//
// The string fields of s.Readings alias data (v1.Snapshot.UnmarshalShared):
// decoding a snapshot allocates nothing per reading. data must stay
// unmodified while s is in use, and every stage that keeps a reading's
// string beyond the call that got it (plans, memos, event state) keeps a
// copy; TestDecodedStringsNotRetained holds them to it.
func (l Limits) Decode(data []byte, s *v1.Snapshot) error {
	l = l.withDefaults()
	readings := s.Readings[:0]
	if cap(readings) > 2*l.MaxReadings {
		readings = nil // do not keep what a larger limit let in
	}
	// The info map is kept for the next snapshot's entries: no stage keeps
	// the map itself, only its strings.
	info := s.Info
	clear(info)
	*s = v1.Snapshot{Readings: readings, Info: info}
	if len(data) == 0 {
		return fmt.Errorf("%w: empty message", ErrMalformed)
	}
	if err := l.scan(data); err != nil {
		return err
	}
	// Readings' strings alias data (no allocation per field): stages that
	// keep one beyond the snapshot copy it (see Decode's doc).
	if err := s.UnmarshalShared(data); err != nil {
		return fmt.Errorf("%w: %v", ErrMalformed, err)
	}
	if s.BmcId == "" {
		return fmt.Errorf("%w: no bmc_id", ErrMalformed)
	}
	if s.PollStartMs <= 0 {
		return fmt.Errorf("%w: bmc %q: no poll_start_ms", ErrMalformed, s.BmcId)
	}
	return l.check(s)
}

// Field numbers of bmcstream.v1.Snapshot that scan looks at.
const (
	fieldBMCID      = 1
	fieldAddress    = 2
	fieldPollerID   = 4
	fieldErrorClass = 11
	fieldInfo       = 12
	fieldReadings   = 13
)

// scan walks the top level of an encoded snapshot and refuses one with
// too many readings or info entries, or an over-long id, before anything
// is allocated for it. Bytes it cannot walk are left to Unmarshal to
// report.
func (l Limits) scan(b []byte) error {
	var readings, info int
	for len(b) > 0 {
		tag, n := binary.Uvarint(b)
		if n <= 0 {
			return nil
		}
		b = b[n:]
		switch tag & 7 {
		case 0: // varint
			if _, n = binary.Uvarint(b); n <= 0 {
				return nil
			}
			b = b[n:]
		case 1: // fixed64
			if len(b) < 8 {
				return nil
			}
			b = b[8:]
		case 5: // fixed32
			if len(b) < 4 {
				return nil
			}
			b = b[4:]
		case 2: // length-delimited
			size, n := binary.Uvarint(b)
			if n <= 0 || size > uint64(len(b)-n) {
				return nil
			}
			b = b[n+int(size):]
			switch tag >> 3 {
			case fieldReadings:
				readings++
			case fieldInfo:
				info++
			case fieldBMCID, fieldAddress, fieldPollerID, fieldErrorClass:
				if size > uint64(l.MaxStringLen) {
					return fmt.Errorf("%w: field %d of %d bytes, more than %d", ErrOversized, tag>>3, size, l.MaxStringLen)
				}
			}
		default:
			return nil
		}
	}
	if readings > l.MaxReadings {
		return fmt.Errorf("%w: %d readings, more than %d", ErrOversized, readings, l.MaxReadings)
	}
	if info > l.MaxInfo {
		return fmt.Errorf("%w: %d info entries, more than %d", ErrOversized, info, l.MaxInfo)
	}
	return nil
}

// check applies the limits scan cannot see without decoding.
func (l Limits) check(s *v1.Snapshot) error {
	long := func(v string) bool { return len(v) > l.MaxStringLen }
	for k, v := range s.Info {
		if long(k) || long(v) {
			return fmt.Errorf("%w: bmc %q: an info entry over %d bytes", ErrOversized, s.BmcId, l.MaxStringLen)
		}
	}
	for i := range s.Readings {
		r := &s.Readings[i]
		if long(r.Name) || long(r.Id) || long(r.Unit) || long(r.Context) || long(r.SensorType) || long(r.State) || long(r.Parent) {
			return fmt.Errorf("%w: bmc %q: reading %d has a string over %d bytes", ErrOversized, s.BmcId, i, l.MaxStringLen)
		}
		if len(r.Thresholds) > l.MaxThresholds {
			return fmt.Errorf("%w: bmc %q: reading %d has %d thresholds, more than %d", ErrOversized, s.BmcId, i, len(r.Thresholds), l.MaxThresholds)
		}
	}
	return nil
}

// CheckTimes keeps a snapshot's samples within [now-MaxAge, now+MaxFuture]
// (now in Unix ms, the gateway's clock): a poll time outside is
// ErrBadTime, and readings whose own timestamp is outside are removed from
// s.Readings (in place; their number is returned) while the rest of the
// snapshot stands.
func (l Limits) CheckTimes(s *v1.Snapshot, nowMs int64) (removed int, err error) {
	l = l.withDefaults()
	lo, hi := nowMs-l.MaxAge.Milliseconds(), nowMs+l.MaxFuture.Milliseconds()
	if s.PollStartMs < lo || s.PollStartMs > hi {
		return 0, fmt.Errorf("%w: bmc %q: poll time %s is not within %s before and %s after now",
			ErrBadTime, s.BmcId, time.UnixMilli(s.PollStartMs).UTC().Format(time.RFC3339), l.MaxAge, l.MaxFuture)
	}
	kept := s.Readings[:0]
	for i := range s.Readings {
		if ts := s.Readings[i].TimestampMs; ts > 0 && (ts < lo || ts > hi) {
			removed++
			continue
		}
		kept = append(kept, s.Readings[i])
	}
	clear(s.Readings[len(kept):])
	s.Readings = kept
	return removed, nil
}
