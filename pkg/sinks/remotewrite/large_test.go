package remotewrite

import (
	"context"
	"net/http"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/stretchr/testify/require"

	"github.com/bmcstream/bmcstream/internal/testbed"
)

// TestQueueCallLargerThanCapacity appends one call of 45 867 samples (a
// snapshot of a BMC at the gateway's reading limit, with thresholds) to a
// shard whose queue holds 10 000, with the default queue settings and a
// receiver slow enough that the queue fills. The call is handed over in
// parts that wait for room one after the other: every sample arrives,
// once and in the order appended, in full requests; done runs once, and
// only after the last request was accepted; and the shard never holds more
// than its capacity plus the one batch being sent, however large the call.
func TestQueueCallLargerThanCapacity(t *testing.T) {
	const n = 45867
	var q atomic.Pointer[Queue]
	var maxHeld, requests atomic.Int64
	var appended atomic.Bool
	rcv := newReceiver(t, func(int, http.ResponseWriter, *http.Request) bool {
		// The shard waits on this request: let the producer fill the
		// queue behind it (or hand over its last part), then see what
		// the queue holds. Bounded: a part may wait for more room than
		// is left, so the queue need not reach its capacity exactly; one
		// that never fills shows in the assertions on maxHeld below.
		ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
		defer cancel()
		_ = testbed.Until(ctx, func() bool {
			return appended.Load() || q.Load().queued.Load() >= int64(q.Load().cfg.Capacity)
		})
		held := q.Load().queued.Load()
		for {
			m := maxHeld.Load()
			if held <= m || maxHeld.CompareAndSwap(m, held) {
				break
			}
		}
		requests.Add(1)
		return false
	})
	cfg := testConfig(t, rcv.srv.URL)
	cfg.QueueConfig = DefaultQueueConfig
	cfg.QueueConfig.MinBackoff = modelDuration(5 * time.Millisecond)
	cfg.QueueConfig.MaxBackoff = modelDuration(20 * time.Millisecond)
	qq, _ := newTestQueue(t, cfg, newTestClient(t, cfg))
	q.Store(qq)

	in := makeSamples(0, n, 1_700_000_000_000)
	var doneCalls atomic.Int32
	var receivedAtDone atomic.Int64
	var mu sync.Mutex
	done := func() {
		mu.Lock()
		defer mu.Unlock()
		if doneCalls.Add(1) == 1 {
			receivedAtDone.Store(int64(len(rcv.samples())))
		}
	}
	require.NoError(t, qq.AppendKey(t.Context(), 7, in, done))
	appended.Store(true)
	require.Eventually(t, func() bool { return doneCalls.Load() == 1 }, 30*time.Second, 5*time.Millisecond)
	require.NoError(t, qq.Stop(t.Context()))

	require.Equal(t, int32(1), doneCalls.Load(), "done runs once")
	require.Equal(t, int64(n), receivedAtDone.Load(), "done runs after the last part was accepted")
	got := rcv.samples()
	require.Len(t, got, n, "every sample, once")
	for i := range in {
		if in[i].Series.Hash != got[i].Series.Hash || in[i].T != got[i].T || in[i].V != got[i].V {
			t.Fatalf("sample %d: got %v, want %v", i, got[i], in[i])
		}
	}
	maxSend := cfg.QueueConfig.MaxSamplesPerSend
	for _, rq := range rcv.requests() {
		k := 0
		for _, ts := range rq.req.Timeseries {
			k += len(ts.Samples)
		}
		require.LessOrEqual(t, k, maxSend)
	}
	require.Equal(t, int64((n+maxSend-1)/maxSend), requests.Load(), "full requests, the last one excepted")

	t.Logf("%d requests; at most %d samples held (capacity %d)", requests.Load(), maxHeld.Load(), cfg.QueueConfig.Capacity)
	require.LessOrEqual(t, maxHeld.Load(), int64(cfg.QueueConfig.Capacity+maxSend), "held: the queue plus the batch being sent")
	require.Greater(t, maxHeld.Load(), int64(cfg.QueueConfig.Capacity/2), "the queue did fill behind the receiver")
	require.Positive(t, testutil.ToFloat64(qq.metrics.appendBlocked), "the call waited for room")
	require.Equal(t, float64(n), testutil.ToFloat64(qq.metrics.samplesSent))
	require.Zero(t, testutil.ToFloat64(qq.metrics.queueSamples))
}
