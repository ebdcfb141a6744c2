package bmcstreamv1

import (
	"encoding/binary"
	"fmt"
	"io"
	"math"
	"unique"
	"unsafe"
)

// UnmarshalShared decodes a Snapshot as Unmarshal does, field for field and
// error for error, with two differences that let a consumer decode stream
// after stream without allocating per reading:
//
//   - the string fields of every Reading alias data instead of being
//     copied: they are valid only while data is neither modified nor
//     reused, so a caller that keeps one beyond that must copy it
//     (strings.Clone). The snapshot's own strings and its info map are
//     copied as Unmarshal copies them.
//   - the info map's keys and values are interned (unique.Make): the same
//     vendor, model, firmware or power state of a fleet's many BMCs is
//     one string, and decoding it again allocates nothing. An info map m
//     already has is reused (clear it first, keeping the map, to decode a
//     new snapshot).
//   - the Readings slice and each reading's Thresholds reuse the capacity
//     m already has (Unmarshal appends to them as well, but into a fresh
//     Reading each time). A reading without thresholds may thus get an
//     empty, non-nil Thresholds.
//
// Like Unmarshal it appends to m.Readings and overwrites set fields: reset
// m first (keeping m.Readings[:0]) to decode a new snapshot.
// TestUnmarshalSharedEveryField and FuzzUnmarshalShared hold it equal to the
// generated Unmarshal, including for fields added to the schema later.
func (m *Snapshot) UnmarshalShared(dAtA []byte) error {
	l := len(dAtA)
	i := 0
	for i < l {
		pre := i
		field, err := sharedTag(dAtA, &i, "Snapshot", snapshotWire[:])
		if err != nil {
			return err
		}
		switch field {
		case 1, 2, 4, 10, 11:
			b, err := sharedBytes(dAtA, &i, l)
			if err != nil {
				return err
			}
			s := string(b)
			switch field {
			case 1:
				m.BmcId = s
			case 2:
				m.Address = s
			case 4:
				m.PollerId = s
			case 10:
				m.Error = s
			case 11:
				m.ErrorClass = s
			}
		case 3, 5, 6, 7, 8, 9, 14, 15:
			v, err := sharedVarint(dAtA, &i)
			if err != nil {
				return err
			}
			switch field {
			case 3:
				m.Protocol = Protocol(int32(v))
			case 5:
				m.Sequence = v
			case 6:
				m.PollStartMs = int64(v)
			case 7:
				m.PollEndMs = int64(v)
			case 8:
				m.Up = v != 0
			case 9:
				m.Partial = v != 0
			case 14:
				m.PollerEpoch = int64(v)
			case 15:
				m.ReplicationFactor = uint32(v)
			}
		case 12:
			if err := m.sharedInfo(dAtA, &i, l); err != nil {
				return err
			}
		case 13:
			b, err := sharedBytes(dAtA, &i, l)
			if err != nil {
				return err
			}
			n := len(m.Readings)
			var r *Reading
			if n < cap(m.Readings) {
				m.Readings = m.Readings[:n+1]
				r = &m.Readings[n]
				*r = Reading{Thresholds: r.Thresholds[:0]}
			} else {
				m.Readings = append(m.Readings, Reading{})
				r = &m.Readings[n]
			}
			if err := r.unmarshalShared(b); err != nil {
				return err
			}
		default:
			i = pre
			if err := sharedSkip(dAtA, &i, l); err != nil {
				return err
			}
		}
	}
	if i > l {
		return io.ErrUnexpectedEOF
	}
	return nil
}

// The wire type of each known field (0 varint, 1 fixed64, 2 bytes).
var (
	snapshotWire = [...]int{1: 2, 2: 2, 3: 0, 4: 2, 5: 0, 6: 0, 7: 0, 8: 0, 9: 0, 10: 2, 11: 2, 12: 2, 13: 2, 14: 0, 15: 0}
	readingWire  = [...]int{1: 2, 2: 2, 3: 0, 4: 2, 5: 1, 6: 2, 7: 2, 8: 0, 9: 0, 10: 0, 11: 2, 12: 2, 13: 0, 14: 2}
)

// sharedInfo decodes one info map entry as the generated code does,
// quirks included: the entry's fields are bounded by the whole message,
// their wire types are not checked, and the entry ends at its length.
func (m *Snapshot) sharedInfo(dAtA []byte, i *int, l int) error {
	msglen, err := sharedVarint(dAtA, i)
	if err != nil {
		return err
	}
	if int(msglen) < 0 {
		return ErrInvalidLengthSnapshot
	}
	post := *i + int(msglen)
	if post < 0 {
		return ErrInvalidLengthSnapshot
	}
	if post > l {
		return io.ErrUnexpectedEOF
	}
	if m.Info == nil {
		m.Info = make(map[string]string)
	}
	var key, value string
	for *i < post {
		pre := *i
		wire, err := sharedVarint(dAtA, i)
		if err != nil {
			return err
		}
		switch int32(wire >> 3) {
		case 1, 2:
			b, err := sharedBytes(dAtA, i, l)
			if err != nil {
				return err
			}
			if int32(wire>>3) == 1 {
				key = internBytes(b)
			} else {
				value = internBytes(b)
			}
		default:
			*i = pre
			if err := sharedSkip(dAtA, i, post); err != nil {
				return err
			}
		}
	}
	m.Info[key] = value
	*i = post
	return nil
}

func (m *Reading) unmarshalShared(dAtA []byte) error {
	l := len(dAtA)
	i := 0
	for i < l {
		pre := i
		field, err := sharedTag(dAtA, &i, "Reading", readingWire[:])
		if err != nil {
			return err
		}
		switch field {
		case 1, 2, 4, 6, 7, 11, 14:
			b, err := sharedBytes(dAtA, &i, l)
			if err != nil {
				return err
			}
			var s string
			if len(b) > 0 {
				s = unsafe.String(&b[0], len(b))
			}
			switch field {
			case 1:
				m.Name = s
			case 2:
				m.Id = s
			case 4:
				m.Unit = s
			case 6:
				m.Context = s
			case 7:
				m.SensorType = s
			case 11:
				m.State = s
			case 14:
				m.Parent = s
			}
		case 3, 8, 9, 10, 13:
			v, err := sharedVarint(dAtA, &i)
			if err != nil {
				return err
			}
			switch field {
			case 3:
				m.Kind = Kind(int32(v))
			case 8:
				m.EntityId = uint32(v)
			case 9:
				m.EntityInstance = uint32(v)
			case 10:
				m.Health = Health(int32(v))
			case 13:
				m.TimestampMs = int64(v)
			}
		case 5:
			if i+8 > l {
				return io.ErrUnexpectedEOF
			}
			m.Value = math.Float64frombits(binary.LittleEndian.Uint64(dAtA[i:]))
			i += 8
		case 12:
			b, err := sharedBytes(dAtA, &i, l)
			if err != nil {
				return err
			}
			m.Thresholds = append(m.Thresholds, Threshold{})
			if err := m.Thresholds[len(m.Thresholds)-1].Unmarshal(b); err != nil {
				return err
			}
		default:
			i = pre
			if err := sharedSkip(dAtA, &i, l); err != nil {
				return err
			}
		}
	}
	if i > l {
		return io.ErrUnexpectedEOF
	}
	return nil
}

// internBytes returns the canonical copy of the string b holds: no
// allocation when it is interned already (unique.Make copies b only to
// intern a new value).
func internBytes(b []byte) string {
	if len(b) == 0 {
		return ""
	}
	return unique.Make(unsafe.String(&b[0], len(b))).Value()
}

// sharedTag reads a field's tag and refuses what the generated code
// refuses: an end-group wire type, a field number below 1, and a known
// field (wire[field], set for each) with another wire type.
func sharedTag(dAtA []byte, i *int, msg string, wire []int) (int32, error) {
	tag, err := sharedVarint(dAtA, i)
	if err != nil {
		return 0, err
	}
	field, wt := int32(tag>>3), int(tag&7)
	if wt == 4 {
		return 0, fmt.Errorf("proto: %s: wiretype end group for non-group", msg)
	}
	if field <= 0 {
		return 0, fmt.Errorf("proto: %s: illegal tag %d (wire type %d)", msg, field, tag)
	}
	if int(field) < len(wire) && wire[field] != wt {
		return 0, fmt.Errorf("proto: wrong wireType = %d for field %d of %s", wt, field, msg)
	}
	return field, nil
}

// sharedVarint reads a varint as the generated code does: at most ten
// bytes, the bits beyond 64 dropped.
func sharedVarint(dAtA []byte, i *int) (uint64, error) {
	var v uint64
	for shift := uint(0); ; shift += 7 {
		if shift >= 64 {
			return 0, ErrIntOverflowSnapshot
		}
		if *i >= len(dAtA) {
			return 0, io.ErrUnexpectedEOF
		}
		b := dAtA[*i]
		*i++
		v |= uint64(b&0x7F) << shift
		if b < 0x80 {
			return v, nil
		}
	}
}

// sharedBytes reads a length-delimited field's bytes, bounded by l.
func sharedBytes(dAtA []byte, i *int, l int) ([]byte, error) {
	n, err := sharedVarint(dAtA, i)
	if err != nil {
		return nil, err
	}
	if int(n) < 0 {
		return nil, ErrInvalidLengthSnapshot
	}
	post := *i + int(n)
	if post < 0 {
		return nil, ErrInvalidLengthSnapshot
	}
	if post > l {
		return nil, io.ErrUnexpectedEOF
	}
	b := dAtA[*i:post:post]
	*i = post
	return b, nil
}

// sharedSkip skips an unknown field as the generated code does, which
// must end by l.
func sharedSkip(dAtA []byte, i *int, l int) error {
	skippy, err := skipSnapshot(dAtA[*i:])
	if err != nil {
		return err
	}
	if skippy < 0 || *i+skippy < 0 {
		return ErrInvalidLengthSnapshot
	}
	if *i+skippy > l {
		return io.ErrUnexpectedEOF
	}
	*i += skippy
	return nil
}
