package redfish

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/bmcstream/bmcstream/pkg/secret"
	"github.com/bmcstream/bmcstream/pkg/sources"
)

// maxBody bounds a response body. An expanded Sensors collection of a large
// server is a few hundred kilobytes; anything past this is not a Redfish
// document worth holding in memory.
const maxBody = 16 << 20

// idleConnTimeout is how long the transport keeps the BMC's connection idle
// between polls. Reusing it spares the BMC's slow CPU a TLS handshake per
// poll; BMCs close idle connections on their own schedule, which the
// transport notices before reusing one (and a GET finding it closed anyway
// is retried once on a new connection).
const idleConnTimeout = 2 * time.Minute

func (s *Source) setupClient() error {
	rt := s.opts.Transport
	if rt == nil {
		t, err := NewTransport(s.target)
		if err != nil {
			return &sources.Error{Class: sources.ClassProtocol, Err: fmt.Errorf("set up TLS for %s: %w", s.host, err)}
		}
		rt = t
	}
	s.client = &http.Client{
		Transport: rt,
		// Follow a redirect only within the BMC: net/http would carry the
		// X-Auth-Token header to any host a redirect names.
		CheckRedirect: func(req *http.Request, via []*http.Request) error {
			if len(via) >= 3 || req.URL.Scheme != via[0].URL.Scheme || req.URL.Host != via[0].URL.Host {
				return http.ErrUseLastResponse
			}
			return nil
		},
	}
	return nil
}

// request is one HTTP request to the BMC.
type request struct {
	// action names the request in errors: "get /redfish/v1/Chassis/1/Thermal
	// of 10.0.0.5".
	action string
	method string
	// uri is a path on the BMC; query is added verbatim ("$expand=.").
	uri, query string
	body       []byte
	// etag makes the GET conditional (If-None-Match).
	etag string
	// auth sends the credentials: basic auth, or the session's token (or
	// token when set).
	auth  bool
	token secret.Secret
}

// response is the BMC's answer, body read.
type response struct {
	status      int
	header      http.Header
	body        []byte
	etag        string
	notModified bool
}

// send sends one request, bounded by the poll's context and
// RequestTimeout, and reads the whole answer. Transport failures come back
// classified; any HTTP answer, whatever its status, is a response.
func (s *Source) send(p *poll, r request) (*response, error) {
	ctx, cancel := context.WithTimeout(p.ctx, s.opts.RequestTimeout)
	defer cancel()
	u := s.base + r.uri
	if r.query != "" {
		u += "?" + r.query
	}
	var body io.Reader
	if r.body != nil {
		body = bytes.NewReader(r.body)
	}
	req, err := http.NewRequestWithContext(ctx, r.method, u, body)
	if err != nil {
		return nil, &sources.Error{Class: sources.ClassProtocol, Err: fmt.Errorf("%s: %w", r.action, err)}
	}
	req.Header.Set("Accept", "application/json")
	req.Header.Set("OData-Version", "4.0")
	req.Header.Set("User-Agent", "bmcstream")
	if r.body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if r.auth {
		switch {
		case r.token != "":
			req.Header.Set("X-Auth-Token", r.token.Reveal())
		case s.opts.BasicAuth:
			req.SetBasicAuth(s.target.Username, s.target.Password.Reveal())
		case s.token != "":
			req.Header.Set("X-Auth-Token", s.token.Reveal())
		}
	}
	if r.etag != "" {
		req.Header.Set("If-None-Match", r.etag)
	}
	s.stats.requests.Add(1)
	resp, err := s.client.Do(req)
	if err != nil {
		return nil, s.transportError(r.action, err)
	}
	defer func() { _ = resp.Body.Close() }() // the body is read before return; a close error changes nothing
	p.answered = true
	b, err := io.ReadAll(io.LimitReader(resp.Body, maxBody+1))
	if err != nil {
		return nil, s.transportError(r.action, err)
	}
	if len(b) > maxBody {
		return nil, &sources.Error{Class: sources.ClassDecode, Err: fmt.Errorf("%s: answer larger than %d bytes", r.action, maxBody)}
	}
	return &response{status: resp.StatusCode, header: resp.Header, body: b, etag: resp.Header.Get("ETag")}, nil
}

// transportError classifies a request that got no HTTP answer.
func (s *Source) transportError(action string, err error) *sources.Error {
	var ue *url.Error
	if errors.As(err, &ue) {
		err = ue.Err // the action names the request; the URL adds nothing
	}
	class := transportClass(err)
	if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
		err = fmt.Errorf("the BMC closed the connection without answering: %w", err)
	}
	if class == sources.ClassProtocol && isTLSVerify(err) {
		hint := "give the target the CA file that signed its certificate"
		if s.target.CAFile != "" {
			hint = "the CA file " + s.target.CAFile + " did not sign its certificate"
		}
		err = fmt.Errorf("verify the BMC's TLS certificate (%s, or opt in to skipping verification): %w", hint, err)
	}
	return &sources.Error{Class: class, Err: fmt.Errorf("%s: %w", action, err)}
}

func transportClass(err error) sources.Class {
	var ne net.Error
	switch {
	case errors.Is(err, context.DeadlineExceeded), errors.Is(err, context.Canceled),
		errors.As(err, &ne) && ne.Timeout():
		return sources.ClassTimeout
	case isTLSVerify(err), isTLS(err):
		return sources.ClassProtocol
	}
	var dns *net.DNSError
	var op *net.OpError
	switch {
	case errors.Is(err, syscall.ECONNREFUSED), errors.Is(err, syscall.EHOSTUNREACH),
		errors.Is(err, syscall.ENETUNREACH), errors.Is(err, syscall.ECONNRESET),
		errors.Is(err, syscall.EPIPE), errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF),
		errors.As(err, &dns), errors.As(err, &op):
		// Refused, unroutable, unknown, or a connection dropped before
		// any answer (a BMC whose web server died).
		return sources.ClassUnreachable
	}
	return sources.ClassProtocol
}

func isTLSVerify(err error) bool {
	var (
		cve *tls.CertificateVerificationError
		ua  x509.UnknownAuthorityError
		he  x509.HostnameError
		ci  x509.CertificateInvalidError
	)
	return errors.As(err, &cve) || errors.As(err, &ua) || errors.As(err, &he) || errors.As(err, &ci)
}

func isTLS(err error) bool {
	var (
		rh tls.RecordHeaderError
		ae tls.AlertError
	)
	return errors.As(err, &rh) || errors.As(err, &ae)
}

// statusError is an HTTP answer other than success.
type statusError struct {
	code int
	// msg is the Redfish error's message id and text, when the body held
	// one.
	msg string
}

func (e *statusError) Error() string {
	s := strconv.Itoa(e.code) + " " + http.StatusText(e.code)
	if e.msg != "" {
		s += ": " + e.msg
	}
	return s
}

// statusCode returns the HTTP status of a failed request, 0 when it got no
// answer.
func statusCode(err error) int {
	var se *statusError
	if errors.As(err, &se) {
		return se.code
	}
	return 0
}

// failure classifies an unsuccessful answer. login says the request was a
// login, whose refusals read differently.
func (s *Source) failure(action string, resp *response, login bool) *sources.Error {
	id, msg := redfishMessage(resp.body)
	text := msg
	if id != "" && msg != "" {
		text = id + ": " + msg
	} else if id != "" {
		text = id
	}
	se := &statusError{code: resp.status, msg: s.redact(text)}
	e := &sources.Error{Class: sources.ClassProtocol, Err: fmt.Errorf("%s: %w", action, se)}
	switch {
	case sessionLimit(id, msg, resp.body) && (login || resp.status == http.StatusServiceUnavailable):
		e.Class = sources.ClassSessionLimit
	case resp.status == http.StatusUnauthorized, resp.status == http.StatusForbidden:
		e.Class = sources.ClassAuth
	case resp.status == http.StatusTooManyRequests, resp.status == http.StatusServiceUnavailable:
		e.Class = sources.ClassRateLimited
	}
	if e.Class == sources.ClassRateLimited || e.Class == sources.ClassSessionLimit {
		e.RetryAfter = retryAfter(resp.header.Get("Retry-After"), s.now())
	}
	return e
}

// sessionLimit reports whether an error answer says the BMC holds all the
// sessions it can: DMTF's SessionLimitExceeded, iDRAC's "RAC0218: The
// maximum number of user sessions is reached", or a create limit reached
// on the Sessions collection.
func sessionLimit(id, msg string, body []byte) bool {
	if strings.HasSuffix(id, "SessionLimitExceeded") || strings.HasSuffix(id, "CreateLimitReachedForResource") {
		return true
	}
	lower := strings.ToLower(msg + " " + string(body))
	return strings.Contains(lower, "maximum number of user sessions") || strings.Contains(lower, "sessionlimitexceeded")
}

// redfishMessage returns the first message id and text of a Redfish error
// body ({"error": {"code", "message", "@Message.ExtendedInfo": [...]}}),
// empty when the body is not one. Text is cut to a line's length.
func redfishMessage(body []byte) (id, msg string) {
	var e struct {
		Error struct {
			Code    str `json:"code"`
			Message str `json:"message"`
			Info    []struct {
				MessageID str `json:"MessageId"`
				Message   str
			} `json:"@Message.ExtendedInfo"`
		} `json:"error"`
	}
	if decodeLenient(body, &e) != nil {
		return "", ""
	}
	id, msg = string(e.Error.Code), string(e.Error.Message)
	if len(e.Error.Info) > 0 {
		if i := e.Error.Info[0]; i.MessageID != "" || i.Message != "" {
			id, msg = string(i.MessageID), string(i.Message)
		}
	}
	const max = 240
	if len(msg) > max {
		msg = msg[:max] + "…"
	}
	if len(id) > 80 {
		id = id[:80]
	}
	return id, msg
}

// redact removes the credentials from text a BMC wrote, should it ever
// echo them.
func (s *Source) redact(text string) string {
	for _, c := range []string{s.target.Password.Reveal(), s.token.Reveal()} {
		if c != "" {
			text = strings.ReplaceAll(text, c, secret.Redacted)
		}
	}
	return text
}

// retryAfter reads a Retry-After header: seconds, or an HTTP date.
func retryAfter(v string, now time.Time) time.Duration {
	v = strings.TrimSpace(v)
	if v == "" {
		return 0
	}
	if n, err := strconv.Atoi(v); err == nil {
		return time.Duration(max(n, 0)) * time.Second
	}
	if t, err := http.ParseTime(v); err == nil && t.After(now) {
		return t.Sub(now)
	}
	return 0
}

// get GETs a resource with the session, logging in again once on 401 (the
// session expired or the BMC restarted). A 304 answer comes back with
// notModified set; any other answer but success is an error.
func (s *Source) get(p *poll, uri, query, etag string) (*response, error) {
	r := request{action: "get " + uri + " of " + s.host, method: http.MethodGet, uri: uri, query: query, etag: etag, auth: true}
	resp, err := s.send(p, r)
	if err != nil {
		return nil, err
	}
	if resp.status == http.StatusUnauthorized && !s.opts.BasicAuth && !p.relogged {
		disc := s.disc
		if err := s.relogin(p); err != nil {
			return nil, err
		}
		if disc != nil && s.disc == nil {
			return nil, &sources.Error{Class: sources.ClassProtocol, Err: fmt.Errorf("%s: the service changed (new service root UUID); discovering it again", r.action)}
		}
		if resp, err = s.send(p, r); err != nil {
			return nil, err
		}
	}
	switch {
	case resp.status == http.StatusNotModified && etag != "":
		resp.notModified = true
		s.stats.notModified.Add(1)
	case resp.status >= 200 && resp.status < 300:
	default:
		return nil, s.failure(r.action, resp, false)
	}
	return resp, nil
}

// readRoot reads the service root (public, no credentials needed) once per
// poll at most. A UUID other than the last one read means another service
// answers at this address now (a replaced board, a reflashed BMC):
// discovery starts again.
func (s *Source) readRoot(p *poll) (*rootDoc, error) {
	if p.rootRead && s.root != nil {
		return s.root, nil
	}
	const uri = "/redfish/v1/"
	action := "get " + uri + " of " + s.host
	resp, err := s.send(p, request{action: action, method: http.MethodGet, uri: uri, auth: s.opts.BasicAuth})
	if err != nil {
		return nil, err
	}
	if resp.status < 200 || resp.status >= 300 {
		return nil, s.failure(action, resp, false)
	}
	var root rootDoc
	if err := decodeLenient(resp.body, &root); err != nil {
		return nil, &sources.Error{Class: sources.ClassDecode, Err: fmt.Errorf("decode %s of %s: %w", uri, s.host, err)}
	}
	if uuid := string(root.UUID); uuid != "" {
		if s.rootUUID != "" && uuid != s.rootUUID && s.disc != nil {
			s.log.Debug("service root UUID changed; discovering again", "host", s.host, "old_uuid", s.rootUUID, "uuid", uuid)
			s.invalidate()
		}
		s.rootUUID = uuid
	}
	s.root, p.rootRead = &root, true
	return &root, nil
}

// login reads the service root and opens a session.
func (s *Source) login(p *poll) error {
	root, err := s.readRoot(p)
	if err != nil {
		return err
	}
	uri := canonicalURI(string(root.Links.Sessions.ID))
	if uri == "" {
		uri = "/redfish/v1/SessionService/Sessions"
	}
	body, err := json.Marshal(struct {
		UserName string
		Password string
	}{s.target.Username, s.target.Password.Reveal()})
	if err != nil {
		return fmt.Errorf("encode login of %s: %w", s.host, err)
	}
	defer clear(body)
	action := "log in to " + s.host + " as " + s.target.Username
	resp, err := s.send(p, request{action: action, method: http.MethodPost, uri: uri, body: body})
	if err != nil {
		return err
	}
	if resp.status < 200 || resp.status >= 300 {
		return s.failure(action, resp, true)
	}
	token := resp.header.Get("X-Auth-Token")
	if token == "" {
		return &sources.Error{Class: sources.ClassProtocol, Err: fmt.Errorf("%s: the answer (%d) carries no X-Auth-Token", action, resp.status)}
	}
	loc := canonicalURI(resp.header.Get("Location"))
	if loc == "" {
		var doc struct {
			ID str `json:"@odata.id"`
		}
		if decodeLenient(resp.body, &doc) == nil {
			loc = canonicalURI(string(doc.ID))
		}
	}
	s.token, s.sessionURI = secret.Secret(token), loc
	s.stats.logins.Add(1)
	s.log.Debug("logged in to redfish", "host", s.host, "session", loc)
	return nil
}

// relogin logs in again after a 401, ending the refused session first in
// case the BMC still holds it (a BMC answering 401 for another reason
// would otherwise fill its session table with ours).
func (s *Source) relogin(p *poll) error {
	p.relogged = true
	s.log.Debug("session refused; logging in again", "host", s.host)
	if tok, uri := s.token, s.sessionURI; tok != "" && uri != "" {
		s.token, s.sessionURI = "", ""
		// best effort: the refused session is dropped whatever the BMC answers
		_, _ = s.send(p, request{action: "log out of " + s.host, method: http.MethodDelete, uri: uri, auth: true, token: tok})
	}
	s.token, s.sessionURI = "", ""
	return s.login(p)
}

// logout ends the session, if any. A session the BMC no longer knows (404,
// 401) is ended already.
func (s *Source) logout(ctx context.Context) error {
	tok, uri := s.token, s.sessionURI
	s.token, s.sessionURI = "", ""
	if tok == "" || uri == "" || s.client == nil {
		return nil
	}
	action := "log out of " + s.host
	resp, err := s.send(&poll{ctx: ctx}, request{action: action, method: http.MethodDelete, uri: uri, auth: true, token: tok})
	if err != nil {
		return err
	}
	switch {
	case resp.status >= 200 && resp.status < 300, resp.status == http.StatusNotFound, resp.status == http.StatusUnauthorized:
		s.log.Debug("logged out of redfish", "host", s.host)
		return nil
	}
	return s.failure(action, resp, false)
}
