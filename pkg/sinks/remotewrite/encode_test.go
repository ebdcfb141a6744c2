package remotewrite

import (
	"bytes"
	"context"
	"fmt"
	"math"
	"math/rand/v2"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/golang/snappy"
	"github.com/prometheus/prometheus/model/value"
	"github.com/prometheus/prometheus/prompb"
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
		{name: "small again", n: 5},
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
				require.Equal(t, batch[i].Series.Labels.Prom(), ts.Labels)
				require.Len(t, ts.Samples, 1)
				require.Equal(t, batch[i].T, ts.Samples[0].Timestamp)
				require.Equal(t, batch[i].V, ts.Samples[0].Value)
			}
		})
	}
}

// TestEncoderHoldsNoSeries checks that a shard's encoder keeps nothing of
// the batches it encoded but bytes and sizes: between batches it must not
// keep series (and their label sets) alive, as the former encoder's reset
// ensured by clearing its TimeSeries.
func TestEncoderHoldsNoSeries(t *testing.T) {
	typ := reflect.TypeFor[encoder]()
	for i := range typ.NumField() {
		f := typ.Field(i)
		switch f.Type {
		case reflect.TypeFor[[]byte](), reflect.TypeFor[[]int]():
		default:
			t.Errorf("encoder field %s is a %v: it may keep a batch's series alive", f.Name, f.Type)
		}
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
			allocs := testing.AllocsPerRun(50, func() {
				if _, err := enc.encode(batch); err != nil {
					t.Fatal(err)
				}
			})
			require.Zero(t, allocs, "steady-state encode must not allocate")
		})
	}
}

// gogoRequest returns the uncompressed request gogo marshals for batch:
// one TimeSeries per sample, its labels as a []prompb.Label. It is the
// reference the encoder must match byte for byte.
func gogoRequest(t testing.TB, batch []series.Sample) []byte {
	t.Helper()
	wr := prompb.WriteRequest{Timeseries: make([]prompb.TimeSeries, len(batch))}
	for i, s := range batch {
		wr.Timeseries[i] = prompb.TimeSeries{
			Labels:  s.Series.Labels.Prom(),
			Samples: []prompb.Sample{{Value: s.V, Timestamp: s.T}},
		}
	}
	b, err := wr.Marshal()
	require.NoError(t, err)
	return b
}

// checkEncode encodes batch with enc and checks the body against gogo's
// marshal of the same samples, and that it decodes back to want: each
// sample's labels (normalised independently of pkg/series, see genBatch),
// time and value (-0 decodes as 0: proto3 leaves a zero value out).
func checkEncode(t testing.TB, enc *encoder, batch []series.Sample, want [][]prompb.Label) {
	t.Helper()
	body, err := enc.encode(batch)
	require.NoError(t, err)
	raw, err := snappy.Decode(nil, body)
	require.NoError(t, err, "snappy block format")
	ref := gogoRequest(t, batch)
	if !bytes.Equal(ref, raw) {
		i := 0
		for i < len(ref) && i < len(raw) && ref[i] == raw[i] {
			i++
		}
		t.Fatalf("request differs from gogo's marshal at byte %d of %d (gogo %d bytes)\ngogo: %x\nours: %x",
			i, len(raw), len(ref), ref[max(0, i-16):min(len(ref), i+16)], raw[max(0, i-16):min(len(raw), i+16)])
	}
	var wr prompb.WriteRequest
	require.NoError(t, wr.Unmarshal(raw))
	require.Len(t, wr.Timeseries, len(batch))
	for i, ts := range wr.Timeseries {
		if len(want[i]) == 0 {
			require.Empty(t, ts.Labels, "sample %d", i)
		} else {
			require.Equal(t, want[i], ts.Labels, "sample %d", i)
		}
		require.Len(t, ts.Samples, 1)
		require.Equal(t, batch[i].T, ts.Samples[0].Timestamp, "sample %d", i)
		wantBits := math.Float64bits(batch[i].V)
		if batch[i].V == 0 {
			wantBits = 0
		}
		require.Equal(t, wantBits, math.Float64bits(ts.Samples[0].Value), "value bits of sample %d", i)
	}
}

// choices reads a fuzz input as a stream of choices; an exhausted input
// reads as zeros, so every input is a valid batch.
type choices struct{ b []byte }

func (c *choices) byte() byte {
	if len(c.b) == 0 {
		return 0
	}
	x := c.b[0]
	c.b = c.b[1:]
	return x
}

func (c *choices) n(k int) int { return int(c.byte()) % k }

func (c *choices) u64() uint64 {
	var x uint64
	for range 8 {
		x = x<<8 | uint64(c.byte())
	}
	return x
}

var (
	fuzzNames  = []string{"__name__", "bmc", "context", "rack", "sensor", "site", "a", "b", "zz", "unit"}
	fuzzValues = []float64{
		0, math.Copysign(0, -1), math.NaN(), math.Float64frombits(value.StaleNaN), math.Inf(1), math.Inf(-1),
		1, -1, 0.5, 42.25, math.MaxFloat64, math.SmallestNonzeroFloat64,
	}
	fuzzTimes = []int64{
		0, 1, -1, 127, 128, -128, 1_700_000_000_000, -1_700_000_000_000, math.MaxInt64, math.MinInt64,
	}
)

// str returns a label name or value: empty, short, or long enough that its
// length, the label's and the TimeSeries' take multi-byte varints.
func (c *choices) str(pool []string) string {
	switch k := c.n(8); {
	case k < 3 && len(pool) > 0:
		return pool[c.n(len(pool))]
	case k == 3:
		return ""
	case k == 4:
		return strings.Repeat(string(rune('a'+c.n(26))), 100+c.n(200)) // 100..299 bytes
	case k == 5:
		return strings.Repeat("\xe2\x82\xac", 1+c.n(60)) // Multi-byte UTF-8.
	default:
		b := make([]byte, c.n(12))
		for i := range b {
			b[i] = 'a' + byte(c.n(26))
		}
		return string(b)
	}
}

func (c *choices) labels(max int) []prompb.Label {
	n := c.n(max + 1)
	if c.n(32) == 0 {
		n = 60 + c.n(20) // Beyond a merge mask's 64 labels with a base.
	}
	ls := make([]prompb.Label, n)
	for i := range ls {
		name := c.str(fuzzNames)
		if name == "" {
			// A label needs a name (Prometheus rejects an empty one, and
			// gogo would leave the empty name field out).
			name = "_"
		}
		ls[i] = prompb.Label{Name: name, Value: c.str(nil)}
	}
	return ls
}

// normalised is what a label set made of own and base must hold, computed
// here rather than by pkg/series: empty values dropped, of two labels with
// one name the first kept, an own label winning over a base label, sorted
// by name.
func normalised(own, base []prompb.Label) []prompb.Label {
	m := map[string]string{}
	for _, l := range base {
		if _, ok := m[l.Name]; !ok && l.Value != "" {
			m[l.Name] = l.Value
		}
	}
	seen := map[string]bool{}
	for _, l := range own {
		if !seen[l.Name] && l.Value != "" {
			m[l.Name] = l.Value
			seen[l.Name] = true
		}
	}
	out := make([]prompb.Label, 0, len(m))
	for n, v := range m {
		out = append(out, prompb.Label{Name: n, Value: v})
	}
	slices.SortFunc(out, func(a, b prompb.Label) int { return strings.Compare(a.Name, b.Name) })
	return out
}

// genBatch builds a batch from a fuzz input: up to three shared bases, label
// sets unsorted, with duplicates and empty values, made with a base
// (series.Make) or alone (series.FromProm), series repeated, special values
// and times. It returns the batch and each sample's expected labels.
func genBatch(data []byte) ([]series.Sample, [][]prompb.Label) {
	c := &choices{b: data}
	type baseOf struct {
		b  *series.Base
		ls []prompb.Label
	}
	bases := make([]baseOf, 1+c.n(3))
	for i := range bases {
		ls := c.labels(7)
		bases[i] = baseOf{b: series.NewBase(ls), ls: ls}
	}
	n := 1 + c.n(48)
	batch := make([]series.Sample, 0, n)
	want := make([][]prompb.Label, 0, n)
	for range n {
		var s *series.Series
		var w []prompb.Label
		switch k := c.n(8); {
		case k == 0 && len(batch) > 0: // A series already in the batch.
			j := c.n(len(batch))
			s, w = batch[j].Series, want[j]
		case k < 3: // Alone.
			own := c.labels(10)
			s, w = series.NewLabels(series.FromProm(own)), normalised(own, nil)
		default: // With a base.
			own := c.labels(6)
			b := bases[c.n(len(bases))]
			s, w = series.NewLabels(series.Make(own, b.b)), normalised(own, b.ls)
		}
		v := fuzzValues[c.n(len(fuzzValues))]
		if c.n(4) == 0 {
			v = math.Float64frombits(c.u64())
		}
		ts := fuzzTimes[c.n(len(fuzzTimes))]
		if c.n(4) == 0 {
			ts = int64(c.u64())
		}
		batch = append(batch, series.Sample{Series: s, T: ts, V: v})
		want = append(want, w)
	}
	return batch, want
}

// encodeSeeds are inputs that reach every branch of genBatch; the fuzz
// target and TestEncodeMatchesGogo run them, and random ones besides.
func encodeSeeds() [][]byte {
	seeds := [][]byte{
		nil,                   // One sample, empty labels, value 0, time 0.
		{0, 0, 0, 1, 7, 0, 1}, // Base-less, value -0.
		{2, 3, 0x20, 3, 5},    // Bases and a batch of several.
		{0, 2, 4, 1, 4, 5, 3, 8, 2, 4, 9, 1, 0, 3, 3, 3, 2, 2, 5, 0, 1},
		bytes.Repeat([]byte{4}, 64),    // Long values: multi-byte lengths.
		bytes.Repeat([]byte{3, 7}, 64), // Empty values and names.
		bytes.Repeat([]byte{0x1f, 0, 5, 200}, 40),
	}
	r := rand.New(rand.NewPCG(1, 2))
	for range 24 {
		b := make([]byte, 64+r.IntN(512))
		for i := range b {
			b[i] = byte(r.Uint32())
		}
		seeds = append(seeds, b)
	}
	return seeds
}

// TestEncodeMatchesGogo checks, on the seed inputs and on random ones, that
// the encoder writes byte for byte the request gogo marshals for the same
// samples, and that the request decodes back to them.
func TestEncodeMatchesGogo(t *testing.T) {
	var enc encoder // Shared: buffers reused across batches of every size.
	inputs := encodeSeeds()
	r := rand.New(rand.NewPCG(3, 4))
	for range 500 {
		b := make([]byte, r.IntN(2048))
		for i := range b {
			b[i] = byte(r.Uint32())
		}
		inputs = append(inputs, b)
	}
	for i, in := range inputs {
		batch, want := genBatch(in)
		t.Run(fmt.Sprint(i), func(t *testing.T) { checkEncode(t, &enc, batch, want) })
	}
}

// TestEncodeSpecialSamples checks the proto3 rules of the Sample message one
// case at a time: a field equal to zero is left out (V compared as a float,
// so -0 too; NaN and the staleness marker are written), and a negative time
// is a 10-byte varint.
func TestEncodeSpecialSamples(t *testing.T) {
	s := series.Of("__name__", "up", "bmc", "b1")
	tests := []struct {
		name string
		t    int64
		v    float64
		want []byte // The Sample message.
	}{
		{name: "zero", want: nil},
		{name: "negative zero", v: math.Copysign(0, -1), want: nil},
		{name: "time only", t: 1, want: []byte{0x10, 1}},
		{name: "negative time", t: -1, want: []byte{0x10, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01}},
		{name: "value one", v: 1, want: []byte{0x09, 0, 0, 0, 0, 0, 0, 0xf0, 0x3f}},
		{name: "stale", v: math.Float64frombits(value.StaleNaN), t: 128,
			want: []byte{0x09, 0x02, 0, 0, 0, 0, 0, 0xf0, 0x7f, 0x10, 0x80, 0x01}},
	}
	var enc encoder
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			batch := []series.Sample{{Series: s, T: tt.t, V: tt.v}}
			raw, err := enc.marshal(batch)
			require.NoError(t, err)
			require.Equal(t, gogoRequest(t, batch), raw)
			tail := append([]byte{tagSample, byte(len(tt.want))}, tt.want...)
			require.True(t, bytes.HasSuffix(raw, tail), "sample message %x in %x", tail, raw)
			checkEncode(t, &enc, batch, [][]prompb.Label{s.Labels.Prom()})
		})
	}
}

// FuzzEncode checks that the encoder's request is byte-identical to gogo's
// marshal of the same samples and decodes back to them, for batches built
// from the input by genBatch.
func FuzzEncode(f *testing.F) {
	for _, s := range encodeSeeds() {
		f.Add(s)
	}
	var enc encoder // Reused across inputs, as a shard reuses its own.
	f.Fuzz(func(t *testing.T, data []byte) {
		batch, want := genBatch(data)
		checkEncode(t, &enc, batch, want)
		// And a part of it, into the same, now larger, buffers.
		checkEncode(t, &enc, batch[:len(batch)/2], want[:len(batch)/2])
	})
}

// gogoEncoder is the encoder this package used before label sets were
// pre-encoded, kept as the benchmarks' reference: each sample's labels are
// a []prompb.Label (made before timing, as the normaliser kept them), the
// request is a prompb.WriteRequest marshalled by gogo into a reused buffer,
// then compressed.
type gogoEncoder struct {
	req     prompb.WriteRequest
	series  []prompb.TimeSeries
	samples []prompb.Sample
	pb      []byte
	snappy  []byte
}

func (e *gogoEncoder) encode(batch []series.Sample, labels [][]prompb.Label) ([]byte, error) {
	raw, err := e.marshal(batch, labels)
	if err != nil {
		return nil, err
	}
	if max := snappy.MaxEncodedLen(len(raw)); cap(e.snappy) < max {
		e.snappy = make([]byte, max+max/4)
	}
	return snappy.Encode(e.snappy[:cap(e.snappy)], raw), nil
}

func (e *gogoEncoder) marshal(batch []series.Sample, labels [][]prompb.Label) ([]byte, error) {
	n := len(batch)
	if cap(e.series) < n {
		e.series = make([]prompb.TimeSeries, n)
		e.samples = make([]prompb.Sample, n)
	}
	ts, ss := e.series[:n], e.samples[:n]
	for i := range batch {
		ss[i] = prompb.Sample{Value: batch[i].V, Timestamp: batch[i].T}
		ts[i].Labels = labels[i]
		ts[i].Samples = ss[i : i+1 : i+1]
	}
	e.req.Timeseries = ts
	size := e.req.Size()
	if cap(e.pb) < size {
		e.pb = make([]byte, size+size/4)
	}
	m, err := e.req.MarshalToSizedBuffer(e.pb[:size])
	if err != nil {
		return nil, err
	}
	return e.pb[size-m : size], nil
}

// fleetBatch returns the samples of one poll of bmcs BMCs shaped as the
// gateway benchmarks' fleet (benchmarks/internal/gwfleet): 40-120 readings
// a BMC, each series 9 labels, 6 of them (bmc and the inventory's) a base
// shared by the BMC's series, the BMC's samples together as AppendKey
// batches them.
func fleetBatch(bmcs int) []series.Sample {
	metrics := []string{
		"bmc_temperature_celsius", "bmc_fan_speed_rpm", "bmc_power_watts", "bmc_voltage_volts",
		"bmc_current_amperes", "bmc_sensor_health", "bmc_power_supply_output_watts", "bmc_drive_health",
	}
	contexts := []string{"CPU", "Memory", "SystemBoard", "PowerSupply", "Intake", "Exhaust", "Storage"}
	start := int64(1_764_000_000_000)
	var out []series.Sample
	for i := range bmcs {
		rack := i / 20
		base := series.NewBase([]prompb.Label{
			{Name: "bmc", Value: fmt.Sprintf("bmc-%05d", i)},
			{Name: "site", Value: "lab"},
			{Name: "room", Value: "r1"},
			{Name: "row", Value: fmt.Sprintf("row%d", rack/10)},
			{Name: "rack", Value: fmt.Sprintf("rack%02d", rack)},
			{Name: "position", Value: fmt.Sprint(i % 20)},
		})
		n := 40 + (i*37)%81
		for k := range n {
			own := []prompb.Label{
				{Name: "__name__", Value: metrics[k%len(metrics)]},
				{Name: "sensor", Value: fmt.Sprintf("%s Sensor %d", contexts[k%len(contexts)], k)},
				{Name: "context", Value: contexts[k%len(contexts)]},
			}
			v := math.Round((20+float64(k%60)+math.Sin(float64(i*131+k*17)))*100) / 100
			out = append(out, series.Sample{
				Series: series.NewLabels(series.Make(own, base)),
				T:      start + int64(i%1000)*30,
				V:      v,
			})
		}
	}
	return out
}

// scatter returns all with the samples of its BMCs interleaved, as if
// the queue sharded by series rather than by BMC: each request then holds
// a slice of every BMC.
func scatter(all []series.Sample) []series.Sample {
	var per [][]series.Sample
	for i, s := range all {
		if i == 0 || s.Series.Labels.Get("bmc") != all[i-1].Series.Labels.Get("bmc") {
			per = append(per, nil)
		}
		per[len(per)-1] = append(per[len(per)-1], s)
	}
	out := make([]series.Sample, 0, len(all))
	for k := 0; len(out) < len(all); k++ {
		for _, p := range per {
			if k < len(p) {
				out = append(out, p[k])
			}
		}
	}
	return out
}

// BenchmarkEncode measures encoding full batches of fleet-shaped samples:
// "preencoded" is the encoder, "gogo" the former marshal of the same
// samples (labels as []prompb.Label, converted before timing), in the same
// run so the two compare; "scattered" the same with the BMCs' samples
// interleaved (see scatter).
func BenchmarkEncode(b *testing.B) {
	bmcOrder := fleetBatch(100)
	for _, order := range []struct {
		name string
		all  []series.Sample
	}{{"", bmcOrder}, {"scattered-", scatter(bmcOrder)}} {
		benchmarkEncode(b, order.name, order.all)
	}
}

func benchmarkEncode(b *testing.B, prefix string, all []series.Sample) {
	bs := DefaultQueueConfig.MaxSamplesPerSend
	labels := make([][]prompb.Label, len(all))
	for i, s := range all {
		labels[i] = s.Series.Labels.Prom()
	}
	run := func(b *testing.B, enc func(lo, hi int) ([]byte, error)) {
		bytes := 0
		for lo := 0; lo < len(all); lo += bs { // Grow the buffers.
			if _, err := enc(lo, min(lo+bs, len(all))); err != nil {
				b.Fatal(err)
			}
		}
		b.ReportAllocs()
		cpu0, cpuOK := cpuTime()
		for b.Loop() {
			bytes = 0
			for lo := 0; lo < len(all); lo += bs {
				data, err := enc(lo, min(lo+bs, len(all)))
				if err != nil {
					b.Fatal(err)
				}
				bytes += len(data)
			}
		}
		cpu1, _ := cpuTime()
		samples := float64(b.N) * float64(len(all))
		b.ReportMetric(float64(b.Elapsed().Nanoseconds())/samples, "ns/sample")
		if cpuOK {
			// The benchmark is the process's only work (it allocates
			// nothing, so no GC runs): its CPU time is the encoding's.
			b.ReportMetric(float64((cpu1-cpu0).Nanoseconds())/samples, "cpu-ns/sample")
		}
		b.ReportMetric(float64(bytes)/float64(len(all)), "bytes/sample")
	}
	b.Run(prefix+"preencoded", func(b *testing.B) {
		var e encoder
		run(b, func(lo, hi int) ([]byte, error) { return e.encode(all[lo:hi]) })
	})
	b.Run(prefix+"gogo", func(b *testing.B) {
		var e gogoEncoder
		run(b, func(lo, hi int) ([]byte, error) { return e.encode(all[lo:hi], labels[lo:hi]) })
	})
	b.Run(prefix+"preencoded-marshal-only", func(b *testing.B) {
		var e encoder
		run(b, func(lo, hi int) ([]byte, error) { return e.marshal(all[lo:hi]) })
	})
	b.Run(prefix+"snappy-only", func(b *testing.B) {
		// The bound under any encoder: compressing the exact bodies.
		var e encoder
		var bodies [][]byte
		for lo := 0; lo < len(all); lo += bs {
			raw, err := e.marshal(all[lo:min(lo+bs, len(all))])
			if err != nil {
				b.Fatal(err)
			}
			bodies = append(bodies, slices.Clone(raw))
		}
		var dst []byte
		run(b, func(lo, hi int) ([]byte, error) {
			raw := bodies[lo/bs]
			if n := snappy.MaxEncodedLen(len(raw)); len(dst) < n {
				dst = make([]byte, n)
			}
			return snappy.Encode(dst, raw), nil
		})
	})
	b.Run(prefix+"gogo-marshal-only", func(b *testing.B) {
		var e gogoEncoder
		run(b, func(lo, hi int) ([]byte, error) { return e.marshal(all[lo:hi], labels[lo:hi]) })
	})
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
