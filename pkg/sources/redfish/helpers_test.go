package redfish_test

import (
	"context"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/bmcstream/bmcstream/pkg/bmcsim/model"
	simredfish "github.com/bmcstream/bmcstream/pkg/bmcsim/redfish"
	"github.com/bmcstream/bmcstream/pkg/secret"
	"github.com/bmcstream/bmcstream/pkg/sources"
	"github.com/bmcstream/bmcstream/pkg/sources/redfish"
	v1 "github.com/bmcstream/bmcstream/proto/bmcstream/v1"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// The Source is a sources.Source.
var _ sources.Source = (*redfish.Source)(nil)

const (
	user = "admin"
	// password is distinctive so a test can tell it never leaks into an
	// error or a log line.
	password = "hunter2-Zq8vX-distinctive"
)

// testTime is where test clocks start (bmcsim's own tests use the same
// instant, so its golden documents show the values these tests read).
func testTime() time.Time { return time.Date(2026, 11, 21, 12, 0, 0, 0, time.UTC) }

// clock is an injectable clock tests move by hand.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func newClock() *clock { return &clock{t: testTime()} }

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

func newBMC(t testing.TB, personality string) *model.BMC {
	t.Helper()
	ps, err := model.Builtin()
	require.NoError(t, err)
	p, ok := ps[personality]
	require.True(t, ok, "personality %s", personality)
	return model.NewBMC("bmc-1", "r01", p, model.Room{Seed: 7}, user, password)
}

func personalities(t testing.TB) []string {
	t.Helper()
	ps, err := model.Builtin()
	require.NoError(t, err)
	return model.Names(ps)
}

// bmc is one simulated BMC served over loopback HTTP.
type bmc struct {
	model   *model.BMC
	handler *simredfish.Handler
	srv     *httptest.Server
	clock   *clock
	// conns counts the TCP connections the server accepted.
	conns atomic.Int64
}

// serveBMC serves personality's BMC with a clock starting at testTime; wrap,
// when not nil, sits between the server and the handler.
func serveBMC(t *testing.T, personality string, wrap func(http.Handler) http.Handler) *bmc {
	t.Helper()
	b := newBMC(t, personality)
	clk := newClock()
	h := simredfish.NewHandler(b, simredfish.Options{Now: clk.Now, IgnoreSensorLatency: true})
	var hh http.Handler = h
	if wrap != nil {
		hh = wrap(h)
	}
	out := &bmc{model: b, handler: h, clock: clk}
	out.srv = httptest.NewUnstartedServer(hh)
	out.srv.Config.ConnState = func(_ net.Conn, st http.ConnState) {
		if st == http.StateNew {
			out.conns.Add(1)
		}
	}
	out.srv.Start()
	t.Cleanup(out.srv.Close)
	t.Cleanup(func() { require.NoError(t, h.Close()) })
	return out
}

// counter counts the requests a Source sends, by "METHOD path".
type counter struct {
	next http.RoundTripper
	mu   sync.Mutex
	n    int
	log  []string
}

func (c *counter) RoundTrip(r *http.Request) (*http.Response, error) {
	c.mu.Lock()
	c.n++
	c.log = append(c.log, r.Method+" "+r.URL.RequestURI())
	c.mu.Unlock()
	return c.next.RoundTrip(r)
}

// take returns the requests counted since the last take.
func (c *counter) take() (int, []string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	n, log := c.n, c.log
	c.n, c.log = 0, nil
	return n, log
}

// target is where srvURL is, with the test's credentials.
func target(t testing.TB, srvURL string) sources.Target {
	t.Helper()
	u, err := url.Parse(srvURL)
	require.NoError(t, err)
	host, port, err := net.SplitHostPort(u.Host)
	require.NoError(t, err)
	p, err := strconv.Atoi(port)
	require.NoError(t, err)
	return sources.Target{Host: host, Port: p, Scheme: u.Scheme, Username: user, Password: secret.Secret(password)}
}

// newSource returns a Source for tg whose requests are counted, closed when
// the test ends.
func newSource(t *testing.T, tg sources.Target, opts redfish.Options) (*redfish.Source, *counter) {
	t.Helper()
	tr, err := redfish.NewTransport(tg)
	require.NoError(t, err)
	c := &counter{next: tr}
	opts.Transport = c
	s := redfish.New(tg, opts)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = s.Close(ctx)
		tr.CloseIdleConnections()
	})
	return s, c
}

// collect runs one poll with a deadline.
func collect(t *testing.T, s *redfish.Source, timeout time.Duration) (*v1.Snapshot, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), timeout)
	defer cancel()
	var snap v1.Snapshot
	err := s.Collect(ctx, &snap)
	requireNoSecret(t, err, &snap)
	if err != nil {
		require.Equal(t, err.Error(), snap.Error)
		require.Equal(t, string(sources.ClassOf(err)), snap.ErrorClass)
		var se *sources.Error
		require.ErrorAs(t, err, &se, "Collect's errors are *sources.Error")
	} else {
		require.Empty(t, snap.Error)
		require.Empty(t, snap.ErrorClass)
	}
	return &snap, err
}

// requireNoSecret checks the password appears in neither the error nor the
// snapshot.
func requireNoSecret(t *testing.T, err error, snap *v1.Snapshot) {
	t.Helper()
	if err != nil {
		require.NotContains(t, err.Error(), password)
		require.NotContains(t, err.Error(), "hunter2")
	}
	require.NotContains(t, snap.String(), password)
}

// requireClass checks err is a *sources.Error of class c.
func requireClass(t *testing.T, err error, c sources.Class) *sources.Error {
	t.Helper()
	require.Error(t, err)
	var se *sources.Error
	require.ErrorAs(t, err, &se)
	require.Equal(t, c, se.Class, "%v", err)
	return se
}

// find returns the readings named name.
func find(rs []v1.Reading, name string) []v1.Reading {
	var out []v1.Reading
	for _, r := range rs {
		if r.Name == name {
			out = append(out, r)
		}
	}
	return out
}

// bySensorType returns the readings of a sensor type.
func bySensorType(rs []v1.Reading, typ string) []v1.Reading {
	var out []v1.Reading
	for _, r := range rs {
		if r.SensorType == typ {
			out = append(out, r)
		}
	}
	return out
}

// httptestServer serves h over loopback HTTP until the test ends and
// returns its URL.
func httptestServer(t *testing.T, h http.Handler) string {
	t.Helper()
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return srv.URL
}
