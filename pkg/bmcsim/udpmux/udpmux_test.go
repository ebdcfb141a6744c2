package udpmux

import (
	"fmt"
	"net"
	"net/netip"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func TestRoutesByDestinationAndRepliesFromIt(t *testing.T) {
	m, err := Listen(0)
	require.NoError(t, err)
	defer m.Close()
	addrs := []netip.Addr{netip.MustParseAddr("127.10.0.1"), netip.MustParseAddr("127.10.0.2")}
	for _, a := range addrs {
		e, err := m.Endpoint(a, 8)
		require.NoError(t, err)
		go func() { // echo with the endpoint's name
			buf := make([]byte, 100)
			for {
				n, from, err := e.ReadFrom(buf)
				if err != nil {
					return
				}
				_, _ = e.WriteTo([]byte(fmt.Sprintf("%s:%s", a, buf[:n])), from)
			}
		}()
	}
	for _, a := range addrs {
		c, err := net.DialUDP("udp4", nil, &net.UDPAddr{IP: a.AsSlice(), Port: m.Port()})
		require.NoError(t, err)
		_, err = c.Write([]byte("ping"))
		require.NoError(t, err)
		require.NoError(t, c.SetReadDeadline(time.Now().Add(2*time.Second)))
		buf := make([]byte, 100)
		n, err := c.Read(buf) // a connected socket only accepts replies from a
		require.NoError(t, err)
		require.Equal(t, a.String()+":ping", string(buf[:n]))
		require.NoError(t, c.Close())
	}
	// Unregistered address: dropped, no answer.
	c, err := net.DialUDP("udp4", nil, &net.UDPAddr{IP: net.IPv4(127, 10, 0, 99), Port: m.Port()})
	require.NoError(t, err)
	defer c.Close()
	_, err = c.Write([]byte("ping"))
	require.NoError(t, err)
	require.NoError(t, c.SetReadDeadline(time.Now().Add(200*time.Millisecond)))
	_, err = c.Read(make([]byte, 10))
	require.Error(t, err)
	require.Eventually(t, func() bool { return m.Dropped() == 1 }, time.Second, 10*time.Millisecond)
}

func TestEndpointCloseAndDeadline(t *testing.T) {
	m, err := Listen(0)
	require.NoError(t, err)
	defer m.Close()
	e, err := m.Endpoint(netip.MustParseAddr("127.10.0.3"), 1)
	require.NoError(t, err)
	_, err = m.Endpoint(netip.MustParseAddr("127.10.0.3"), 1)
	require.Error(t, err)
	require.NoError(t, e.SetReadDeadline(time.Now().Add(20*time.Millisecond)))
	_, _, err = e.ReadFrom(make([]byte, 10))
	var ne net.Error
	require.ErrorAs(t, err, &ne)
	require.True(t, ne.Timeout())
	require.NoError(t, e.Close())
	_, _, err = e.ReadFrom(make([]byte, 10))
	require.ErrorIs(t, err, net.ErrClosed)
}
