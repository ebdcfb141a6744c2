package remotewrite

import (
	"fmt"

	"github.com/golang/snappy"
	"github.com/prometheus/prometheus/prompb"

	"github.com/bmcstream/bmcstream/pkg/series"
)

// encoder turns a batch into a snappy-compressed prompb.WriteRequest. Each
// shard owns one, and every buffer in it is reused from batch to batch, so
// once the buffers have grown to the largest batch, encoding allocates
// nothing.
type encoder struct {
	req     prompb.WriteRequest
	series  []prompb.TimeSeries
	samples []prompb.Sample
	pb      []byte
	snappy  []byte
}

// encode returns the compressed request for batch. The result aliases the
// encoder's buffer: it is valid until the next call of encode.
//
// Each sample becomes its own TimeSeries. Grouping the samples of one series
// would save repeating its labels, but a BMC series gets one sample per poll
// (every 30-60 s) and a batch lasts at most batch_send_deadline (1 s by
// default), so batches almost never hold two samples of one series.
func (e *encoder) encode(batch []series.Sample) ([]byte, error) {
	n := len(batch)
	if cap(e.series) < n {
		e.series = make([]prompb.TimeSeries, n)
		e.samples = make([]prompb.Sample, n)
	}
	series, samples := e.series[:n], e.samples[:n]
	for i := range batch {
		samples[i] = prompb.Sample{Value: batch[i].V, Timestamp: batch[i].T}
		series[i].Labels = batch[i].Labels
		series[i].Samples = samples[i : i+1 : i+1]
	}
	e.req.Timeseries = series

	size := e.req.Size()
	if cap(e.pb) < size {
		e.pb = make([]byte, size+size/4) // Headroom for slightly larger batches.
	}
	m, err := e.req.MarshalToSizedBuffer(e.pb[:size])
	if err != nil {
		return nil, fmt.Errorf("marshal write request: %w", err)
	}
	// MarshalToSizedBuffer fills the buffer from its end.
	raw := e.pb[size-m : size]

	maxLen := snappy.MaxEncodedLen(len(raw))
	if maxLen < 0 {
		return nil, fmt.Errorf("compress write request: %d bytes is too large for snappy", len(raw))
	}
	if cap(e.snappy) < maxLen {
		e.snappy = make([]byte, maxLen+maxLen/4)
	}
	// snappy.Encode allocates unless len(dst) is at least MaxEncodedLen.
	return snappy.Encode(e.snappy[:cap(e.snappy)], raw), nil
}

// reset drops the references to the last batch's label sets so they can be
// collected while the shard waits for the next batch.
func (e *encoder) reset() {
	clear(e.series)
	e.req.Timeseries = nil
}
