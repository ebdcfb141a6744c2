package redfish

import (
	"bufio"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strconv"
	"sync"
	"time"

	"github.com/bmcstream/bmcstream/pkg/sources"
)

// Transport is the HTTP/1.1 transport of one BMC: a single connection kept
// alive between polls, and nothing else held while it idles. net/http's
// Transport keeps two goroutines (readLoop, writeLoop) and a 4 KiB bufio
// reader and writer per kept-alive connection, about 16 KiB of stacks and
// buffers per BMC in a poller that holds ten thousand of them; this one
// keeps the TLS connection alone, borrows its buffers from a pool shared by
// every BMC for the length of a request, and checks the connection is still
// open (a non-blocking peek) before reusing it, where net/http's readLoop
// would have noticed the close.
//
// It sends no proxy (BMC networks are management networks), asks for no
// compression, and retries a GET (or a request that found its reused
// connection closed before writing) once on a new connection when the BMC
// closed the kept one without answering, as net/http does. Redirects are
// the http.Client's business. It is safe for concurrent use; requests wait
// for the one connection in turn.
type Transport struct {
	scheme string
	addr   string // host:port
	// tls is nil for plain HTTP. Its ServerName is the host.
	tls            *tls.Config
	dialer         net.Dialer
	handshakeLimit time.Duration
	idleTimeout    time.Duration

	// sem holds the connection: a request takes it for its whole life
	// (until its body is closed).
	sem  chan struct{}
	mu   sync.Mutex // guards conn, idle against CloseIdleConnections
	conn net.Conn
	idle time.Time // when conn was last released
	// closed is set by CloseIdleConnections for the connection in use:
	// it is closed when released.
	closed bool
}

// bufferSize is the size of the pooled bufio reader and writer: a request
// (headers and a login body) fits in one write; responses are read through
// it in pieces of this size.
const bufferSize = 4 << 10

var (
	readers = sync.Pool{New: func() any { return bufio.NewReaderSize(nil, bufferSize) }}
	writers = sync.Pool{New: func() any { return bufio.NewWriterSize(nil, bufferSize) }}
)

// DefaultSessionCacheSize bounds the TLS sessions remembered for
// resumption, shared by every BMC of a process: a reconnecting BMC (after
// its own idle timeout, a restart of its web server, or a transport error)
// then skips the certificate signature and verification of a full
// handshake, when it offers resumption. An entry is a session ticket and a
// reference to the peer's certificates, which the open connection holds
// anyway.
const DefaultSessionCacheSize = 16384

var sessionCache = tls.NewLRUClientSessionCache(DefaultSessionCacheSize)

// keyedCache keys a BMC's sessions by its address as well as its TLS server
// name (which is all crypto/tls keys them by): two BMCs behind one address
// on different ports do not take each other's tickets.
type keyedCache struct {
	prefix string
	c      tls.ClientSessionCache
}

func (k keyedCache) Get(key string) (*tls.ClientSessionState, bool) { return k.c.Get(k.prefix + key) }
func (k keyedCache) Put(key string, cs *tls.ClientSessionState)     { k.c.Put(k.prefix+key, cs) }

// caPools shares the parsed pool of a CA file among every BMC that names
// it: one parse per file (and per change of it), not one per BMC.
var caPools struct {
	sync.Mutex
	m map[string]caPool
}

type caPool struct {
	mod  time.Time
	size int64
	pool *x509.CertPool
}

// loadCAPool returns the pool of the certificates in path, shared with every
// caller naming the same unchanged file.
func loadCAPool(path string) (*x509.CertPool, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return nil, fmt.Errorf("read CA file: %w", err)
	}
	caPools.Lock()
	defer caPools.Unlock()
	if p, ok := caPools.m[path]; ok && p.mod.Equal(fi.ModTime()) && p.size == fi.Size() {
		return p.pool, nil
	}
	pem, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read CA file: %w", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		return nil, fmt.Errorf("read CA file %s: no PEM certificate in it", path)
	}
	if caPools.m == nil {
		caPools.m = map[string]caPool{}
	}
	caPools.m[path] = caPool{mod: fi.ModTime(), size: fi.Size(), pool: pool}
	return pool, nil
}

// NewTransport returns the transport a Source builds for t when Options
// has none: HTTP/1.1 only (what BMCs speak), one connection to the BMC kept
// alive between polls, no proxy (BMC networks are management networks),
// TLS 1.2 or later verified against t.CAFile (the system roots when empty)
// unless t.InsecureSkipVerify opts out, TLS sessions resumed where the BMC
// offers it. Tests wrap it to count requests.
func NewTransport(t sources.Target) (*Transport, error) {
	scheme := t.Scheme
	if scheme == "" {
		scheme = "https"
	}
	port := t.Port
	if port == 0 {
		port = 443
		if scheme == "http" {
			port = 80
		}
	}
	addr := net.JoinHostPort(t.Host, strconv.Itoa(port))
	tr := &Transport{
		scheme:         scheme,
		addr:           addr,
		dialer:         net.Dialer{KeepAlive: 30 * time.Second},
		handshakeLimit: DefaultRequestTimeout,
		idleTimeout:    idleConnTimeout,
		sem:            make(chan struct{}, 1),
	}
	if scheme == "http" {
		return tr, nil
	}
	cfg := &tls.Config{
		MinVersion:         tls.VersionTLS12,
		ServerName:         t.Host,
		NextProtos:         []string{"http/1.1"},
		ClientSessionCache: keyedCache{prefix: addr + "|", c: sessionCache},
	}
	if t.InsecureSkipVerify {
		// An explicit, per-target opt-in (sources.Target documents it).
		cfg.InsecureSkipVerify = true //nolint:gosec
	} else if t.CAFile != "" {
		pool, err := loadCAPool(t.CAFile)
		if err != nil {
			return nil, err
		}
		cfg.RootCAs = pool
	}
	tr.tls = cfg
	return tr, nil
}

// CloseIdleConnections closes the kept connection; one in use is closed
// when its request ends.
func (tr *Transport) CloseIdleConnections() {
	tr.mu.Lock()
	defer tr.mu.Unlock()
	select {
	case tr.sem <- struct{}{}:
		if tr.conn != nil {
			_ = tr.conn.Close() // an idle connection dropped; nothing was in flight on it
			tr.conn = nil
		}
		<-tr.sem
	default:
		tr.closed = true
	}
}

// RoundTrip implements http.RoundTripper.
func (tr *Transport) RoundTrip(req *http.Request) (*http.Response, error) {
	if req.URL.Scheme != tr.scheme || req.URL.Host != tr.addr && req.URL.Host != hostOnly(tr.addr, tr.scheme) {
		closeBody(req)
		return nil, fmt.Errorf("transport for %s://%s: request to %s://%s refused", tr.scheme, tr.addr, req.URL.Scheme, req.URL.Host)
	}
	ctx := req.Context()
	select {
	case tr.sem <- struct{}{}:
	case <-ctx.Done():
		closeBody(req)
		return nil, ctx.Err()
	}
	resp, err := tr.roundTrip(ctx, req)
	if err != nil {
		<-tr.sem
		return nil, err
	}
	return resp, nil
}

// hostOnly is addr without the scheme's default port, how a URL may name
// it.
func hostOnly(addr, scheme string) string {
	// an addr without a port has no default port to drop: p is "" and addr is kept
	h, p, _ := net.SplitHostPort(addr)
	if (scheme == "https" && p == "443") || (scheme == "http" && p == "80") {
		return h
	}
	return addr
}

func closeBody(req *http.Request) {
	if req.Body != nil {
		_ = req.Body.Close() // the request body is not sent; closing it only releases it
	}
}

// replayable says a request may be sent again on a new connection when the
// kept one turned out closed: net/http's rule.
func replayable(req *http.Request) bool {
	switch req.Method {
	case "", http.MethodGet, http.MethodHead, http.MethodOptions, http.MethodTrace:
		return req.Body == nil || req.Body == http.NoBody || req.GetBody != nil
	}
	return false
}

// roundTrip runs the request holding the semaphore; on success the
// response's body releases it.
func (tr *Transport) roundTrip(ctx context.Context, req *http.Request) (*http.Response, error) {
	for attempt := 0; ; attempt++ {
		c, reused, err := tr.take(ctx)
		if err != nil {
			closeBody(req)
			return nil, err
		}
		resp, written, err := tr.exchange(ctx, c, req)
		if err == nil {
			return resp, nil
		}
		_ = c.Close() // the exchange failed; its error is the one to report
		if ctx.Err() != nil {
			closeBody(req)
			return nil, ctx.Err()
		}
		// A kept connection the BMC closed while we wrote or before it
		// answered: try once more on a new one, when that is safe.
		if !reused || attempt > 0 || !staleConn(err) || (written && !replayable(req)) {
			closeBody(req)
			return nil, err
		}
		if req.GetBody != nil && req.Body != nil && req.Body != http.NoBody {
			body, gerr := req.GetBody()
			if gerr != nil {
				return nil, err
			}
			req = req.Clone(ctx)
			req.Body = body
		}
	}
}

// staleConn says err is what a kept connection closed by the BMC gives.
func staleConn(err error) bool {
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return false
	}
	return errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) || transportClass(err) == sources.ClassUnreachable
}

// take returns the kept connection, or a new one when there is none or it
// is closed or idled past the idle timeout. reused says it was kept.
func (tr *Transport) take(ctx context.Context) (net.Conn, bool, error) {
	tr.mu.Lock()
	c, idle := tr.conn, tr.idle
	tr.conn, tr.closed = nil, false
	tr.mu.Unlock()
	if c != nil {
		// One non-blocking system call: the check net/http's readLoop
		// makes by waiting on every idle connection.
		if time.Since(idle) <= tr.idleTimeout && alive(c) {
			return c, true, nil
		}
		_ = c.Close() // a stale idle connection dropped; nothing was in flight on it
	}
	c, err := tr.dial(ctx)
	return c, false, err
}

func (tr *Transport) dial(ctx context.Context) (net.Conn, error) {
	raw, err := tr.dialer.DialContext(ctx, "tcp", tr.addr)
	if err != nil {
		return nil, err
	}
	if tr.tls == nil {
		return raw, nil
	}
	hctx, cancel := context.WithTimeout(ctx, tr.handshakeLimit)
	defer cancel()
	c := tls.Client(raw, tr.tls)
	if err := c.HandshakeContext(hctx); err != nil {
		_ = raw.Close() // the handshake error is the one to report
		if errors.Is(err, context.DeadlineExceeded) && ctx.Err() == nil {
			return nil, fmt.Errorf("TLS handshake timeout after %s: %w", tr.handshakeLimit, err)
		}
		return nil, err
	}
	return c, nil
}

// exchange writes req on c and reads the response's head. written says
// the request may have reached the BMC.
func (tr *Transport) exchange(ctx context.Context, c net.Conn, req *http.Request) (_ *http.Response, written bool, _ error) {
	// The context's end interrupts the connection's reads and writes.
	stop := context.AfterFunc(ctx, func() { _ = c.SetDeadline(time.Unix(1, 0)) })
	if d, ok := ctx.Deadline(); ok {
		_ = c.SetDeadline(d) // a failure shows as the exchange's own error or timeout
	} else {
		_ = c.SetDeadline(time.Time{}) // as above
	}
	w := writers.Get().(*bufio.Writer)
	w.Reset(c)
	err := req.Write(w)
	if err == nil {
		err = w.Flush()
	}
	w.Reset(nil)
	writers.Put(w)
	if err != nil {
		stop()
		return nil, true, err
	}
	r := readers.Get().(*bufio.Reader)
	r.Reset(c)
	var resp *http.Response
	for {
		resp, err = http.ReadResponse(r, req)
		if err != nil {
			break
		}
		// Skip interim answers (100 Continue, 102, 103) as net/http does.
		if resp.StatusCode >= 100 && resp.StatusCode < 200 && resp.StatusCode != http.StatusSwitchingProtocols {
			continue
		}
		break
	}
	if err != nil {
		stop()
		r.Reset(nil)
		readers.Put(r)
		return nil, true, err
	}
	resp.Body = &body{tr: tr, c: c, r: r, rc: resp.Body, stop: stop, reuse: !resp.Close && !req.Close}
	return resp, true, nil
}

// body is a response's body: closing it gives the connection back (when
// the body was read to its end and the BMC keeps the connection) or closes
// it.
type body struct {
	tr    *Transport
	c     net.Conn
	r     *bufio.Reader
	rc    io.ReadCloser
	stop  func() bool
	reuse bool
	eof   bool
	done  bool
}

func (b *body) Read(p []byte) (int, error) {
	if b.done {
		return 0, errors.New("http: read on closed response body")
	}
	n, err := b.rc.Read(p)
	if err == io.EOF {
		b.eof = true
	}
	return n, err
}

func (b *body) Close() error {
	if b.done {
		return nil
	}
	b.done = true
	if !b.eof {
		// An empty body (204, 304, HEAD) ends without a read.
		var one [1]byte
		if n, err := b.rc.Read(one[:]); n == 0 && err == io.EOF {
			b.eof = true
		}
	}
	_ = b.rc.Close() // the body is read to its end; the connection's fate is decided below
	keep := b.stop() && b.reuse && b.eof && b.r.Buffered() == 0
	b.r.Reset(nil)
	readers.Put(b.r)
	tr := b.tr
	tr.mu.Lock()
	if keep && !tr.closed {
		// a connection that cannot clear its deadline fails its next exchange, which redials
		_ = b.c.SetDeadline(time.Time{})
		tr.conn, tr.idle = b.c, time.Now()
	} else {
		_ = b.c.Close() // a connection not kept: nothing is in flight on it
	}
	tr.closed = false
	tr.mu.Unlock()
	<-tr.sem
	return nil
}
