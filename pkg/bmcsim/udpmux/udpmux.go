// Package udpmux serves many virtual UDP endpoints from one socket.
//
// A fleet of 10 000 simulated IPMI BMCs, each on its own 127.x.y.z address,
// would need 10 000 sockets; with the usual limit of 20 000 open files per
// process that leaves too little for the Redfish side and client
// connections. Instead one socket is bound to the wildcard address, the
// kernel tells each packet's destination address (IP_PKTINFO), the packet
// goes to the endpoint registered for that address, and replies leave from
// that same address. Packets to any address that is not registered are
// dropped, so nothing answers outside the fleet.
package udpmux

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/net/ipv4"
)

// Mux owns the shared socket and routes packets to endpoints.
type Mux struct {
	pc   *ipv4.PacketConn
	raw  net.PacketConn
	port int

	mu        sync.RWMutex
	endpoints map[netip.Addr]*Endpoint

	dropped atomic.Uint64
	done    chan struct{}
	closed  atomic.Bool
}

// Listen binds the shared socket on all IPv4 addresses at port (0 picks
// one) and starts routing. Only registered destination addresses are served.
func Listen(port int) (*Mux, error) {
	raw, err := net.ListenPacket("udp4", fmt.Sprintf("0.0.0.0:%d", port))
	if err != nil {
		return nil, fmt.Errorf("listen udp :%d: %w", port, err)
	}
	pc := ipv4.NewPacketConn(raw)
	if err := pc.SetControlMessage(ipv4.FlagDst, true); err != nil {
		_ = raw.Close() // the socket was never used; the setup error is the one to report
		return nil, fmt.Errorf("enable IP_PKTINFO: %w", err)
	}
	m := &Mux{
		pc:        pc,
		raw:       raw,
		port:      raw.LocalAddr().(*net.UDPAddr).Port,
		endpoints: map[netip.Addr]*Endpoint{},
		done:      make(chan struct{}),
	}
	go m.loop()
	return m, nil
}

// Port is the shared socket's port.
func (m *Mux) Port() int { return m.port }

// Dropped counts packets to unregistered addresses or full endpoints.
func (m *Mux) Dropped() uint64 { return m.dropped.Load() }

// Endpoint registers addr and returns its packet connection. Queue bounds
// the packets waiting for the endpoint's reader; more are dropped, as a busy
// BMC's network stack would.
func (m *Mux) Endpoint(addr netip.Addr, queue int) (*Endpoint, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if _, dup := m.endpoints[addr]; dup {
		return nil, fmt.Errorf("udpmux: %s registered twice", addr)
	}
	e := &Endpoint{m: m, addr: addr, in: make(chan packet, queue), closed: make(chan struct{})}
	m.endpoints[addr] = e
	return e, nil
}

type packet struct {
	data []byte
	from *net.UDPAddr
}

func (m *Mux) loop() {
	defer close(m.done)
	buf := make([]byte, 65536)
	for {
		n, cm, from, err := m.pc.ReadFrom(buf)
		if err != nil {
			if m.closed.Load() || errors.Is(err, net.ErrClosed) {
				return
			}
			continue
		}
		if cm == nil {
			m.dropped.Add(1)
			continue
		}
		dst, ok := netip.AddrFromSlice(cm.Dst.To4())
		if !ok {
			m.dropped.Add(1)
			continue
		}
		m.mu.RLock()
		e := m.endpoints[dst]
		m.mu.RUnlock()
		ua, _ := from.(*net.UDPAddr)
		if e == nil || ua == nil {
			m.dropped.Add(1)
			continue
		}
		data := make([]byte, n)
		copy(data, buf[:n])
		select {
		case e.in <- packet{data: data, from: ua}:
		default:
			m.dropped.Add(1)
		}
	}
}

// Close closes the shared socket and every endpoint.
func (m *Mux) Close() error {
	if !m.closed.CompareAndSwap(false, true) {
		return nil
	}
	err := m.raw.Close()
	<-m.done
	m.mu.Lock()
	for _, e := range m.endpoints {
		e.closeOnce()
	}
	m.mu.Unlock()
	return err
}

// Endpoint is one virtual address's net.PacketConn. Reads return packets
// sent to its address; writes leave from its address.
type Endpoint struct {
	m      *Mux
	addr   netip.Addr
	in     chan packet
	closed chan struct{}
	once   sync.Once

	deadline atomic.Pointer[time.Time]
}

var _ net.PacketConn = (*Endpoint)(nil)

// ReadFrom blocks until a packet for this address arrives.
func (e *Endpoint) ReadFrom(b []byte) (int, net.Addr, error) {
	// A closed endpoint says so, even when its deadline has passed too.
	select {
	case <-e.closed:
		return 0, nil, net.ErrClosed
	default:
	}
	var timeout <-chan time.Time
	if d := e.deadline.Load(); d != nil && !d.IsZero() {
		t := time.NewTimer(time.Until(*d))
		defer t.Stop()
		timeout = t.C
	}
	select {
	case p := <-e.in:
		return copy(b, p.data), p.from, nil
	case <-e.closed:
		return 0, nil, net.ErrClosed
	case <-timeout:
		return 0, nil, timeoutError{}
	}
}

// WriteTo sends b to addr from this endpoint's address.
func (e *Endpoint) WriteTo(b []byte, addr net.Addr) (int, error) {
	select {
	case <-e.closed:
		return 0, net.ErrClosed
	default:
	}
	cm := &ipv4.ControlMessage{Src: e.addr.AsSlice()}
	return e.m.pc.WriteTo(b, cm, addr)
}

// Close unregisters the endpoint.
func (e *Endpoint) Close() error {
	e.m.mu.Lock()
	if e.m.endpoints[e.addr] == e {
		delete(e.m.endpoints, e.addr)
	}
	e.m.mu.Unlock()
	e.closeOnce()
	return nil
}

func (e *Endpoint) closeOnce() { e.once.Do(func() { close(e.closed) }) }

// LocalAddr is the endpoint's virtual address and the shared port.
func (e *Endpoint) LocalAddr() net.Addr {
	return &net.UDPAddr{IP: e.addr.AsSlice(), Port: e.m.port}
}

// SetDeadline sets the read deadline (writes do not block).
func (e *Endpoint) SetDeadline(t time.Time) error { return e.SetReadDeadline(t) }

// SetReadDeadline bounds ReadFrom.
func (e *Endpoint) SetReadDeadline(t time.Time) error { e.deadline.Store(&t); return nil }

// SetWriteDeadline is a no-op: writes never block.
func (e *Endpoint) SetWriteDeadline(time.Time) error { return nil }

type timeoutError struct{}

func (timeoutError) Error() string   { return "i/o timeout" }
func (timeoutError) Timeout() bool   { return true }
func (timeoutError) Temporary() bool { return true }
