package remotewrite

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"sync"
	"testing"
	"time"

	"github.com/golang/snappy"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/common/config"
	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/prompb"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/bmcstream/bmcstream/pkg/series"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// decodeWriteRequest decodes a remote-write body as a receiver does.
func decodeWriteRequest(body []byte) (*prompb.WriteRequest, error) {
	raw, err := snappy.Decode(nil, body)
	if err != nil {
		return nil, fmt.Errorf("snappy decode: %w", err)
	}
	var wr prompb.WriteRequest
	if err := wr.Unmarshal(raw); err != nil {
		return nil, fmt.Errorf("unmarshal write request: %w", err)
	}
	return &wr, nil
}

// received is one request a receiver accepted.
type received struct {
	header http.Header
	req    *prompb.WriteRequest
	at     time.Time
}

// receiver is an httptest remote-write endpoint that decodes what it gets.
// respond, when set, runs first for every request (numbered from 0); if it
// returns true it has answered and the request is not recorded.
type receiver struct {
	srv *httptest.Server

	mu      sync.Mutex
	n       int
	arrived []time.Time // Every request, recorded or not.
	got     []received
	errs    []error
}

func newReceiver(t *testing.T, respond func(n int, w http.ResponseWriter, r *http.Request) bool) *receiver {
	t.Helper()
	rcv := &receiver{}
	rcv.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rcv.mu.Lock()
		n := rcv.n
		rcv.n++
		rcv.arrived = append(rcv.arrived, time.Now())
		rcv.mu.Unlock()
		if respond != nil && respond(n, w, r) {
			return
		}
		body, err := io.ReadAll(r.Body)
		if err == nil {
			var wr *prompb.WriteRequest
			if wr, err = decodeWriteRequest(body); err == nil {
				rcv.mu.Lock()
				rcv.got = append(rcv.got, received{header: r.Header.Clone(), req: wr, at: time.Now()})
				rcv.mu.Unlock()
				w.WriteHeader(http.StatusNoContent)
				return
			}
		}
		rcv.mu.Lock()
		rcv.errs = append(rcv.errs, err)
		rcv.mu.Unlock()
		http.Error(w, err.Error(), http.StatusBadRequest)
	}))
	t.Cleanup(rcv.srv.Close)
	return rcv
}

func (r *receiver) requests() []received {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]received(nil), r.got...)
}

func (r *receiver) arrivals() []time.Time {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]time.Time(nil), r.arrived...)
}

func (r *receiver) decodeErrors() []error {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]error(nil), r.errs...)
}

// samples returns every sample received, flattened, in arrival order.
func (r *receiver) samples() []series.Sample {
	var out []series.Sample
	for _, rq := range r.requests() {
		for _, ts := range rq.req.Timeseries {
			for _, s := range ts.Samples {
				out = append(out, series.Sample{Series: series.New(ts.Labels), T: s.Timestamp, V: s.Value})
			}
		}
	}
	return out
}

// plainSample is a sample with its labels as a []prompb.Label, so samples
// made with a shared base and samples decoded from a request compare equal
// when they hold the same labels, time and value.
type plainSample struct {
	Labels []prompb.Label
	Hash   uint64
	T      int64
	V      float64
}

func plain(ss []series.Sample) []plainSample {
	out := make([]plainSample, len(ss))
	for i, s := range ss {
		out[i] = plainSample{Labels: s.Series.Labels.Prom(), Hash: s.Series.Hash, T: s.T, V: s.V}
	}
	return out
}

// testConfig is a valid Config for url with fast retries and batches.
func testConfig(t testing.TB, rawURL string) Config {
	t.Helper()
	u, err := url.Parse(rawURL)
	require.NoError(t, err)
	cfg := DefaultConfig
	cfg.Name = "test"
	cfg.URL = config.URL{URL: u}
	cfg.RemoteTimeout = model.Duration(5 * time.Second)
	cfg.QueueConfig.MinBackoff = model.Duration(5 * time.Millisecond)
	cfg.QueueConfig.MaxBackoff = model.Duration(20 * time.Millisecond)
	cfg.QueueConfig.BatchSendDeadline = model.Duration(10 * time.Millisecond)
	return cfg
}

// newTestClient builds a Client and closes its idle connections at cleanup.
func newTestClient(t testing.TB, cfg Config) *Client {
	t.Helper()
	c, err := NewClient(cfg, "test-version")
	require.NoError(t, err)
	t.Cleanup(c.CloseIdleConnections)
	return c
}

// newTestQueue builds and starts a Queue on a fresh registry, stopping it at
// cleanup if the test did not.
func newTestQueue(t testing.TB, cfg Config, client WriteClient) (*Queue, *prometheus.Registry) {
	t.Helper()
	reg := prometheus.NewRegistry()
	q, err := NewQueue(cfg, client, reg, nil)
	require.NoError(t, err)
	q.Start()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		_ = q.Stop(ctx) // Already stopped in most tests.
	})
	return q, reg
}

// testLabels returns the sorted label set of test series i.
func testLabels(i int) []prompb.Label {
	ls := []prompb.Label{
		{Name: "__name__", Value: "bmc_temperature_celsius"},
		{Name: "bmc", Value: fmt.Sprintf("bmc-%05d", i/8)},
		{Name: "context", Value: "intake"},
		{Name: "rack", Value: fmt.Sprintf("r%03d", i/320)},
		{Name: "sensor", Value: fmt.Sprintf("Temp%d", i%8)},
		{Name: "site", Value: "ctc"},
	}
	series.Sort(ls)
	return ls
}

// makeSamples returns n samples of series first..first+n-1 at time ts.
// Their label sets are made as the gateway makes them: a BMC's labels (bmc,
// rack, site) are one base shared by its series, merged with each series'
// own labels, so the encoder copies both parts.
func makeSamples(first, n int, ts int64) []series.Sample {
	out := make([]series.Sample, n)
	bases := map[string]*series.Base{}
	for i := range out {
		var own, shared []prompb.Label
		for _, l := range testLabels(first + i) {
			switch l.Name {
			case "bmc", "rack", "site":
				shared = append(shared, l)
			default:
				own = append(own, l)
			}
		}
		key := fmt.Sprint(shared)
		base, ok := bases[key]
		if !ok {
			base = series.NewBase(shared)
			bases[key] = base
		}
		out[i] = series.Sample{Series: series.NewLabels(series.Make(own, base)), T: ts, V: float64(first+i) + 0.5}
	}
	return out
}

// doneCounter hands out done callbacks and counts their calls.
type doneCounter struct {
	mu    sync.Mutex
	calls map[int]int
	ch    chan int
}

func newDoneCounter() *doneCounter {
	return &doneCounter{calls: map[int]int{}, ch: make(chan int, 100000)}
}

func (d *doneCounter) done(id int) func() {
	return func() {
		d.mu.Lock()
		d.calls[id]++
		d.mu.Unlock()
		d.ch <- id
	}
}

func (d *doneCounter) count(id int) int {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.calls[id]
}

// wait waits for n done calls.
func (d *doneCounter) wait(t testing.TB, n int, timeout time.Duration) {
	t.Helper()
	deadline := time.After(timeout)
	for range n {
		select {
		case <-d.ch:
		case <-deadline:
			t.Fatalf("timed out waiting for %d done calls", n)
		}
	}
}

func modelDuration(d time.Duration) model.Duration { return model.Duration(d) }
