package ipmi

import (
	"bytes"
	"context"
	"runtime"
	"testing"
	"time"

	"github.com/bougou/go-ipmi/pkg/client"
	"github.com/stretchr/testify/require"

	"github.com/bmcstream/bmcstream/pkg/bmcsim/model"
)

// shortDialer gives up fast: tests that expect silence wait one timeout.
func shortDialer(port int, b *model.BMC) dialer {
	d := newDialer(port, b)
	d.timeout = 300 * time.Millisecond
	d.retries = 0
	return d
}

// TestSessionLimit checks the personality's session limit: one session
// more is refused with "insufficient resources", and closing one frees a
// slot.
func TestSessionLimit(t *testing.T) {
	for _, name := range []string{"idrac", "supermicro"} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			b := newTestBMC(t, name)
			srv, port := startBMC(t, b, Options{})
			limit := b.Personality.IPMI.SessionLimit
			ctx := context.Background()

			d := newDialer(port, b)
			clients := make([]*client.Client, 0, limit)
			for range limit {
				clients = append(clients, d.mustDial(t))
			}
			require.Equal(t, limit, srv.SessionCount())

			_, err := d.dial(t)
			// go-ipmi's Connect flattens its errors (%v), so the status
			// is only in the text.
			require.ErrorContains(t, err, "RMCP+ status 0x01: Insufficient resources to create a session")
			require.Equal(t, limit, srv.SessionCount(), "a refused open leaves nothing behind")

			require.NoError(t, clients[0].Close(ctx))
			require.Equal(t, limit-1, srv.SessionCount())
			clients[0] = d.mustDial(t)
			for _, c := range clients {
				_, err := c.GetDeviceID(ctx)
				require.NoError(t, err)
				require.NoError(t, c.Close(ctx))
			}
			require.Zero(t, srv.SessionCount())
		})
	}
}

// TestIdleTimeout checks that a silent session expires after the idle
// timeout (plus the spec's 3 s tolerance), that traffic keeps it alive,
// and that an expired session gets no answer, as on a real BMC.
func TestIdleTimeout(t *testing.T) {
	b := newTestBMC(t, "xcc")
	clk := newFakeClock()
	srv, port := startBMC(t, b, Options{Now: clk.Now, IdleTimeout: 30 * time.Second})
	ctx := context.Background()

	c := shortDialer(port, b).mustDial(t)
	for range 3 {
		clk.Advance(29 * time.Second) // under the timeout: each command refreshes the session
		_, err := c.GetDeviceID(ctx)
		require.NoError(t, err)
	}
	require.Equal(t, 1, srv.SessionCount())

	clk.Advance(34 * time.Second)
	_, err := c.GetDeviceID(ctx)
	require.True(t, isTimeout(err), "expired session must get no answer, got %v", err)
	require.Zero(t, srv.SessionCount())
	_ = c.Close(ctx) // Close Session times out too

	// A new session is welcome, and a session left idle expires on its own.
	c = shortDialer(port, b).mustDial(t)
	require.Equal(t, 1, srv.SessionCount())
	clk.Advance(34 * time.Second)
	require.Zero(t, srv.SessionCount())
	_ = c.Close(ctx)
}

// TestDropSessions checks the DropIPMISessions fault: established sessions
// are forgotten silently once per time the fault is set, and new sessions
// work while it stays set.
func TestDropSessions(t *testing.T) {
	b := newTestBMC(t, "ilo")
	srv, port := startBMC(t, b, Options{})
	ctx := context.Background()
	d := shortDialer(port, b)

	first := d.mustDial(t)
	second := d.mustDial(t)
	require.Equal(t, 2, srv.SessionCount())

	b.SetFaults(model.Faults{DropIPMISessions: true})
	_, err := first.GetDeviceID(ctx)
	require.True(t, isTimeout(err), "dropped session must time out, got %v", err)
	_, err = second.GetDeviceID(ctx)
	require.True(t, isTimeout(err), "every session is dropped, got %v", err)
	require.Zero(t, srv.SessionCount())
	_ = first.Close(ctx)
	_ = second.Close(ctx)

	third := d.mustDial(t)
	for range 3 {
		_, err = third.GetDeviceID(ctx)
		require.NoError(t, err, "sessions opened after the drop live while the fault stays set")
	}

	b.SetFaults(model.Faults{})
	_, err = third.GetDeviceID(ctx)
	require.NoError(t, err)
	b.SetFaults(model.Faults{DropIPMISessions: true}) // set again: drops again
	_, err = third.GetDeviceID(ctx)
	require.True(t, isTimeout(err), "got %v", err)
	_ = third.Close(ctx)
	require.Zero(t, srv.SessionCount())
}

// TestAuthenticationFailures checks that a wrong password or user name is
// refused during RAKP and never yields a session. go-ipmi's client gives up
// after a bad RAKP 2 without telling the BMC (no RAKP 3 with an error
// status), so its half-open session holds a slot until it idles out, as
// on a real BMC; it must never lock out a legitimate client, because a
// full table displaces its oldest half-open session.
func TestAuthenticationFailures(t *testing.T) {
	b := newTestBMC(t, "openbmc")
	srv, port := startBMC(t, b, Options{})
	ctx := context.Background()
	tests := []struct {
		name     string
		user, pw string
	}{
		{name: "wrong password", user: b.Username, pw: "not-the-password"},
		{name: "unknown user", user: "intruder", pw: b.Password},
		{name: "anonymous", user: "", pw: ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			d := shortDialer(port, b)
			d.user, d.pw = tc.user, tc.pw
			_, err := d.dial(t)
			require.Error(t, err)
			require.False(t, isTimeout(err), "refusal must be an answer, not silence: %v", err)
		})
	}

	limit := b.Personality.IPMI.SessionLimit
	clients := make([]*client.Client, 0, limit)
	for range limit {
		clients = append(clients, newDialer(port, b).mustDial(t))
	}
	require.Equal(t, limit, srv.SessionCount(), "half-open sessions were displaced")
	for _, c := range clients {
		require.NoError(t, c.Close(ctx))
	}
	require.Zero(t, srv.SessionCount())
}

// TestUnreachable checks the BlackHole and Down faults: nothing is
// answered, neither handshakes nor established sessions, until the fault
// is cleared.
func TestUnreachable(t *testing.T) {
	tests := []struct {
		name   string
		faults model.Faults
	}{
		{name: "black hole", faults: model.Faults{BlackHole: true}},
		{name: "down", faults: model.Faults{Down: true}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			b := newTestBMC(t, "ami")
			_, port := startBMC(t, b, Options{})
			ctx := context.Background()
			d := shortDialer(port, b)
			c := d.mustDial(t)

			b.SetFaults(tc.faults)
			_, err := c.GetChassisStatus(ctx)
			require.True(t, isTimeout(err), "got %v", err)
			_, err = d.dial(t)
			require.True(t, isTimeout(err), "got %v", err)

			b.SetFaults(model.Faults{})
			_, err = c.GetChassisStatus(ctx)
			require.NoError(t, err, "the session outlived a short outage")
			require.NoError(t, c.Close(ctx))
		})
	}
}

// TestLatency checks that answers wait out the latency fault.
func TestLatency(t *testing.T) {
	b := newTestBMC(t, "supermicro")
	_, port := startBMC(t, b, Options{})
	ctx := context.Background()
	c := newDialer(port, b).mustDial(t)

	const delay = 150 * time.Millisecond
	b.SetFaults(model.Faults{LatencyMedianMs: float64(delay / time.Millisecond)})
	start := time.Now()
	_, err := c.GetDeviceID(ctx)
	require.NoError(t, err)
	require.GreaterOrEqual(t, time.Since(start), delay)

	b.SetFaults(model.Faults{})
	require.NoError(t, c.Close(ctx))
}

// TestCloseDuringLatency checks that Close does not wait for answers held
// back by the latency fault.
func TestCloseDuringLatency(t *testing.T) {
	b := newTestBMC(t, "supermicro")
	srv, port := startBMC(t, b, Options{})
	c := shortDialer(port, b).mustDial(t)
	b.SetFaults(model.Faults{LatencyMedianMs: 60_000})

	errc := make(chan error, 1)
	go func() {
		_, err := c.GetDeviceID(context.Background())
		errc <- err
	}()
	// The request reached the BMC: its answer waits out the latency.
	require.Eventually(t, func() bool {
		buf := make([]byte, 1<<20)
		return bytes.Contains(buf[:runtime.Stack(buf, true)], []byte(".(*faultConn).WriteTo("))
	}, 10*time.Second, time.Millisecond, "no answer held back by the latency fault")
	start := time.Now()
	require.NoError(t, srv.Close())
	require.Less(t, time.Since(start), time.Second)
	require.True(t, isTimeout(<-errc))
	_ = c.Close(context.Background()) // nobody answers Close Session any more
	// goleak (TestMain) proves no handler goroutine still waits.
}
