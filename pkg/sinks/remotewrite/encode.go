package remotewrite

import (
	"encoding/binary"
	"fmt"
	"math"
	"math/bits"

	"github.com/golang/snappy"

	"github.com/bmcstream/bmcstream/pkg/series"
)

// Protobuf tags of the remote-write 1.0 messages the encoder writes
// (prometheus/prompb types.proto and remote.proto).
const (
	tagTimeseries = 0x0a // WriteRequest.timeseries: field 1, bytes
	tagSample     = 0x12 // TimeSeries.samples: field 2, bytes
	tagValue      = 0x09 // Sample.value: field 1, fixed64
	tagTimestamp  = 0x10 // Sample.timestamp: field 2, varint
)

// encoder turns a batch into a snappy-compressed (block format)
// prompb.WriteRequest. Each shard owns one, and every buffer in it is
// reused from batch to batch, so once the buffers have grown to the largest
// batch, encoding allocates nothing.
//
// The request is written as bytes, not marshalled: a series' labels are
// already encoded (series.Labels holds them as TimeSeries.labels fields),
// so each TimeSeries is its tag and length, those label bytes, and the
// sample. The output is byte for byte what gogo's
// prompb.WriteRequest.Marshal writes for the same samples (FuzzEncode
// checks it), so receivers see exactly the Remote-Write 1.0 message they
// saw before.
type encoder struct {
	sizes  []int // Each sample's TimeSeries message length.
	pb     []byte
	snappy []byte
}

// encode returns the compressed request for batch. The result aliases the
// encoder's buffer: it is valid until the next call of encode.
//
// Each sample becomes its own TimeSeries. Grouping the samples of one series
// would save repeating its labels, but a BMC series gets one sample per poll
// (every 30-60 s) and a batch lasts at most batch_send_deadline (1 s by
// default), so batches almost never hold two samples of one series.
func (e *encoder) encode(batch []series.Sample) ([]byte, error) {
	raw, err := e.marshal(batch)
	if err != nil {
		return nil, err
	}
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

// marshal returns the uncompressed request for batch, aliasing the
// encoder's buffer. Sizes are computed first, so the buffer is grown at
// most once and written front to back in one pass.
func (e *encoder) marshal(batch []series.Sample) ([]byte, error) {
	if cap(e.sizes) < len(batch) {
		e.sizes = make([]int, len(batch), len(batch)+len(batch)/4)
	}
	sizes := e.sizes[:len(batch)]
	total := 0
	for i := range batch {
		smp := &batch[i]
		n := smp.Series.Labels.EncodedLen()
		m := sampleLen(smp.T, smp.V)
		n += 1 + uvarintLen(uint64(m)) + m
		sizes[i] = n
		total += 1 + uvarintLen(uint64(n)) + n
	}
	if cap(e.pb) < total {
		e.pb = make([]byte, 0, total+total/4) // Headroom for slightly larger batches.
	}
	b := e.pb[:0]
	for i := range batch {
		smp := &batch[i]
		b = append(b, tagTimeseries)
		b = binary.AppendUvarint(b, uint64(sizes[i]))
		b = smp.Series.Labels.AppendEncoded(b)
		b = append(b, tagSample)
		b = binary.AppendUvarint(b, uint64(sampleLen(smp.T, smp.V)))
		// As gogo's proto3 marshaller: a field equal to zero is left out.
		// V != 0 is the float comparison, so -0 is left out as 0 is, and
		// NaN (the staleness marker among them) is written.
		if smp.V != 0 {
			b = append(b, tagValue)
			b = binary.LittleEndian.AppendUint64(b, math.Float64bits(smp.V))
		}
		if smp.T != 0 {
			b = append(b, tagTimestamp)
			// int64 as a plain varint: a negative time takes 10 bytes.
			b = binary.AppendUvarint(b, uint64(smp.T))
		}
	}
	if len(b) != total {
		// The sizes and the bytes disagree: a label set's EncodedLen
		// differs from what AppendEncoded wrote. Never send such a request.
		return nil, fmt.Errorf("marshal write request: wrote %d bytes, sized %d", len(b), total)
	}
	return b, nil
}

// sampleLen returns the length of a prompb.Sample message as gogo marshals
// it.
func sampleLen(t int64, v float64) int {
	n := 0
	if v != 0 {
		n += 1 + 8
	}
	if t != 0 {
		n += 1 + uvarintLen(uint64(t))
	}
	return n
}

// uvarintLen returns the length of x as a protobuf varint.
func uvarintLen(x uint64) int {
	return (bits.Len64(x|1)*9 + 64) / 64
}
