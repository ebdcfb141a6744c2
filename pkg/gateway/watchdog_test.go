package gateway_test

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/require"

	"github.com/bmcstream/bmcstream/internal/synth"
	"github.com/bmcstream/bmcstream/internal/testbed"
	"github.com/bmcstream/bmcstream/pkg/gateway"
)

// pullProxy is a loopback TCP proxy between NATS clients and a NATS
// server that can lose pull requests: while swallowing, it drops every
// PUB or HPUB frame a client sends to $JS.API.CONSUMER.MSG.NEXT.* (the
// JetStream pull request) and forwards everything else byte for byte. The
// client then waits for a batch the server never heard of: a stalled pull.
type pullProxy struct {
	t      *testing.T
	ln     net.Listener
	target string

	swallow atomic.Bool
	dropped atomic.Int64 // pull requests swallowed
	wg      sync.WaitGroup
	mu      sync.Mutex
	conns   []net.Conn
}

func newPullProxy(t *testing.T, target string) *pullProxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	p := &pullProxy{t: t, ln: ln, target: target}
	p.wg.Add(1)
	go p.accept()
	t.Cleanup(p.close)
	return p
}

func (p *pullProxy) URL() string { return "nats://" + p.ln.Addr().String() }

func (p *pullProxy) close() {
	_ = p.ln.Close()
	p.mu.Lock()
	for _, c := range p.conns {
		_ = c.Close()
	}
	p.mu.Unlock()
	p.wg.Wait()
}

func (p *pullProxy) accept() {
	defer p.wg.Done()
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return
		}
		s, err := net.Dial("tcp", p.target)
		if err != nil {
			_ = c.Close()
			continue
		}
		p.mu.Lock()
		p.conns = append(p.conns, c, s)
		p.mu.Unlock()
		p.wg.Add(2)
		go func() {
			defer p.wg.Done()
			_, _ = io.Copy(c, s)
			_ = c.Close()
		}()
		go func() {
			defer p.wg.Done()
			p.clientToServer(c, s)
			_ = s.Close()
		}()
	}
}

// clientToServer forwards the client's protocol lines, reading a PUB's or
// HPUB's payload (its size is the line's last field) along with its line
// so that a swallowed frame is dropped whole.
func (p *pullProxy) clientToServer(c, s net.Conn) {
	r := bufio.NewReaderSize(c, 64<<10)
	for {
		line, err := r.ReadBytes('\n')
		if err != nil {
			return
		}
		frame := line
		op, _, _ := bytes.Cut(line, []byte(" "))
		isPub := bytes.EqualFold(op, []byte("PUB")) || bytes.EqualFold(op, []byte("HPUB"))
		if isPub {
			fields := bytes.Fields(line)
			n, err := strconv.Atoi(string(fields[len(fields)-1]))
			if err != nil || n < 0 {
				return
			}
			payload := make([]byte, n+2) // and its \r\n
			if _, err := io.ReadFull(r, payload); err != nil {
				return
			}
			frame = append(append([]byte{}, line...), payload...)
			if p.swallow.Load() && len(fields) > 1 && bytes.HasPrefix(fields[1], []byte("$JS.API.CONSUMER.MSG.NEXT.")) {
				p.dropped.Add(1)
				continue
			}
		}
		if _, err := s.Write(frame); err != nil {
			return
		}
	}
}

// pollRecorder is a remote-write receiver that decodes what it gets and
// remembers every (BMC, time) of bmc_up: one per snapshot written.
type pollRecorder struct {
	mu    sync.Mutex
	polls map[string]bool
}

func (r *pollRecorder) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	wr, _, err := testbed.ReadWriteRequest(req)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, ts := range wr.Timeseries {
		name, bmc := "", ""
		for _, l := range ts.Labels {
			switch l.Name {
			case "__name__":
				name = l.Value
			case "bmc":
				bmc = l.Value
			}
		}
		if name != "bmc_up" {
			continue
		}
		for _, s := range ts.Samples {
			r.polls[bmc+"@"+strconv.FormatInt(s.Timestamp, 10)] = true
		}
	}
	w.WriteHeader(http.StatusNoContent)
}

// missing lists the published polls the receiver has not seen.
func (r *pollRecorder) missing(published []string) []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []string
	for _, k := range published {
		if !r.polls[k] {
			out = append(out, k)
		}
	}
	return out
}

// TestWatchdogRestartsStalledPull: a proxy loses the gateway's pull
// requests for a while as the stream keeps receiving snapshots. The pull
// subscription then waits for a batch the server never heard of and never
// asks again. With the watchdog, the consumer is declared stalled, counted
// and reopened, and every published snapshot is written; without it (the
// control case, which shows the test can fail) the stall outlasts the
// whole wait.
func TestWatchdogRestartsStalledPull(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name     string
		interval string
	}{
		{"watchdog", "1s"},
		{"no watchdog", "0s"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			srv := testbed.StartNATS(t)
			pub, _ := publisher(t, srv.ClientURL())
			proxy := newPullProxy(t, srv.Addr().String())
			rec := &pollRecorder{polls: map[string]bool{}}
			rw := httptest.NewServer(rec)
			t.Cleanup(rw.Close)

			fleet := synth.NewFleet(10)
			// A small batch uses up the pull the server already holds
			// within a round, so the next pull is one the proxy loses.
			cfg, err := gateway.ParseConfig([]byte(fmt.Sprintf(`
nats:
  url: %s
consumer: {fetch_batch: 4, watchdog_interval: %s}
automation: {enabled: false}
inventory:
  files: [%s]
remote_write:%s`, proxy.URL(), tc.interval, writeInventory(t, fleet), sinkYAML("rw", rw.URL))))
			require.NoError(t, err)
			reg := prometheus.NewRegistry()
			gw, err := gateway.New(cfg, gateway.Options{Registerer: reg, Version: "test", ShutdownTimeout: 5 * time.Second})
			require.NoError(t, err)
			ctx, cancel := context.WithCancel(context.Background())
			errc := make(chan error, 1)
			go func() { errc <- gw.Run(ctx) }()
			defer func() {
				cancel()
				require.NoError(t, <-errc)
			}()
			require.Eventually(t, gw.Ready, 20*time.Second, 20*time.Millisecond)

			var published []string
			seq := uint64(0)
			start := time.Now().Add(-time.Minute).Truncate(time.Second)
			round := func() {
				seq++
				at := start.Add(time.Duration(seq) * time.Second)
				for i := range fleet.BMCs {
					require.NoError(t, pub.Publish(ctx, fleet.Snapshot(i, at, "poller-a", 1, seq)))
					published = append(published, fleet.BMCs[i].ID+"@"+strconv.FormatInt(at.UnixMilli(), 10))
				}
			}
			round()
			require.Eventually(t, func() bool { return len(rec.missing(published)) == 0 }, 20*time.Second, 50*time.Millisecond, "the first round, before any fault")

			// Lose pulls while snapshots keep coming, until at least one
			// pull was lost and 3 s have passed.
			// A round every 200 ms, as pollers publish on their schedule.
			tick := time.NewTicker(200 * time.Millisecond)
			defer tick.Stop()
			proxy.swallow.Store(true)
			lossFrom := time.Now()
			for proxy.dropped.Load() == 0 || time.Since(lossFrom) < 3*time.Second {
				require.Less(t, time.Since(lossFrom), 30*time.Second, "no pull request went through the proxy")
				round()
				<-tick.C
			}
			proxy.swallow.Store(false)
			for range 5 {
				round()
				<-tick.C
			}
			t.Logf("pull requests lost: %d; snapshots published: %d", proxy.dropped.Load(), len(published))

			restarts := func() float64 {
				return testbed.MustMetricValue(t, reg, "bmcstream_gateway_consumer_restarts_total", "consumer", "bmcstream-gateway-rw")
			}
			if tc.interval == "0s" {
				// The stall is for good: nothing more arrives in 15 s.
				testbed.Never(t, 15*time.Second, func() bool { return len(rec.missing(published)) == 0 },
					"the lost pull did not stall the consumer: the test cannot show the watchdog")
				return
			}
			require.Eventually(t, func() bool { return len(rec.missing(published)) == 0 }, 30*time.Second, 100*time.Millisecond,
				"every published snapshot written after the watchdog reopened the pull")
			require.GreaterOrEqual(t, restarts(), 1.0)
			t.Logf("consumer restarts: %v", restarts())
		})
	}
}
