package redfish_test

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/stmcginnis/gofish"
	"github.com/stretchr/testify/require"

	"github.com/bmcstream/bmcstream/pkg/bmcsim/redfish"
)

func TestAuthentication(t *testing.T) {
	_, _, srv, _ := newService(t, "idrac", redfish.Options{IgnoreSensorLatency: true})
	chassis := "/redfish/v1/Chassis/System.Embedded.1"
	tests := []struct {
		name   string
		req    request
		status int
	}{
		{"service root needs no credentials", request{path: "/redfish/v1/", auth: "none"}, http.StatusOK},
		{"version object needs no credentials", request{path: "/redfish", auth: "none"}, http.StatusOK},
		{"metadata needs no credentials", request{path: "/redfish/v1/$metadata", auth: "none"}, http.StatusOK},
		{"odata needs no credentials", request{path: "/redfish/v1/odata", auth: "none"}, http.StatusOK},
		{"chassis without credentials", request{path: chassis, auth: "none"}, http.StatusUnauthorized},
		{"chassis with basic auth", request{path: chassis}, http.StatusOK},
		{"chassis with a wrong password", request{path: chassis, auth: "none", header: map[string]string{
			"Authorization": "Basic YWRtaW46d3Jvbmc=", // admin:wrong
		}}, http.StatusUnauthorized},
		{"chassis with an unknown token", request{path: chassis, auth: "token:deadbeef"}, http.StatusUnauthorized},
		{"sessions without credentials", request{path: "/redfish/v1/SessionService/Sessions", auth: "none"}, http.StatusUnauthorized},
		{"unknown resource", request{path: "/redfish/v1/Nope"}, http.StatusNotFound},
		{"unknown resource needs credentials first", request{path: "/redfish/v1/Nope", auth: "none"}, http.StatusUnauthorized},
		{"PATCH is not served", request{method: http.MethodPatch, path: chassis, body: `{}`}, http.StatusMethodNotAllowed},
		{"login with wrong credentials", request{method: http.MethodPost, path: "/redfish/v1/SessionService/Sessions",
			body: `{"UserName":"admin","Password":"wrong"}`, auth: "none"}, http.StatusUnauthorized},
		{"login with malformed JSON", request{method: http.MethodPost, path: "/redfish/v1/SessionService/Sessions",
			body: `{"UserName":`, auth: "none"}, http.StatusBadRequest},
		{"login without a password", request{method: http.MethodPost, path: "/redfish/v1/SessionService/Sessions",
			body: `{"UserName":"admin"}`, auth: "none"}, http.StatusBadRequest},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			resp, body := do(t, srv, tc.req)
			require.Equal(t, tc.status, resp.StatusCode, "%s", body)
			if tc.status >= 400 {
				code, _ := redfishError(t, body)
				require.True(t, strings.HasPrefix(code, "Base."), code)
			}
			if tc.status == http.StatusUnauthorized {
				require.NotEmpty(t, resp.Header.Get("WWW-Authenticate"))
			}
		})
	}
}

func TestGofishSessionAndBasicAuth(t *testing.T) {
	_, h, srv, _ := newService(t, "xcc", redfish.Options{})

	c, err := gofish.ConnectContext(t.Context(), gofish.ClientConfig{Endpoint: srv.URL, Username: user, Password: password})
	require.NoError(t, err)
	require.Equal(t, 1, h.SessionCount())
	_, err = c.Service.Chassis()
	require.NoError(t, err)
	c.Logout()
	require.Equal(t, 0, h.SessionCount(), "gofish's Logout deletes the session")

	basic := connect(t, srv.URL, true)
	require.Equal(t, 0, h.SessionCount(), "basic auth opens no session")
	chassis, err := basic.Service.Chassis()
	require.NoError(t, err)
	require.Len(t, chassis, 1)

	_, err = gofish.ConnectContext(t.Context(), gofish.ClientConfig{Endpoint: srv.URL, Username: user, Password: "wrong"})
	require.ErrorContains(t, err, "401")
	require.Equal(t, 0, h.SessionCount())
}

func TestSessionLimit(t *testing.T) {
	b, h, srv, _ := newService(t, "supermicro", redfish.Options{})
	limit := b.Personality.Redfish.SessionLimit
	require.Equal(t, 4, limit)
	var tokens []string
	for range limit {
		tok, _ := login(t, srv)
		tokens = append(tokens, tok)
	}
	require.Equal(t, limit, h.SessionCount())

	resp, body := do(t, srv, request{
		method: http.MethodPost,
		path:   "/redfish/v1/SessionService/Sessions",
		body:   `{"UserName":"admin","Password":"s3cret"}`,
		auth:   "none",
	})
	require.Equal(t, http.StatusServiceUnavailable, resp.StatusCode)
	code, msg := redfishError(t, body)
	require.Equal(t, "Base.1.16.SessionLimitExceeded", code)
	require.Contains(t, msg, "maximum number of user sessions")

	_, err := gofish.ConnectContext(t.Context(), gofish.ClientConfig{Endpoint: srv.URL, Username: user, Password: password})
	require.ErrorContains(t, err, "maximum number of user sessions")

	// Every session still works, and the collection lists them all.
	for _, tok := range tokens {
		resp, _ := do(t, srv, request{path: "/redfish/v1/Chassis/1", auth: "token:" + tok})
		require.Equal(t, http.StatusOK, resp.StatusCode)
	}
	doc := getJSON(t, srv, "/redfish/v1/SessionService/Sessions")
	require.EqualValues(t, limit, doc["Members@odata.count"])
}

func TestSessionExpiry(t *testing.T) {
	_, h, srv, clk := newService(t, "ilo", redfish.Options{SessionTimeout: 10 * time.Minute})
	svc := getJSON(t, srv, "/redfish/v1/SessionService")
	require.EqualValues(t, 600, svc["SessionTimeout"])

	tok, _ := login(t, srv)
	get := func() int {
		resp, _ := do(t, srv, request{path: "/redfish/v1/Chassis/1", auth: "token:" + tok})
		return resp.StatusCode
	}
	// The timeout counts idle time: each use restarts it.
	clk.Advance(9 * time.Minute)
	require.Equal(t, http.StatusOK, get())
	clk.Advance(9 * time.Minute)
	require.Equal(t, http.StatusOK, get())
	require.Equal(t, 1, h.SessionCount())

	clk.Advance(10*time.Minute + time.Second)
	require.Equal(t, 0, h.SessionCount())
	require.Equal(t, http.StatusUnauthorized, get())

	// An expired session frees its slot.
	for range 10 {
		login(t, srv)
	}
	require.Equal(t, 10, h.SessionCount())
	clk.Advance(11 * time.Minute)
	require.Equal(t, 0, h.SessionCount())
}

func TestSessionDefaultTimeout(t *testing.T) {
	_, _, srv, _ := newService(t, "ilo", redfish.Options{})
	svc := getJSON(t, srv, "/redfish/v1/SessionService")
	require.EqualValues(t, redfish.DefaultSessionTimeout/time.Second, svc["SessionTimeout"])
}

func TestLogout(t *testing.T) {
	_, h, srv, _ := newService(t, "openbmc", redfish.Options{})
	tokA, locA := login(t, srv)
	tokB, locB := login(t, srv)
	_, locC := login(t, srv)
	require.Equal(t, 3, h.SessionCount())
	require.True(t, strings.HasPrefix(locA, "/redfish/v1/SessionService/Sessions/"), locA)

	session := getJSON(t, srv, locA)
	require.Equal(t, user, session["UserName"])
	require.Equal(t, "#Session.v1_6_0.Session", session["@odata.type"])

	tests := []struct {
		name   string
		req    request
		status int
		count  int
	}{
		{"another session's token may not", request{method: http.MethodDelete, path: locA, auth: "token:" + tokB}, http.StatusForbidden, 3},
		{"without credentials", request{method: http.MethodDelete, path: locA, auth: "none"}, http.StatusUnauthorized, 3},
		{"with its own token", request{method: http.MethodDelete, path: locA, auth: "token:" + tokA}, http.StatusNoContent, 2},
		{"its token is gone", request{path: "/redfish/v1/Chassis/chassis", auth: "token:" + tokA}, http.StatusUnauthorized, 2},
		{"twice", request{method: http.MethodDelete, path: locA}, http.StatusNotFound, 2},
		{"with basic auth", request{method: http.MethodDelete, path: locC}, http.StatusNoContent, 1},
		{"the last one itself", request{method: http.MethodDelete, path: locB, auth: "token:" + tokB}, http.StatusNoContent, 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			resp, body := do(t, srv, tc.req)
			require.Equal(t, tc.status, resp.StatusCode, "%s", body)
			require.Equal(t, tc.count, h.SessionCount())
		})
	}
}

// FuzzLogin feeds arbitrary bodies to the login endpoint: every one gets a
// Redfish answer (a session, or an error with a body), never a crash or a
// 500.
func FuzzLogin(f *testing.F) {
	for _, s := range []string{
		`{"UserName":"admin","Password":"s3cret"}`,
		`{"UserName":"admin"}`,
		`{"username":"admin","password":"s3cret"}`,
		`{"UserName":1,"Password":null}`,
		`[]`, ``, `{`,
	} {
		f.Add(s)
	}
	b := newBMC(f, "openbmc")
	h := redfish.NewHandler(b, redfish.Options{})
	f.Fuzz(func(t *testing.T, body string) {
		req := httptest.NewRequest(http.MethodPost, "/redfish/v1/SessionService/Sessions", strings.NewReader(body))
		w := httptest.NewRecorder()
		h.ServeHTTP(w, req)
		switch w.Code {
		case http.StatusCreated:
			require.NotEmpty(t, w.Header().Get("X-Auth-Token"))
			require.NotEmpty(t, w.Header().Get("Location"))
		case http.StatusBadRequest, http.StatusUnauthorized, http.StatusServiceUnavailable:
			redfishError(t, w.Body.Bytes())
		default:
			t.Fatalf("status %d for %q", w.Code, body)
		}
	})
}
