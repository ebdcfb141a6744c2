package redfish_test

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stmcginnis/gofish"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/bmcstream/bmcstream/pkg/bmcsim/model"
	"github.com/bmcstream/bmcstream/pkg/bmcsim/redfish"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

const (
	user     = "admin"
	password = "s3cret"
)

// testTime is the instant test clocks start at.
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

// serve starts h on a loopback HTTP server; the handler is closed (releasing
// held requests) and then the server when the test ends.
func serve(t *testing.T, h *redfish.Handler) *httptest.Server {
	t.Helper()
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	t.Cleanup(func() { require.NoError(t, h.Close()) })
	return srv
}

// newService serves personality's BMC with a clock, and returns both.
func newService(t *testing.T, personality string, opts redfish.Options) (*model.BMC, *redfish.Handler, *httptest.Server, *clock) {
	t.Helper()
	b := newBMC(t, personality)
	clk := newClock()
	if opts.Now == nil {
		opts.Now = clk.Now
	}
	h := redfish.NewHandler(b, opts)
	return b, h, serve(t, h), clk
}

// request describes one raw HTTP request of a test.
type request struct {
	method string
	path   string
	body   string
	// auth is "basic" (the default), "none", or "token:<X-Auth-Token>".
	auth   string
	header map[string]string
}

// do sends req without keep-alive (so no idle connection outlives the test)
// and returns the response with its body read.
func do(t *testing.T, srv *httptest.Server, req request) (*http.Response, []byte) {
	t.Helper()
	if req.method == "" {
		req.method = http.MethodGet
	}
	var body io.Reader
	if req.body != "" {
		body = strings.NewReader(req.body)
	}
	r, err := http.NewRequestWithContext(t.Context(), req.method, srv.URL+req.path, body)
	require.NoError(t, err)
	r.Close = true
	switch {
	case req.auth == "" || req.auth == "basic":
		r.SetBasicAuth(user, password)
	case strings.HasPrefix(req.auth, "token:"):
		r.Header.Set("X-Auth-Token", strings.TrimPrefix(req.auth, "token:"))
	}
	for k, v := range req.header {
		r.Header.Set(k, v)
	}
	if req.body != "" {
		r.Header.Set("Content-Type", "application/json")
	}
	resp, err := srv.Client().Do(r)
	require.NoError(t, err)
	defer func() { require.NoError(t, resp.Body.Close()) }()
	b, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return resp, b
}

// getJSON GETs path with basic auth, requires 200 and decodes the body.
func getJSON(t *testing.T, srv *httptest.Server, path string) map[string]any {
	t.Helper()
	resp, body := do(t, srv, request{path: path})
	require.Equal(t, http.StatusOK, resp.StatusCode, "GET %s: %s", path, body)
	var doc map[string]any
	require.NoError(t, json.Unmarshal(body, &doc), "GET %s", path)
	return doc
}

// connect logs gofish in (a session unless basic), logging out when the test
// ends.
func connect(t *testing.T, endpoint string, basic bool) *gofish.APIClient {
	t.Helper()
	c, err := gofish.ConnectContext(t.Context(), gofish.ClientConfig{
		Endpoint:  endpoint,
		Username:  user,
		Password:  password,
		BasicAuth: basic,
	})
	require.NoError(t, err)
	t.Cleanup(c.Logout)
	return c
}

// login creates a session with a raw request and returns its token and
// Location.
func login(t *testing.T, srv *httptest.Server) (token, location string) {
	t.Helper()
	resp, body := do(t, srv, request{
		method: http.MethodPost,
		path:   "/redfish/v1/SessionService/Sessions",
		body:   `{"UserName":"` + user + `","Password":"` + password + `"}`,
		auth:   "none",
	})
	require.Equal(t, http.StatusCreated, resp.StatusCode, "%s", body)
	return resp.Header.Get("X-Auth-Token"), resp.Header.Get("Location")
}

// redfishError decodes a Redfish error body.
func redfishError(t testing.TB, body []byte) (code, message string) {
	t.Helper()
	var e struct {
		Error struct {
			Code         string `json:"code"`
			Message      string `json:"message"`
			ExtendedInfo []struct {
				MessageID string `json:"MessageId"`
				Message   string
			} `json:"@Message.ExtendedInfo"`
		} `json:"error"`
	}
	require.NoError(t, json.Unmarshal(body, &e), "%s", body)
	require.NotEmpty(t, e.Error.ExtendedInfo, "%s", body)
	require.Equal(t, e.Error.Code, e.Error.ExtendedInfo[0].MessageID)
	return e.Error.Code, e.Error.Message
}
