package gwfleet

import (
	"fmt"

	"github.com/golang/snappy"
	"github.com/prometheus/prometheus/prompb"

	"github.com/bmcstream/bmcstream/pkg/series"
	"github.com/bmcstream/bmcstream/pkg/sinks/remotewrite"
)

// BatchSize is the remote-write batch the ceiling encodes: the queue's
// default max_samples_per_send.
const BatchSize = 2000

// Encoder is the physical ceiling of the gateway's output: a prompb
// WriteRequest marshalled with gogo (Size, then MarshalToSizedBuffer) and
// compressed with snappy, one TimeSeries per sample as the remote-write
// queue builds them, every buffer reused. It does nothing else: no
// decoding, no normalising, no queueing, no HTTP.
type Encoder struct {
	req     prompb.WriteRequest
	series  []prompb.TimeSeries
	samples []prompb.Sample
	pb      []byte
	snappy  []byte
}

// Encode returns batch as a compressed request. The result aliases the
// Encoder's buffer until the next call.
func (e *Encoder) Encode(batch []series.Sample) ([]byte, error) {
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
	raw := e.pb[size-m : size]
	if max := snappy.MaxEncodedLen(len(raw)); cap(e.snappy) < max {
		e.snappy = make([]byte, max+max/4)
	}
	return snappy.Encode(e.snappy[:cap(e.snappy)], raw), nil
}

// EncodeAll encodes all in batches of BatchSize and returns the compressed
// bytes produced.
func (e *Encoder) EncodeAll(all []series.Sample) (int, error) {
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

// ShardOrder returns all reordered as the remote-write queue batches them
// in the gateway: a BMC's samples go to shard ShardKey(bmc) % shards, and
// each shard's samples, in their order, are cut into batches of BatchSize;
// the batches of the shards follow each other round robin.
func ShardOrder(all []series.Sample, shards int) []series.Sample {
	per := make([][]series.Sample, shards)
	for _, s := range all {
		k := remotewrite.ShardKey(series.Get(s.Labels, "bmc")) % uint64(shards)
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
