package redfish

import (
	"math"
	"strconv"
	"unicode/utf8"
)

// obj is a JSON object that keeps its members in the order they were added,
// as BMCs and DMTF mockups list "@odata.id" first. Documents are built from
// obj values rather than Go structs because vendor quirks are a matter of
// data: a member left out (no ReadingUnits), a string where a number belongs
// ("N/A"), a fraction where an integer belongs. Building them as data keeps
// every quirk one line away from the schema-shaped code.
//
// Members' values may be obj, []obj, []any, []string, link, string, float64,
// int, bool, nil or etagSlot.
type obj []member

type member struct {
	key string
	val any
}

// link is a reference to another resource: {"@odata.id": "..."}.
type link string

// etagSlot marks where a document's own "@odata.etag" goes. It is written as
// a fixed-width placeholder and patched once the document's hash is known,
// so a document is encoded once, not twice (see encode). Use it only as
// the value of "@odata.etag".
type etagSlot struct{}

// etagPlaceholder is what an etagSlot encodes to: a JSON string holding a
// quoted ETag of 16 hex digits, all zero. etagMember is how it appears in a
// document; searching for the key too means no string value can be
// mistaken for it (a quote inside a value is escaped).
const (
	etagPlaceholder = `"\"0000000000000000\""`
	etagMember      = `"@odata.etag":` + etagPlaceholder
)

// add appends a member. An empty object starts with room for eight
// members: most Redfish objects are that small, and growing one member at
// a time was most of a sensor document's allocations.
func (o obj) add(key string, val any) obj {
	if cap(o) == 0 {
		o = make(obj, 0, 8)
	}
	return append(o, member{key, val})
}

// addIf adds the member only when cond holds; it keeps optional members
// readable at the call site.
func (o obj) addIf(cond bool, key string, val any) obj {
	if !cond {
		return o
	}
	return o.add(key, val)
}

// MarshalJSON encodes the object; the handler itself calls appendJSON, this
// is for tests and callers holding an obj inside other values.
func (o obj) MarshalJSON() ([]byte, error) { return o.appendJSON(nil), nil }

func (o obj) appendJSON(dst []byte) []byte {
	dst = append(dst, '{')
	for i, m := range o {
		if i > 0 {
			dst = append(dst, ',')
		}
		dst = appendString(dst, m.key)
		dst = append(dst, ':')
		dst = appendValue(dst, m.val)
	}
	return append(dst, '}')
}

func appendValue(dst []byte, v any) []byte {
	switch v := v.(type) {
	case nil:
		return append(dst, "null"...)
	case obj:
		return v.appendJSON(dst)
	case []obj:
		dst = append(dst, '[')
		for i, e := range v {
			if i > 0 {
				dst = append(dst, ',')
			}
			dst = e.appendJSON(dst)
		}
		return append(dst, ']')
	case []any:
		dst = append(dst, '[')
		for i, e := range v {
			if i > 0 {
				dst = append(dst, ',')
			}
			dst = appendValue(dst, e)
		}
		return append(dst, ']')
	case []string:
		dst = append(dst, '[')
		for i, e := range v {
			if i > 0 {
				dst = append(dst, ',')
			}
			dst = appendString(dst, e)
		}
		return append(dst, ']')
	case link:
		dst = append(dst, `{"@odata.id":`...)
		dst = appendString(dst, string(v))
		return append(dst, '}')
	case string:
		return appendString(dst, v)
	case float64:
		if math.IsNaN(v) || math.IsInf(v, 0) {
			return append(dst, "null"...)
		}
		return strconv.AppendFloat(dst, v, 'f', -1, 64)
	case int:
		return strconv.AppendInt(dst, int64(v), 10)
	case bool:
		return strconv.AppendBool(dst, v)
	case etagSlot:
		return append(dst, etagPlaceholder...)
	default:
		// Unreachable for documents built in this package; encode as null
		// rather than panic so a programming error shows up in tests as a
		// wrong document, never as a crashed simulator.
		return append(dst, "null"...)
	}
}

const hexDigits = "0123456789abcdef"

// appendString writes s as a JSON string. Unlike encoding/json it does not
// escape <, > and &, as BMCs do not; invalid UTF-8 becomes U+FFFD.
func appendString(dst []byte, s string) []byte {
	dst = append(dst, '"')
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			if c >= 0x20 && c != '"' && c != '\\' {
				i++
				continue
			}
			dst = append(dst, s[start:i]...)
			switch c {
			case '"', '\\':
				dst = append(dst, '\\', c)
			case '\n':
				dst = append(dst, '\\', 'n')
			case '\r':
				dst = append(dst, '\\', 'r')
			case '\t':
				dst = append(dst, '\\', 't')
			default:
				dst = append(dst, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xF])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			dst = append(dst, s[start:i]...)
			dst = append(dst, `\ufffd`...)
			i += size
			start = i
			continue
		}
		i += size
	}
	dst = append(dst, s[start:]...)
	return append(dst, '"')
}
