package remotewrite

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"slices"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/stretchr/testify/require"

	"github.com/bmcstream/bmcstream/internal/testbed"
	"github.com/bmcstream/bmcstream/pkg/series"
)

// refusing answers 400 to every request holding a sample of a bad series,
// as Prometheus refuses a whole request for one sample out of order, and
// accepts the others.
func refusing(bad func(hash uint64) bool) func(int, http.ResponseWriter, *http.Request) bool {
	return func(_ int, w http.ResponseWriter, r *http.Request) bool {
		body, err := io.ReadAll(r.Body)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return true
		}
		wr, err := decodeWriteRequest(body)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return true
		}
		for _, ts := range wr.Timeseries {
			if bad(series.Hash(ts.Labels)) {
				http.Error(w, "out of order sample", http.StatusBadRequest)
				return true
			}
		}
		// Accepted: the receiver records it from the body read here.
		r.Body = io.NopCloser(bytes.NewReader(body))
		return false
	}
}

// TestQueueSplitIsolatesARefusedSeries checks that a batch refused for one
// series is split until only a small part holding it is lost: every other
// sample arrives, in order, and the counters add up.
func TestQueueSplitIsolatesARefusedSeries(t *testing.T) {
	const n, badIndex = 2000, 1234
	badHash := series.Hash(testLabels(badIndex))
	rcv := newReceiver(t, refusing(func(h uint64) bool { return h == badHash }))
	cfg := testConfig(t, rcv.srv.URL)
	cfg.QueueConfig.Shards = 1
	cfg.QueueConfig.MaxSamplesPerSend = n
	q, _ := newTestQueue(t, cfg, newTestClient(t, cfg))
	dc := newDoneCounter()
	in := makeSamples(0, n, 1000)
	require.NoError(t, q.Append(t.Context(), in, dc.done(0)))
	dc.wait(t, 1, 10*time.Second)
	require.NoError(t, q.Stop(t.Context()))

	m := q.metrics
	dropped := testutil.ToFloat64(m.samplesDropped.WithLabelValues("http_400"))
	sent := testutil.ToFloat64(m.samplesSent)
	require.Equal(t, float64(n), dropped+sent)
	// Halved maxSplitDepth times: the part lost is 2000/256, rounded up.
	require.LessOrEqual(t, dropped, float64((n+(1<<maxSplitDepth)-1)>>maxSplitDepth))
	require.Positive(t, dropped)
	require.Equal(t, float64(maxSplitDepth), testutil.ToFloat64(m.splits), "only the refused half is split again")
	require.Equal(t, 1+2*maxSplitDepth, len(rcv.arrivals()))
	require.Equal(t, float64(1+maxSplitDepth), testutil.ToFloat64(m.requests.WithLabelValues(code4xx)))

	got := rcv.samples()
	require.Len(t, got, int(sent))
	want := slices.DeleteFunc(slices.Clone(in), func(s series.Sample) bool {
		return !slices.ContainsFunc(got, func(g series.Sample) bool { return g.Series.Hash == s.Series.Hash })
	})
	require.Equal(t, plain(want), plain(got), "what arrived, arrived in order")
	require.False(t, slices.ContainsFunc(got, func(g series.Sample) bool { return g.Series.Hash == badHash }))
}

// TestQueueSplitCooldown checks that a receiver refusing everything costs
// one full split, after which refused batches are dropped whole for
// splitCooldown.
func TestQueueSplitCooldown(t *testing.T) {
	const n = 10
	rcv := newReceiver(t, refusing(func(uint64) bool { return true }))
	cfg := testConfig(t, rcv.srv.URL)
	cfg.QueueConfig.Shards = 1
	q, _ := newTestQueue(t, cfg, newTestClient(t, cfg))
	dc := newDoneCounter()
	require.NoError(t, q.Append(t.Context(), makeSamples(0, n, 1000), dc.done(0)))
	dc.wait(t, 1, 10*time.Second)
	// Split down to single samples: 2n-1 requests, all refused.
	require.Len(t, rcv.arrivals(), 2*n-1)
	require.Equal(t, float64(n-1), testutil.ToFloat64(q.metrics.splits))

	require.NoError(t, q.Append(t.Context(), makeSamples(0, n, 2000), dc.done(1)))
	dc.wait(t, 1, 10*time.Second)
	require.NoError(t, q.Stop(t.Context()))
	require.Equal(t, 1, dc.count(1))
	require.Len(t, rcv.arrivals(), 2*n, "one request for the next batch, not split")
	require.Equal(t, float64(2*n), testutil.ToFloat64(q.metrics.samplesDropped.WithLabelValues("http_400")))
	require.Zero(t, testutil.ToFloat64(q.metrics.samplesSent))
}

// TestSplitKeepsTheGoodSamplesInPrometheus writes to a real Prometheus a
// batch in which one sample is out of order. Prometheus refuses the whole
// request (400); the queue splits it, and every other sample is stored.
func TestSplitKeepsTheGoodSamplesInPrometheus(t *testing.T) {
	prom := testbed.StartPrometheus(t)
	cfg := testConfig(t, prom.WriteURL())
	cfg.QueueConfig.Shards = 1
	q, _ := newTestQueue(t, cfg, newTestClient(t, cfg))
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()

	const n, bad = 100, 37
	now := time.Now().Truncate(time.Second)
	dc := newDoneCounter()
	// Series 37 first gets a sample at now; the batch then brings one 10 s
	// older, out of order.
	require.NoError(t, q.Append(ctx, makeSamples(bad, 1, now.UnixMilli()), dc.done(0)))
	dc.wait(t, 1, 10*time.Second)
	require.Equal(t, 1.0, testutil.ToFloat64(q.metrics.samplesSent))
	require.NoError(t, q.Append(ctx, makeSamples(0, n, now.Add(-10*time.Second).UnixMilli()), dc.done(1)))
	dc.wait(t, 1, 10*time.Second)
	require.NoError(t, q.Stop(ctx))

	m := q.metrics
	require.Equal(t, 1.0, testutil.ToFloat64(m.samplesDropped.WithLabelValues("http_400")), "only the out-of-order sample")
	require.Equal(t, float64(n), testutil.ToFloat64(m.samplesSent))
	require.Positive(t, testutil.ToFloat64(m.splits))

	got, err := prom.Query(ctx, `count_over_time(bmc_temperature_celsius[1m])`, now)
	require.NoError(t, err)
	require.Len(t, got, n, "every series stored")
	for _, s := range got {
		require.Equal(t, 1.0, s.Samples[0].V, "one sample each: %v", s.Labels)
	}
}
