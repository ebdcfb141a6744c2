// Package gateway_test holds the gateway's encode ceiling as a Go
// benchmark. The end-to-end figure it is compared with comes from
// ./benchmarks/gatewayload, which runs the same ceiling in its own process.
package gateway_test

import (
	"testing"
	"time"

	"github.com/bmcstream/bmcstream/benchmarks/internal/gwfleet"
	"github.com/bmcstream/bmcstream/pkg/series"
	v1 "github.com/bmcstream/bmcstream/proto/bmcstream/v1"
)

// ceilingSeries is one poll of a 2000-BMC fleet (40-120 readings each),
// normalised and enriched as the gateway does.
func ceilingSeries(b *testing.B) []series.Sample {
	b.Helper()
	ts, err := gwfleet.Templates(b.Context())
	if err != nil {
		b.Fatal(err)
	}
	const bmcs = 2000
	f := gwfleet.New(bmcs, ts)
	snaps := make([]*v1.Snapshot, bmcs)
	start := time.Now().Add(-time.Hour)
	for i := range snaps {
		snaps[i] = f.Snapshot(i, 0, start)
	}
	all, err := f.Series(snaps)
	if err != nil {
		b.Fatal(err)
	}
	return all
}

// BenchmarkCeiling is the gateway's physical ceiling: gogo Marshal of a
// prompb.WriteRequest plus snappy, in 2000-sample batches, of the series
// the normaliser makes of realistic snapshots; nothing else. One
// goroutine, so samples/s is per core.
func BenchmarkCeiling(b *testing.B) {
	all := ceilingSeries(b)
	var enc gwfleet.Encoder
	if _, err := enc.EncodeAll(all); err != nil { // Grow the buffers.
		b.Fatal(err)
	}
	var bytes int
	b.ReportAllocs()
	for b.Loop() {
		n, err := enc.EncodeAll(all)
		if err != nil {
			b.Fatal(err)
		}
		bytes = n
	}
	samples := float64(b.N) * float64(len(all))
	b.ReportMetric(samples/b.Elapsed().Seconds(), "samples/s")
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/samples, "ns/sample")
	b.ReportMetric(float64(bytes)/float64(len(all)), "bytes/sample")
}

// TestCeilingAllocs asserts the ceiling allocates nothing once its buffers
// have grown, so it measures encoding, not the allocator.
func TestCeilingAllocs(t *testing.T) {
	ts, err := gwfleet.Templates(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	f := gwfleet.New(20, ts)
	snaps := make([]*v1.Snapshot, 20)
	for i := range snaps {
		snaps[i] = f.Snapshot(i, 0, time.Now().Add(-time.Hour))
	}
	all, err := f.Series(snaps)
	if err != nil {
		t.Fatal(err)
	}
	var enc gwfleet.Encoder
	if _, err := enc.EncodeAll(all); err != nil {
		t.Fatal(err)
	}
	if a := testing.AllocsPerRun(20, func() { _, _ = enc.EncodeAll(all) }); a != 0 {
		t.Fatalf("ceiling allocates %v times per run, want 0", a)
	}
}
