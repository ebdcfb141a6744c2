// Package ipmi serves one bmcsim virtual BMC over IPMI v2.0 RMCP+ on UDP.
//
// It runs go-ipmi's own BMC server (sessions, RAKP, cipher suites, the
// standard command handlers) over a HAL backed by the shared model, and
// registers what that server lacks: Get Sensor Reading and Get Sensor
// Thresholds over an SDR repository of Full Sensor Records built from the
// personality and Compact Sensor Records of its discrete sensors (PSU and
// processor status, fan redundancy; model.Personality.Discrete), a System
// Event Log of their state changes, Get System GUID, a chassis status that
// reports fan faults, and DCMI Get Power Reading. Faults of the model (latency, black hole,
// down, dropped sessions) are applied per packet.
//
// A fleet serves each virtual BMC on its own net.PacketConn (a UDP socket,
// or one address of a multiplexer). Idle, a BMC costs two parked
// goroutines (the read loop and go-ipmi's session evictor, whose ticker
// never fires here: expired sessions are evicted when a packet arrives or
// SessionCount is called) and, with tables shared through Shared, about
// 5 KB of heap plus 6 KB of goroutine stacks; TestIdleCost measures it.
package ipmi

import (
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"math/rand/v2"
	"net"
	"sync"
	"sync/atomic"
	"time"

	gbmc "github.com/bougou/go-ipmi/pkg/bmc"
	"github.com/bougou/go-ipmi/pkg/handlers"
	"github.com/bougou/go-ipmi/pkg/server"
	"github.com/bougou/go-ipmi/pkg/types"

	"github.com/bmcstream/bmcstream/pkg/bmcsim/model"
)

// DefaultIdleTimeout is how long an RMCP+ session may stay silent before
// the BMC forgets it: the IPMI v2.0 §6.12.15 default every BMC ships with.
// go-ipmi adds the 3 s tolerance the spec allows, so a session expires 63 s
// after its last valid packet.
const DefaultIdleTimeout = 60 * time.Second

// readBufferSize bounds one inbound datagram. The largest IPMI request a
// console sends (RAKP 3, an encrypted Set command) stays under 300 bytes;
// go-ipmi's 4 KiB default would cost 3 KiB more per idle BMC.
const readBufferSize = 1024

// ErrClosed is returned by Serve on a Server that was closed.
var ErrClosed = errors.New("ipmi: server closed")

// Options tune a virtual BMC's IPMI server. The zero value is ready to use.
type Options struct {
	// Now is the clock of sensor readings, DCMI statistics and session
	// inactivity; nil means time.Now. Tests inject one so that a client
	// and the model read the same instant.
	Now func() time.Time
	// IdleTimeout is the session inactivity timeout; zero means
	// DefaultIdleTimeout.
	IdleTimeout time.Duration
	// CipherSuites are the RMCP+ cipher suites advertised and accepted;
	// nil means 3 (HMAC-SHA1, HMAC-SHA1-96, AES-CBC-128) and 17
	// (HMAC-SHA256, HMAC-SHA256-128, AES-CBC-128), the two every current
	// BMC offers and go-ipmi implements.
	CipherSuites []uint8
	// Shared holds the tables virtual BMCs have in common. A fleet makes
	// one with NewShared and passes it to every New; nil gives the Server
	// private tables (about 20 KB more per BMC).
	Shared *Shared
}

// Validate checks the options.
func (o Options) Validate() error {
	var errs []error
	if o.IdleTimeout < 0 {
		errs = append(errs, fmt.Errorf("idle timeout %s: must not be negative", o.IdleTimeout))
	}
	for _, id := range o.CipherSuites {
		if !gbmc.SupportedCipherSuite(types.CipherSuiteID(id)) {
			errs = append(errs, fmt.Errorf("cipher suite %d: not implemented by go-ipmi's server", id))
		}
	}
	return errors.Join(errs...)
}

// Shared holds what every virtual BMC of a fleet can share: the IPMI
// command table and, per personality, the SDR repository and sensor
// conversions. It is safe for concurrent use.
type Shared struct {
	reg *handlers.Registry

	mu       sync.Mutex
	profiles map[*model.Personality]*profile
}

// NewShared makes the tables a fleet of virtual BMCs shares.
func NewShared() *Shared {
	return &Shared{reg: newRegistry(), profiles: map[*model.Personality]*profile{}}
}

// profile returns the IPMI view of a personality, building it once.
func (sh *Shared) profile(p *model.Personality) (*profile, error) {
	sh.mu.Lock()
	defer sh.mu.Unlock()
	if pr, ok := sh.profiles[p]; ok {
		return pr, nil
	}
	pr, err := newProfile(p)
	if err != nil {
		return nil, err
	}
	sh.profiles[p] = pr
	return pr, nil
}

// Server is the IPMI side of one virtual BMC.
type Server struct {
	b       *model.BMC
	now     func() time.Time
	idle    time.Duration
	profile *profile
	reg     *handlers.Registry
	gb      *gbmc.BMC
	fru     []byte
	// bootTime stamps the SDR repository (last addition and erase).
	bootTime time.Time
	// clockShift (ns) moves the session clock forward to expire every
	// session at once; see sessionClock.
	clockShift atomic.Int64

	rngMu sync.Mutex
	rng   *rand.Rand

	// sel is the System Event Log of the discrete sensors' changes.
	sel selLog

	// dropSeen is owned by the read loop: it makes DropIPMISessions act
	// once per time the fault is set.
	dropSeen bool

	mu      sync.Mutex
	srv     *server.Server
	serving bool
	closed  bool
	done    chan struct{} // closed by Close: cancels latency sleeps
}

// New makes the IPMI server of virtual BMC b. The BMC's user may open
// sessions up to the ADMINISTRATOR privilege; its personality sets the
// session limit, identity and sensors.
func New(b *model.BMC, opts Options) (*Server, error) {
	if b == nil || b.Personality == nil {
		return nil, errors.New("new ipmi server: BMC and its personality must be set")
	}
	if err := opts.Validate(); err != nil {
		return nil, fmt.Errorf("new ipmi server %s: %w", b.ID, err)
	}
	if b.Username == "" || len(b.Username) > gbmc.MaxUserNameLen {
		return nil, fmt.Errorf("new ipmi server %s: user name must be 1 to %d bytes", b.ID, gbmc.MaxUserNameLen)
	}
	if len(b.Password) > gbmc.MaxPasswordLen {
		return nil, fmt.Errorf("new ipmi server %s: password longer than %d bytes", b.ID, gbmc.MaxPasswordLen)
	}
	sh := opts.Shared
	if sh == nil {
		sh = NewShared()
	}
	pr, err := sh.profile(b.Personality)
	if err != nil {
		return nil, fmt.Errorf("new ipmi server %s: personality %s: %w", b.ID, b.Personality.Name, err)
	}
	fru, err := buildFRU(b)
	if err != nil {
		return nil, fmt.Errorf("new ipmi server %s: build FRU: %w", b.ID, err)
	}

	s := &Server{
		b:       b,
		now:     opts.Now,
		idle:    opts.IdleTimeout,
		profile: pr,
		reg:     sh.reg,
		fru:     fru,
		done:    make(chan struct{}),
	}
	if s.now == nil {
		s.now = time.Now
	}
	if s.idle == 0 {
		s.idle = DefaultIdleTimeout
	}
	s.bootTime = s.now().Truncate(time.Second)
	h := fnv.New64a()
	_, _ = h.Write([]byte(b.ID))
	s.rng = rand.New(rand.NewPCG(h.Sum64(), uint64(b.Room.Seed)))

	p := b.Personality
	info := gbmc.DeviceInfo{
		DeviceID:       0x20,
		DeviceRevision: 0x01,
		FirmwareMajor:  pr.fwMajor,
		FirmwareMinor:  pr.fwMinor,
		IPMIVersion:    0x02, // BCD, LS digit in the high nibble: 2.0 (Table 20-2)
		ManufacturerID: p.IPMI.ManufacturerID,
		ProductID:      p.IPMI.ProductID,
		// Chassis and sensor device; go-ipmi adds SDR repository and FRU.
		AdditionalDeviceSupport: 0x80 | 0x01,
	}
	limit := p.IPMI.SessionLimit
	if limit <= 0 {
		limit = gbmc.MaxSessions
	}
	clk := sessionClock{s}
	gb := gbmc.New(info, smbiosGUID(b.UUID), &simHAL{s}, gbmc.WithClock(clk), gbmc.WithV15Disabled())
	// One session table for the personality's limit and our timeout; it
	// must keep go-ipmi's hook that ends a session's payloads.
	gb.Sessions = gbmc.NewSessionStoreWithOptions(clk,
		gbmc.WithMaxSessions(limit),
		gbmc.WithInactivityTimeout(s.idle))
	gb.Sessions.SetOnRemove(gb.SOL.DeactivateBySession)
	if len(opts.CipherSuites) > 0 {
		ids := make([]types.CipherSuiteID, len(opts.CipherSuites))
		for i, id := range opts.CipherSuites {
			ids[i] = types.CipherSuiteID(id)
		}
		gb.SetCipherSuites(ids) // validated above: cannot panic
	}
	u, err := gb.Users.Add(2, b.Username)
	if err != nil {
		return nil, fmt.Errorf("new ipmi server %s: add user: %w", b.ID, err)
	}
	u.SetPassword([]byte(b.Password))
	u.Enabled = true
	u.ChannelAccess[1] = gbmc.UserChannelAccess{MaxPrivilege: gbmc.PrivilegeLevelAdministrator, Enabled: true}
	s.gb = gb
	return s, nil
}

// Serve answers IPMI on conn until ctx ends or Close is called, then
// returns nil; a read error other than a timeout also ends it, closed, and
// is returned. Serve owns conn and closes it. It returns ErrClosed at once
// on a closed Server and an error if called twice. conn may be any
// net.PacketConn, such as one address of a UDP multiplexer.
func (s *Server) Serve(ctx context.Context, conn net.PacketConn) error {
	s.mu.Lock()
	switch {
	case s.closed:
		s.mu.Unlock()
		_ = conn.Close() // the server is closed: the connection is refused, ErrClosed says so
		return ErrClosed
	case s.serving:
		s.mu.Unlock()
		return fmt.Errorf("serve ipmi %s: already serving", s.b.ID)
	}
	s.serving = true
	fc := &faultConn{PacketConn: conn, s: s}
	s.srv = server.NewServer(s.gb, fc,
		server.WithHandlerRegistry(s.reg),
		server.WithServerBufferSize(readBufferSize))
	srv := s.srv
	s.mu.Unlock()

	// AfterFunc starts no goroutine until ctx ends: idle BMCs stay cheap.
	stop := context.AfterFunc(ctx, func() { _ = s.Close() })
	defer stop()
	if err := srv.Serve(ctx); err != nil && !errors.Is(err, context.Canceled) && !errors.Is(err, context.DeadlineExceeded) {
		return fmt.Errorf("serve ipmi %s: %w", s.b.ID, err)
	}
	if err := fc.err.Load(); err != nil {
		_ = s.Close() // the read error is the one to report; Close only releases the socket
		return fmt.Errorf("serve ipmi %s: read: %w", s.b.ID, *err)
	}
	return nil
}

// Close stops Serve and releases the socket. It is safe before Serve, and
// calling it again does nothing.
func (s *Server) Close() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	srv := s.srv
	s.mu.Unlock()
	close(s.done)
	if srv == nil {
		return nil
	}
	if err := srv.Close(); err != nil && !errors.Is(err, net.ErrClosed) {
		return fmt.Errorf("close ipmi %s: %w", s.b.ID, err)
	}
	return nil
}

// SessionCount returns how many RMCP+ sessions the BMC holds, counting
// those still in their handshake, after forgetting expired ones. A poller
// that closes its sessions leaves it at zero.
func (s *Server) SessionCount() int {
	s.gb.Sessions.EvictExpired()
	return s.gb.Sessions.Count()
}

// admit decides, per inbound packet, whether the BMC sees it, applying the
// model's faults. It runs on the read loop only.
func (s *Server) admit() bool {
	f := s.b.Faults()
	if f.BlackHole || f.Down {
		return false
	}
	switch {
	case f.DropIPMISessions && !s.dropSeen:
		s.dropSeen = true
		s.forgetSessions()
	case !f.DropIPMISessions:
		s.dropSeen = false
	}
	s.gb.Sessions.EvictExpired()
	return true
}

// forgetSessions drops every session silently, as a BMC reset does: the
// session clock jumps past any session's inactivity limit. Sessions opened
// afterwards live on the shifted clock and are unaffected.
func (s *Server) forgetSessions() {
	s.clockShift.Add(int64(2*s.idle + time.Hour))
	s.gb.Sessions.EvictExpired()
}

// latency draws one answer's delay from the latency fault.
func (s *Server) latency() time.Duration {
	if s.b.Faults().LatencyMedianMs <= 0 {
		return 0
	}
	s.rngMu.Lock()
	defer s.rngMu.Unlock()
	return s.b.Latency(s.rng)
}

// faultConn is the socket as go-ipmi's server sees it: inbound packets
// pass the fault gate, answers wait out the latency fault.
type faultConn struct {
	net.PacketConn
	s   *Server
	err atomic.Pointer[error] // the read error that ended the loop
}

// ReadFrom returns the next packet the BMC admits; dropped packets are
// never seen by go-ipmi, so they neither answer nor refresh a session.
//
// go-ipmi's read loop retries every error but net.ErrClosed at once, so a
// socket that fails for good (a closed mux endpoint reporting something
// else) would spin it at full CPU. A read error other than a timeout is
// kept for Serve to return and ends the loop as a closed socket would.
func (c *faultConn) ReadFrom(buf []byte) (int, net.Addr, error) {
	for {
		n, addr, err := c.PacketConn.ReadFrom(buf)
		if err != nil {
			var ne net.Error
			if errors.Is(err, net.ErrClosed) || (errors.As(err, &ne) && ne.Timeout()) {
				return n, addr, err
			}
			c.err.Store(&err)
			return n, addr, fmt.Errorf("%w: %w", net.ErrClosed, err)
		}
		if c.s.admit() {
			return n, addr, nil
		}
	}
}

// WriteTo sends an answer after the drawn latency. The wait ends early,
// unsent, when the Server closes; an answer to a BMC that went dark
// meanwhile is dropped too.
func (c *faultConn) WriteTo(p []byte, addr net.Addr) (int, error) {
	if d := c.s.latency(); d > 0 {
		t := time.NewTimer(d)
		select {
		case <-t.C:
		case <-c.s.done:
			t.Stop()
			return 0, net.ErrClosed
		}
	}
	if f := c.s.b.Faults(); f.BlackHole || f.Down {
		return len(p), nil
	}
	return c.PacketConn.WriteTo(p, addr)
}
