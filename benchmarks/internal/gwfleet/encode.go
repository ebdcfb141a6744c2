package gwfleet

import (
	"fmt"
	"sync"

	"github.com/golang/snappy"
	"github.com/prometheus/prometheus/prompb"

	"github.com/bmcstream/bmcstream/pkg/series"
	"github.com/bmcstream/bmcstream/pkg/sinks/remotewrite"
)

// BatchSize is the remote-write batch the ceiling encodes: the queue's
// default max_samples_per_send.
const BatchSize = 2000

// PromSample is a sample with its labels as the []prompb.Label gogo
// marshals: the form the ceiling encodes.
type PromSample struct {
	Labels []prompb.Label
	T      int64
	V      float64
}

// Prom converts samples for the ceiling, once, before it is timed: the
// ceiling measures marshalling and compressing, not building label slices.
//
// The label sets are laid out in one slab, in sample order, and each
// series' labels are made once (a series sampled twice shares them): the
// layout most favourable to gogo, as the normaliser's former plans kept
// them.
func Prom(all []series.Sample) []PromSample {
	n := 0
	for _, s := range all {
		n += s.Series.Labels.Len()
	}
	slab := make([]prompb.Label, 0, n)
	made := make(map[*series.Series][]prompb.Label)
	out := make([]PromSample, len(all))
	for i, s := range all {
		ls, ok := made[s.Series]
		if !ok {
			start := len(slab)
			s.Series.Labels.Range(func(name, value string) { slab = append(slab, prompb.Label{Name: name, Value: value}) })
			ls = slab[start:len(slab):len(slab)]
			made[s.Series] = ls
		}
		out[i] = PromSample{Labels: ls, T: s.T, V: s.V}
	}
	return out
}

// Encoder is the yardstick of the gateway's output: a prompb WriteRequest
// marshalled with gogo (Size, then MarshalToSizedBuffer) and compressed
// with snappy, one TimeSeries per sample as the remote-write queue sends
// them, every buffer reused. It does nothing else: no decoding, no
// normalising, no queueing, no HTTP. The gateway's own encoder writes the
// same bytes without marshalling labels (it copies each series'
// pre-encoded labels), so it can beat this ceiling; SnappyCeiling is the
// bound under both.
type Encoder struct {
	req     prompb.WriteRequest
	series  []prompb.TimeSeries
	samples []prompb.Sample
	pb      []byte
	snappy  []byte
}

// Marshal returns batch as an uncompressed request. The result aliases the
// Encoder's buffer until the next call.
func (e *Encoder) Marshal(batch []PromSample) ([]byte, error) {
	n := len(batch)
	if cap(e.series) < n {
		e.series = make([]prompb.TimeSeries, n)
		e.samples = make([]prompb.Sample, n)
	}
	ts, ss := e.series[:n], e.samples[:n]
	for i := range batch {
		ss[i] = prompb.Sample{Value: batch[i].V, Timestamp: batch[i].T}
		ts[i].Labels = batch[i].Labels
		ts[i].Samples = ss[i : i+1 : i+1]
	}
	e.req.Timeseries = ts
	size := e.req.Size()
	if cap(e.pb) < size {
		e.pb = make([]byte, size+size/4)
	}
	m, err := e.req.MarshalToSizedBuffer(e.pb[:size])
	if err != nil {
		return nil, fmt.Errorf("marshal write request: %w", err)
	}
	return e.pb[size-m : size], nil
}

// Encode returns batch as a compressed request. The result aliases the
// Encoder's buffer until the next call.
func (e *Encoder) Encode(batch []PromSample) ([]byte, error) {
	raw, err := e.Marshal(batch)
	if err != nil {
		return nil, err
	}
	if max := snappy.MaxEncodedLen(len(raw)); cap(e.snappy) < max {
		e.snappy = make([]byte, max+max/4)
	}
	return snappy.Encode(e.snappy[:cap(e.snappy)], raw), nil
}

// EncodeAll encodes all in batches of BatchSize and returns the compressed
// bytes produced.
func (e *Encoder) EncodeAll(all []PromSample) (int, error) {
	total := 0
	for lo := 0; lo < len(all); lo += BatchSize {
		b, err := e.Encode(all[lo:min(lo+BatchSize, len(all))])
		if err != nil {
			return total, err
		}
		total += len(b)
	}
	return total, nil
}

// Bodies returns the uncompressed requests of all in batches of BatchSize,
// each its own copy: the bodies the remote-write queue sends for these
// samples in this order (its encoder's output is byte-identical to gogo's
// marshal), for a SnappyCeiling when no gateway ran.
func (e *Encoder) Bodies(all []PromSample) ([][]byte, error) {
	var out [][]byte
	for lo := 0; lo < len(all); lo += BatchSize {
		b, err := e.Marshal(all[lo:min(lo+BatchSize, len(all))])
		if err != nil {
			return nil, err
		}
		out = append(out, append([]byte(nil), b...))
	}
	return out, nil
}

// SnappyCeiling is the bound under any encoder of the gateway's requests:
// snappy.Encode alone over the exact request bodies the gateway sent
// (uncompressed protobuf, as a receiver has them after snappy.Decode). An
// encoder must at least compress what it sends; everything the gateway
// does beyond that is the gap between its throughput and this one's.
type SnappyCeiling struct {
	bodies  [][]byte
	samples int
	dst     []byte
}

// NewSnappyCeiling returns the ceiling of bodies, which are not copied and
// must not change. It decodes each body once to count its samples.
func NewSnappyCeiling(bodies [][]byte) (*SnappyCeiling, error) {
	c := &SnappyCeiling{bodies: bodies}
	var wr prompb.WriteRequest
	for i, b := range bodies {
		wr.Reset()
		if err := wr.Unmarshal(b); err != nil {
			return nil, fmt.Errorf("request body %d: %w", i, err)
		}
		for _, ts := range wr.Timeseries {
			c.samples += len(ts.Samples)
		}
		if max := snappy.MaxEncodedLen(len(b)); max < 0 {
			return nil, fmt.Errorf("request body %d: %d bytes is too large for snappy", i, len(b))
		} else if max > len(c.dst) {
			c.dst = make([]byte, max)
		}
	}
	return c, nil
}

// Samples returns the number of samples in the bodies: what one EncodeAll
// compresses.
func (c *SnappyCeiling) Samples() int { return c.samples }

// Requests returns the number of bodies.
func (c *SnappyCeiling) Requests() int { return len(c.bodies) }

// EncodeAll compresses every body once, on this goroutine, into one reused
// buffer (it allocates nothing), and returns the compressed bytes.
func (c *SnappyCeiling) EncodeAll() int {
	n := 0
	for _, b := range c.bodies {
		n += len(snappy.Encode(c.dst, b))
	}
	return n
}

// BodyKeeper keeps copies of request bodies up to a byte budget, for a
// receiver to hand the bodies it got to a SnappyCeiling. It is safe for
// concurrent use.
type BodyKeeper struct {
	mu     sync.Mutex
	budget int
	kept   int
	bodies [][]byte
}

// NewBodyKeeper returns a keeper of at most budget bytes of bodies.
func NewBodyKeeper(budget int) *BodyKeeper { return &BodyKeeper{budget: budget} }

// Keep copies raw, an uncompressed request body, unless the budget is
// spent; it reports whether it kept it.
func (k *BodyKeeper) Keep(raw []byte) bool {
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.kept+len(raw) > k.budget {
		return false
	}
	k.kept += len(raw)
	k.bodies = append(k.bodies, append([]byte(nil), raw...))
	return true
}

// Bodies returns the bodies kept so far, in the order they were kept.
func (k *BodyKeeper) Bodies() [][]byte {
	k.mu.Lock()
	defer k.mu.Unlock()
	return append([][]byte(nil), k.bodies...)
}

// ShardOrder returns all reordered as the remote-write queue batches them
// in the gateway: a BMC's samples go to shard ShardKey(bmc) % shards, and
// each shard's samples, in their order, are cut into batches of BatchSize;
// the batches of the shards follow each other round robin.
func ShardOrder(all []series.Sample, shards int) []series.Sample {
	per := make([][]series.Sample, shards)
	for _, s := range all {
		k := remotewrite.ShardKey(s.Series.Labels.Get("bmc")) % uint64(shards)
		per[k] = append(per[k], s)
	}
	out := make([]series.Sample, 0, len(all))
	for lo := 0; len(out) < len(all); lo += BatchSize {
		for k := range per {
			if lo < len(per[k]) {
				out = append(out, per[k][lo:min(lo+BatchSize, len(per[k]))]...)
			}
		}
	}
	return out
}
