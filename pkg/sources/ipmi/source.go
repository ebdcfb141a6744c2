package ipmi

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/bougou/go-ipmi/pkg/client"
	"github.com/bougou/go-ipmi/pkg/types"

	"github.com/bmcstream/bmcstream/pkg/sources"
	v1 "github.com/bmcstream/bmcstream/proto/bmcstream/v1"
)

// DefaultPort is the RMCP port of IPMI over LAN.
const DefaultPort = 623

// Defaults of Options. They are tuned to the BMC, not the poller: BMCs
// answer in milliseconds when healthy and hold few sessions.
const (
	// DefaultCipherSuite is cipher suite 3 (RAKP-HMAC-SHA1, HMAC-SHA1-96,
	// AES-CBC-128), the one every BMC of the last fifteen years offers.
	DefaultCipherSuite = 3
	// DefaultRequestTimeout is ipmitool's lanplus timeout doubled: long
	// enough for a busy BMC, short enough to detect a dead session fast.
	DefaultRequestTimeout = 2 * time.Second
	// DefaultRetries retransmits a request once: UDP loses packets, and a
	// second silence is a dead session.
	DefaultRetries = 1
	// DefaultInfoInterval is how often the identity (Get Device ID, Get
	// System GUID) and the SDR repository timestamps are re-read.
	DefaultInfoInterval = 10 * time.Minute
	// DefaultSessionTimeout is the session inactivity timeout BMCs ship
	// with (IPMI v2.0 §6.12.15).
	DefaultSessionTimeout = 60 * time.Second
	// DefaultKeepAlive is half of DefaultSessionTimeout: a session kept
	// alive at this cadence survives one lost keep-alive.
	DefaultKeepAlive = 30 * time.Second
)

// Privilege is an IPMI session privilege level.
type Privilege uint8

// Privilege levels a Source may ask for. Reading sensors needs USER.
const (
	PrivilegeUser          Privilege = 2
	PrivilegeOperator      Privilege = 3
	PrivilegeAdministrator Privilege = 4
)

// String returns the privilege's IPMI name.
func (p Privilege) String() string {
	switch p {
	case PrivilegeUser:
		return "USER"
	case PrivilegeOperator:
		return "OPERATOR"
	case PrivilegeAdministrator:
		return "ADMINISTRATOR"
	}
	return "Privilege(" + strconv.Itoa(int(p)) + ")"
}

// Options tune a Source. The zero value is ready to use: every zero field
// takes its default.
type Options struct {
	// CipherSuite is the RMCP+ cipher suite: 3 (the default) or 17
	// (RAKP-HMAC-SHA256, HMAC-SHA256-128, AES-CBC-128).
	CipherSuite uint8
	// Privilege is the session privilege level; USER by default.
	Privilege Privilege
	// RequestTimeout bounds each attempt of each request.
	RequestTimeout time.Duration
	// Retries is how many times a silent request is sent again; zero means
	// DefaultRetries, a negative value none.
	Retries int
	// InfoInterval is how often the Source re-reads the BMC's identity and
	// checks the SDR repository for changes; both are also read when a
	// session opens.
	InfoInterval time.Duration
	// SessionTimeout is how long the BMC keeps a silent session. A session
	// silent for longer is presumed expired and replaced at the next poll
	// without waiting for a request to time out on it.
	SessionTimeout time.Duration
	// KeepAlive is how long a session may stay silent before KeepAlive
	// sends a cheap request on it. It must be shorter than SessionTimeout.
	KeepAlive time.Duration
	// SkipDiscrete leaves discrete sensors (PSU status, fan redundancy,
	// processor and memory state, presence, …) out of the polls: they are
	// then counted as unsupported_layout drops. By default each is read
	// as a KIND_DISCRETE reading whose value is the asserted state bits
	// and whose State names them, at one Get Sensor Reading per sensor
	// per poll, like a threshold sensor.
	SkipDiscrete bool
	// OnDrop, when set, is called from Collect for each reading the BMC
	// lists that the poll leaves out (sources.Drop), after the poll.
	OnDrop func(sources.Drop)
	// Now is the clock of idle times and intervals; nil means time.Now.
	Now func() time.Time
	// Logger receives debug logs of session and repository events; nil
	// discards them. The Source never logs a credential or a reading.
	Logger *slog.Logger
}

// Validate checks the options; zero values are valid (they mean defaults).
func (o Options) Validate() error {
	var errs []error
	if o.CipherSuite != 0 && o.CipherSuite != 3 && o.CipherSuite != 17 {
		errs = append(errs, fmt.Errorf("cipher suite %d: supported are 3 and 17", o.CipherSuite))
	}
	if o.Privilege != 0 && (o.Privilege < PrivilegeUser || o.Privilege > PrivilegeAdministrator) {
		errs = append(errs, fmt.Errorf("privilege %d: must be USER (2), OPERATOR (3) or ADMINISTRATOR (4)", o.Privilege))
	}
	if o.RequestTimeout < 0 {
		errs = append(errs, fmt.Errorf("request timeout %s: must not be negative", o.RequestTimeout))
	}
	if o.Retries > 10 {
		errs = append(errs, fmt.Errorf("retries %d: at most 10", o.Retries))
	}
	if o.InfoInterval < 0 {
		errs = append(errs, fmt.Errorf("info interval %s: must not be negative", o.InfoInterval))
	}
	if o.SessionTimeout < 0 || o.KeepAlive < 0 {
		errs = append(errs, errors.New("session timeout and keep-alive must not be negative"))
	}
	d := o.withDefaults()
	if d.KeepAlive >= d.SessionTimeout {
		errs = append(errs, fmt.Errorf("keep-alive %s: must be shorter than the session timeout %s", d.KeepAlive, d.SessionTimeout))
	}
	return errors.Join(errs...)
}

// withDefaults fills zero fields.
func (o Options) withDefaults() Options {
	if o.CipherSuite == 0 {
		o.CipherSuite = DefaultCipherSuite
	}
	if o.Privilege == 0 {
		o.Privilege = PrivilegeUser
	}
	if o.RequestTimeout == 0 {
		o.RequestTimeout = DefaultRequestTimeout
	}
	switch {
	case o.Retries == 0:
		o.Retries = DefaultRetries
	case o.Retries < 0:
		o.Retries = 0
	}
	if o.InfoInterval == 0 {
		o.InfoInterval = DefaultInfoInterval
	}
	if o.SessionTimeout == 0 {
		o.SessionTimeout = DefaultSessionTimeout
	}
	if o.KeepAlive == 0 {
		o.KeepAlive = min(DefaultKeepAlive, o.SessionTimeout/2)
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	return o
}

// Stats count what a Source did since New. They are plain counters, read
// from the goroutine that uses the Source.
type Stats struct {
	// Requests counts IPMI requests sent, session set-up and Close Session
	// included, retransmissions not.
	Requests uint64
	// Sessions counts sessions opened.
	Sessions uint64
	// Reconnects counts polls that found their session dead (silent) and
	// replaced it; Expired counts sessions replaced unasked because they
	// had been idle longer than SessionTimeout.
	Reconnects uint64
	Expired    uint64
	// SDRReads counts complete reads of the SDR repository.
	SDRReads uint64
	// SkippedSensors counts sensors of the last SDR read that are not
	// polled: non-linear or OEM conversions, bridged owners, discrete
	// sensors with Options.SkipDiscrete. BadRecords counts records of the
	// last read that could not be decoded.
	SkippedSensors uint64
	BadRecords     uint64
	// Unavailable counts readings skipped because the BMC flagged them
	// unavailable, not scanned or not present.
	Unavailable uint64
}

// Source polls one BMC over IPMI. It is used by one goroutine at a time
// (see sources.Source) and starts none of its own.
type Source struct {
	target sources.Target
	opts   Options
	cfgErr error
	host   string
	port   int
	addr   string
	now    func() time.Time
	log    *slog.Logger

	// The session: a go-ipmi client used from this goroutine only.
	c            *client.Client
	active       bool // the session completed RAKP 4
	bmcSessionID uint32
	req          rawRequest
	resp         rawResponse
	lastHeard    time.Time // last answer of any kind
	answered     bool      // the BMC answered during the current call
	closed       bool

	// Per session: whether DCMI Get Power Reading is worth asking.
	dcmi dcmiState

	// Identity, read on connect and every InfoInterval.
	ident   identity
	identAt time.Time

	// The SDR repository cache, valid across sessions while the
	// repository's fingerprint holds; scan is a read in progress.
	repo        *repository
	repoChecked time.Time
	scan        *scanState
	scanErr     *sources.Error // why the last read failed, until the next try
	sdrChunk    int            // partial Get SDR size; 0 reads whole records

	stats Stats

	// Readings left out, by reason since New (dropMu: Dropped may be
	// called from any goroutine), and the slice a poll collects its drops
	// in before they are counted.
	dropMu  sync.Mutex
	dropped map[string]uint64
	dropBuf []sources.Drop
}

var (
	_ sources.Source      = (*Source)(nil)
	_ sources.DropCounter = (*Source)(nil)
)

// Dropped returns how many readings the Source left out of its snapshots
// since New, by reason; see sources.DropCounter.
func (s *Source) Dropped() map[string]uint64 {
	s.dropMu.Lock()
	defer s.dropMu.Unlock()
	out := make(map[string]uint64, len(s.dropped))
	for k, v := range s.dropped {
		out[k] = v
	}
	return out
}

// countDrops counts the drops of the poll that made the snapshot and hands
// them to Options.OnDrop.
func (s *Source) countDrops(drops []sources.Drop) {
	if len(drops) == 0 {
		return
	}
	s.dropMu.Lock()
	if s.dropped == nil {
		s.dropped = make(map[string]uint64, 4)
	}
	for i := range drops {
		s.dropped[drops[i].Reason]++
	}
	s.dropMu.Unlock()
	if s.opts.OnDrop != nil {
		for i := range drops {
			s.opts.OnDrop(drops[i])
		}
	}
}

// New makes a Source for a BMC. It does no I/O: the session opens at the
// first Collect. Invalid options or target make every Collect fail with
// the validation error.
func New(t sources.Target, opts Options) *Source {
	s := &Source{target: t}
	errs := []error{opts.Validate()}
	s.opts = opts.withDefaults()
	s.now = s.opts.Now
	// An IPv6 literal may come bracketed ("[fe80::1]", as in host:port).
	s.host = strings.TrimSuffix(strings.TrimPrefix(t.Host, "["), "]")
	s.port = t.Port
	if s.port == 0 {
		s.port = DefaultPort
	}
	s.addr = net.JoinHostPort(s.host, strconv.Itoa(s.port))
	s.log = s.opts.Logger.With("bmc", s.addr)
	if s.host == "" {
		errs = append(errs, errors.New("host must be set"))
	}
	if len(t.Username) > 16 {
		errs = append(errs, errors.New("user name longer than 16 bytes"))
	}
	if len(t.Password.Reveal()) > 20 {
		errs = append(errs, errors.New("password longer than 20 bytes"))
	}
	if err := errors.Join(errs...); err != nil {
		s.cfgErr = sources.Errorf(sources.ClassProtocol, "configure ipmi source for %s: %w", s.addr, err)
	}
	return s
}

// String describes the Source by its BMC's address.
func (s *Source) String() string { return "ipmi source " + s.addr }

// Format prints the Source as String does for every verb, %+v and %#v
// included: fmt would print its unexported fields raw, and the target's
// password with them (fmt cannot call Secret's methods on an unexported
// field).
func (s *Source) Format(f fmt.State, _ rune) { _, _ = f.Write([]byte(s.String())) }

// Stats returns the Source's counters.
func (s *Source) Stats() Stats { return s.stats }

// Collect performs one poll; see sources.Source. It opens the session when
// there is none, and when a request on an established session gets no
// answer it replaces the session and polls once more.
//
// The poll costs, with the SDR cached and outside the InfoInterval
// refresh, one Get Sensor Reading per polled sensor (but for sensors the
// BMC keeps saying are not present), one Get Chassis Status and one DCMI
// Get Power Reading unless the BMC said it has none (then not again until
// the next session).
func (s *Source) Collect(ctx context.Context, dst *v1.Snapshot) error {
	resetSnapshot(dst)
	if s.cfgErr != nil {
		return sources.Fail(dst, s.cfgErr)
	}
	if s.closed {
		return sources.Fail(dst, sources.Errorf(sources.ClassProtocol, "collect from %s: source closed", s.addr))
	}
	s.answered = false
	base := len(dst.Readings)
	p := newPoll(dst, s.dropBuf[:0])
	err := s.poll(ctx, p)
	if errors.Is(err, errSessionDead) && !expired(ctx) {
		s.stats.Reconnects++
		s.log.Debug("ipmi session silent, replacing it", "err", err)
		_ = s.endSession(ctx, true) // the dead session is replaced; logging it out is best effort
		first := len(dst.Readings) - base
		retry := newPoll(dst, nil)
		rerr := s.poll(ctx, retry)
		second := len(dst.Readings) - base - first
		if rerr == nil || second >= first {
			// The retry's readings replace the first attempt's.
			n := copy(dst.Readings[base:], dst.Readings[base+first:])
			dst.Readings = dst.Readings[:base+n]
			p, err = retry, rerr
		} else {
			dst.Readings = dst.Readings[:base+first]
		}
	}
	if errors.Is(err, errSessionDead) {
		// Silent twice, or out of time to try again: release the session so
		// the next poll starts afresh.
		_ = s.endSession(ctx, true)
	}
	if err != nil {
		p.fail(err)
	}
	s.countDrops(p.drops)
	s.dropBuf = p.drops[:0]
	return s.finish(dst, p)
}

// Close ends the session with Close Session and releases its socket. It is
// safe before Collect and more than once; a closed Source does not poll.
func (s *Source) Close(ctx context.Context) error {
	if s.closed {
		return nil
	}
	s.closed = true
	if err := s.endSession(ctx, true); err != nil {
		return sources.Errorf(classOf(ctx, err), "close session to %s: %w", s.addr, err)
	}
	return nil
}

// KeepAlive keeps an idle session open between polls: when the session
// has been silent for Options.KeepAlive or longer it sends one Get Device
// ID; otherwise it does nothing. A poller whose polls are further apart
// than Options.KeepAlive calls it from its poll loop (every KeepAlive/2,
// say); with more frequent polls it is never needed. A session that does
// not answer is released, to be replaced by the next Collect, and the
// error is ClassTimeout.
func (s *Source) KeepAlive(ctx context.Context) error {
	if s.closed || s.c == nil || s.now().Sub(s.lastHeard) < s.opts.KeepAlive {
		return nil
	}
	_, err := s.exchange(ctx, 0, types.CommandGetDeviceID)
	if _, ok := completionCode(err); err == nil || ok {
		return nil // any answer keeps the session alive
	}
	if errors.Is(err, errNoAnswer) || isUnreachable(err) {
		// the unanswered keep-alive is the news; closing the dead session is best effort
		_ = s.endSession(ctx, true)
	}
	return sources.Errorf(classOf(ctx, err), "keep session to %s alive: %w", s.addr, err)
}

// classOf classifies a transport error outside a poll.
func classOf(ctx context.Context, err error) sources.Class {
	switch {
	case expired(ctx), errors.Is(err, errNoAnswer), isNoAnswer(err):
		return sources.ClassTimeout
	case isUnreachable(err):
		return sources.ClassUnreachable
	}
	return sources.ClassProtocol
}

// resetSnapshot sets the fields Collect owns to their starting values.
func resetSnapshot(dst *v1.Snapshot) {
	dst.Protocol = v1.Protocol_PROTOCOL_IPMI
	dst.Up = false
	dst.Partial = false
	dst.Error = ""
	dst.ErrorClass = ""
	if dst.Info == nil {
		dst.Info = make(map[string]string, 12)
	}
	for _, k := range infoKeys {
		delete(dst.Info, k)
	}
}

// finish records the poll's outcome in dst and returns its error.
func (s *Source) finish(dst *v1.Snapshot, p *poll) error {
	dst.Up = s.answered
	if dst.Up {
		s.ident.fill(dst.Info) // known facts, but only about a BMC that answers
	}
	if p.err == nil {
		return nil
	}
	dst.Partial = dst.Up && p.partial
	err := p.err
	if p.more > 0 {
		err = &sources.Error{Class: p.err.Class, Err: fmt.Errorf("%w (and %d more errors)", p.err.Err, p.more)}
	}
	return sources.Fail(dst, err)
}
