package remotewrite

import (
	"bytes"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/prometheus/prometheus/prompb"
	"github.com/stretchr/testify/require"
)

// conflictingReceiver is a fake of Thanos Receive's handling of conflicts,
// the one status code the tests cannot get from a real receiver here: it
// stores every sample newer than the newest it holds for its series, and
// answers 409 Conflict, after storing the others, when a request held any
// sample at or before that newest (out of order, or a duplicate timestamp).
type conflictingReceiver struct {
	mu      sync.Mutex
	newest  map[string]int64 // by series
	stored  map[string][]prompb.Sample
	answers []int
}

func (c *conflictingReceiver) handle(_ int, w http.ResponseWriter, r *http.Request) bool {
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
	c.mu.Lock()
	defer c.mu.Unlock()
	conflicts := 0
	for _, ts := range wr.Timeseries {
		key := fmt.Sprint(ts.Labels)
		for _, s := range ts.Samples {
			if last, ok := c.newest[key]; ok && s.Timestamp <= last {
				conflicts++
				continue
			}
			c.newest[key] = s.Timestamp
			c.stored[key] = append(c.stored[key], s)
		}
	}
	if conflicts > 0 {
		c.answers = append(c.answers, http.StatusConflict)
		http.Error(w, fmt.Sprintf("add %d samples: out of order sample", conflicts), http.StatusConflict)
		return true
	}
	c.answers = append(c.answers, http.StatusOK)
	w.WriteHeader(http.StatusOK)
	return true
}

// TestQueueConflictCountsTheRequestAsConflict checks what a 409 Conflict
// does: the receiver kept the samples that did not conflict, so the request
// is finished (done runs, the caller acks) without a retry or a split, its
// samples are counted under reason="conflict" and not http_409, and the log
// line is a warning saying the rest was stored, not an error saying the
// request was lost.
func TestQueueConflictCountsTheRequestAsConflict(t *testing.T) {
	fake := &conflictingReceiver{newest: map[string]int64{}, stored: map[string][]prompb.Sample{}}
	rcv := newReceiver(t, fake.handle)
	cfg := testConfig(t, rcv.srv.URL)
	cfg.QueueConfig.Shards = 1
	var logs bytes.Buffer
	var logMu sync.Mutex
	logger := slog.New(slog.NewTextHandler(&lockedWriter{mu: &logMu, w: &logs}, nil))
	q, err := NewQueue(cfg, newTestClient(t, cfg), prometheus.NewRegistry(), logger)
	require.NoError(t, err)
	q.Start()
	dc := newDoneCounter()

	// Series 0-9 at t=2000, accepted; then series 0-19 at t=1000: 0-9 are
	// out of order, 10-19 new.
	require.NoError(t, q.AppendKey(t.Context(), 1, makeSamples(0, 10, 2000), dc.done(0)))
	dc.wait(t, 1, 5*time.Second)
	require.NoError(t, q.AppendKey(t.Context(), 1, makeSamples(0, 20, 1000), dc.done(1)))
	dc.wait(t, 1, 5*time.Second)
	require.NoError(t, q.Stop(t.Context()))

	require.Equal(t, 1, dc.count(0))
	require.Equal(t, 1, dc.count(1), "the partly refused request is finished: its input may be acked")
	m := q.metrics
	require.Equal(t, 20.0, testutil.ToFloat64(m.samplesDropped.WithLabelValues(reasonConflict)))
	require.Equal(t, 1, testutil.CollectAndCount(m.samplesDropped), "no http_409 reason besides")
	require.Equal(t, 10.0, testutil.ToFloat64(m.samplesSent))
	require.Equal(t, 1.0, testutil.ToFloat64(m.requests.WithLabelValues(code4xx)))
	require.Zero(t, testutil.ToFloat64(m.splits), "not split")
	require.Zero(t, testutil.ToFloat64(m.samplesRetried), "not retried")
	fake.mu.Lock()
	require.Equal(t, []int{http.StatusOK, http.StatusConflict}, fake.answers, "one request each")
	stored := 0
	for i := range 20 {
		ss := fake.stored[fmt.Sprint(testLabels(i))]
		want := int64(1000)
		if i < 10 {
			want = 2000
		}
		require.Len(t, ss, 1, "series %d", i)
		require.Equal(t, want, ss[0].Timestamp, "series %d", i)
		stored += len(ss)
	}
	fake.mu.Unlock()
	require.Equal(t, 20, stored, "the receiver kept the 10 new samples of the refused request")

	logMu.Lock()
	out := logs.String()
	logMu.Unlock()
	require.Contains(t, out, "level=WARN")
	require.Contains(t, out, "409 conflict")
	require.Contains(t, out, "reason=conflict")
	require.Contains(t, out, "out of order sample", "the receiver's message is logged")
	require.NotContains(t, out, "level=ERROR")
	require.Equal(t, 1, strings.Count(out, "409 conflict"))
}

// lockedWriter serialises writes to w.
type lockedWriter struct {
	mu *sync.Mutex
	w  io.Writer
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}
