package redfish_test

import (
	"bytes"
	"context"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	simredfish "github.com/bmcstream/bmcstream/pkg/bmcsim/redfish"
	"github.com/bmcstream/bmcstream/pkg/sources"
	"github.com/bmcstream/bmcstream/pkg/sources/redfish"
)

// TestRequestsPerPoll measures what a poll costs each personality over 40
// polls 30 s apart (so readings change and info documents fall due):
// discovery happens once, a legacy BMC costs 2 requests a poll and 3 when
// an info document is due, a modern one with $expand 1 and 2, one offering
// both generations (read both and merged) 3 and 4, and one more for each
// subsystem resource with readings of its own (AMI's fans in percent,
// beside its legacy fans in RPM).
func TestRequestsPerPoll(t *testing.T) {
	tests := []struct {
		personality    string
		steady, maxReq int
	}{
		{"ilo", 2, 3},
		{"supermicro", 2, 3},
		{"idrac", 3, 4},
		{"xcc", 3, 4},
		{"ami", 4, 5},
		{"ilo4", 2, 3},
		{"openbmc", 1, 2},
	}
	for _, tc := range tests {
		t.Run(tc.personality, func(t *testing.T) {
			t.Parallel()
			b := serveBMC(t, tc.personality, nil)
			s, count := newSource(t, target(t, b.srv.URL), redfish.Options{Now: b.clock.Now})
			_, err := collect(t, s, 10*time.Second)
			require.NoError(t, err)
			first, _ := count.take()
			hist := map[int]int{}
			for range 40 {
				b.clock.Advance(30 * time.Second)
				snap, err := collect(t, s, 10*time.Second)
				require.NoError(t, err)
				require.NotEmpty(t, snap.Readings)
				n, log := count.take()
				require.LessOrEqual(t, n, tc.maxReq, "%v", log)
				hist[n]++
			}
			require.Equal(t, 40-hist[tc.maxReq], hist[tc.steady], "polls cost %v (requests: polls)", hist)
			require.Positive(t, hist[tc.maxReq], "info documents were read again")
			st := s.Stats()
			require.EqualValues(t, 1, st.Discoveries)
			require.EqualValues(t, 1, st.Logins)
			t.Logf("%s: first poll %d requests, then %v (requests: polls)", tc.personality, first, hist)
		})
	}
}

// TestSessionReuse polls a BMC a thousand times, 30 s apart: one session the
// whole time, one discovery, and Close logs it out.
func TestSessionReuse(t *testing.T) {
	t.Parallel()
	b := serveBMC(t, "ilo", nil)
	s, _ := newSource(t, target(t, b.srv.URL), redfish.Options{Now: b.clock.Now})
	for i := range 1000 {
		_, err := collect(t, s, 10*time.Second)
		require.NoError(t, err, "poll %d", i)
		if i%100 == 0 {
			require.Equal(t, 1, b.handler.SessionCount(), "poll %d", i)
		}
		b.clock.Advance(30 * time.Second)
	}
	require.Equal(t, 1, b.handler.SessionCount())
	st := s.Stats()
	require.EqualValues(t, 1, st.Logins)
	require.EqualValues(t, 1, st.Discoveries)
	// One kept-alive connection serves the polls. net/http gives up on
	// reusing a connection whose request write it has not seen finish
	// within 50 ms, which a loaded machine running -race can cause now and
	// then; a handful of connections for two thousand requests still shows
	// keep-alive at work.
	require.LessOrEqual(t, b.conns.Load(), int64(10), "connections for %d requests", st.Requests)

	require.NoError(t, s.Close(t.Context()))
	require.Zero(t, b.handler.SessionCount(), "Close logs out")
	require.NoError(t, s.Close(t.Context()), "Close is idempotent")
}

// TestSessionExpiry lets the session expire between polls: the source logs
// in again once and carries on, without discovering again.
func TestSessionExpiry(t *testing.T) {
	b := serveBMC(t, "supermicro", nil)
	s, count := newSource(t, target(t, b.srv.URL), redfish.Options{Now: b.clock.Now})
	_, err := collect(t, s, 10*time.Second)
	require.NoError(t, err)
	count.take()

	b.clock.Advance(simredfish.DefaultSessionTimeout + time.Minute)
	snap, err := collect(t, s, 10*time.Second)
	require.NoError(t, err)
	require.True(t, snap.Up)
	require.NotEmpty(t, snap.Readings)
	_, log := count.take()
	require.Equal(t, []string{
		"GET /redfish/v1/Chassis/1/Thermal", // 401: expired
		"DELETE /redfish/v1/SessionService/Sessions/1",
		"GET /redfish/v1/",
		"POST /redfish/v1/SessionService/Sessions",
		"GET /redfish/v1/Chassis/1/Thermal",
		"GET /redfish/v1/Chassis/1/Power",
		"GET /redfish/v1/Systems/1", // info due: the clock moved 31 minutes
	}, log)
	require.Equal(t, 1, b.handler.SessionCount())
	st := s.Stats()
	require.EqualValues(t, 2, st.Logins)
	require.EqualValues(t, 1, st.Discoveries)

	require.NoError(t, s.Close(t.Context()))
	require.Zero(t, b.handler.SessionCount())

	// A Collect after Close logs in again.
	_, err = collect(t, s, 10*time.Second)
	require.NoError(t, err)
	require.Equal(t, 1, b.handler.SessionCount())
}

// TestSessionLimit fills the BMC's session table first: the poll reports
// session_limit (the operator must act), not auth or protocol.
func TestSessionLimit(t *testing.T) {
	b := serveBMC(t, "supermicro", nil)
	limit := b.model.Personality.Redfish.SessionLimit
	for range limit {
		req, err := http.NewRequestWithContext(t.Context(), http.MethodPost, b.srv.URL+"/redfish/v1/SessionService/Sessions",
			strings.NewReader(`{"UserName":"`+user+`","Password":"`+password+`"}`))
		require.NoError(t, err)
		req.Close = true
		resp, err := b.srv.Client().Do(req)
		require.NoError(t, err)
		require.NoError(t, resp.Body.Close())
		require.Equal(t, http.StatusCreated, resp.StatusCode)
	}
	s, _ := newSource(t, target(t, b.srv.URL), redfish.Options{Now: b.clock.Now})
	snap, err := collect(t, s, 10*time.Second)
	requireClass(t, err, sources.ClassSessionLimit)
	require.Contains(t, err.Error(), "maximum number of user sessions")
	require.True(t, snap.Up, "the BMC answered")
	require.False(t, snap.Partial)
	require.Empty(t, snap.Readings)
	require.Empty(t, snap.Info)
	require.Equal(t, limit, b.handler.SessionCount())
}

func TestAuthFailure(t *testing.T) {
	for _, basic := range []bool{false, true} {
		t.Run(map[bool]string{false: "session", true: "basic"}[basic], func(t *testing.T) {
			b := serveBMC(t, "xcc", nil)
			tg := target(t, b.srv.URL)
			tg.Password = "wrong-" + tg.Password
			s, _ := newSource(t, tg, redfish.Options{Now: b.clock.Now, BasicAuth: basic})
			snap, err := collect(t, s, 10*time.Second)
			requireClass(t, err, sources.ClassAuth)
			require.True(t, snap.Up)
			require.False(t, snap.Partial)
			require.Zero(t, b.handler.SessionCount())
		})
	}
}

// TestBasicAuth reads a BMC without a session.
func TestBasicAuth(t *testing.T) {
	b := serveBMC(t, "idrac", nil)
	s, count := newSource(t, target(t, b.srv.URL), redfish.Options{Now: b.clock.Now, BasicAuth: true})
	snap, err := collect(t, s, 10*time.Second)
	require.NoError(t, err)
	checkAgainstModel(t, b.model, b.clock.Now(), snap)
	require.Zero(t, b.handler.SessionCount())
	require.Zero(t, s.Stats().Logins)
	count.take()
	_, err = collect(t, s, 10*time.Second)
	require.NoError(t, err)
	n, log := count.take()
	require.Equal(t, 3, n, "Thermal, Power and the expanded Sensors: %v", log)
}

// TestRediscovery swaps the BMC behind the address: a new service (new
// UUID) is discovered again once the source notices, and so is one whose
// resources moved (404).
func TestRediscovery(t *testing.T) {
	tests := []struct {
		name string
		// next is the personality and BMC id served after the swap.
		personality, id string
	}{
		{"new service root UUID", "ilo", "bmc-2"},
		{"resources moved", "openbmc", "bmc-1"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var cur atomic.Pointer[http.Handler]
			b := serveBMC(t, "ilo", func(h http.Handler) http.Handler {
				cur.Store(&h)
				return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { (*cur.Load()).ServeHTTP(w, r) })
			})
			s, _ := newSource(t, target(t, b.srv.URL), redfish.Options{Now: b.clock.Now})
			_, err := collect(t, s, 10*time.Second)
			require.NoError(t, err)

			next := newBMC(t, tc.personality)
			next.ID = tc.id
			next.UUID[0]++ // a different system, whatever the id
			h2 := simredfish.NewHandler(next, simredfish.Options{Now: b.clock.Now, IgnoreSensorLatency: true})
			t.Cleanup(func() { require.NoError(t, h2.Close()) })
			var hh http.Handler = h2
			cur.Store(&hh)

			snap, err := collect(t, s, 10*time.Second)
			requireClass(t, err, sources.ClassProtocol)
			require.True(t, snap.Up)
			require.True(t, snap.Partial)

			snap, err = collect(t, s, 10*time.Second)
			require.NoError(t, err)
			require.EqualValues(t, 2, s.Stats().Discoveries)
			require.Equal(t, next.Personality.Manufacturer, snap.Info["vendor"])
			checkAgainstModel(t, next, b.clock.Now(), snap)
		})
	}
}

// TestExpandRefused serves a BMC that announces $expand and answers 400 to
// it: the source reads the collections member by member instead.
func TestExpandRefused(t *testing.T) {
	b := serveBMC(t, "openbmc", func(h http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if strings.Contains(r.URL.RawQuery, "expand") {
				w.WriteHeader(http.StatusBadRequest)
				return
			}
			h.ServeHTTP(w, r)
		})
	})
	s, count := newSource(t, target(t, b.srv.URL), redfish.Options{Now: b.clock.Now})
	snap, err := collect(t, s, 10*time.Second)
	require.NoError(t, err)
	checkAgainstModel(t, b.model, b.clock.Now(), snap)
	count.take()
	_, err = collect(t, s, 10*time.Second)
	require.NoError(t, err)
	n, log := count.take()
	require.Equal(t, 1+len(snap.Readings), n, "the collection and each sensor: %v", log)
}

// TestLogsNoSecret runs a source with a debug logger through login, expiry
// and logout: the log never holds the password or the session token.
func TestLogsNoSecret(t *testing.T) {
	var buf bytes.Buffer
	logger := slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: slog.LevelDebug}))
	var (
		mu     sync.Mutex
		tokens []string
	)
	b := serveBMC(t, "openbmc", func(h http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			h.ServeHTTP(w, r)
			if tok := w.Header().Get("X-Auth-Token"); tok != "" {
				mu.Lock()
				tokens = append(tokens, tok)
				mu.Unlock()
			}
		})
	})
	s, _ := newSource(t, target(t, b.srv.URL), redfish.Options{Now: b.clock.Now, Logger: logger})
	_, err := collect(t, s, 10*time.Second)
	require.NoError(t, err)
	b.clock.Advance(time.Hour)
	_, err = collect(t, s, 10*time.Second)
	require.NoError(t, err)
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
	defer cancel()
	require.NoError(t, s.Close(ctx))

	mu.Lock()
	defer mu.Unlock()
	require.Len(t, tokens, 2)
	require.Contains(t, buf.String(), "logged in")
	require.NotContains(t, buf.String(), password)
	for _, tok := range tokens {
		require.NotContains(t, buf.String(), tok)
	}
}
