package remotewrite

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/bmcstream/bmcstream/pkg/series"
)

func makeBatch(n int) []series.Sample {
	return makeSamples(0, n, 1_700_000_000_000)
}

func TestEncodeRoundTrip(t *testing.T) {
	tests := []struct {
		name string
		n    int
	}{
		{name: "one", n: 1},
		{name: "small", n: 7},
		{name: "full", n: DefaultQueueConfig.MaxSamplesPerSend},
	}
	var enc encoder // Shared: buffers grow and shrink between sizes.
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			batch := makeBatch(tt.n)
			data, err := enc.encode(batch)
			require.NoError(t, err)
			wr, err := decodeWriteRequest(data)
			require.NoError(t, err)
			require.Len(t, wr.Timeseries, tt.n)
			for i, ts := range wr.Timeseries {
				require.Equal(t, batch[i].Labels, ts.Labels)
				require.Len(t, ts.Samples, 1)
				require.Equal(t, batch[i].T, ts.Samples[0].Timestamp)
				require.Equal(t, batch[i].V, ts.Samples[0].Value)
			}
			enc.reset()
			for _, ts := range enc.series {
				require.Nil(t, ts.Labels, "reset drops label references")
			}
		})
	}
}

func TestEncodeAllocs(t *testing.T) {
	tests := []struct {
		name string
		n    int
	}{
		{name: "small batch", n: 10},
		{name: "full batch", n: DefaultQueueConfig.MaxSamplesPerSend},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var enc encoder
			batch := makeBatch(tt.n)
			_, err := enc.encode(batch) // Grow the buffers once.
			require.NoError(t, err)
			enc.reset()
			allocs := testing.AllocsPerRun(50, func() {
				if _, err := enc.encode(batch); err != nil {
					t.Fatal(err)
				}
				enc.reset()
			})
			require.Zero(t, allocs, "steady-state encode must not allocate")
		})
	}
}

func BenchmarkEncode(b *testing.B) {
	batch := makeBatch(DefaultQueueConfig.MaxSamplesPerSend)
	var enc encoder
	data, err := enc.encode(batch) // Grow the buffers outside the measurement.
	require.NoError(b, err)
	size := len(data)
	b.ReportAllocs()
	for b.Loop() {
		data, err := enc.encode(batch)
		if err != nil {
			b.Fatal(err)
		}
		size = len(data)
		enc.reset()
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*len(batch)), "ns/sample")
	b.ReportMetric(float64(size)/float64(len(batch)), "bytes/sample")
}

// BenchmarkQueueAppend measures the Append path through shards, batching
// and encoding to a client that accepts at once.
func BenchmarkQueueAppend(b *testing.B) {
	const perCall = 100
	cfg := testConfig(b, "http://127.0.0.1:1")
	cfg.QueueConfig.BatchSendDeadline = DefaultQueueConfig.BatchSendDeadline
	q, err := NewQueue(cfg, nopClient{}, nil, nil)
	require.NoError(b, err)
	q.Start()
	calls := make([][]series.Sample, 64)
	for i := range calls {
		calls[i] = makeSamples(i*perCall, perCall, 1000)
	}
	ctx := context.Background()
	done := func() {}
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		if err := q.Append(ctx, calls[i%len(calls)], done); err != nil {
			b.Fatal(err)
		}
		i++
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*perCall), "ns/sample")
	stopCtx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	require.NoError(b, q.Stop(stopCtx))
}

// BenchmarkQueueAppendKey is BenchmarkQueueAppend with each call keyed, as
// the gateway appends a snapshot: one channel send per call, and batches
// holding whole calls.
func BenchmarkQueueAppendKey(b *testing.B) {
	const perCall = 100
	cfg := testConfig(b, "http://127.0.0.1:1")
	cfg.QueueConfig.BatchSendDeadline = DefaultQueueConfig.BatchSendDeadline
	q, err := NewQueue(cfg, nopClient{}, nil, nil)
	require.NoError(b, err)
	q.Start()
	calls := make([][]series.Sample, 64)
	for i := range calls {
		calls[i] = makeSamples(i*perCall, perCall, 1000)
	}
	ctx := context.Background()
	done := func() {}
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		if err := q.AppendKey(ctx, uint64(i%len(calls)), calls[i%len(calls)], done); err != nil {
			b.Fatal(err)
		}
		i++
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*perCall), "ns/sample")
	stopCtx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	require.NoError(b, q.Stop(stopCtx))
}
