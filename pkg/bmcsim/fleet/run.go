package fleet

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/bmcstream/bmcstream/pkg/bmcsim/ipmi"
	"github.com/bmcstream/bmcstream/pkg/bmcsim/redfish"
	"github.com/bmcstream/bmcstream/pkg/bmcsim/udpmux"
)

// StartOptions are the process-level settings of a running fleet.
type StartOptions struct {
	Logger *slog.Logger
	// CA signs the members' Redfish certificates when the fleet uses TLS;
	// nil generates one.
	CA *redfish.CA
	// Now is the members' clock (tests freeze it); nil means time.Now.
	Now func() time.Time
	// IgnoreSensorLatency drops the personalities' slow sensor resources
	// (iDRAC's 1.5 s), for load tests that do not study it.
	IgnoreSensorLatency bool
}

type running struct {
	ca       *redfish.CA
	handlers []*redfish.Handler
	servers  []*http.Server
	ipmis    []*ipmi.Server
	mux      *udpmux.Mux
	cancel   context.CancelFunc
	wg       sync.WaitGroup

	// Traffic counters: every Redfish connection accepted and IPMI
	// datagram received, whatever became of it.
	redfishConns atomic.Uint64
	ipmiPackets  atomic.Uint64
	// TLS handshakes completed, full (certificate sent and signed for)
	// and resumed (a session ticket the client kept).
	tlsFull, tlsResumed atomic.Uint64
}

// Traffic is what reached a running fleet: tests use it to prove that a
// program refusing its configuration touched no BMC.
//
// TLSFullHandshakes and TLSResumedHandshakes count the Redfish TLS
// handshakes completed: a full one costs a BMC a certificate signature and
// a key exchange, a resumed one (the client offered a session ticket the
// member accepted) neither signature nor certificate. Clients that keep
// their connections alive make few of either.
type Traffic struct {
	RedfishConnections   uint64 `json:"redfish_connections"`
	IPMIPackets          uint64 `json:"ipmi_packets"`
	TLSFullHandshakes    uint64 `json:"tls_full_handshakes"`
	TLSResumedHandshakes uint64 `json:"tls_resumed_handshakes"`
}

// Traffic returns the Redfish connections accepted and IPMI datagrams
// received since Start, by every member.
func (f *Fleet) Traffic() Traffic {
	r := f.running
	if r == nil {
		return Traffic{}
	}
	return Traffic{
		RedfishConnections:   r.redfishConns.Load(),
		IPMIPackets:          r.ipmiPackets.Load(),
		TLSFullHandshakes:    r.tlsFull.Load(),
		TLSResumedHandshakes: r.tlsResumed.Load(),
	}
}

// CA is the fleet's Redfish certificate authority (nil without TLS or
// before Start).
func (f *Fleet) CA() *redfish.CA {
	if f.running == nil {
		return nil
	}
	return f.running.ca
}

// Start serves every member until Close. In address mode one TCP listener
// and one UDP socket serve the whole fleet (bound to the wildcard address,
// answering only the members' addresses); in port mode each member has its
// own sockets on its address.
func (f *Fleet) Start(opts StartOptions) (err error) {
	if f.running != nil {
		return errors.New("fleet already started")
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	r := &running{ca: opts.CA}
	ctx, cancel := context.WithCancel(context.Background())
	r.cancel = cancel
	f.running = r
	defer func() {
		if err != nil {
			_ = f.Close() // the start's own error is returned; closing what started is best effort
		}
	}()
	var tlsConfig *tls.Config
	if f.cfg.TLS {
		if r.ca == nil {
			if r.ca, err = redfish.NewCA(); err != nil {
				return err
			}
		}
		tlsConfig = r.ca.TLSConfig()
		// Called once per completed handshake, full or resumed, by TLS
		// 1.2 and 1.3 servers alike.
		tlsConfig.VerifyConnection = func(cs tls.ConnectionState) error {
			if cs.DidResume {
				r.tlsResumed.Add(1)
			} else {
				r.tlsFull.Add(1)
			}
			return nil
		}
	}
	serveRedfish := f.cfg.Protocols != "ipmi"
	serveIPMI := f.cfg.Protocols != "redfish"

	// byAddr routes address mode's shared listener; in port mode members
	// share one address and each server has its member's handler.
	byAddr := map[netip.Addr]http.Handler{}
	if serveRedfish {
		for i, m := range f.Members {
			ho := redfish.Options{
				Now:                 opts.Now,
				SessionTimeout:      f.cfg.SessionTimeout,
				Seed:                uint64(f.cfg.Seed)*1_000_003 + uint64(i),
				IgnoreSensorLatency: opts.IgnoreSensorLatency,
				Logger:              opts.Logger,
			}
			var h *redfish.Handler
			if f.cfg.MockupDir != "" {
				h, err = redfish.NewMockupHandler(f.cfg.MockupDir, redfish.MockupOptions{Options: ho, Username: f.cfg.Username, Password: f.cfg.Password})
				if err != nil {
					return err
				}
			} else {
				h = redfish.NewHandler(m.BMC, ho)
			}
			r.handlers = append(r.handlers, h)
			byAddr[m.Addr] = h
		}
	}
	var shared *ipmi.Shared
	if serveIPMI {
		shared = ipmi.NewShared()
	}
	ipmiOpts := ipmi.Options{Now: opts.Now, IdleTimeout: f.cfg.IPMITimeout, Shared: shared}

	switch f.cfg.Addressing {
	case ByAddress:
		if serveRedfish {
			ln, err := net.Listen("tcp4", net.JoinHostPort("0.0.0.0", strconv.Itoa(f.cfg.RedfishPort)))
			if err != nil {
				return fmt.Errorf("listen redfish :%d: %w", f.cfg.RedfishPort, err)
			}
			srv := redfish.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
				la, _ := req.Context().Value(http.LocalAddrContextKey).(net.Addr)
				h := byAddr[addrOf(la)]
				if h == nil {
					http.NotFound(w, req)
					return
				}
				h.ServeHTTP(w, req)
			}), tlsConfig, opts.Logger)
			f.serveHTTP(r, srv, &filterListener{Listener: ln, allow: byAddr, accepted: &r.redfishConns}, tlsConfig != nil)
		}
		if serveIPMI {
			mux, err := udpmux.Listen(f.cfg.IPMIPort)
			if err != nil {
				return err
			}
			r.mux = mux
			for _, m := range f.Members {
				ep, err := mux.Endpoint(m.Addr, 32)
				if err != nil {
					return err
				}
				if err := f.serveIPMI(ctx, r, m, ipmiOpts, ep); err != nil {
					return err
				}
			}
		}
	case ByPort:
		for i, m := range f.Members {
			if serveRedfish {
				ln, err := net.Listen("tcp4", net.JoinHostPort(m.Addr.String(), strconv.Itoa(m.RedfishPort)))
				if err != nil {
					return fmt.Errorf("listen redfish of %s: %w", m.BMC.ID, err)
				}
				f.serveHTTP(r, redfish.NewServer(r.handlers[i], tlsConfig, opts.Logger), &filterListener{Listener: ln, accepted: &r.redfishConns}, tlsConfig != nil)
			}
			if serveIPMI {
				pc, err := net.ListenPacket("udp4", m.IPMIAddr())
				if err != nil {
					return fmt.Errorf("listen ipmi of %s: %w", m.BMC.ID, err)
				}
				if err := f.serveIPMI(ctx, r, m, ipmiOpts, pc); err != nil {
					return err
				}
			}
		}
	}
	return nil
}

func (f *Fleet) serveHTTP(r *running, srv *http.Server, ln net.Listener, useTLS bool) {
	r.servers = append(r.servers, srv)
	r.wg.Add(1)
	go func() {
		defer r.wg.Done()
		if useTLS {
			// returns when Close shuts the server; that error is the expected one
			_ = srv.ServeTLS(ln, "", "")
		} else {
			_ = srv.Serve(ln) // returns when Close shuts the server, as above
		}
	}()
}

func (f *Fleet) serveIPMI(ctx context.Context, r *running, m *Member, opts ipmi.Options, pc net.PacketConn) error {
	s, err := ipmi.New(m.BMC, opts)
	if err != nil {
		_ = pc.Close() // the connection was never used; the setup error is the one to report
		return fmt.Errorf("ipmi of %s: %w", m.BMC.ID, err)
	}
	r.ipmis = append(r.ipmis, s)
	r.wg.Add(1)
	go func() {
		defer r.wg.Done()
		// ends when ctx ends or the connection is closed, both the fleet's doing
		_ = s.Serve(ctx, &countingConn{PacketConn: pc, n: &r.ipmiPackets})
	}()
	return nil
}

// Close stops serving and releases every socket. Safe to call twice.
func (f *Fleet) Close() error {
	r := f.running
	if r == nil {
		return nil
	}
	var errs []error
	for _, h := range r.handlers {
		errs = append(errs, h.Close())
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	for _, s := range r.servers {
		if err := s.Shutdown(ctx); err != nil {
			errs = append(errs, s.Close())
		}
	}
	r.cancel()
	for _, s := range r.ipmis {
		errs = append(errs, s.Close())
	}
	if r.mux != nil {
		errs = append(errs, r.mux.Close())
	}
	r.wg.Wait()
	r.handlers, r.servers, r.ipmis, r.mux = nil, nil, nil, nil
	return errors.Join(errs...)
}

// SessionCounts returns the open Redfish and IPMI sessions of a member.
func (f *Fleet) SessionCounts(id string) (redfishSessions, ipmiSessions int) {
	r := f.running
	m, ok := f.byID[id]
	if r == nil || !ok {
		return 0, 0
	}
	for i, mm := range f.Members {
		if mm != m {
			continue
		}
		if i < len(r.handlers) {
			redfishSessions = r.handlers[i].SessionCount()
		}
		if i < len(r.ipmis) {
			ipmiSessions = r.ipmis[i].SessionCount()
		}
	}
	return redfishSessions, ipmiSessions
}

func addrOf(a net.Addr) netip.Addr {
	if ta, ok := a.(*net.TCPAddr); ok {
		if ip, ok := netip.AddrFromSlice(ta.IP.To4()); ok {
			return ip
		}
	}
	return netip.Addr{}
}

// filterListener closes connections to addresses outside the fleet (when
// allow is set), so the wildcard-bound listener answers nothing but the
// fleet, and counts the connections it lets through.
type filterListener struct {
	net.Listener
	allow    map[netip.Addr]http.Handler // nil: every address
	accepted *atomic.Uint64
}

func (l *filterListener) Accept() (net.Conn, error) {
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		if _, ok := l.allow[addrOf(c.LocalAddr())]; ok || l.allow == nil {
			l.accepted.Add(1)
			return c, nil
		}
		_ = c.Close() // a refused connection: nothing was read from it
	}
}

// countingConn counts the datagrams read from a member's IPMI socket.
type countingConn struct {
	net.PacketConn
	n *atomic.Uint64
}

func (c *countingConn) ReadFrom(b []byte) (int, net.Addr, error) {
	n, addr, err := c.PacketConn.ReadFrom(b)
	if err == nil {
		c.n.Add(1)
	}
	return n, addr, err
}
