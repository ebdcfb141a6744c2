package series

import (
	"encoding/binary"
	"slices"
	"strconv"
	"strings"
	"sync"
	"unique"
	"unsafe"

	"github.com/prometheus/prometheus/prompb"
)

// Labels is a label set sorted by name, stored the way remote write sends
// it: each label as the bytes of one TimeSeries.labels field (tag 0x0a, the
// length, then the prompb.Label message: tag 0x0a, name, and tag 0x12,
// value, each length-prefixed; an empty value is left out as gogo's
// marshaller leaves it out). A label costs its name and value plus four to
// six bytes instead of a 64-byte prompb.Label and two string headers.
//
// A set may be split in two parts: the series' own labels (the metric name,
// sensor, context...) and a Base shared by every series of one BMC (bmc and
// the inventory's labels). The own part is interned, so the same own labels
// on many BMCs of one model are stored once; a merge mask says which base
// label goes where in the sorted whole. Encoders copy the parts' bytes in
// mask order: the labels of a series are never marshalled again.
//
// Labels is a small value (24 bytes), immutable and safe to share between
// goroutines. The zero value is the empty set.
type Labels struct {
	own  unique.Handle[string] // zero: no own labels
	base *Base                 // nil: no base labels
	// mask bit i set: label i of the sorted set is the base's next label.
	mask uint64
}

// Base is a label set shared by many series: the labels every series of one
// BMC carries. It is immutable once made.
type Base struct {
	enc   string
	names []string
	offs  []int32 // start of each label in enc, then len(enc)
}

// maxMerged is the most labels a set split into own and base parts may
// have (the mask's bits); a larger set is stored whole as its own part.
const maxMerged = 64

const (
	tagLabels = 0x0a // TimeSeries.labels and Label.name: field 1, bytes
	tagValue  = 0x12 // Label.value: field 2, bytes
)

// NewBase returns the shared part of a BMC's label sets. Labels with an
// empty value are left out, as Prometheus does; ls need not be sorted and
// is not modified or retained. Of two labels with one name the first wins.
func NewBase(ls []prompb.Label) *Base {
	ls = sortedCopy(ls)
	b := &Base{names: make([]string, 0, len(ls)), offs: make([]int32, 0, len(ls)+1)}
	var enc []byte
	for _, l := range ls {
		b.offs = append(b.offs, int32(len(enc)))
		enc = appendLabel(enc, l.Name, l.Value)
	}
	b.offs = append(b.offs, int32(len(enc)))
	b.enc = string(enc)
	// Names as substrings of enc: one allocation for the whole base.
	for i := range ls {
		name, _ := decodeLabel(b.enc[b.offs[i]:b.offs[i+1]])
		b.names = append(b.names, name)
	}
	return b
}

// Len returns the number of labels in the base.
func (b *Base) Len() int {
	if b == nil {
		return 0
	}
	return len(b.names)
}

// Labels returns the base alone as a label set.
func (b *Base) Labels() Labels {
	if b.Len() == 0 {
		return Labels{}
	}
	return Labels{base: b, mask: 1<<uint(b.Len()) - 1}
}

// Make returns the label set of own and base together. own need not be
// sorted and is not modified or retained; labels with an empty value are
// left out. An own label wins over a base label of the same name. base may
// be nil.
func Make(own []prompb.Label, base *Base) Labels {
	own = sortedCopy(own)
	if nb := base.Len(); nb > 0 && (len(own)+nb > maxMerged || overlaps(own, base.names)) {
		// Stored whole: merged here once.
		all := make([]prompb.Label, 0, len(own)+nb)
		all = append(all, own...)
		for i, n := range base.names {
			if !hasName(own, n) {
				_, v := decodeLabel(base.enc[base.offs[i]:base.offs[i+1]])
				all = append(all, prompb.Label{Name: n, Value: v})
			}
		}
		return Labels{own: internSorted(sortedCopy(all))}
	}
	return MakeSorted(own, base)
}

// FromProm returns the label set of ls, which need not be sorted.
func FromProm(ls []prompb.Label) Labels { return Make(ls, nil) }

// FromStrings returns the label set of name/value pairs; an odd trailing
// name is ignored.
func FromStrings(nv ...string) Labels {
	ls := make([]prompb.Label, 0, len(nv)/2)
	for i := 0; i+1 < len(nv); i += 2 {
		ls = append(ls, prompb.Label{Name: nv[i], Value: nv[i+1]})
	}
	return FromProm(ls)
}

// sortedCopy returns ls without empty values, sorted by name (stable: of
// two labels with one name the first is kept).
func sortedCopy(ls []prompb.Label) []prompb.Label {
	out := make([]prompb.Label, 0, len(ls))
	for _, l := range ls {
		if l.Value != "" {
			out = append(out, l)
		}
	}
	slices.SortStableFunc(out, func(a, b prompb.Label) int { return strings.Compare(a.Name, b.Name) })
	return slices.CompactFunc(out, func(a, b prompb.Label) bool { return a.Name == b.Name })
}

func overlaps(own []prompb.Label, names []string) bool {
	for _, l := range own {
		if _, ok := slices.BinarySearch(names, l.Name); ok {
			return true
		}
	}
	return false
}

func hasName(ls []prompb.Label, name string) bool {
	for _, l := range ls {
		if l.Name == name {
			return true
		}
	}
	return false
}

// appendLabel appends one label as a TimeSeries.labels field.
func appendLabel(dst []byte, name, value string) []byte {
	// Empty fields are left out, as gogo's marshaller leaves them out.
	n := 0
	if name != "" {
		n += 1 + uvarintLen(uint64(len(name))) + len(name)
	}
	if value != "" {
		n += 1 + uvarintLen(uint64(len(value))) + len(value)
	}
	dst = append(dst, tagLabels)
	dst = binary.AppendUvarint(dst, uint64(n))
	if name != "" {
		dst = append(dst, tagLabels)
		dst = binary.AppendUvarint(dst, uint64(len(name)))
		dst = append(dst, name...)
	}
	if value != "" {
		dst = append(dst, tagValue)
		dst = binary.AppendUvarint(dst, uint64(len(value)))
		dst = append(dst, value...)
	}
	return dst
}

// nextLabel returns the length of the label field at the start of enc.
func nextLabel(enc string) int {
	if c := enc[1]; c < 0x80 { // a label under 128 bytes: nearly all
		return 2 + int(c)
	}
	n, k := uvarint(enc[1:])
	return 1 + k + int(n)
}

// decodeLabel returns the name and value of one label field (which is all
// of enc). The strings alias enc.
func decodeLabel(enc string) (name, value string) {
	_, k := uvarint(enc[1:])
	msg := enc[1+k:]
	for len(msg) > 0 {
		tag := msg[0]
		n, k := uvarint(msg[1:])
		s := msg[1+k : 1+k+int(n)]
		msg = msg[1+k+int(n):]
		switch tag {
		case tagLabels:
			name = s
		case tagValue:
			value = s
		}
	}
	return name, value
}

func uvarint(s string) (uint64, int) {
	var x uint64
	var shift uint
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c < 0x80 {
			return x | uint64(c)<<shift, i + 1
		}
		x |= uint64(c&0x7f) << shift
		shift += 7
	}
	return 0, 0
}

func uvarintLen(x uint64) int {
	n := 1
	for x >= 0x80 {
		x >>= 7
		n++
	}
	return n
}

func (l Labels) ownEnc() string {
	if l.own == (unique.Handle[string]{}) {
		return ""
	}
	return l.own.Value()
}

// Len returns the number of labels.
func (l Labels) Len() int {
	n := l.base.Len()
	for enc := l.ownEnc(); len(enc) > 0; n++ {
		enc = enc[nextLabel(enc):]
	}
	return n
}

// IsEmpty reports whether the set has no labels.
func (l Labels) IsEmpty() bool { return l.base.Len() == 0 && l.ownEnc() == "" }

// EncodedLen returns the length of the set's TimeSeries.labels fields, as
// AppendEncoded appends them.
func (l Labels) EncodedLen() int {
	n := len(l.ownEnc())
	if l.base != nil {
		n += len(l.base.enc)
	}
	return n
}

// AppendEncoded appends the set as TimeSeries.labels fields, sorted by
// name: byte for byte what gogo's marshaller writes for the same
// []prompb.Label. It does not allocate beyond growing dst.
func (l Labels) AppendEncoded(dst []byte) []byte {
	own := l.ownEnc()
	if l.base == nil || l.mask == 0 {
		return append(dst, own...)
	}
	b := l.base
	j := 0
	for m := l.mask; m != 0 || len(own) > 0; m >>= 1 {
		if m&1 != 0 {
			dst = append(dst, b.enc[b.offs[j]:b.offs[j+1]]...)
			j++
			continue
		}
		// A run of own labels up to the next base label.
		if m == 0 {
			return append(dst, own...)
		}
		n := nextLabel(own)
		dst = append(dst, own[:n]...)
		own = own[n:]
	}
	return dst
}

// Range calls f with each label in name order. The strings alias the set's
// storage: they stay valid for as long as the caller keeps them.
func (l Labels) Range(f func(name, value string)) {
	own := l.ownEnc()
	b := l.base
	j := 0
	m := l.mask
	for m != 0 || len(own) > 0 {
		if m&1 != 0 {
			name, value := decodeLabel(b.enc[b.offs[j]:b.offs[j+1]])
			f(name, value)
			j++
		} else {
			n := nextLabel(own)
			name, value := decodeLabel(own[:n])
			f(name, value)
			own = own[n:]
		}
		m >>= 1
	}
}

// Get returns the value of the named label, or "" when absent.
func (l Labels) Get(name string) string {
	if b := l.base; b != nil {
		if i, ok := slices.BinarySearch(b.names, name); ok {
			_, v := decodeLabel(b.enc[b.offs[i]:b.offs[i+1]])
			return v
		}
	}
	for own := l.ownEnc(); len(own) > 0; {
		n := nextLabel(own)
		k, v := decodeLabel(own[:n])
		if k == name {
			return v
		}
		if k > name {
			break
		}
		own = own[n:]
	}
	return ""
}

// Name returns the metric name (the __name__ label).
func (l Labels) Name() string {
	// __name__ sorts before every lower-case name: it is the first own
	// label of nearly every set.
	if own := l.ownEnc(); len(own) > 0 {
		if k, v := decodeLabel(own[:nextLabel(own)]); k == "__name__" {
			return v
		}
	}
	return l.Get("__name__")
}

// Prom returns the set as a new, sorted []prompb.Label. It allocates: use
// it off the hot path (tests, logs, relabelling).
func (l Labels) Prom() []prompb.Label {
	out := make([]prompb.Label, 0, 8)
	l.Range(func(name, value string) { out = append(out, prompb.Label{Name: name, Value: value}) })
	return out
}

// Hash returns Hash(l.Prom()) without allocating.
func (l Labels) Hash() uint64 {
	h := uint64(offset64)
	l.Range(func(name, value string) {
		for j := 0; j < len(name); j++ {
			h ^= uint64(name[j])
			h *= prime64
		}
		h ^= sep
		h *= prime64
		for j := 0; j < len(value); j++ {
			h ^= uint64(value[j])
			h *= prime64
		}
		h ^= sep
		h *= prime64
	})
	return h
}

// Equal reports whether two sets hold the same labels.
func (l Labels) Equal(o Labels) bool {
	if l == o {
		return true
	}
	if l.EncodedLen() != o.EncodedLen() {
		return false
	}
	var a, b [256]byte
	return string(l.AppendEncoded(a[:0])) == string(o.AppendEncoded(b[:0]))
}

// EqualProm reports whether the set holds exactly the labels of ls, which
// must be sorted.
func (l Labels) EqualProm(ls []prompb.Label) bool {
	i, ok := 0, true
	l.Range(func(name, value string) {
		if !ok {
			return
		}
		if i >= len(ls) || ls[i].Name != name || ls[i].Value != value {
			ok = false
			return
		}
		i++
	})
	return ok && i == len(ls)
}

// String formats the set as Prometheus does: {a="1", b="2"}.
func (l Labels) String() string {
	var sb strings.Builder
	sb.WriteByte('{')
	first := true
	l.Range(func(name, value string) {
		if !first {
			sb.WriteString(", ")
		}
		first = false
		sb.WriteString(name)
		sb.WriteByte('=')
		sb.WriteString(strconv.Quote(value))
	})
	sb.WriteByte('}')
	return sb.String()
}

// MakeSorted is Make for own labels already sorted by name, with distinct
// names and no empty value (as a builder that merges sorted labels has
// them): it returns what Make returns without copying or sorting own, and
// allocates only when the own part is new to the process (interning it).
// own is not modified or retained.
func MakeSorted(own []prompb.Label, base *Base) Labels {
	nb := base.Len()
	if nb == 0 {
		return Labels{own: internSorted(own)}
	}
	if len(own)+nb > maxMerged || overlaps(own, base.names) {
		return Make(own, base)
	}
	var mask uint64
	i, j := 0, 0
	for k := 0; i < len(own) || j < nb; k++ {
		if j < nb && (i == len(own) || base.names[j] < own[i].Name) {
			mask |= 1 << uint(k)
			j++
		} else {
			i++
		}
	}
	l := Labels{base: base, mask: mask}
	if len(own) > 0 {
		l.own = internSorted(own)
	}
	return l
}

var encPool = sync.Pool{New: func() any { b := make([]byte, 0, 512); return &b }}

// internSorted interns the encoding of sorted labels, encoded in a pooled
// buffer: unique.Make copies a string it stores, so looking up one that is
// there already costs no allocation.
func internSorted(ls []prompb.Label) unique.Handle[string] {
	bp := encPool.Get().(*[]byte)
	enc := (*bp)[:0]
	for _, l := range ls {
		enc = appendLabel(enc, l.Name, l.Value)
	}
	var h unique.Handle[string]
	if len(enc) == 0 {
		h = unique.Make("")
	} else {
		h = unique.Make(unsafe.String(&enc[0], len(enc)))
	}
	*bp = enc
	encPool.Put(bp)
	return h
}

// Rebase returns the set with its base part replaced by b, which must
// have the same label names as the set's base: the same own labels
// (the same interned handle) over another BMC's inventory labels. ok is
// false when it cannot be done (other names, or a set stored whole).
func (l Labels) Rebase(b *Base) (_ Labels, ok bool) {
	if l.base == nil {
		if b.Len() == 0 {
			return l, true
		}
		return Labels{}, false
	}
	if l.base != b && !slices.Equal(l.base.names, b.names) {
		return Labels{}, false
	}
	return Labels{own: l.own, base: b, mask: l.mask}, true
}
