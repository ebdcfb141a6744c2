package testbed

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/golang/snappy"
	"github.com/prometheus/prometheus/prompb"
	"github.com/stretchr/testify/require"
)

// receivers lists the starters every receiver test runs against.
func receivers() []struct {
	name  string
	start func(testing.TB, ...Option) *Receiver
	new   func(testing.TB, ...Option) *Receiver
} {
	return []struct {
		name  string
		start func(testing.TB, ...Option) *Receiver
		new   func(testing.TB, ...Option) *Receiver
	}{
		{"prometheus", StartPrometheus, NewPrometheus},
		{"victoria-metrics", StartVictoriaMetrics, NewVictoriaMetrics},
	}
}

// fakeTB records Skip and Fatalf instead of ending the test.
type fakeTB struct {
	testing.TB
	skipped string
	fatal   string
}

func (f *fakeTB) Helper()       {}
func (f *fakeTB) Skip(a ...any) { f.skipped = fmt.Sprint(a...) }
func (f *fakeTB) Fatalf(format string, a ...any) {
	f.fatal = fmt.Sprintf(format, a...)
}

func TestRequireBinary(t *testing.T) {
	const missing = "bmcstream-testbed-no-such-binary"
	tests := []struct {
		name      string
		binary    string
		ci        string
		wantPath  bool
		wantSkip  bool
		wantFatal bool
	}{
		{name: "found on PATH", binary: "sh", wantPath: true},
		{name: "missing outside CI skips", binary: missing, wantSkip: true},
		{name: "missing in CI fails", binary: missing, ci: "true", wantFatal: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Setenv("CI", tc.ci)
			f := &fakeTB{TB: t}
			path := RequireBinary(f, tc.binary)
			require.Equal(t, tc.wantPath, path != "", "path %q", path)
			require.Equal(t, tc.wantSkip, f.skipped != "", "skip message %q", f.skipped)
			require.Equal(t, tc.wantFatal, f.fatal != "", "fatal message %q", f.fatal)
			if tc.wantSkip || tc.wantFatal {
				require.Contains(t, f.skipped+f.fatal, "apt-get install "+missing)
			}
		})
	}
	t.Run("debian package names", func(t *testing.T) {
		require.Equal(t, "prometheus", debianPackage("promtool"))
		require.Equal(t, "victoria-metrics", debianPackage("victoria-metrics"))
	})
}

func TestFreePort(t *testing.T) {
	port := FreePort(t)
	require.Positive(t, port)
	l, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(port)))
	require.NoError(t, err, "the port FreePort returned should be free")
	require.NoError(t, l.Close())
}

func TestParseMillis(t *testing.T) {
	tests := []struct {
		in   string
		want int64
	}{
		{"1795304423", 1795304423000},
		{"1795304423.5", 1795304423500},
		{"1795304423.05", 1795304423050},
		{"1795304423.123", 1795304423123},
		{"1795304423.1239", 1795304423124},
		{"1.795304423123e9", 1795304423123},
		{"-0.5", -500},
		{"0", 0},
	}
	for _, tc := range tests {
		got, err := parseMillis(tc.in)
		require.NoError(t, err, tc.in)
		require.Equal(t, tc.want, got, tc.in)
	}
	_, err := parseMillis("soon")
	require.Error(t, err)

	at := time.UnixMilli(1795304423007)
	require.Equal(t, "1795304423.007", formatTime(at))
	back, err := parseMillis(formatTime(at))
	require.NoError(t, err)
	require.Equal(t, at.UnixMilli(), back)
}

// pollTimes returns n poll times 15 s apart ending about a minute ago, with
// odd milliseconds so a receiver rounding to seconds would be caught.
func pollTimes(n int) []int64 {
	last := time.Now().Add(-time.Minute).Truncate(time.Second).UnixMilli() + 123
	ts := make([]int64, n)
	for i := range ts {
		ts[i] = last - int64(n-1-i)*15_000
	}
	return ts
}

// testWrite builds a write request of three BMC series, and the series a
// receiver should answer for it.
func testWrite(ts []int64) (*prompb.WriteRequest, []Series) {
	type def struct {
		labels []prompb.Label
		values []float64
	}
	defs := []def{
		{
			labels: []prompb.Label{
				{Name: "__name__", Value: "bmc_temperature_celsius"},
				{Name: "bmc", Value: "10.0.0.5"},
				{Name: "context", Value: "intake"},
				{Name: "rack", Value: "i5"},
				{Name: "sensor", Value: "Inlet Temp °C \"front\""},
			},
			values: []float64{21.5, 21.75, 0.1, -3.25},
		},
		{
			labels: []prompb.Label{
				{Name: "__name__", Value: "bmc_power_watts"},
				{Name: "bmc", Value: "10.0.0.5"},
				{Name: "rack", Value: "i5"},
			},
			values: []float64{412, 415.5, 1e-3, 1.5e9},
		},
		{
			labels: []prompb.Label{
				{Name: "__name__", Value: "bmc_up"},
				{Name: "bmc", Value: "10.0.0.5"},
				{Name: "rack", Value: "i5"},
			},
			values: []float64{1, 1, 0, 1},
		},
	}
	req := &prompb.WriteRequest{}
	var want []Series
	for _, d := range defs {
		pts := make([]prompb.Sample, len(ts))
		wantPts := make([]Point, len(ts))
		labels := map[string]string{}
		for i, t := range ts {
			pts[i] = prompb.Sample{Timestamp: t, Value: d.values[i%len(d.values)]}
			wantPts[i] = Point{T: t, V: d.values[i%len(d.values)]}
		}
		for _, l := range d.labels {
			labels[l.Name] = l.Value
		}
		req.Timeseries = append(req.Timeseries, prompb.TimeSeries{Labels: d.labels, Samples: pts})
		want = append(want, Series{Labels: labels, Samples: wantPts})
	}
	slices.SortFunc(want, func(a, b Series) int { return strings.Compare(labelKey(a.Labels), labelKey(b.Labels)) })
	return req, want
}

// firstSamples returns a copy of req with the first n samples of each
// series, or of want's series when given []Series.
func firstSamples[T *prompb.WriteRequest | []Series](x T, n int) T {
	return sliceSamples(x, func(l int) (int, int) { return 0, n })
}

// lastSamples returns a copy of req with the last n samples of each series.
func lastSamples(req *prompb.WriteRequest, n int) *prompb.WriteRequest {
	return sliceSamples(req, func(l int) (int, int) { return l - n, l })
}

func sliceSamples[T *prompb.WriteRequest | []Series](x T, bounds func(int) (int, int)) T {
	switch v := any(x).(type) {
	case *prompb.WriteRequest:
		out := &prompb.WriteRequest{}
		for _, ts := range v.Timeseries {
			i, j := bounds(len(ts.Samples))
			out.Timeseries = append(out.Timeseries, prompb.TimeSeries{Labels: ts.Labels, Samples: ts.Samples[i:j]})
		}
		return any(out).(T)
	case []Series:
		out := make([]Series, 0, len(v))
		for _, s := range v {
			i, j := bounds(len(s.Samples))
			out = append(out, Series{Labels: s.Labels, Samples: s.Samples[i:j]})
		}
		return any(out).(T)
	}
	return x
}

// postRemoteWrite sends req by hand as the remote-write 1.0 spec says, and
// requires a 2xx answer.
func postRemoteWrite(t *testing.T, url string, req *prompb.WriteRequest) {
	t.Helper()
	raw, err := req.Marshal()
	require.NoError(t, err)
	hreq, err := http.NewRequestWithContext(t.Context(), http.MethodPost, url, bytes.NewReader(snappy.Encode(nil, raw)))
	require.NoError(t, err)
	hreq.Header.Set("Content-Encoding", "snappy")
	hreq.Header.Set("Content-Type", "application/x-protobuf")
	hreq.Header.Set("X-Prometheus-Remote-Write-Version", "0.1.0")
	resp, err := http.DefaultClient.Do(hreq)
	require.NoError(t, err)
	body, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	require.NoError(t, resp.Body.Close())
	require.Equal(t, http.StatusNoContent, resp.StatusCode, "answer: %s", body)
}

func TestRemoteWriteRoundTrip(t *testing.T) {
	for _, rc := range receivers() {
		t.Run(rc.name, func(t *testing.T) {
			t.Parallel()
			ctx := t.Context()
			r := rc.start(t)
			require.Equal(t, rc.name, r.Name())
			require.Equal(t, r.URL()+"/api/v1/write", r.WriteURL())
			require.True(t, strings.HasPrefix(r.URL(), "http://127.0.0.1:"), r.URL())

			ts := pollTimes(4)
			req, want := testWrite(ts)
			postRemoteWrite(t, r.WriteURL(), req)
			require.NoError(t, r.Flush(ctx))

			at := time.Now()
			got, err := r.RawSamples(ctx, `{__name__=~"bmc_.+"}`, 10*time.Minute, at)
			require.NoError(t, err)
			require.Equal(t, want, got, "raw samples: exact labels, values and timestamps")

			// A window that starts between two samples counts only the later.
			lastTwo, err := r.RawSamples(ctx, "bmc_up", 20*time.Second, time.UnixMilli(ts[3]))
			require.NoError(t, err)
			require.Len(t, lastTwo, 1)
			require.Equal(t, []Point{{T: ts[2], V: 0}, {T: ts[3], V: 1}}, lastTwo[0].Samples)

			// An instant vector answers at the evaluation time, not the sample's.
			evalAt := time.UnixMilli(ts[3] + 500)
			inst, err := r.Query(ctx, `bmc_power_watts{rack="i5"}`, evalAt)
			require.NoError(t, err)
			require.Equal(t, []Series{{Labels: want[0].Labels, Samples: []Point{{T: evalAt.UnixMilli(), V: 1.5e9}}}}, inst)

			scalar, err := r.Query(ctx, "scalar(bmc_up)", time.UnixMilli(ts[3]))
			require.NoError(t, err)
			require.Equal(t, []Series{{Labels: map[string]string{}, Samples: []Point{{T: ts[3], V: 1}}}}, scalar)

			sets, err := r.SeriesLabels(ctx, `{bmc="10.0.0.5"}`, time.UnixMilli(ts[0]), at)
			require.NoError(t, err)
			wantSets := make([]map[string]string, len(want))
			for i, s := range want {
				wantSets[i] = s.Labels
			}
			require.Equal(t, wantSets, sets)

			rng, err := r.QueryRange(ctx, "bmc_up", time.UnixMilli(ts[0]), time.UnixMilli(ts[3]), 15*time.Second)
			require.NoError(t, err)
			require.Len(t, rng, 1)
			require.NotEmpty(t, rng[0].Samples)

			res := r.WaitFor(ctx, t, `count({__name__=~"bmc_.+"})`, func(s []Series) bool {
				return len(s) == 1 && s[0].Samples[0].V == 3
			})
			require.Len(t, res, 1)

			_, err = r.Query(ctx, "bmc_up{", at)
			require.ErrorContains(t, err, "bmc_up{", "a bad query is an error naming the query")

			// Tests may also write through the helper.
			next := ts[3] + 15_000
			require.NoError(t, r.Write(ctx, &prompb.WriteRequest{Timeseries: []prompb.TimeSeries{{
				Labels:  req.Timeseries[2].Labels,
				Samples: []prompb.Sample{{Timestamp: next, Value: 1}},
			}}}))
			require.NoError(t, r.Flush(ctx))
			got, err = r.RawSamples(ctx, "bmc_up", 10*time.Minute, time.Now())
			require.NoError(t, err)
			require.Len(t, got, 1)
			require.Len(t, got[0].Samples, 5)
			require.Equal(t, Point{T: next, V: 1}, got[0].Samples[4])
		})
	}
}

func TestWaitForFailsAtDeadline(t *testing.T) {
	t.Parallel()
	r := StartPrometheus(t)
	ctx, cancel := context.WithTimeout(t.Context(), 300*time.Millisecond)
	defer cancel()
	f := &fakeTB{TB: t}
	res := r.WaitFor(ctx, f, "absent_metric", func(s []Series) bool { return len(s) > 0 })
	require.Nil(t, res)
	require.Contains(t, f.fatal, "absent_metric")
}

// TestStopAndStartAgain takes a receiver down and brings it back on the
// same port, as end-to-end tests of sink outages do, and checks it keeps
// its data across a graceful stop and a kill.
func TestStopAndStartAgain(t *testing.T) {
	for _, rc := range receivers() {
		t.Run(rc.name, func(t *testing.T) {
			t.Parallel()
			ctx := t.Context()
			port := FreePort(t)
			r := rc.new(t, WithPort(port))
			require.False(t, r.Running())
			require.Equal(t, port, r.Port())

			ts := pollTimes(2)
			both, wantBoth := testWrite(ts)
			req, want := firstSamples(both, 1), firstSamples(wantBoth, 1)
			err := r.Write(ctx, req)
			require.ErrorIs(t, err, syscall.ECONNREFUSED, "nothing listens before Start")

			require.NoError(t, r.Start(ctx))
			require.True(t, r.Running())
			require.Error(t, r.Start(ctx), "a running receiver does not start twice")
			require.NoError(t, r.Write(ctx, req))
			require.NoError(t, r.Flush(ctx))

			require.NoError(t, r.Stop())
			require.False(t, r.Running())
			require.NoError(t, r.Stop(), "stopping twice is harmless")
			require.ErrorIs(t, r.Write(ctx, req), syscall.ECONNREFUSED, "the sink is down")

			require.NoError(t, r.Start(ctx))
			require.Equal(t, port, r.Port(), "same port after a restart")
			got, err := r.RawSamples(ctx, `{__name__=~"bmc_.+"}`, 10*time.Minute, time.Now())
			require.NoError(t, err)
			require.Equal(t, want, got, "data kept across Stop and Start")

			require.NoError(t, r.Write(ctx, lastSamples(both, 1)))
			require.NoError(t, r.Flush(ctx))
			require.NoError(t, r.Kill())
			require.False(t, r.Running())
			require.NoError(t, r.Restart(ctx))
			require.Equal(t, port, r.Port())

			got, err = r.RawSamples(ctx, `{__name__=~"bmc_.+"}`, 10*time.Minute, time.Now())
			require.NoError(t, err)
			switch rc.name {
			case "prometheus":
				// The WAL holds every accepted sample.
				require.Equal(t, wantBoth, got, "accepted data kept across a kill")
			case "victoria-metrics":
				// Flush makes samples searchable, not durable: in-memory
				// parts reach disk every ~5 s, so a kill may lose the
				// newest. What a graceful Stop wrote is kept.
				require.Len(t, got, len(want))
				for i := range got {
					require.Equal(t, want[i].Labels, got[i].Labels)
					require.Contains(t, [][]Point{want[i].Samples, wantBoth[i].Samples}, got[i].Samples)
				}
			}
			require.Contains(t, r.Output(), "attempt 1", "output of every run is kept")
		})
	}
}

// impostor holds a port the way another program might: either a bare TCP
// listener or an HTTP server that answers 200 to everything, including the
// receivers' readiness probes.
func impostor(t *testing.T, answersHTTP bool) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	if !answersHTTP {
		t.Cleanup(func() { require.NoError(t, l.Close()) })
		return l.Addr().(*net.TCPAddr).Port
	}
	srv := &http.Server{
		Handler:           http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { _, _ = io.WriteString(w, "OK") }),
		ReadHeaderTimeout: time.Second,
	}
	done := make(chan error, 1)
	go func() { done <- srv.Serve(l) }()
	t.Cleanup(func() {
		require.NoError(t, srv.Close())
		require.ErrorIs(t, <-done, http.ErrServerClosed)
	})
	return l.Addr().(*net.TCPAddr).Port
}

func TestStartWhenPortTaken(t *testing.T) {
	kinds := []struct {
		name string
		kind kind
	}{
		{"prometheus", prometheusKind()},
		{"victoria-metrics", victoriaMetricsKind()},
	}
	for _, k := range kinds {
		for _, answersHTTP := range []bool{false, true} {
			t.Run(fmt.Sprintf("%s/impostor answers HTTP %v", k.name, answersHTTP), func(t *testing.T) {
				t.Parallel()
				taken := impostor(t, answersHTTP)

				// Chosen by the test bed: move to a free port.
				r := newReceiver(t, k.kind, []Option{WithPort(taken)})
				r.pinned = false
				require.NoError(t, r.Start(t.Context()))
				require.NotEqual(t, taken, r.Port())
				require.NoError(t, r.Write(t.Context(), &prompb.WriteRequest{}))

				// Chosen by the test: report it, never move.
				fixed := newReceiver(t, k.kind, []Option{WithPort(taken)})
				err := fixed.Start(t.Context())
				var inUse *portInUseError
				require.True(t, errors.As(err, &inUse), "error %v", err)
				require.ErrorContains(t, err, "address already in use")
				require.Equal(t, taken, fixed.Port())
				require.False(t, fixed.Running())
			})
		}
	}
}

// TestOutOfOrderAnswers pins down how each receiver answers a sample older
// than the newest of its series, the behaviour the gateway's per-series
// ordering and retry rules rely on.
func TestOutOfOrderAnswers(t *testing.T) {
	tests := []struct {
		name  string
		start func(testing.TB, ...Option) *Receiver
		opts  []Option
		// rejects: 400 and the whole request rolled back, "other" too.
		rejects bool
	}{
		{name: "prometheus", start: StartPrometheus, rejects: true},
		{
			name:  "prometheus with out_of_order_time_window",
			start: StartPrometheus,
			opts:  []Option{WithPrometheusConfig("storage:\n  tsdb:\n    out_of_order_time_window: 10m\n")},
		},
		{name: "victoria-metrics", start: StartVictoriaMetrics},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			ctx := t.Context()
			r := tc.start(t, tc.opts...)
			ts := pollTimes(3)
			series := func(name string, t int64, v float64) prompb.TimeSeries {
				return prompb.TimeSeries{
					Labels:  []prompb.Label{{Name: "__name__", Value: name}},
					Samples: []prompb.Sample{{Timestamp: t, Value: v}},
				}
			}
			require.NoError(t, r.Write(ctx, &prompb.WriteRequest{Timeseries: []prompb.TimeSeries{series("m", ts[2], 1)}}))
			// One stale sample for m beside a good sample of another series.
			err := r.Write(ctx, &prompb.WriteRequest{Timeseries: []prompb.TimeSeries{
				series("other", ts[2], 5),
				series("m", ts[1], 2),
			}})
			require.NoError(t, r.Flush(ctx))
			other, qerr := r.RawSamples(ctx, "other", 10*time.Minute, time.Now())
			require.NoError(t, qerr)
			m, qerr := r.RawSamples(ctx, "m", 10*time.Minute, time.Now())
			require.NoError(t, qerr)
			require.Len(t, m, 1)

			if tc.rejects {
				var we *WriteError
				require.True(t, errors.As(err, &we), "error %v", err)
				require.Equal(t, http.StatusBadRequest, we.StatusCode)
				require.Contains(t, we.Message, "out of order sample")
				require.Empty(t, other)
				require.Equal(t, []Point{{T: ts[2], V: 1}}, m[0].Samples)
				return
			}
			require.NoError(t, err)
			require.Len(t, other, 1)
			require.Equal(t, []Point{{T: ts[1], V: 2}, {T: ts[2], V: 1}}, m[0].Samples, "stored in time order")
		})
	}
}
