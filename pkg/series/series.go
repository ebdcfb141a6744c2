// Package series holds the sample type that flows from the gateway pipeline
// to its sinks: a series (compact, pre-encoded labels and their hash) and a
// time and value.
package series

import (
	"sort"

	"github.com/prometheus/prometheus/prompb"
)

// Series is one series: its labels and their hash. A Series is immutable
// once handed on and is shared by every stage and sink that handles its
// samples: the normaliser's series table makes one per series when a plan
// first meets it, and the same pointer comes back poll after poll, so the
// stages keep per-series state by pointer or by Slot instead of by label
// set, and encoders copy its pre-encoded labels.
type Series struct {
	// Labels are the series' labels; "__name__" holds the metric name.
	Labels Labels
	// Hash is Labels.Hash(), computed once.
	Hash uint64
	// Slot is the series' index in the table that made it (see
	// pipeline's series table), or -1 for a series made alone (roll-ups,
	// relabelled series, tests). Stages that keep per-series state in a
	// slice index it by Slot and check the Series pointer.
	Slot int32
}

// New returns a series made alone (Slot -1) of labels ls, which need not
// be sorted.
func New(ls []prompb.Label) *Series { return NewLabels(FromProm(ls)) }

// NewLabels returns a series made alone (Slot -1) of a label set.
func NewLabels(l Labels) *Series { return &Series{Labels: l, Hash: l.Hash(), Slot: -1} }

// Of returns a series made alone of name/value pairs.
func Of(nv ...string) *Series { return NewLabels(FromStrings(nv...)) }

// Sample is one value of one series at one time.
//
// Ownership: Series is immutable; sinks may retain the pointer until the
// sample is sent.
type Sample struct {
	Series *Series
	// T is the sample time in Unix milliseconds: when the BMC was read.
	T int64
	// V is the value; math.Float64frombits(value.StaleNaN) marks staleness.
	V float64
}

const (
	offset64 = 14695981039346656037
	prime64  = 1099511628211
	sep      = 0xff
)

// Hash returns a 64-bit FNV-1a hash of a sorted label set. It never
// allocates. Names and values are separated by a byte that cannot occur in
// UTF-8 so {a="bc"} and {ab="c"} hash differently.
func Hash(ls []prompb.Label) uint64 {
	h := uint64(offset64)
	for i := range ls {
		for j := 0; j < len(ls[i].Name); j++ {
			h ^= uint64(ls[i].Name[j])
			h *= prime64
		}
		h ^= sep
		h *= prime64
		for j := 0; j < len(ls[i].Value); j++ {
			h ^= uint64(ls[i].Value[j])
			h *= prime64
		}
		h ^= sep
		h *= prime64
	}
	return h
}

// Sort sorts a label set by name in place, as remote write requires.
func Sort(ls []prompb.Label) {
	sort.Slice(ls, func(i, j int) bool { return ls[i].Name < ls[j].Name })
}

// Get returns the value of the named label, or "" when absent.
func Get(ls []prompb.Label, name string) string {
	for i := range ls {
		if ls[i].Name == name {
			return ls[i].Value
		}
	}
	return ""
}
