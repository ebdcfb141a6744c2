package reliability

import (
	"bytes"
	"fmt"
	"hash/fnv"
	"io"
	"net"
	"net/http"
	"sort"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/golang/snappy"
	"github.com/prometheus/prometheus/prompb"
	"github.com/stretchr/testify/require"
)

// faultProxy stands between the gateway and the real Prometheus and answers
// some remote-write requests itself: a fault injector for the receiver
// behaviours a healthy Prometheus never shows (429 with Retry-After, 500s,
// a 400 for some series). Every other request is forwarded unchanged and
// answered with Prometheus' own answer. It records every request it saw.
type faultProxy struct {
	t      *testing.T
	target string
	srv    *http.Server
	addr   string
	client *http.Client

	mu sync.Mutex
	// tooMany and errors are how many of the next requests get 429 (with
	// Retry-After: retryAfter seconds) and then 500.
	tooMany, errors int
	retryAfter      int
	// poison: a request holding a sample of one of these BMCs gets 400.
	poison map[string]bool
	log    []proxied
}

// proxied is one request the proxy saw.
type proxied struct {
	at      time.Time
	status  int
	batch   uint64 // identity of the batch: a hash of its sample keys
	samples int
	keys    []sampleKey
	poison  bool
}

func newFaultProxy(t *testing.T, target string) *faultProxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	p := &faultProxy{t: t, target: target, addr: ln.Addr().String(), client: &http.Client{Timeout: 30 * time.Second}, poison: map[string]bool{}}
	p.srv = &http.Server{Handler: p, ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = p.srv.Serve(ln) }()
	t.Cleanup(func() { _ = p.srv.Close() })
	return p
}

func (p *faultProxy) URL() string { return "http://" + p.addr + "/api/v1/write" }

// inject arranges the next faults.
func (p *faultProxy) inject(tooMany, retryAfter, errors int, poison []string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.tooMany, p.retryAfter, p.errors = tooMany, retryAfter, errors
	for _, id := range poison {
		p.poison[id] = true
	}
}

func (p *faultProxy) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(r.Body)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	raw, err := snappy.Decode(nil, body)
	if err != nil {
		http.Error(w, "snappy: "+err.Error(), http.StatusBadRequest)
		return
	}
	var req prompb.WriteRequest
	if err := req.Unmarshal(raw); err != nil {
		http.Error(w, "proto: "+err.Error(), http.StatusBadRequest)
		return
	}
	rec := proxied{at: time.Now()}
	p.mu.Lock()
	for _, ts := range req.Timeseries {
		ls := make(map[string]string, len(ts.Labels))
		for _, l := range ts.Labels {
			ls[l.Name] = l.Value
		}
		if p.poison[ls["bmc"]] {
			rec.poison = true
		}
		h := labelHash(ls)
		for _, s := range ts.Samples {
			rec.keys = append(rec.keys, sampleKey{h, s.Timestamp})
		}
	}
	p.mu.Unlock()
	rec.samples = len(rec.keys)
	rec.batch = batchID(rec.keys)

	status := 0
	p.mu.Lock()
	switch {
	case p.tooMany > 0:
		p.tooMany--
		status = http.StatusTooManyRequests
		w.Header().Set("Retry-After", strconv.Itoa(p.retryAfter))
	case p.errors > 0:
		p.errors--
		status = http.StatusInternalServerError
	case rec.poison:
		status = http.StatusBadRequest
	}
	p.mu.Unlock()
	if status != 0 {
		rec.status = status
		p.record(rec)
		http.Error(w, fmt.Sprintf("injected %d", status), status)
		return
	}
	out, err := http.NewRequestWithContext(r.Context(), http.MethodPost, p.target, bytes.NewReader(body))
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	out.Header = r.Header.Clone()
	resp, err := p.client.Do(out)
	if err != nil {
		rec.status = http.StatusBadGateway
		p.record(rec)
		http.Error(w, err.Error(), http.StatusBadGateway)
		return
	}
	defer resp.Body.Close()
	answer, _ := io.ReadAll(resp.Body)
	rec.status = resp.StatusCode
	p.record(rec)
	w.WriteHeader(resp.StatusCode)
	_, _ = w.Write(answer)
}

func (p *faultProxy) record(r proxied) {
	p.mu.Lock()
	p.log = append(p.log, r)
	p.mu.Unlock()
}

// requests returns what the proxy saw so far.
func (p *faultProxy) requests() []proxied {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]proxied(nil), p.log...)
}

// batchID identifies a batch by its samples, whatever their order.
func batchID(keys []sampleKey) uint64 {
	sorted := append([]sampleKey(nil), keys...)
	sort.Slice(sorted, func(i, j int) bool {
		if sorted[i].series != sorted[j].series {
			return sorted[i].series < sorted[j].series
		}
		return sorted[i].t < sorted[j].t
	})
	h := fnv.New64a()
	var b [16]byte
	for _, k := range sorted {
		for i := range 8 {
			b[i] = byte(k.series >> (8 * i))
			b[8+i] = byte(uint64(k.t) >> (8 * i))
		}
		_, _ = h.Write(b[:])
	}
	return h.Sum64()
}
