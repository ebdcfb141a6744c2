package redfish_test

import (
	"context"
	"encoding/json"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/stmcginnis/gofish"
	"github.com/stretchr/testify/require"

	"github.com/bmcstream/bmcstream/pkg/bmcsim/model"
	"github.com/bmcstream/bmcstream/pkg/bmcsim/redfish"
)

// rawGet GETs path with basic auth and a client timeout, returning the
// transport error if any.
func rawGet(ctx context.Context, srv *httptest.Server, path string, timeout time.Duration) (*http.Response, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, srv.URL+path, nil)
	if err != nil {
		return nil, err
	}
	req.Close = true
	req.SetBasicAuth(user, password)
	c := &http.Client{Timeout: timeout, Transport: &http.Transport{DisableKeepAlives: true}}
	defer c.CloseIdleConnections()
	resp, err := c.Do(req)
	if err != nil {
		return nil, err
	}
	return resp, resp.Body.Close()
}

func TestFaultLatency(t *testing.T) {
	t.Parallel()
	b, _, srv, _ := newService(t, "ilo", redfish.Options{Seed: 42})
	b.SetFaults(model.Faults{LatencyMedianMs: 40, LatencyP99Ms: 120})
	const n = 15
	took := make([]time.Duration, 0, n)
	for range n {
		start := time.Now()
		resp, _ := do(t, srv, request{path: "/redfish/v1/", auth: "none"})
		took = append(took, time.Since(start))
		require.Equal(t, http.StatusOK, resp.StatusCode)
	}
	slices.Sort(took)
	// Lower bound only: a loaded CI machine adds time, never removes it.
	// The draws are seeded, so their median is fixed; 30 ms leaves room
	// for a seed whose sample median sits below the distribution's 40.
	require.GreaterOrEqual(t, took[n/2], 30*time.Millisecond, "median of %v", took)
}

func TestSensorLatency(t *testing.T) {
	t.Parallel()
	b, _, srv, _ := newService(t, "idrac", redfish.Options{})
	want := time.Duration(b.Personality.Redfish.SensorLatencyMs) * time.Millisecond
	require.Positive(t, want)

	start := time.Now()
	resp, _ := do(t, srv, request{path: "/redfish/v1/Chassis/System.Embedded.1"})
	require.Equal(t, http.StatusOK, resp.StatusCode)
	require.Less(t, time.Since(start), want, "the chassis is not a sensor resource")

	start = time.Now()
	resp, _ = do(t, srv, request{path: "/redfish/v1/Chassis/System.Embedded.1/Thermal"})
	require.Equal(t, http.StatusOK, resp.StatusCode)
	require.GreaterOrEqual(t, time.Since(start), want)
}

func TestFaultHTTPStatus(t *testing.T) {
	tests := []struct {
		name       string
		faults     model.Faults
		retryAfter string
		code       string
	}{
		{"503 with Retry-After", model.Faults{HTTPStatus: 503, RetryAfterSeconds: 7}, "7", "Base.1.16.ServiceTemporarilyUnavailable"},
		{"429 with Retry-After", model.Faults{HTTPStatus: 429, RetryAfterSeconds: 2}, "2", "Base.1.16.ServiceTemporarilyUnavailable"},
		{"503 without Retry-After", model.Faults{HTTPStatus: 503}, "", "Base.1.16.ServiceTemporarilyUnavailable"},
		{"500", model.Faults{HTTPStatus: 500}, "", "Base.1.16.ServiceTemporarilyUnavailable"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			b, h, srv, _ := newService(t, "xcc", redfish.Options{})
			b.SetFaults(tc.faults)

			for _, path := range []string{"/redfish", "/redfish/v1/"} {
				resp, _ := do(t, srv, request{path: path, auth: "none"})
				require.Equal(t, http.StatusOK, resp.StatusCode, "%s still answers so clients see the BMC alive", path)
			}
			for _, req := range []request{
				{path: "/redfish/v1/Chassis/1"},
				{path: "/redfish/v1/Chassis/1/Thermal", auth: "none"},
				{method: http.MethodPost, path: "/redfish/v1/SessionService/Sessions", auth: "none", body: `{"UserName":"admin","Password":"s3cret"}`},
			} {
				resp, body := do(t, srv, req)
				require.Equal(t, tc.faults.HTTPStatus, resp.StatusCode, req.path)
				require.Equal(t, tc.retryAfter, resp.Header.Get("Retry-After"))
				code, _ := redfishError(t, body)
				require.Equal(t, tc.code, code)
			}
			require.Zero(t, h.SessionCount())

			_, err := gofish.ConnectContext(t.Context(), gofish.ClientConfig{Endpoint: srv.URL, Username: user, Password: password})
			require.ErrorContains(t, err, "ServiceTemporarilyUnavailable", "gofish reads the root, then fails to log in")
		})
	}
}

func TestFaultMalformedJSON(t *testing.T) {
	b, _, srv, _ := newService(t, "idrac", redfish.Options{IgnoreSensorLatency: true})
	b.SetFaults(model.Faults{MalformedJSON: true})
	for _, path := range []string{
		"/redfish/v1/Chassis/System.Embedded.1/Thermal",
		"/redfish/v1/Chassis/System.Embedded.1/Power",
		"/redfish/v1/Chassis/System.Embedded.1/Sensors",
		"/redfish/v1/Chassis/System.Embedded.1/Sensors/CPU1Temp",
		"/redfish/v1/Chassis/System.Embedded.1/ThermalSubsystem/ThermalMetrics",
	} {
		resp, body := do(t, srv, request{path: path})
		require.Equal(t, http.StatusOK, resp.StatusCode, path)
		require.NotEmpty(t, body)
		var doc map[string]any
		require.Error(t, json.Unmarshal(body, &doc), path)
	}
	getJSON(t, srv, "/redfish/v1/Chassis/System.Embedded.1") // not a sensor resource

	// A client holding the healthy document's ETag still gets the broken
	// one, not 304.
	b.SetFaults(model.Faults{})
	resp, _ := do(t, srv, request{path: "/redfish/v1/Chassis/System.Embedded.1/Thermal"})
	healthy := resp.Header.Get("ETag")
	b.SetFaults(model.Faults{MalformedJSON: true})
	resp, body := do(t, srv, request{path: "/redfish/v1/Chassis/System.Embedded.1/Thermal", header: map[string]string{"If-None-Match": healthy}})
	require.Equal(t, http.StatusOK, resp.StatusCode)
	require.False(t, json.Valid(body))

	c := connect(t, srv.URL, true)
	chassis, err := c.Service.Chassis()
	require.NoError(t, err)
	_, err = chassis[0].Thermal()
	require.Error(t, err)
}

func TestFaultWrongTypes(t *testing.T) {
	b, _, srv, _ := newService(t, "idrac", redfish.Options{IgnoreSensorLatency: true})
	b.SetFaults(model.Faults{WrongTypes: true})
	chassis := "/redfish/v1/Chassis/System.Embedded.1"

	thermal := getJSON(t, srv, chassis+"/Thermal")
	temp := thermal["Temperatures"].([]any)[0].(map[string]any)
	require.Equal(t, "N/A", temp["ReadingCelsius"])
	fan := thermal["Fans"].([]any)[0].(map[string]any)
	reading, ok := fan["Reading"].(float64)
	require.True(t, ok, "fan Reading stays a number: %v", fan["Reading"])
	require.NotEqual(t, float64(int64(reading)), reading, "fan Reading %v is fractional", reading)

	power := getJSON(t, srv, chassis+"/Power")
	control := power["PowerControl"].([]any)[0].(map[string]any)
	watts := control["PowerConsumedWatts"].(float64)
	require.NotEqual(t, float64(int64(watts)), watts, "PowerConsumedWatts %v is fractional", watts)
	require.Equal(t, "N/A", power["PowerSupplies"].([]any)[0].(map[string]any)["PowerInputWatts"])

	sensor := getJSON(t, srv, chassis+"/Sensors/CPU1Temp")
	require.Equal(t, "N/A", sensor["Reading"])

	// Not a sensor resource: untouched.
	require.Equal(t, "On", getJSON(t, srv, chassis)["PowerState"])

	// gofish v0.26 fails the whole Thermal on one "N/A" (ReadingCelsius is
	// *float64) or one fraction in an integer field (Fans[].Reading is *int).
	c := connect(t, srv.URL, true)
	ch, err := c.Service.Chassis()
	require.NoError(t, err)
	_, err = ch[0].Thermal()
	require.ErrorContains(t, err, "cannot unmarshal")
}

func TestFaultsChangeHealthAndPower(t *testing.T) {
	b, _, srv, _ := newService(t, "idrac", redfish.Options{IgnoreSensorLatency: true})
	b.SetFaults(model.Faults{FanFailed: 2, PowerOff: true})
	chassis := "/redfish/v1/Chassis/System.Embedded.1"

	ch := getJSON(t, srv, chassis)
	require.Equal(t, "Off", ch["PowerState"])
	require.Equal(t, "Critical", ch["Status"].(map[string]any)["Health"])
	require.Equal(t, "Off", getJSON(t, srv, "/redfish/v1/Systems/System.Embedded.1")["PowerState"])

	fan := getJSON(t, srv, chassis+"/Thermal")["Fans"].([]any)[1].(map[string]any)
	require.EqualValues(t, 0, fan["Reading"])
	require.Equal(t, "Critical", fan["Status"].(map[string]any)["Health"])
}

func TestFaultBlackHole(t *testing.T) {
	b := newBMC(t, "ilo")
	h := redfish.NewHandler(b, redfish.Options{})
	arrived := make(chan struct{}, 8)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		arrived <- struct{}{}
		h.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	t.Cleanup(func() { require.NoError(t, h.Close()) })
	b.SetFaults(model.Faults{BlackHole: true})

	start := time.Now()
	_, err := rawGet(t.Context(), srv, "/redfish/v1/", 200*time.Millisecond)
	var nerr net.Error
	require.True(t, errors.As(err, &nerr) && nerr.Timeout(), "want a client timeout, got %v", err)
	require.Less(t, time.Since(start), 5*time.Second)
	<-arrived

	// Close releases a request held in the black hole: the client sees
	// its connection dropped instead of waiting forever.
	done := make(chan error, 1)
	go func() {
		_, err := rawGet(context.Background(), srv, "/redfish/v1/Chassis/1", 0)
		done <- err
	}()
	<-arrived
	require.NoError(t, h.Close())
	select {
	case err := <-done:
		require.Error(t, err)
	case <-time.After(5 * time.Second):
		t.Fatal("Close did not release the black-holed request")
	}
}

func TestFaultDown(t *testing.T) {
	b, _, srv, _ := newService(t, "supermicro", redfish.Options{})
	b.SetFaults(model.Faults{Down: true})
	_, err := rawGet(t.Context(), srv, "/redfish/v1/", 5*time.Second)
	require.Error(t, err)
	require.True(t, strings.Contains(err.Error(), "EOF") || strings.Contains(err.Error(), "reset"), "%v", err)

	_, err = gofish.ConnectContext(t.Context(), gofish.ClientConfig{Endpoint: srv.URL, Username: user, Password: password})
	require.Error(t, err)

	// The BMC comes back.
	b.SetFaults(model.Faults{})
	c := connect(t, srv.URL, false)
	require.NotEmpty(t, c.Service.UUID)
}
