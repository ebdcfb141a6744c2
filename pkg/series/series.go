// Package series holds the sample type that flows from the gateway pipeline
// to its sinks, and the label-set hash that shards sinks' queues.
package series

import (
	"sort"

	"github.com/prometheus/prometheus/prompb"
)

// Sample is one value of one series at one time.
//
// Ownership: Labels is immutable once a Sample is handed to a sink; sinks may
// retain the slice (and its strings) until the sample is sent, and never
// modify it. Producers build a new slice (or reuse an interned one) per series
// instead of mutating one in place.
type Sample struct {
	// Labels are sorted by name; "__name__" holds the metric name.
	Labels []prompb.Label
	// Hash is Hash(Labels), computed once by the producer so every sink
	// shards by it without rehashing.
	Hash uint64
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
