package ipmi

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strings"
	"syscall"
	"time"

	"github.com/bougou/go-ipmi/pkg/client"
	"github.com/bougou/go-ipmi/pkg/command/app"
	"github.com/bougou/go-ipmi/pkg/rmcpplus"
	"github.com/bougou/go-ipmi/pkg/types"

	"github.com/bmcstream/bmcstream/pkg/sources"
)

// errNoAnswer is what a request gets when the BMC stays silent through
// every attempt. On an established session it means the session is dead:
// a BMC drops packets of sessions it has forgotten without a word.
var errNoAnswer = errors.New("no answer")

// errSessionDead marks a poll that lost its session to silence; Collect
// replaces the session and polls once more.
var errSessionDead = errors.New("session dead")

// ccError is a completion code other than 00h (§5.2, Table 5-2).
type ccError struct{ cc uint8 }

func (e *ccError) Error() string {
	if name, ok := ccNames[e.cc]; ok {
		return fmt.Sprintf("completion code 0x%02x (%s)", e.cc, name)
	}
	return fmt.Sprintf("completion code 0x%02x", e.cc)
}

// Completion codes this package acts on.
const (
	ccNodeBusy          = 0xC0
	ccInvalidCommand    = 0xC1
	ccInvalidForLUN     = 0xC2
	ccReservationCancel = 0xC5
	ccTruncatedRequest  = 0xC6
	ccLengthInvalid     = 0xC7
	ccLengthTooLong     = 0xC8
	ccCannotReturnBytes = 0xCA
	ccNotPresent        = 0xCB
	ccInvalidField      = 0xCC
	ccInsufficientPriv  = 0xD4
	ccSubfuncDisabled   = 0xD6
)

var ccNames = map[uint8]string{
	ccNodeBusy:          "node busy",
	ccInvalidCommand:    "invalid command",
	ccInvalidForLUN:     "command invalid for LUN",
	0xC3:                "timeout",
	0xC4:                "out of space",
	ccReservationCancel: "reservation canceled",
	ccTruncatedRequest:  "request data truncated",
	ccLengthInvalid:     "request data length invalid",
	ccLengthTooLong:     "request data field length limit exceeded",
	0xC9:                "parameter out of range",
	ccCannotReturnBytes: "cannot return number of requested data bytes",
	ccNotPresent:        "requested sensor, data, or record not present",
	ccInvalidField:      "invalid data field in request",
	0xCD:                "command illegal for sensor or record type",
	0xCE:                "response could not be provided",
	0xD5:                "not supported in present state",
	ccInsufficientPriv:  "insufficient privilege level",
	ccSubfuncDisabled:   "sub-function disabled or unavailable",
	0xFF:                "unspecified error",
}

// completionCode returns the completion code of err, if it is one.
func completionCode(err error) (uint8, bool) {
	var cc *ccError
	if errors.As(err, &cc) {
		return cc.cc, true
	}
	return 0, false
}

// rawRequest is an IPMI request whose data this package packs itself, so
// that every response is decoded (and fuzzed) here rather than by go-ipmi.
type rawRequest struct {
	cmd  types.Command
	data []byte
}

func (r *rawRequest) Pack() []byte           { return r.data }
func (r *rawRequest) Command() types.Command { return r.cmd }

// rawResponse keeps a response's data bytes, after the completion code.
type rawResponse struct{ data []byte }

func (r *rawResponse) Unpack(b []byte) error { r.data = append(r.data[:0], b...); return nil }
func (r *rawResponse) Format() string        { return fmt.Sprintf("% x", r.data) }

// exchange sends one request on the session and returns the response data,
// valid until the next exchange. Its errors are errNoAnswer, a *ccError, the
// context's error, or another error wrapped as it came from go-ipmi.
func (s *Source) exchange(ctx context.Context, lun uint8, cmd types.Command, data ...byte) ([]byte, error) {
	if lun != 0 {
		ctx = client.WithCommandContext(ctx, (&client.CommandContext{}).WithResponderLUN(lun))
	}
	s.stats.Requests++
	// One request and one response value per Source, reused: go-ipmi takes
	// them as interfaces, which would otherwise cost allocations per request.
	s.req.cmd = cmd
	s.req.data = append(s.req.data[:0], data...)
	s.resp.data = s.resp.data[:0]
	err := s.c.Exchange(ctx, &s.req, &s.resp)
	if err == nil {
		s.heard()
		return s.resp.data, nil
	}
	return nil, s.transportError(ctx, err)
}

// heard records an answer from the BMC.
func (s *Source) heard() {
	s.answered = true
	s.lastHeard = s.now()
}

// transportError translates a go-ipmi client error.
func (s *Source) transportError(ctx context.Context, err error) error {
	if re, ok := types.IsResponseError(err); ok {
		s.heard()
		return &ccError{cc: uint8(re.CompletionCode())}
	}
	if expired(ctx) {
		return deadlineErr(ctx)
	}
	if isNoAnswer(err) {
		return errNoAnswer
	}
	return err
}

// expired reports whether ctx is done or its deadline has passed. go-ipmi
// reads until the context's deadline and may report "no answer" a moment
// before the context's own timer marks it done; that silence is the poll
// deadline's, not a dead session's.
func expired(ctx context.Context) bool {
	if ctx.Err() != nil {
		return true
	}
	d, ok := ctx.Deadline()
	return ok && !time.Now().Before(d)
}

// deadlineErr is the context's error, or DeadlineExceeded when its
// deadline passed before its timer fired.
func deadlineErr(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	return context.DeadlineExceeded
}

// isNoAnswer reports whether err means nothing came back in time. go-ipmi
// returns a net.Error timeout for session set-up payloads, and an
// unexported sentinel, only recognisable by its text, when no datagram
// matched an IPMI request before the deadline.
func isNoAnswer(err error) bool {
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return true
	}
	msg := err.Error()
	return strings.Contains(msg, "no datagram matched") || strings.Contains(msg, "read deadline")
}

// isUnreachable reports an ICMP error reported on the socket (port or host
// unreachable) or a name that does not resolve.
func isUnreachable(err error) bool {
	var dnsErr *net.DNSError
	return errors.Is(err, syscall.ECONNREFUSED) || errors.Is(err, syscall.EHOSTUNREACH) ||
		errors.Is(err, syscall.ENETUNREACH) || errors.As(err, &dnsErr)
}

// classifyConnect turns a session set-up failure into a classified error.
func (s *Source) classifyConnect(ctx context.Context, step string, err error) *sources.Error {
	action := fmt.Sprintf("open session to %s: %s", s.addr, step)
	var rs *types.RmcpStatusError
	switch {
	case expired(ctx):
		return sources.Errorf(sources.ClassTimeout, "%s: %w", action, deadlineErr(ctx))
	case errors.Is(err, errNoAnswer) || isNoAnswer(err):
		return sources.Errorf(sources.ClassTimeout, "%s: %w", action, errNoAnswer)
	case isUnreachable(err):
		return sources.Errorf(sources.ClassUnreachable, "%s: %w", action, err)
	case errors.Is(err, client.ErrRAKPAuthentication):
		// Many BMCs answer an unknown user with a RAKP 2 of random code
		// rather than a status, so that users cannot be enumerated.
		return sources.Errorf(sources.ClassAuth, "%s: credentials refused, wrong password or user (%w)", action, err)
	case errors.As(err, &rs):
		return sources.Errorf(rmcpStatusClass(rs.StatusCode()), "%s: %w", action, err)
	}
	if cc, ok := completionCode(err); ok && (cc == ccInsufficientPriv || cc == 0x80 || cc == 0x81) {
		// Set Session Privilege Level: the user may not have this level.
		return sources.Errorf(sources.ClassAuth, "%s: %w", action, err)
	}
	return sources.Errorf(sources.ClassProtocol, "%s: %w", action, err)
}

// rmcpStatusClass classifies an RMCP+ status code (§13.24): out of
// sessions, or credentials and roles refused, or a protocol mismatch.
func rmcpStatusClass(code types.RmcpStatusCode) sources.Class {
	switch code {
	case types.RmcpStatusCodeNoResToCreateSess, types.RmcpStatusCodeNoResToCreateSessAtRole:
		return sources.ClassSessionLimit
	case types.RmcpStatusCodeInvalidRole, types.RmcpStatusCodeUnauthorizedRoleOfPriLevel,
		types.RmcpStatusCodeInvalidNameLength, types.RmcpStatusCodeUnauthorizedName,
		types.RmcpStatusCodeUnauthorizedGUID, types.RmcpStatusCodeInvalidIntegrityCheckValue:
		return sources.ClassAuth
	}
	return sources.ClassProtocol
}

// open establishes an RMCP+ session: a sessionless Get Channel
// Authentication Capabilities (which doubles as a liveness probe), then
// Open Session, RAKP 1/2, RAKP 3/4 and, above USER, Set Session Privilege
// Level.
//
// The steps are go-ipmi's exported ones, called here rather than through
// Client.Connect, which (in v0.9.1) flattens the RMCP+ status codes of its
// errors into text, and starts a goroutine that sends Get Session Info
// every 30 s on the client concurrently with its owner; this Source uses
// its client from one goroutine only and keeps sessions alive itself.
func (s *Source) open(ctx context.Context) error {
	start := time.Now()
	if err := s.probe(ctx); err != nil {
		return err
	}
	// go-ipmi joins host and port with "%s:%d", which needs an IPv6
	// literal in brackets.
	host := s.host
	if strings.Contains(host, ":") && !strings.HasPrefix(host, "[") {
		host = "[" + host + "]"
	}
	c, err := client.NewClient(host, s.port, s.target.Username, s.target.Password.Reveal())
	if err != nil {
		return sources.Errorf(sources.ClassProtocol, "open session to %s: %w", s.addr, err)
	}
	c.WithInterface(client.InterfaceLanplus).
		WithCipherSuiteID(types.CipherSuiteID(s.opts.CipherSuite)).
		WithMaxPrivilegeLevel(types.PrivilegeLevel(s.opts.Privilege)).
		WithTimeout(s.opts.RequestTimeout).
		WithRetry(s.opts.Retries)
	s.c = c
	s.active = false

	s.stats.Requests++
	osr, err := c.OpenSession(ctx)
	if err != nil {
		s.heardIfAnswer(err)
		s.discard()
		return s.classifyConnect(ctx, "open session request", err)
	}
	s.heard()
	s.bmcSessionID = osr.ManagedSystemSessionID
	s.stats.Requests++
	if _, err := c.RAKPMessage1(ctx); err != nil {
		s.heardIfAnswer(err)
		if errors.Is(err, client.ErrRAKPAuthentication) {
			// The BMC holds a half-open session until it idles out; tell it
			// we refuse its RAKP 2, as ipmitool does, so it frees the slot.
			s.abortRAKP(ctx)
		}
		s.discard()
		return s.classifyConnect(ctx, "RAKP 1", err)
	}
	s.heard()
	s.stats.Requests++
	if _, err := c.RAKPMessage3(ctx); err != nil {
		s.heardIfAnswer(err)
		s.discard()
		return s.classifyConnect(ctx, "RAKP 3", err)
	}
	s.heard()
	s.active = true
	// A session starts at USER privilege (§22.18); raising it takes a
	// command, staying there does not (ipmitool skips it too).
	if s.opts.Privilege > PrivilegeUser {
		s.stats.Requests++
		if _, err := c.SetSessionPrivilegeLevel(ctx, types.PrivilegeLevel(s.opts.Privilege)); err != nil {
			cerr := s.classifyConnect(ctx, "set session privilege level", s.transportError(ctx, err))
			// the privilege error is the one to report; the session is dropped either way
			_ = s.endSession(ctx, true)
			return cerr
		}
		s.heard()
	}
	s.stats.Sessions++
	s.log.Debug("ipmi session opened", "cipher_suite", s.opts.CipherSuite,
		"privilege", s.opts.Privilege.String(), "duration", time.Since(start))
	return nil
}

// heardIfAnswer records an answer when a set-up error carries one (a
// status code or a failed validation rather than silence).
func (s *Source) heardIfAnswer(err error) {
	var rs *types.RmcpStatusError
	if errors.As(err, &rs) || errors.Is(err, client.ErrRAKPAuthentication) {
		s.heard()
	}
}

// abortRAKP sends RAKP 3 with status "invalid integrity check value"
// (§13.22) after a RAKP 2 that proved the password wrong. It waits for
// RAKP 4 at most one request timeout and ignores the outcome.
func (s *Source) abortRAKP(ctx context.Context) {
	ctx, cancel := context.WithTimeout(ctx, s.opts.RequestTimeout)
	defer cancel()
	s.c.WithRetry(0)
	s.stats.Requests++
	req := &rmcpplus.RAKPMessage3{
		RmcpStatusCode:         types.RmcpStatusCodeInvalidIntegrityCheckValue,
		ManagedSystemSessionID: s.bmcSessionID,
	}
	if err := s.c.Exchange(ctx, req, &rmcpplus.RAKPMessage4{}); err == nil {
		s.heard()
	}
}

// discard releases the client's socket without sending anything: for a
// session that never became active, or one the BMC has already forgotten.
func (s *Source) discard() {
	c := s.c
	s.c, s.active = nil, false
	if c == nil {
		return
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()         // a canceled context makes go-ipmi skip Close Session's packet
	_ = c.Close(ctx) // a local close (no packet is sent): only releases the socket
}

// endSession ends the current session. With send, an active session gets
// one Close Session request bounded by the request timeout (with the
// configured retries when the Source is closing, none when the session is
// presumed dead); otherwise the socket is released without a packet.
// go-ipmi's Client.Close panics when called twice, so the client is
// forgotten before it is closed.
func (s *Source) endSession(ctx context.Context, send bool) error {
	if s.c == nil {
		return nil
	}
	if !send || !s.active {
		s.discard()
		return nil
	}
	c := s.c
	s.c, s.active = nil, false
	retries := 0
	if s.closed {
		retries = s.opts.Retries
	}
	c.WithRetry(retries)
	ctx, cancel := context.WithTimeout(ctx, time.Duration(retries+1)*s.opts.RequestTimeout)
	defer cancel()
	s.stats.Requests++
	err := c.Close(ctx)
	if err == nil {
		s.heard()
		s.log.Debug("ipmi session closed")
		return nil
	}
	// IsResponseError's first result is the answer itself; only whether it is one matters
	if _, ok := types.IsResponseError(err); ok {
		s.heard() // answered: the BMC no longer knows the session, which is what we want
		return nil
	}
	return err
}

// probe sends Get Channel Authentication Capabilities (§22.13) outside a
// session, framed as IPMI v1.5 as §13.15 and ipmitool do (some BMCs,
// ipmi_sim among them, ignore the RMCP+-framed form), from its own
// short-lived socket. It tells a silent address (ClassTimeout) from a
// refusing one (ClassUnreachable) and an IPMI v1.5-only BMC
// (ClassProtocol) before any session state is created on the BMC.
func (s *Source) probe(ctx context.Context) error {
	fail := func(class sources.Class, err error) error {
		return sources.Errorf(class, "open session to %s: get channel authentication capabilities: %w", s.addr, err)
	}
	var d net.Dialer
	conn, err := d.DialContext(ctx, "udp", s.addr)
	if err != nil {
		if ctx.Err() != nil {
			return fail(sources.ClassTimeout, ctx.Err())
		}
		return fail(sources.ClassUnreachable, err)
	}
	defer func() { _ = conn.Close() }() // a probe's socket: the answer, or its absence, is the result
	// interrupts the read; a failure leaves the read deadline to end it
	stop := context.AfterFunc(ctx, func() { _ = conn.SetReadDeadline(time.Now()) })
	defer stop()

	const seq = 0x01
	pkt := gcacPacket(seq, s.opts.Privilege)
	buf := make([]byte, 512)
	for attempt := 0; attempt <= s.opts.Retries; attempt++ {
		s.stats.Requests++
		if _, err := conn.Write(pkt); err != nil {
			if isUnreachable(err) {
				return fail(sources.ClassUnreachable, err)
			}
			return fail(sources.ClassProtocol, err)
		}
		deadline := time.Now().Add(s.opts.RequestTimeout)
		if d, ok := ctx.Deadline(); ok && d.Before(deadline) {
			deadline = d
		}
		if err := conn.SetReadDeadline(deadline); err != nil {
			return fail(sources.ClassProtocol, err)
		}
		for {
			n, err := conn.Read(buf)
			if err != nil {
				if expired(ctx) {
					return fail(sources.ClassTimeout, deadlineErr(ctx))
				}
				if isUnreachable(err) {
					return fail(sources.ClassUnreachable, err)
				}
				var ne net.Error
				if errors.As(err, &ne) && ne.Timeout() {
					break // next attempt
				}
				return fail(sources.ClassProtocol, err)
			}
			caps, cc, ok := parseGCAC(buf[:n], seq)
			if !ok {
				continue // not our answer
			}
			s.heard()
			if cc == 0 && caps.IPMIv20ExtendedAvailable && !caps.SupportIPMIv20 {
				return fail(sources.ClassProtocol, errors.New("the BMC does not support IPMI v2.0 (RMCP+) on this channel"))
			}
			// Any answer proves the BMC alive; a completion code here (some
			// BMCs dislike the v2.0 extension bit) does not stop RMCP+.
			return nil
		}
	}
	return fail(sources.ClassTimeout, fmt.Errorf("%w in %d attempt(s) of %s", errNoAnswer, s.opts.Retries+1, s.opts.RequestTimeout))
}

// gcacPacket builds a sessionless IPMI v1.5 Get Channel Authentication
// Capabilities request for the current channel with the v2.0 extension bit.
func gcacPacket(seq uint8, priv Privilege) []byte {
	req := &app.GetChannelAuthenticationCapabilitiesRequest{
		IPMIv20Extended:       true,
		ChannelNumber:         types.ChannelNumberSelf,
		MaximumPrivilegeLevel: types.PrivilegeLevel(priv),
	}
	ipmiReq := &types.IPMIRequest{
		ResponderAddr:     types.BMC_SA,
		NetFn:             req.Command().NetFn,
		RequesterAddr:     types.RemoteConsole_SWID,
		RequesterSequence: seq,
		Command:           req.Command().ID,
		CommandData:       req.Pack(),
	}
	ipmiReq.ComputeChecksum()
	payload := ipmiReq.Pack()
	rmcp := &types.Rmcp{
		RmcpHeader: types.NewRmcpHeader(),
		Session15: &types.Session15{
			SessionHeader15: &types.SessionHeader15{AuthType: types.AuthTypeNone, PayloadLength: uint8(len(payload))},
			Payload:         payload,
		},
	}
	return rmcp.Pack()
}

// parseGCAC decodes an answer to gcacPacket; ok is false for any other
// datagram.
func parseGCAC(b []byte, seq uint8) (caps app.GetChannelAuthenticationCapabilitiesResponse, cc uint8, ok bool) {
	var rmcp types.Rmcp
	if err := rmcp.Unpack(b); err != nil || rmcp.Session15 == nil {
		return caps, 0, false
	}
	var res types.IPMIResponse
	if err := res.Unpack(rmcp.Session15.Payload); err != nil {
		return caps, 0, false
	}
	if res.NetFn != types.NetFnAppResponse || res.Command != types.CommandGetChannelAuthCapabilities.ID || res.RequesterSequence != seq {
		return caps, 0, false
	}
	if res.CompletionCode != 0 {
		return caps, res.CompletionCode, true
	}
	if err := caps.Unpack(res.Data); err != nil {
		return caps, 0xFF, true
	}
	return caps, 0, true
}
