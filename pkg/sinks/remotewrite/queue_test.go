package remotewrite

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/prometheus/common/model"
	"github.com/stretchr/testify/require"

	"github.com/bmcstream/bmcstream/internal/testbed"
	"github.com/bmcstream/bmcstream/pkg/series"
)

// TestQueueRetryClassification drives real HTTP answers through the Queue
// and checks what is retried, what is dropped and what is counted.
func TestQueueRetryClassification(t *testing.T) {
	const n = 10
	tests := []struct {
		name       string
		status     int    // First answer; later ones are 204.
		retryAfter string // Retry-After of the first answer.
		hangup     bool   // Close the connection instead of answering.
		noRetry429 bool
		wantCode   string
		wantReason string        // Non-empty: dropped with this reason.
		wantSplit  bool          // Refused for its content: split, and the halves sent.
		wantWait   time.Duration // Least time between first and second request.
	}{
		{name: "500 retried", status: 500, wantCode: code5xx},
		{name: "502 retried", status: 502, wantCode: code5xx},
		{name: "503 retried", status: 503, wantCode: code5xx},
		{name: "429 retried after Retry-After", status: 429, retryAfter: "1", wantCode: code429, wantWait: time.Second},
		{name: "429 dropped when not retried", status: 429, noRetry429: true, wantCode: code429, wantReason: "http_429"},
		{name: "400 split", status: 400, wantCode: code4xx, wantSplit: true},
		{name: "404 dropped", status: 404, wantCode: code4xx, wantReason: "http_404"},
		{name: "413 split", status: 413, wantCode: code4xx, wantSplit: true},
		{name: "401 dropped", status: 401, wantCode: code4xx, wantReason: "http_401"},
		{name: "409 counted as a conflict, neither retried nor split", status: 409, wantCode: code4xx, wantReason: "conflict"},
		{name: "connection closed retried", hangup: true, wantCode: codeNetwork},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			rcv := newReceiver(t, func(i int, w http.ResponseWriter, r *http.Request) bool {
				if i > 0 {
					return false
				}
				if tt.hangup {
					conn, _, err := w.(http.Hijacker).Hijack()
					if err == nil {
						_ = conn.Close()
					}
					return true
				}
				if tt.retryAfter != "" {
					w.Header().Set("Retry-After", tt.retryAfter)
				}
				http.Error(w, "injected", tt.status)
				return true
			})
			cfg := testConfig(t, rcv.srv.URL)
			cfg.QueueConfig.RetryOnRateLimit = !tt.noRetry429
			cfg.QueueConfig.Shards = 1
			q, _ := newTestQueue(t, cfg, newTestClient(t, cfg))

			dc := newDoneCounter()
			require.NoError(t, q.Append(t.Context(), makeSamples(0, n, 1000), dc.done(0)))
			dc.wait(t, 1, 5*time.Second)
			require.NoError(t, q.Stop(t.Context()))
			require.Equal(t, 1, dc.count(0))

			m := q.metrics
			require.Equal(t, 1.0, testutil.ToFloat64(m.requests.WithLabelValues(tt.wantCode)))
			require.Zero(t, testutil.ToFloat64(m.queueSamples))
			if tt.wantReason != "" {
				require.Equal(t, float64(n), testutil.ToFloat64(m.samplesDropped.WithLabelValues(tt.wantReason)))
				require.Zero(t, testutil.ToFloat64(m.samplesSent))
				require.Zero(t, testutil.ToFloat64(m.samplesRetried))
				require.Len(t, rcv.arrivals(), 1, "never retried")
				require.Zero(t, testutil.ToFloat64(m.splits))
				return
			}
			if tt.wantSplit {
				// Refused once; each half then accepted on its own.
				require.Equal(t, 1.0, testutil.ToFloat64(m.splits))
				require.Equal(t, 2.0, testutil.ToFloat64(m.requests.WithLabelValues(code2xx)))
				require.Equal(t, float64(n), testutil.ToFloat64(m.samplesSent))
				require.Zero(t, testutil.ToFloat64(m.samplesRetried))
				require.Zero(t, testutil.CollectAndCount(m.samplesDropped))
				require.Equal(t, plain(makeSamples(0, n, 1000)), plain(rcv.samples()), "every sample, in order")
				require.Len(t, rcv.arrivals(), 3)
				return
			}
			require.Equal(t, float64(n), testutil.ToFloat64(m.samplesSent))
			require.Equal(t, float64(n), testutil.ToFloat64(m.samplesRetried))
			require.Equal(t, 1.0, testutil.ToFloat64(m.requests.WithLabelValues(code2xx)))
			require.Zero(t, testutil.CollectAndCount(m.samplesDropped))
			require.Len(t, rcv.samples(), n)
			arr := rcv.arrivals()
			require.Len(t, arr, 2)
			require.GreaterOrEqual(t, arr[1].Sub(arr[0]), tt.wantWait)
			require.Positive(t, testutil.ToFloat64(m.sentBytes))
		})
	}
}

// TestQueueNetworkDownAbandons checks that a receiver that never comes up
// loses nothing: samples are retried until Stop gives up, and done is not
// called, so the producer redelivers.
func TestQueueNetworkDownAbandons(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	cfg := testConfig(t, "http://"+l.Addr().String()+"/api/v1/write")
	require.NoError(t, l.Close())

	q, _ := newTestQueue(t, cfg, newTestClient(t, cfg))
	dc := newDoneCounter()
	require.NoError(t, q.Append(t.Context(), makeSamples(0, 20, 1000), dc.done(0)))
	require.Eventually(t, func() bool {
		return testutil.ToFloat64(q.metrics.requests.WithLabelValues(codeNetwork)) >= 3
	}, 5*time.Second, 5*time.Millisecond)

	ctx, cancel := context.WithTimeout(t.Context(), 50*time.Millisecond)
	defer cancel()
	err = q.Stop(ctx)
	require.ErrorIs(t, err, context.DeadlineExceeded)
	require.ErrorContains(t, err, "abandoned 20 samples")
	require.Zero(t, dc.count(0))
	require.Zero(t, testutil.CollectAndCount(q.metrics.samplesDropped))
	require.ErrorIs(t, q.Append(t.Context(), makeSamples(0, 1, 2000), dc.done(1)), ErrStopped)
}

// TestQueueOrdering appends many series from several producers through
// several shards and small batches, with the receiver failing some requests,
// and checks per-series order and the done contract.
func TestQueueOrdering(t *testing.T) {
	const (
		producers      = 4
		seriesPerProd  = 100
		rounds         = 40
		failEveryNth   = 7
		samplesPerCall = seriesPerProd / 2
	)
	var (
		lastT    = map[string]int64{}
		total    int
		disorder []string
	)
	rcv := newReceiver(t, func(i int, w http.ResponseWriter, r *http.Request) bool {
		if i%failEveryNth == failEveryNth-1 {
			http.Error(w, "injected", http.StatusServiceUnavailable)
			return true
		}
		return false
	})
	check := func() {
		for _, rq := range rcv.requests() {
			for _, ts := range rq.req.Timeseries {
				key := fmt.Sprint(ts.Labels)
				for _, s := range ts.Samples {
					if last, ok := lastT[key]; ok && s.Timestamp <= last {
						disorder = append(disorder, fmt.Sprintf("%s: %d after %d", key, s.Timestamp, last))
					}
					lastT[key] = s.Timestamp
					total++
				}
			}
		}
	}

	cfg := testConfig(t, rcv.srv.URL)
	cfg.QueueConfig.Shards = 4
	cfg.QueueConfig.Capacity = 64 // Small, so producers also block.
	cfg.QueueConfig.MaxSamplesPerSend = 37
	cfg.QueueConfig.BatchSendDeadline = model.Duration(2 * time.Millisecond)
	q, _ := newTestQueue(t, cfg, newTestClient(t, cfg))

	dc := newDoneCounter()
	var wg sync.WaitGroup
	var calls atomic.Int64
	for p := range producers {
		wg.Go(func() {
			for round := range rounds {
				ts := int64(1_700_000_000_000 + round*30_000)
				for half := range 2 {
					id := (p*rounds+round)*2 + half
					first := p*seriesPerProd + half*samplesPerCall
					if err := q.Append(t.Context(), makeSamples(first, samplesPerCall, ts), dc.done(id)); err != nil {
						t.Errorf("append: %v", err)
						return
					}
					calls.Add(1)
				}
			}
		})
	}
	wg.Wait()
	dc.wait(t, int(calls.Load()), 10*time.Second)

	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
	defer cancel()
	require.NoError(t, q.Stop(ctx))

	check()
	require.Empty(t, disorder)
	require.Empty(t, rcv.decodeErrors())
	require.Equal(t, producers*seriesPerProd*rounds, total)
	require.Len(t, lastT, producers*seriesPerProd)
	for id := range int(calls.Load()) {
		require.Equal(t, 1, dc.count(id), "done of call %d", id)
	}
	require.Positive(t, testutil.ToFloat64(q.metrics.samplesRetried))
	require.Equal(t, float64(total), testutil.ToFloat64(q.metrics.samplesSent))
}

// TestQueueBackPressure checks that Append blocks once a shard's queue is
// full while the receiver is stuck, and gives up with ctx.Err().
func TestQueueBackPressure(t *testing.T) {
	release := make(chan struct{})
	arrived := make(chan struct{}, 10)
	rcv := newReceiver(t, func(i int, w http.ResponseWriter, r *http.Request) bool {
		arrived <- struct{}{}
		<-release
		return false
	})
	// Release the receiver even when an assertion fails first: the
	// httptest server's Close waits for handlers (cleanups run in reverse).
	var releaseOnce sync.Once
	unblock := func() { releaseOnce.Do(func() { close(release) }) }
	t.Cleanup(unblock)
	cfg := testConfig(t, rcv.srv.URL)
	cfg.QueueConfig.Shards = 1
	cfg.QueueConfig.Capacity = 10
	cfg.QueueConfig.MaxSamplesPerSend = 5
	q, _ := newTestQueue(t, cfg, newTestClient(t, cfg))
	dc := newDoneCounter()

	// The first 5 make a full batch, which the receiver holds.
	require.NoError(t, q.Append(t.Context(), makeSamples(0, 5, 1000), dc.done(0)))
	select {
	case <-arrived:
	case <-time.After(5 * time.Second):
		t.Fatal("first request never arrived")
	}
	// The next 10 fill the shard queue without blocking.
	require.NoError(t, q.Append(t.Context(), makeSamples(5, 10, 1000), dc.done(1)))
	require.Zero(t, testutil.ToFloat64(q.metrics.appendBlocked))

	// One more blocks until its context ends.
	ctx, cancel := context.WithTimeout(t.Context(), 100*time.Millisecond)
	defer cancel()
	start := time.Now()
	err := q.Append(ctx, makeSamples(15, 1, 1000), dc.done(2))
	require.ErrorIs(t, err, context.DeadlineExceeded)
	require.GreaterOrEqual(t, time.Since(start), 100*time.Millisecond)
	require.Equal(t, 1.0, testutil.ToFloat64(q.metrics.appendBlocked))
	// The metric times the wait from when the queue was found full, a
	// hair after start: allow for that, not for missing the wait.
	require.GreaterOrEqual(t, testutil.ToFloat64(q.metrics.appendBlockedSeconds), 0.05)
	require.Equal(t, 15.0, testutil.ToFloat64(q.metrics.queueSamples))
	require.Equal(t, 10.0, testutil.ToFloat64(q.metrics.queueCapacity))

	unblock()
	require.NoError(t, q.Stop(t.Context()))
	require.Equal(t, 1, dc.count(0))
	require.Equal(t, 1, dc.count(1))
	require.Zero(t, dc.count(2), "a failed Append never calls done")
	require.Len(t, rcv.samples(), 15)
}

// TestQueueStop covers Stop's flush, deadline and lifecycle rules.
func TestQueueStop(t *testing.T) {
	t.Run("flushes queued samples", func(t *testing.T) {
		rcv := newReceiver(t, nil)
		cfg := testConfig(t, rcv.srv.URL)
		cfg.QueueConfig.Shards = 2
		cfg.QueueConfig.BatchSendDeadline = model.Duration(time.Hour) // Only Stop sends.
		q, _ := newTestQueue(t, cfg, newTestClient(t, cfg))
		dc := newDoneCounter()
		require.NoError(t, q.Append(t.Context(), makeSamples(0, 100, 1000), dc.done(0)))
		// Time for the shards to take the samples into batches, which
		// they must not send: the batch deadline has not passed.
		testbed.Never(t, 20*time.Millisecond, func() bool { return len(rcv.requests()) > 0 },
			"a request was sent before the batch deadline")

		ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
		defer cancel()
		start := time.Now()
		require.NoError(t, q.Stop(ctx))
		require.Less(t, time.Since(start), 2*time.Second)
		require.Len(t, rcv.samples(), 100)
		require.Equal(t, 1, dc.count(0))
	})

	t.Run("gives up at the deadline", func(t *testing.T) {
		rcv := newReceiver(t, func(_ int, w http.ResponseWriter, _ *http.Request) bool {
			http.Error(w, "down", http.StatusServiceUnavailable)
			return true
		})
		cfg := testConfig(t, rcv.srv.URL)
		q, _ := newTestQueue(t, cfg, newTestClient(t, cfg))
		dc := newDoneCounter()
		require.NoError(t, q.Append(t.Context(), makeSamples(0, 30, 1000), dc.done(0)))

		ctx, cancel := context.WithTimeout(t.Context(), 100*time.Millisecond)
		defer cancel()
		err := q.Stop(ctx)
		require.ErrorIs(t, err, context.DeadlineExceeded)
		require.ErrorContains(t, err, "abandoned 30 samples")
		require.Zero(t, dc.count(0))
		require.Zero(t, testutil.CollectAndCount(q.metrics.samplesDropped), "abandoned is not dropped")
	})

	t.Run("before start and twice", func(t *testing.T) {
		q, err := NewQueue(testConfig(t, "http://127.0.0.1:1"), nopClient{}, nil, nil)
		require.NoError(t, err)
		require.NoError(t, q.Stop(t.Context()))
		require.NoError(t, q.Stop(t.Context()))
		q.Start() // No effect after Stop: goleak would see the shards.
		require.ErrorIs(t, q.Append(t.Context(), makeSamples(0, 1, 1), func() { t.Error("done called") }), ErrStopped)
		called := false
		require.NoError(t, q.Append(t.Context(), nil, func() { called = true }))
		require.True(t, called, "an empty Append is done at once")
	})

	t.Run("unblocks a blocked Append", func(t *testing.T) {
		cfg := testConfig(t, "http://127.0.0.1:1")
		cfg.QueueConfig.Capacity = 1
		cfg.QueueConfig.Shards = 1
		q, err := NewQueue(cfg, nopClient{}, nil, nil) // Never started.
		require.NoError(t, err)
		require.NoError(t, q.Append(t.Context(), makeSamples(0, 1, 1), func() { t.Error("done called") }))
		errc := make(chan error, 1)
		go func() { errc <- q.Append(t.Context(), makeSamples(1, 1, 1), func() { t.Error("done called") }) }()
		require.Eventually(t, func() bool { return testutil.ToFloat64(q.metrics.appendBlocked) == 1 },
			5*time.Second, time.Millisecond)

		err = q.Stop(t.Context())
		require.ErrorContains(t, err, "abandoned 1 samples")
		require.ErrorIs(t, <-errc, ErrStopped)
	})

	t.Run("concurrent appends and stop", func(t *testing.T) {
		rcv := newReceiver(t, nil)
		cfg := testConfig(t, rcv.srv.URL)
		cfg.QueueConfig.Capacity = 8
		q, _ := newTestQueue(t, cfg, newTestClient(t, cfg))
		dc := newDoneCounter()
		var wg sync.WaitGroup
		var ok atomic.Int64
		for p := range 8 {
			wg.Go(func() {
				for i := 0; ; i++ {
					err := q.Append(t.Context(), makeSamples(p*10, 10, int64(i)), dc.done(p*1_000_000+i))
					if err != nil {
						if !errors.Is(err, ErrStopped) {
							t.Errorf("append: %v", err)
						}
						return
					}
					ok.Add(1)
				}
			})
		}
		// Stop while the appenders are in full flow.
		testbed.Eventually(t, 5*time.Second, func() bool { return ok.Load() >= 50 }, "50 appends done")
		require.NoError(t, q.Stop(t.Context()))
		wg.Wait()
		// Every successful Append was flushed by Stop and is done.
		dc.wait(t, int(ok.Load()), time.Second)
	})
}

func TestQueueMetricsRegistration(t *testing.T) {
	reg := prometheus.NewRegistry()
	cfg := testConfig(t, "http://127.0.0.1:1")
	q1, err := NewQueue(cfg, nopClient{}, reg, nil)
	require.NoError(t, err)

	_, err = NewQueue(cfg, nopClient{}, reg, nil)
	require.ErrorContains(t, err, "register metrics", "one registry, one queue per name")

	other := cfg
	other.Name = "other"
	q2, err := NewQueue(other, nopClient{}, reg, nil)
	require.NoError(t, err)

	mfs, err := reg.Gather()
	require.NoError(t, err)
	var names []string
	for _, mf := range mfs {
		names = append(names, mf.GetName())
		for _, m := range mf.GetMetric() {
			for _, l := range m.GetLabel() {
				require.Contains(t, []string{"remote_name", "code", "reason"}, l.GetName(), mf.GetName())
			}
		}
	}
	require.Subset(t, names, []string{
		"bmcstream_remote_write_samples_sent_total",
		"bmcstream_remote_write_samples_retried_total",
		"bmcstream_remote_write_requests_total",
		"bmcstream_remote_write_request_duration_seconds",
		"bmcstream_remote_write_queue_samples",
		"bmcstream_remote_write_queue_capacity_samples",
		"bmcstream_remote_write_append_blocked_total",
		"bmcstream_remote_write_append_blocked_seconds_total",
		"bmcstream_remote_write_sent_bytes_total",
	})
	problems, err := testutil.GatherAndLint(reg)
	require.NoError(t, err)
	require.Empty(t, problems)
	require.NoError(t, testutil.GatherAndCompare(reg, strings.NewReader(`
# HELP bmcstream_remote_write_queue_capacity_samples Samples the shard queues hold before Append blocks (capacity times shards).
# TYPE bmcstream_remote_write_queue_capacity_samples gauge
bmcstream_remote_write_queue_capacity_samples{remote_name="other"} 40000
bmcstream_remote_write_queue_capacity_samples{remote_name="test"} 40000
`), "bmcstream_remote_write_queue_capacity_samples"))

	// Stop unregisters, so a queue of the same name can replace it.
	require.NoError(t, q1.Stop(t.Context()))
	q3, err := NewQueue(cfg, nopClient{}, reg, nil)
	require.NoError(t, err)
	require.NoError(t, q3.Stop(t.Context()))
	require.NoError(t, q2.Stop(t.Context()))
}

func TestNewQueueValidates(t *testing.T) {
	cfg := testConfig(t, "http://127.0.0.1:1")
	cfg.Name = ""
	cfg.QueueConfig.Shards = 0
	_, err := NewQueue(cfg, nil, nil, nil)
	require.ErrorContains(t, err, "name: must be set")
	require.ErrorContains(t, err, "queue_config: shards")
	require.ErrorContains(t, err, "client: must not be nil")
}

// nopClient accepts everything.
type nopClient struct{}

func (nopClient) Store(context.Context, []byte, int) error { return nil }

// fakeClient records decoded requests with their (possibly fake) time and
// answers with the errors in errs, then nil.
type fakeClient struct {
	mu    sync.Mutex
	errs  []error
	calls []fakeCall
}

type fakeCall struct {
	at      time.Time
	attempt int
	samples []series.Sample
}

func (f *fakeClient) Store(_ context.Context, req []byte, attempt int) error {
	wr, err := decodeWriteRequest(req) // Decode now: req is reused after return.
	if err != nil {
		return err
	}
	call := fakeCall{at: time.Now(), attempt: attempt}
	for _, ts := range wr.Timeseries {
		for _, s := range ts.Samples {
			call.samples = append(call.samples, series.Sample{Series: series.New(ts.Labels), T: s.Timestamp, V: s.Value})
		}
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls = append(f.calls, call)
	if len(f.errs) > 0 {
		err, f.errs = f.errs[0], f.errs[1:]
		return err
	}
	return nil
}

func (f *fakeClient) recorded() []fakeCall {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]fakeCall(nil), f.calls...)
}

// TestQueueBatching checks, on a fake clock, when batches close.
func TestQueueBatching(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		client := &fakeClient{}
		cfg := testConfig(t, "http://127.0.0.1:1")
		cfg.QueueConfig.Shards = 1
		cfg.QueueConfig.MaxSamplesPerSend = 10
		cfg.QueueConfig.BatchSendDeadline = model.Duration(5 * time.Second)
		q, err := NewQueue(cfg, client, nil, nil)
		require.NoError(t, err)
		q.Start()
		start := time.Now()

		// 25 samples: two full batches at once, 5 left for the deadline.
		require.NoError(t, q.Append(t.Context(), makeSamples(0, 25, 1000), func() {}))
		synctest.Wait()
		calls := client.recorded()
		require.Len(t, calls, 2)
		require.Len(t, calls[0].samples, 10)
		require.Len(t, calls[1].samples, 10)

		time.Sleep(5*time.Second - time.Nanosecond)
		synctest.Wait()
		require.Len(t, client.recorded(), 2, "deadline not reached")
		time.Sleep(time.Nanosecond)
		synctest.Wait()
		calls = client.recorded()
		require.Len(t, calls, 3)
		require.Len(t, calls[2].samples, 5)
		require.Equal(t, 5*time.Second, calls[2].at.Sub(start))

		// The deadline counts from a batch's first sample.
		time.Sleep(time.Minute)
		require.NoError(t, q.Append(t.Context(), makeSamples(0, 1, 2000), func() {}))
		time.Sleep(3 * time.Second)
		require.NoError(t, q.Append(t.Context(), makeSamples(1, 1, 2000), func() {}))
		time.Sleep(2 * time.Second)
		synctest.Wait()
		calls = client.recorded()
		require.Len(t, calls, 4)
		require.Len(t, calls[3].samples, 2)

		require.NoError(t, q.Stop(t.Context()))
	})
}

// TestQueueFlushNow: FlushNow sends a partial batch at once instead of at
// the batch deadline, including samples still queued when it is called,
// and an empty queue ignores it.
func TestQueueFlushNow(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		client := &fakeClient{}
		cfg := testConfig(t, "http://127.0.0.1:1")
		cfg.QueueConfig.Shards = 2
		cfg.QueueConfig.MaxSamplesPerSend = 100
		cfg.QueueConfig.BatchSendDeadline = model.Duration(5 * time.Second)
		q, err := NewQueue(cfg, client, nil, nil)
		require.NoError(t, err)
		q.Start()
		start := time.Now()

		q.FlushNow() // nothing held: nothing sent
		synctest.Wait()
		require.Empty(t, client.recorded())

		done := make(chan struct{})
		require.NoError(t, q.Append(t.Context(), makeSamples(0, 30, 1000), func() { close(done) }))
		q.FlushNow()
		synctest.Wait()
		<-done
		sent := 0
		for _, c := range client.recorded() {
			require.Equal(t, start, c.at, "sent at once, not at the deadline")
			sent += len(c.samples)
		}
		require.Equal(t, 30, sent)

		// Without FlushNow the deadline still applies.
		require.NoError(t, q.Append(t.Context(), makeSamples(0, 1, 2000), func() {}))
		n := len(client.recorded())
		time.Sleep(5*time.Second - time.Nanosecond)
		synctest.Wait()
		require.Len(t, client.recorded(), n)
		time.Sleep(time.Nanosecond)
		synctest.Wait()
		require.Len(t, client.recorded(), n+1)
		require.NoError(t, q.Stop(t.Context()))
	})
}

// TestQueueBackoff checks, on a fake clock, that retries back off
// exponentially with jitter up to max_backoff, and that a larger
// Retry-After wins.
func TestQueueBackoff(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		retry := RecoverableError{Err: errors.New("injected")}
		client := &fakeClient{errs: []error{
			retry, retry, retry, retry, retry,
			RecoverableError{Err: errors.New("slow down"), RetryAfter: 3 * time.Second},
		}}
		cfg := testConfig(t, "http://127.0.0.1:1")
		cfg.QueueConfig.Shards = 1
		cfg.QueueConfig.MinBackoff = model.Duration(100 * time.Millisecond)
		cfg.QueueConfig.MaxBackoff = model.Duration(400 * time.Millisecond)
		q, err := NewQueue(cfg, client, nil, nil)
		require.NoError(t, err)
		q.Start()

		done := make(chan struct{})
		require.NoError(t, q.Append(t.Context(), makeSamples(0, 3, 1000), func() { close(done) }))
		<-done
		calls := client.recorded()
		require.Len(t, calls, 7)
		wantMax := []time.Duration{100, 200, 400, 400, 400}
		for i, w := range wantMax {
			gap := calls[i+1].at.Sub(calls[i].at)
			w *= time.Millisecond
			require.GreaterOrEqual(t, gap, w/2, "retry %d", i+1)
			require.LessOrEqual(t, gap, w, "retry %d", i+1)
			require.Equal(t, i+1, calls[i+1].attempt)
		}
		require.GreaterOrEqual(t, calls[6].at.Sub(calls[5].at), 3*time.Second, "Retry-After wins")
		for _, c := range calls {
			require.Len(t, c.samples, 3, "the same batch every time")
		}
		require.Equal(t, 18.0, testutil.ToFloat64(q.metrics.samplesRetried))
		require.Equal(t, 3.0, testutil.ToFloat64(q.metrics.samplesSent))
		require.NoError(t, q.Stop(t.Context()))
	})
}

// TestQueueDoneAcrossShards checks that done waits for every shard a call
// touched, including when one shard's batch is dropped.
func TestQueueDoneAcrossShards(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		client := &fakeClient{errs: []error{&StatusError{StatusCode: 404}}}
		cfg := testConfig(t, "http://127.0.0.1:1")
		cfg.QueueConfig.Shards = 3
		cfg.QueueConfig.BatchSendDeadline = model.Duration(time.Second)
		q, err := NewQueue(cfg, client, nil, nil)
		require.NoError(t, err)
		q.Start()

		var doneCalls atomic.Int32
		in := makeSamples(0, 30, 1000)
		require.NoError(t, q.Append(t.Context(), in, func() { doneCalls.Add(1) }))
		synctest.Wait()
		require.Zero(t, doneCalls.Load())
		time.Sleep(time.Second)
		synctest.Wait()
		require.Equal(t, int32(1), doneCalls.Load())

		var sent int
		for _, c := range client.recorded() {
			sent += len(c.samples)
		}
		require.Equal(t, len(in), sent)
		dropped := testutil.ToFloat64(q.metrics.samplesDropped.WithLabelValues("http_404"))
		require.Positive(t, dropped)
		require.Equal(t, float64(len(in)), dropped+testutil.ToFloat64(q.metrics.samplesSent))
		require.NoError(t, q.Stop(t.Context()))
	})
}

// recordHandler is a slog.Handler that keeps the records it gets.
type recordHandler struct {
	mu      sync.Mutex
	records []slog.Record
}

func (h *recordHandler) Enabled(context.Context, slog.Level) bool { return true }
func (h *recordHandler) WithAttrs([]slog.Attr) slog.Handler       { return h }
func (h *recordHandler) WithGroup(string) slog.Handler            { return h }
func (h *recordHandler) Handle(_ context.Context, r slog.Record) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.records = append(h.records, r.Clone())
	return nil
}

func (h *recordHandler) attrs() []map[string]any {
	h.mu.Lock()
	defer h.mu.Unlock()
	var out []map[string]any
	for _, r := range h.records {
		m := map[string]any{"msg": r.Message}
		r.Attrs(func(a slog.Attr) bool {
			m[a.Key] = a.Value.Any()
			return true
		})
		out = append(out, m)
	}
	return out
}

// TestQueueLogRateLimit checks, on a fake clock, that a receiver failing for
// 25 s yields a handful of log lines, not one per retry.
func TestQueueLogRateLimit(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var errs []error
		for range 60 {
			errs = append(errs, RecoverableError{Err: &StatusError{StatusCode: 503}})
		}
		client := &fakeClient{errs: errs}
		cfg := testConfig(t, "http://127.0.0.1:1")
		cfg.QueueConfig.Shards = 1
		cfg.QueueConfig.MinBackoff = model.Duration(400 * time.Millisecond)
		cfg.QueueConfig.MaxBackoff = model.Duration(400 * time.Millisecond)
		h := &recordHandler{}
		q, err := NewQueue(cfg, client, nil, slog.New(h))
		require.NoError(t, err)
		q.Start()
		done := make(chan struct{})
		require.NoError(t, q.Append(t.Context(), makeSamples(0, 1, 1), func() { close(done) }))
		<-done
		require.NoError(t, q.Stop(t.Context()))

		require.Len(t, client.recorded(), 61)
		logs := h.attrs()
		require.GreaterOrEqual(t, len(logs), 2)
		require.LessOrEqual(t, len(logs), 3, "60 retries over at most 24 s")
		for _, l := range logs {
			require.Equal(t, "remote write request failed, retrying", l["msg"])
			require.Contains(t, l, "err")
			require.Contains(t, l, "retry_in")
			require.Equal(t, int64(0), l["shard"])
		}
		require.Positive(t, logs[1]["suppressed"])
	})
}

// TestQueueAppendKeyShards checks, on a fake clock, that AppendKey sends all
// of a call to shard key % shards: after a flush each request holds the
// calls of one key, each call whole and in order.
func TestQueueAppendKeyShards(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		client := &fakeClient{}
		cfg := testConfig(t, "http://127.0.0.1:1")
		cfg.QueueConfig.Shards = 4
		cfg.QueueConfig.MaxSamplesPerSend = 1000
		cfg.QueueConfig.BatchSendDeadline = model.Duration(time.Hour)
		q, err := NewQueue(cfg, client, nil, nil)
		require.NoError(t, err)
		q.Start()

		// Keys 3 and 7 share shard 3, keys 5 and 13 shard 1; shards 0 and 2
		// get nothing. The series of each call would spread over every shard
		// by their hashes.
		keys := []uint64{3, 5, 7, 13}
		var want [4][]series.Sample
		dc := newDoneCounter()
		for i, key := range keys {
			in := makeSamples(i*50, 50, 1000)
			require.NoError(t, q.AppendKey(t.Context(), key, in, dc.done(i)))
			want[key%4] = append(want[key%4], in...)
		}
		q.FlushNow()
		synctest.Wait()
		dc.wait(t, len(keys), time.Second)

		calls := client.recorded()
		require.Len(t, calls, 2, "one request per shard that got samples")
		for _, c := range calls {
			shard := 1
			if c.samples[0].Series.Labels.Get("bmc") == want[3][0].Series.Labels.Get("bmc") {
				shard = 3
			}
			require.Len(t, c.samples, len(want[shard]))
			for i, s := range c.samples {
				require.Equal(t, want[shard][i].Series.Labels.Prom(), s.Series.Labels.Prom(), "sample %d of shard %d", i, shard)
				require.Equal(t, want[shard][i].V, s.V)
			}
		}
		for i := range keys {
			require.Equal(t, 1, dc.count(i))
		}
		require.NoError(t, q.Stop(t.Context()))
	})
}

// TestQueueAppendKeySplits checks, on a fake clock, that a call larger than
// max_samples_per_send is split over several requests in order, that done
// waits for the last of them, and that batches close as for Append.
func TestQueueAppendKeySplits(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		client := &fakeClient{}
		cfg := testConfig(t, "http://127.0.0.1:1")
		cfg.QueueConfig.Shards = 3
		cfg.QueueConfig.MaxSamplesPerSend = 10
		cfg.QueueConfig.BatchSendDeadline = model.Duration(5 * time.Second)
		q, err := NewQueue(cfg, client, nil, nil)
		require.NoError(t, err)
		q.Start()

		// 7 samples wait in the batch; a call of 28 fills it and two more,
		// leaving 5 for the deadline.
		first := makeSamples(100, 7, 1000)
		in := makeSamples(0, 28, 1000)
		var firstDone, done atomic.Int32
		require.NoError(t, q.AppendKey(t.Context(), 42, first, func() { firstDone.Add(1) }))
		require.NoError(t, q.AppendKey(t.Context(), 42, in, func() { done.Add(1) }))
		synctest.Wait()
		calls := client.recorded()
		require.Len(t, calls, 3)
		for _, c := range calls {
			require.Len(t, c.samples, 10)
		}
		require.Equal(t, int32(1), firstDone.Load(), "the first call's samples were all in the first request")
		require.Zero(t, done.Load(), "5 samples still wait")

		time.Sleep(5 * time.Second)
		synctest.Wait()
		calls = client.recorded()
		require.Len(t, calls, 4)
		require.Len(t, calls[3].samples, 5)
		require.Equal(t, int32(1), done.Load())

		var got []series.Sample
		for _, c := range calls {
			got = append(got, c.samples...)
		}
		for i, s := range append(first, in...) {
			require.Equal(t, s.Series.Labels.Prom(), got[i].Series.Labels.Prom(), "sample %d", i)
			require.Equal(t, s.V, got[i].V, "sample %d", i)
		}
		require.Equal(t, 35.0, testutil.ToFloat64(q.metrics.samplesSent))
		require.Zero(t, testutil.ToFloat64(q.metrics.queueSamples))
		require.NoError(t, q.Stop(t.Context()))
		require.Equal(t, int32(1), done.Load(), "done runs once")
	})
}

// TestQueueAppendKeyCopies checks that the caller may reuse its slice once
// AppendKey returns: the queue sends what was appended, not what the slice
// holds later.
func TestQueueAppendKeyCopies(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		client := &fakeClient{}
		cfg := testConfig(t, "http://127.0.0.1:1")
		cfg.QueueConfig.Shards = 1
		cfg.QueueConfig.BatchSendDeadline = model.Duration(time.Second)
		q, err := NewQueue(cfg, client, nil, nil)
		require.NoError(t, err)
		q.Start()

		buf := makeSamples(0, 20, 1000)
		want := append([]series.Sample(nil), buf...)
		require.NoError(t, q.AppendKey(t.Context(), 1, buf, nil))
		copy(buf, makeSamples(500, 20, 2000)) // Before the shard has sent anything.
		time.Sleep(time.Second)
		synctest.Wait()

		calls := client.recorded()
		require.Len(t, calls, 1)
		require.Len(t, calls[0].samples, len(want))
		for i, s := range calls[0].samples {
			require.Equal(t, want[i].Series.Labels.Prom(), s.Series.Labels.Prom(), "sample %d", i)
			require.Equal(t, want[i].T, s.T, "sample %d", i)
		}
		require.NoError(t, q.Stop(t.Context()))
	})
}

// TestQueueAppendKeyBackPressure checks that AppendKey blocks, counted in
// samples, once the shard's queue is full while the receiver is stuck; that
// a waiting call larger than the free room goes in as room frees up; and
// that a call larger than the whole capacity still goes through.
func TestQueueAppendKeyBackPressure(t *testing.T) {
	release := make(chan struct{})
	arrived := make(chan struct{}, 100)
	rcv := newReceiver(t, func(i int, w http.ResponseWriter, r *http.Request) bool {
		arrived <- struct{}{}
		if i == 0 {
			<-release
		}
		return false
	})
	var releaseOnce sync.Once
	unblock := func() { releaseOnce.Do(func() { close(release) }) }
	t.Cleanup(unblock)
	cfg := testConfig(t, rcv.srv.URL)
	cfg.QueueConfig.Shards = 2
	cfg.QueueConfig.Capacity = 10
	cfg.QueueConfig.MaxSamplesPerSend = 5
	q, _ := newTestQueue(t, cfg, newTestClient(t, cfg))
	dc := newDoneCounter()

	// Key 0: a full batch the receiver holds, then 10 that fill the queue.
	require.NoError(t, q.AppendKey(t.Context(), 0, makeSamples(0, 5, 1000), dc.done(0)))
	select {
	case <-arrived:
	case <-time.After(5 * time.Second):
		t.Fatal("first request never arrived")
	}
	require.NoError(t, q.AppendKey(t.Context(), 2, makeSamples(5, 10, 1000), dc.done(1)))
	require.Zero(t, testutil.ToFloat64(q.metrics.appendBlocked))

	// One more sample for that shard blocks until its context ends...
	ctx, cancel := context.WithTimeout(t.Context(), 100*time.Millisecond)
	defer cancel()
	err := q.AppendKey(ctx, 4, makeSamples(15, 1, 1000), dc.done(2))
	require.ErrorIs(t, err, context.DeadlineExceeded)
	require.Equal(t, 1.0, testutil.ToFloat64(q.metrics.appendBlocked), "counted in samples")
	require.Equal(t, 15.0, testutil.ToFloat64(q.metrics.queueSamples))

	// ...while the other shard takes 25, more than its capacity, at once.
	require.NoError(t, q.AppendKey(t.Context(), 1, makeSamples(100, 25, 1000), dc.done(3)))
	dc.wait(t, 1, 5*time.Second)
	require.Equal(t, 1, dc.count(3))

	// A blocked call of 8 goes in once the stuck request returns. It is
	// handed over in chunks of at most max_samples_per_send: the first 5
	// wait.
	blocked := testutil.ToFloat64(q.metrics.appendBlocked) // The call of 25 may have waited too.
	errc := make(chan error, 1)
	go func() { errc <- q.AppendKey(t.Context(), 0, makeSamples(200, 8, 1000), dc.done(4)) }()
	require.Eventually(t, func() bool { return testutil.ToFloat64(q.metrics.appendBlocked) == blocked+5 },
		5*time.Second, time.Millisecond)
	unblock()
	require.NoError(t, <-errc)
	require.NoError(t, q.Stop(t.Context()))
	for _, id := range []int{0, 1, 3, 4} {
		require.Equal(t, 1, dc.count(id), "done of call %d", id)
	}
	require.Zero(t, dc.count(2), "a failed Append never calls done")
	require.Len(t, rcv.samples(), 5+10+25+8)
}

// TestQueueAppendKeyOrdering appends the series of many sources, each with
// its own key and a call per round, from several producers through small
// queues and batches, with the receiver failing some requests, and checks
// per-series order and the done contract.
func TestQueueAppendKeyOrdering(t *testing.T) {
	const (
		producers      = 4
		sourcesPerProd = 5
		seriesPerSrc   = 30
		rounds         = 30
		failEveryNth   = 5
	)
	rcv := newReceiver(t, func(i int, w http.ResponseWriter, r *http.Request) bool {
		if i%failEveryNth == failEveryNth-1 {
			http.Error(w, "injected", http.StatusServiceUnavailable)
			return true
		}
		return false
	})
	cfg := testConfig(t, rcv.srv.URL)
	cfg.QueueConfig.Shards = 3
	cfg.QueueConfig.Capacity = 45 // Small, so producers also block.
	cfg.QueueConfig.MaxSamplesPerSend = 37
	cfg.QueueConfig.BatchSendDeadline = model.Duration(2 * time.Millisecond)
	q, _ := newTestQueue(t, cfg, newTestClient(t, cfg))

	dc := newDoneCounter()
	var wg sync.WaitGroup
	var calls atomic.Int64
	for p := range producers {
		wg.Go(func() {
			buf := make([]series.Sample, 0, seriesPerSrc) // Reused, as the gateway does.
			for round := range rounds {
				ts := int64(1_700_000_000_000 + round*30_000)
				for src := range sourcesPerProd {
					id := (p*rounds+round)*sourcesPerProd + src
					first := (p*sourcesPerProd + src) * seriesPerSrc
					buf = append(buf[:0], makeSamples(first, seriesPerSrc, ts)...)
					key := uint64(p*sourcesPerProd + src)
					if err := q.AppendKey(t.Context(), key, buf, dc.done(id)); err != nil {
						t.Errorf("append: %v", err)
						return
					}
					calls.Add(1)
				}
			}
		})
	}
	wg.Wait()
	dc.wait(t, int(calls.Load()), 10*time.Second)
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
	defer cancel()
	require.NoError(t, q.Stop(ctx))

	lastT := map[string]int64{}
	var total int
	var disorder []string
	for _, rq := range rcv.requests() {
		for _, ts := range rq.req.Timeseries {
			key := fmt.Sprint(ts.Labels)
			for _, s := range ts.Samples {
				if last, ok := lastT[key]; ok && s.Timestamp <= last {
					disorder = append(disorder, fmt.Sprintf("%s: %d after %d", key, s.Timestamp, last))
				}
				lastT[key] = s.Timestamp
				total++
			}
		}
	}
	require.Empty(t, disorder)
	require.Empty(t, rcv.decodeErrors())
	require.Equal(t, producers*sourcesPerProd*seriesPerSrc*rounds, total)
	require.Len(t, lastT, producers*sourcesPerProd*seriesPerSrc)
	for id := range int(calls.Load()) {
		require.Equal(t, 1, dc.count(id), "done of call %d", id)
	}
	require.Positive(t, testutil.ToFloat64(q.metrics.samplesRetried))
	require.Positive(t, testutil.ToFloat64(q.metrics.appendBlocked))
	require.Equal(t, float64(total), testutil.ToFloat64(q.metrics.samplesSent))
}

// TestQueueAppendKeyAllocs checks that, once the pool holds chunks, an
// AppendKey through batching, encoding and sending allocates only the
// call's tracker: the copy of the samples comes from the pool.
func TestQueueAppendKeyAllocs(t *testing.T) {
	cfg := testConfig(t, "http://127.0.0.1:1")
	cfg.QueueConfig.Shards = 2
	cfg.QueueConfig.MaxSamplesPerSend = 100
	cfg.QueueConfig.BatchSendDeadline = model.Duration(time.Hour)
	q, _ := newTestQueue(t, cfg, nopClient{})
	in := makeSamples(0, 100, 1000) // One full batch per call.
	sent := make(chan struct{}, 1)
	done := func() { sent <- struct{}{} }
	call := func() {
		if err := q.AppendKey(t.Context(), 1, in, done); err != nil {
			t.Fatal(err)
		}
		<-sent
	}
	for range 10 {
		call() // Grow the buffers and fill the pool.
	}
	// AllocsPerRun truncates to a whole number: under the race detector the
	// pool drops a quarter of what it is given, which stays below one more.
	allocs := testing.AllocsPerRun(200, call)
	require.LessOrEqual(t, allocs, 1.0)
}
