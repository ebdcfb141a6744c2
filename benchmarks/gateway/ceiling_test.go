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

// BenchmarkCeiling is the gateway's yardstick: gogo Marshal of a
// prompb.WriteRequest plus snappy, in 2000-sample batches, of the series
// the normaliser makes of realistic snapshots (their labels converted to
// []prompb.Label before timing); nothing else. One goroutine, so
// samples/s is per core.
func BenchmarkCeiling(b *testing.B) {
	all := gwfleet.Prom(ceilingSeries(b))
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

// BenchmarkSnappyCeiling is the bound under any encoder: snappy alone over
// the request bodies the remote-write queue sends for the same samples
// (the gogo marshal of each batch, which the queue's encoder matches byte
// for byte). gatewayload measures it over the bodies a gateway really
// sent.
func BenchmarkSnappyCeiling(b *testing.B) {
	all := gwfleet.Prom(ceilingSeries(b))
	var enc gwfleet.Encoder
	bodies, err := enc.Bodies(all)
	if err != nil {
		b.Fatal(err)
	}
	c, err := gwfleet.NewSnappyCeiling(bodies)
	if err != nil {
		b.Fatal(err)
	}
	if c.Samples() != len(all) {
		b.Fatalf("bodies hold %d samples, want %d", c.Samples(), len(all))
	}
	var bytes int
	b.ReportAllocs()
	for b.Loop() {
		bytes = c.EncodeAll()
	}
	samples := float64(b.N) * float64(c.Samples())
	b.ReportMetric(samples/b.Elapsed().Seconds(), "samples/s")
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/samples, "ns/sample")
	b.ReportMetric(float64(bytes)/float64(c.Samples()), "bytes/sample")
}

// TestCeilingAllocs asserts the ceilings allocate nothing once their
// buffers have grown, so they measure encoding, not the allocator, and that
// the snappy ceiling counts the samples of the bodies it compresses.
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
	ss, err := f.Series(snaps)
	if err != nil {
		t.Fatal(err)
	}
	all := gwfleet.Prom(ss)
	var enc gwfleet.Encoder
	if _, err := enc.EncodeAll(all); err != nil {
		t.Fatal(err)
	}
	if a := testing.AllocsPerRun(20, func() { _, _ = enc.EncodeAll(all) }); a != 0 {
		t.Fatalf("ceiling allocates %v times per run, want 0", a)
	}

	bodies, err := enc.Bodies(all)
	if err != nil {
		t.Fatal(err)
	}
	keep := gwfleet.NewBodyKeeper(1 << 30)
	for _, b := range bodies {
		if !keep.Keep(b) {
			t.Fatal("body not kept within the budget")
		}
	}
	c, err := gwfleet.NewSnappyCeiling(keep.Bodies())
	if err != nil {
		t.Fatal(err)
	}
	if c.Samples() != len(all) || c.Requests() != len(bodies) {
		t.Fatalf("snappy ceiling holds %d samples in %d requests, want %d in %d", c.Samples(), c.Requests(), len(all), len(bodies))
	}
	if n := c.EncodeAll(); n <= 0 {
		t.Fatalf("snappy ceiling compressed to %d bytes", n)
	}
	if a := testing.AllocsPerRun(20, func() { _ = c.EncodeAll() }); a != 0 {
		t.Fatalf("snappy ceiling allocates %v times per run, want 0", a)
	}
}
