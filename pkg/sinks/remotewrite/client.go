package remotewrite

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/common/config"
)

// WriteClient sends one encoded remote-write request. It is the boundary
// between a Queue and the network, and the seam tests replace.
//
// Contract:
//   - req is a snappy-compressed (block format) prompb.WriteRequest. It is
//     owned by the caller and reused for the next request as soon as Store
//     returns: Store must not retain it, nor let anything read it, after it
//     returns.
//   - attempt is 0 for the first try of a request and counts retries.
//   - A nil error means the receiver accepted the request (2xx).
//   - A RecoverableError (errors.As) means the same request may succeed
//     later; the queue retries it. Any other error is permanent: the queue
//     drops the request's samples and counts them. A *StatusError in the
//     chain gives the drop its reason and the request its code label.
//   - Store returns promptly once ctx is done.
//   - Store is called concurrently, one call per shard at a time.
type WriteClient interface {
	Store(ctx context.Context, req []byte, attempt int) error
}

// RecoverableError marks an error after which the same request may succeed
// if retried: network errors, timeouts, 5xx and (when configured) 429.
type RecoverableError struct {
	// Err is the cause.
	Err error
	// RetryAfter is the delay the receiver asked for in a Retry-After
	// header, or zero. The queue waits at least this long before retrying.
	RetryAfter time.Duration
}

// Error implements error.
func (e RecoverableError) Error() string { return e.Err.Error() }

// Unwrap returns the cause.
func (e RecoverableError) Unwrap() error { return e.Err }

// StatusError is a non-2xx answer from the receiver.
type StatusError struct {
	// StatusCode is the HTTP status code.
	StatusCode int
	// Body is the start of the response body (at most maxErrBody bytes),
	// which receivers use to say what they rejected.
	Body string
}

// Error implements error.
func (e *StatusError) Error() string {
	msg := fmt.Sprintf("server returned HTTP status %d %s", e.StatusCode, http.StatusText(e.StatusCode))
	if e.Body != "" {
		msg += ": " + e.Body
	}
	return msg
}

const (
	// maxErrBody bounds how much of a non-2xx body goes into an error.
	maxErrBody = 1024
	// maxDrain bounds how much of a response body is read to let the
	// connection be reused. A receiver that answers with more than this is
	// misbehaving; closing its connection is cheaper than reading on.
	maxDrain = 256 << 10
)

// Client is the HTTP WriteClient: it POSTs to a remote-write 1.0 endpoint
// with the headers the specification requires, the configured headers and
// tenant, and the configured authentication and TLS.
type Client struct {
	url        string
	timeout    time.Duration
	retryOn429 bool
	header     http.Header
	client     *http.Client
}

// NewClient builds a Client from cfg. version is bmcstream's version, sent as
// "User-Agent: bmcstream/<version>". Credential files are read on use, so a
// rotated password or token file is picked up without a restart.
func NewClient(cfg Config, version string) (*Client, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("validate remote write config %q: %w", cfg.Name, err)
	}
	// The transport prometheus/common builds allows 1000 idle connections per
	// host, so the shards' concurrent requests do not churn connections
	// (golang/go#13801); no need to raise MaxIdleConnsPerHost here.
	hc, err := config.NewClientFromConfig(cfg.HTTPClientConfig, "remote_write_"+cfg.Name)
	if err != nil {
		return nil, fmt.Errorf("build http client for remote write %q: %w", cfg.Name, err)
	}
	h := make(http.Header, len(cfg.Headers)+6)
	for k, v := range cfg.Headers {
		h.Set(k, v)
	}
	if cfg.OrgID != "" {
		h.Set(OrgIDHeader, cfg.OrgID)
	}
	if cfg.ThanosTenant != "" {
		h.Set(ThanosTenantHeader, cfg.ThanosTenant)
	}
	// Set last: Validate rejects these names in Headers, but this order makes
	// the specification's values win even if it did not.
	h.Set("Content-Encoding", "snappy")
	h.Set("Content-Type", "application/x-protobuf")
	h.Set("X-Prometheus-Remote-Write-Version", "0.1.0")
	h.Set("User-Agent", "bmcstream/"+version)
	return &Client{
		url:        cfg.URL.String(),
		timeout:    time.Duration(cfg.RemoteTimeout),
		retryOn429: cfg.QueueConfig.RetryOnRateLimit,
		header:     h,
		client:     hc,
	}, nil
}

// CloseIdleConnections closes the client's idle keep-alive connections.
// Call it when the sink is removed.
func (c *Client) CloseIdleConnections() { c.client.CloseIdleConnections() }

// Store implements WriteClient.
func (c *Client) Store(ctx context.Context, req []byte, attempt int) error {
	reqCtx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()

	// net/http may still read a request body after Do returns (for example
	// when the server answers before reading it all), but req is reused by
	// the caller as soon as Store returns: revoke all readers on return.
	guard := &bodyGuard{data: req}
	defer guard.revoke()

	httpReq, err := http.NewRequestWithContext(reqCtx, http.MethodPost, c.url, guard.newReader())
	if err != nil {
		return fmt.Errorf("build remote write request: %w", err)
	}
	httpReq.ContentLength = int64(len(req))
	httpReq.GetBody = func() (io.ReadCloser, error) { return guard.newReader(), nil }
	httpReq.Header = c.header.Clone()
	if attempt > 0 {
		// Not in the 1.0 specification; Mimir uses it to size Retry-After.
		httpReq.Header.Set("Retry-Attempt", strconv.Itoa(attempt))
	}

	resp, err := c.client.Do(httpReq)
	if err != nil {
		if ctx.Err() != nil {
			// The caller gave up (the queue is stopping): not a receiver
			// problem, and not worth a retry.
			return fmt.Errorf("send remote write request: %w", err)
		}
		// Network errors and our own remote_timeout: the request may
		// succeed on another connection or once the receiver is back.
		return RecoverableError{Err: fmt.Errorf("send remote write request: %w", err)}
	}
	defer func() {
		// draining lets the connection be reused; a failure only costs that
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, maxDrain))
		_ = resp.Body.Close() // Nothing to do about a close error of a read body.
	}()

	if resp.StatusCode/100 == 2 {
		return nil
	}
	// the status decides; the body, when it reads, only adds detail to the error
	body, _ := io.ReadAll(io.LimitReader(resp.Body, maxErrBody))
	serr := &StatusError{StatusCode: resp.StatusCode, Body: strings.TrimSpace(string(body))}
	switch {
	case resp.StatusCode/100 == 5,
		resp.StatusCode == http.StatusTooManyRequests && c.retryOn429:
		return RecoverableError{
			Err:        serr,
			RetryAfter: parseRetryAfter(resp.Header.Get("Retry-After"), time.Now()),
		}
	default:
		return serr
	}
}

// parseRetryAfter reads a Retry-After value: delay-seconds or an HTTP date
// (RFC 9110, section 10.2.3). It returns zero for a missing, malformed or
// past value.
func parseRetryAfter(v string, now time.Time) time.Duration {
	v = strings.TrimSpace(v)
	if v == "" {
		return 0
	}
	if secs, err := strconv.ParseInt(v, 10, 64); err == nil {
		if secs <= 0 {
			return 0
		}
		// Cap before multiplying so a huge value cannot overflow.
		const maxSecs = int64((1<<63 - 1) / int64(time.Second))
		return time.Duration(min(secs, maxSecs)) * time.Second
	}
	if t, err := http.ParseTime(v); err == nil {
		if d := t.Sub(now); d > 0 {
			return d
		}
	}
	return 0
}

// errBodyRevoked is what a request body reads after Store returned.
var errBodyRevoked = errors.New("remote write request body read after Store returned")

// bodyGuard hands out readers of data that all stop working once revoke is
// called, so net/http cannot read a buffer its owner has reused.
type bodyGuard struct {
	mu      sync.Mutex
	data    []byte
	revoked bool
}

func (g *bodyGuard) newReader() *guardedReader { return &guardedReader{g: g} }

func (g *bodyGuard) revoke() {
	g.mu.Lock()
	g.revoked = true
	g.data = nil
	g.mu.Unlock()
}

// guardedReader is one read of a bodyGuard's data (GetBody makes more).
type guardedReader struct {
	g   *bodyGuard
	off int
}

// Read implements io.Reader.
func (r *guardedReader) Read(p []byte) (int, error) {
	r.g.mu.Lock()
	defer r.g.mu.Unlock()
	if r.g.revoked {
		return 0, errBodyRevoked
	}
	if r.off >= len(r.g.data) {
		return 0, io.EOF
	}
	n := copy(p, r.g.data[r.off:])
	r.off += n
	return n, nil
}

// Close implements io.Closer.
func (r *guardedReader) Close() error { return nil }
