package redfish_test

import (
	"context"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"path/filepath"
	"runtime"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/bmcstream/bmcstream/internal/testbed"
	"github.com/bmcstream/bmcstream/pkg/bmcsim/fleet"
	"github.com/bmcstream/bmcstream/pkg/bmcsim/model"
	"github.com/bmcstream/bmcstream/pkg/secret"
	"github.com/bmcstream/bmcstream/pkg/sources"
	"github.com/bmcstream/bmcstream/pkg/sources/redfish"
)

// tlsFleet starts a one-member bmcsim fleet over HTTPS on 127.0.0.1 and
// returns it with a target verifying its CA.
func tlsFleet(t *testing.T) (*fleet.Fleet, sources.Target) {
	t.Helper()
	ps, err := model.Builtin()
	require.NoError(t, err)
	cfg := fleet.DefaultConfig
	cfg.Count = 1
	cfg.Protocols = "redfish"
	cfg.TLS = true
	cfg.Addressing = fleet.ByPort
	cfg.FirstAddress = netip.MustParseAddr("127.0.0.1")
	ln, err := net.Listen("tcp4", "127.0.0.1:0")
	require.NoError(t, err)
	cfg.RedfishPort = ln.Addr().(*net.TCPAddr).Port
	require.NoError(t, ln.Close())
	cfg.Mix = map[string]int{"openbmc": 1}
	f, err := fleet.New(cfg, ps)
	require.NoError(t, err)
	require.NoError(t, f.Start(fleet.StartOptions{IgnoreSensorLatency: true}))
	t.Cleanup(func() { require.NoError(t, f.Close()) })
	caFile := filepath.Join(t.TempDir(), "ca.pem")
	require.NoError(t, f.CA().WritePEM(caFile))
	m := f.Members[0]
	return f, sources.Target{Host: m.Addr.String(), Port: m.RedfishPort, Scheme: "https", Username: cfg.Username,
		Password: secret.Secret(cfg.Password), CAFile: caFile}
}

// TestTLSSessionResumption: polls reuse one kept-alive connection (no
// handshake after the first), and a reconnection resumes the TLS session
// instead of a full handshake, as the BMC's /traffic counts show.
func TestTLSSessionResumption(t *testing.T) {
	f, tg := tlsFleet(t)
	tr, err := redfish.NewTransport(tg)
	require.NoError(t, err)
	s := redfish.New(tg, redfish.Options{Transport: tr})
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = s.Close(ctx)
	})
	_, err = collect(t, s, 10*time.Second)
	require.NoError(t, err)
	_, err = collect(t, s, 10*time.Second)
	require.NoError(t, err)
	got := f.Traffic()
	require.Equal(t, uint64(1), got.RedfishConnections, "two polls, one kept-alive connection")
	require.Equal(t, uint64(1), got.TLSFullHandshakes)
	require.Equal(t, uint64(0), got.TLSResumedHandshakes)

	// The connection goes (as when the BMC's idle timeout closes it):
	// the next poll resumes the session.
	tr.CloseIdleConnections()
	_, err = collect(t, s, 10*time.Second)
	require.NoError(t, err)
	got = f.Traffic()
	require.Equal(t, uint64(2), got.RedfishConnections)
	require.Equal(t, uint64(1), got.TLSFullHandshakes, "no second full handshake")
	require.Equal(t, uint64(1), got.TLSResumedHandshakes)

	// A second source for the same BMC (the BMC handed to another worker
	// of this process) resumes too: the session cache is shared.
	tr2, err := redfish.NewTransport(tg)
	require.NoError(t, err)
	s2 := redfish.New(tg, redfish.Options{Transport: tr2})
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = s2.Close(ctx)
	})
	_, err = collect(t, s2, 10*time.Second)
	require.NoError(t, err)
	got = f.Traffic()
	require.Equal(t, uint64(1), got.TLSFullHandshakes)
	require.Equal(t, uint64(2), got.TLSResumedHandshakes)
}

// TestTransportKeptConnectionClosedByBMC: a BMC closing the kept
// connection between requests (its idle timeout, a restart of its web
// server) costs a new connection, not a failed request, for GET and POST
// alike; a connection in use is never shared.
func TestTransportKeptConnectionClosedByBMC(t *testing.T) {
	var conns, closed atomic.Int64
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		_, _ = io.WriteString(w, r.Method+" "+string(b))
	}))
	srv.Config.ConnState = func(_ net.Conn, st http.ConnState) {
		switch st {
		case http.StateNew:
			conns.Add(1)
		case http.StateClosed:
			closed.Add(1)
		}
	}
	srv.Start()
	t.Cleanup(srv.Close)
	tr, err := redfish.NewTransport(target(t, srv.URL))
	require.NoError(t, err)
	c := &http.Client{Transport: tr}
	t.Cleanup(c.CloseIdleConnections)
	do := func(method, body string) string {
		t.Helper()
		req, err := http.NewRequestWithContext(t.Context(), method, srv.URL+"/x", strings.NewReader(body))
		require.NoError(t, err)
		resp, err := c.Do(req)
		require.NoError(t, err)
		b, err := io.ReadAll(resp.Body)
		require.NoError(t, err)
		require.NoError(t, resp.Body.Close())
		return string(b)
	}
	require.Equal(t, "GET ", do(http.MethodGet, ""))
	require.Equal(t, "GET ", do(http.MethodGet, ""))
	require.Equal(t, int64(1), conns.Load(), "kept alive")
	for i, method := range []string{http.MethodGet, http.MethodPost} {
		srv.CloseClientConnections()
		// The server has closed its end (on loopback the FIN is with us
		// once close returns).
		testbed.Eventually(t, 5*time.Second, func() bool { return closed.Load() == conns.Load() }, "every server connection closed")
		require.Equal(t, method+" login", do(method, "login"))
		require.Equal(t, int64(2+i), conns.Load())
	}

	// A body not read to its end closes the connection rather than
	// leaving the next answer behind the rest of this one.
	req, err := http.NewRequestWithContext(t.Context(), http.MethodGet, srv.URL+"/x", nil)
	require.NoError(t, err)
	resp, err := c.Do(req)
	require.NoError(t, err)
	// While a request holds the connection, the next waits for it (and
	// gives up with its context).
	ctx, cancel := context.WithTimeout(t.Context(), 100*time.Millisecond)
	defer cancel()
	req2, err := http.NewRequestWithContext(ctx, http.MethodGet, srv.URL+"/x", nil)
	require.NoError(t, err)
	_, err = c.Do(req2)
	require.ErrorIs(t, err, context.DeadlineExceeded)
	require.NoError(t, resp.Body.Close())
	require.Equal(t, "GET ", do(http.MethodGet, ""))
	require.Equal(t, int64(4), conns.Load())
}

// TestTransportRefusesOtherHosts: the transport is one BMC's; a request for
// another host (a redirect the client would follow) is refused, so
// credentials never leave for it.
func TestTransportRefusesOtherHosts(t *testing.T) {
	tr, err := redfish.NewTransport(sources.Target{Host: "127.0.0.1", Port: 1, Scheme: "http"})
	require.NoError(t, err)
	req, err := http.NewRequest(http.MethodGet, "http://127.0.0.2:1/redfish/v1/", nil)
	require.NoError(t, err)
	_, err = tr.RoundTrip(req)
	require.ErrorContains(t, err, "refused")
}

// TestTransportIdleHoldsNoGoroutine: a kept-alive connection costs no
// goroutine while it idles (net/http's costs two).
func TestTransportIdleHoldsNoGoroutine(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { _, _ = io.WriteString(w, "{}") }))
	t.Cleanup(srv.Close)
	const n = 50
	trs := make([]*redfish.Transport, n)
	for i := range trs {
		tr, err := redfish.NewTransport(target(t, srv.URL))
		require.NoError(t, err)
		trs[i] = tr
	}
	get := func() {
		for _, tr := range trs {
			resp, err := (&http.Client{Transport: tr}).Get(srv.URL + "/")
			require.NoError(t, err)
			_, _ = io.Copy(io.Discard, resp.Body)
			require.NoError(t, resp.Body.Close())
		}
	}
	get() // the server's goroutines for n connections start
	before := settledGoroutines(t)
	get()
	require.LessOrEqual(t, settledGoroutines(t), before, "polling again on kept connections starts no goroutine")
	// n kept connections: the server holds n goroutines, the client none.
	for _, tr := range trs {
		tr.CloseIdleConnections()
	}
	testbed.Eventually(t, 5*time.Second, func() bool { return runtime.NumGoroutine() <= before-n },
		"closing the client's n idle connections ends only the server's n goroutines")
}

// settledGoroutines waits until the number of goroutines has stayed the
// same for 50 ms (a request's short-lived goroutines, such as the server's
// background read, have ended) and returns it.
func settledGoroutines(t *testing.T) int {
	t.Helper()
	last, same := runtime.NumGoroutine(), 0
	testbed.Eventually(t, 5*time.Second, func() bool {
		if n := runtime.NumGoroutine(); n != last {
			last, same = n, 0
			return false
		}
		same++
		return same >= 5
	}, "the number of goroutines settled")
	return last
}
