package redfish_test

import (
	"context"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/bmcstream/bmcstream/pkg/bmcsim/model"
	"github.com/bmcstream/bmcstream/pkg/sources"
	"github.com/bmcstream/bmcstream/pkg/sources/redfish"
	v1 "github.com/bmcstream/bmcstream/proto/bmcstream/v1"
)

// TestFaultWrongTypes serves "N/A" for every float reading and fractions
// where integers belong: the fractions are good readings, each "N/A" costs
// its own reading (counted), and the poll succeeds.
func TestFaultWrongTypes(t *testing.T) {
	tests := []struct {
		personality string
		// kept are the sensor types still read: legacy fans and chassis
		// power are integers, served as fractions.
		kept []string
	}{
		{"ilo", []string{"Fans", "PowerControl"}},
		{"supermicro", []string{"Fans", "PowerControl"}},
		{"openbmc", nil},
	}
	for _, tc := range tests {
		t.Run(tc.personality, func(t *testing.T) {
			b := serveBMC(t, tc.personality, nil)
			s, _ := newSource(t, target(t, b.srv.URL), redfish.Options{Now: b.clock.Now})
			healthy, err := collect(t, s, 10*time.Second)
			require.NoError(t, err)
			before := s.Stats().Skipped

			b.model.SetFaults(model.Faults{WrongTypes: true})
			snap, err := collect(t, s, 10*time.Second)
			require.NoError(t, err)
			require.True(t, snap.Up)
			require.False(t, snap.Partial)
			var types []string
			for _, r := range snap.Readings {
				if len(types) == 0 || types[len(types)-1] != r.SensorType {
					types = append(types, r.SensorType)
				}
				require.NotEqual(t, r.Value, float64(int64(r.Value)), "%s: %v is the fraction served", r.Name, r.Value)
			}
			require.Equal(t, tc.kept, types)

			skipped := s.Stats().Skipped
			require.Equal(t, before.Unavailable*2, skipped.Unavailable, "absent sensors are skipped as before")
			require.EqualValues(t, len(healthy.Readings)-len(snap.Readings), skipped.NotANumber-before.NotANumber,
				"every reading lost is counted")
			require.Zero(t, skipped.NoReading+skipped.Malformed)
		})
	}
}

// TestFaultMalformedJSON truncates the sensor documents: decode, with
// Partial set, and the source reads them again (no stale cache) once the
// BMC recovers.
func TestFaultMalformedJSON(t *testing.T) {
	for _, name := range []string{"ilo", "openbmc"} {
		t.Run(name, func(t *testing.T) {
			b := serveBMC(t, name, nil)
			s, _ := newSource(t, target(t, b.srv.URL), redfish.Options{Now: b.clock.Now})
			healthy, err := collect(t, s, 10*time.Second)
			require.NoError(t, err)

			b.model.SetFaults(model.Faults{MalformedJSON: true})
			snap, err := collect(t, s, 10*time.Second)
			requireClass(t, err, sources.ClassDecode)
			require.True(t, snap.Up)
			require.True(t, snap.Partial)
			require.Empty(t, snap.Readings)
			require.NotEmpty(t, snap.Info, "what the poll knows of the system still travels")

			b.model.SetFaults(model.Faults{})
			snap, err = collect(t, s, 10*time.Second)
			require.NoError(t, err)
			require.Equal(t, healthy.Readings, snap.Readings)
		})
	}
}

// TestPartialDocument truncates only Power: Thermal's readings come, with
// Partial and the decode error.
func TestPartialDocument(t *testing.T) {
	b := serveBMC(t, "ilo", func(h http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if strings.HasSuffix(r.URL.Path, "/Power") {
				rec := httptest.NewRecorder()
				h.ServeHTTP(rec, r)
				body := rec.Body.Bytes()
				w.WriteHeader(rec.Code)
				_, _ = w.Write(body[:len(body)/3])
				return
			}
			h.ServeHTTP(w, r)
		})
	})
	s, _ := newSource(t, target(t, b.srv.URL), redfish.Options{Now: b.clock.Now})
	snap, err := collect(t, s, 10*time.Second)
	se := requireClass(t, err, sources.ClassDecode)
	require.Contains(t, se.Error(), "/redfish/v1/Chassis/1/Power")
	require.True(t, snap.Up)
	require.True(t, snap.Partial)
	require.NotEmpty(t, bySensorType(snap.Readings, "Temperatures"))
	require.Empty(t, bySensorType(snap.Readings, "PowerControl"))
}

// TestFaultHTTPStatus answers 503 or 429, with or without Retry-After,
// from the first poll on (the login fails) or from the second (a sensor
// read fails, and the poll stops there).
func TestFaultHTTPStatus(t *testing.T) {
	tests := []struct {
		name       string
		faults     model.Faults
		afterLogin bool
		class      sources.Class
		retry      time.Duration
	}{
		{"503 with Retry-After", model.Faults{HTTPStatus: 503, RetryAfterSeconds: 7}, true, sources.ClassRateLimited, 7 * time.Second},
		{"429 with Retry-After", model.Faults{HTTPStatus: 429, RetryAfterSeconds: 2}, true, sources.ClassRateLimited, 2 * time.Second},
		{"503 without Retry-After", model.Faults{HTTPStatus: 503}, true, sources.ClassRateLimited, 0},
		{"500", model.Faults{HTTPStatus: 500}, true, sources.ClassProtocol, 0},
		{"503 at login", model.Faults{HTTPStatus: 503, RetryAfterSeconds: 30}, false, sources.ClassRateLimited, 30 * time.Second},
		{"429 at login", model.Faults{HTTPStatus: 429}, false, sources.ClassRateLimited, 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			b := serveBMC(t, "ilo", nil)
			s, count := newSource(t, target(t, b.srv.URL), redfish.Options{Now: b.clock.Now})
			if tc.afterLogin {
				_, err := collect(t, s, 10*time.Second)
				require.NoError(t, err)
				count.take()
			}
			b.model.SetFaults(tc.faults)
			snap, err := collect(t, s, 10*time.Second)
			se := requireClass(t, err, tc.class)
			require.Equal(t, tc.retry, se.RetryAfter)
			require.True(t, snap.Up, "the BMC answered")
			require.Equal(t, tc.afterLogin, snap.Partial)
			n, log := count.take()
			if tc.afterLogin && tc.class == sources.ClassRateLimited {
				require.Equal(t, 1, n, "a BMC asking us to back off gets no second request: %v", log)
			}
		})
	}
}

// TestFaultDown drops every connection unanswered, and later recovers.
func TestFaultDown(t *testing.T) {
	for _, afterLogin := range []bool{false, true} {
		t.Run(map[bool]string{false: "from the start", true: "after login"}[afterLogin], func(t *testing.T) {
			b := serveBMC(t, "supermicro", nil)
			s, _ := newSource(t, target(t, b.srv.URL), redfish.Options{Now: b.clock.Now})
			if afterLogin {
				_, err := collect(t, s, 10*time.Second)
				require.NoError(t, err)
			}
			b.model.SetFaults(model.Faults{Down: true})
			snap, err := collect(t, s, 10*time.Second)
			requireClass(t, err, sources.ClassUnreachable)
			require.False(t, snap.Up)
			require.False(t, snap.Partial)
			require.Empty(t, snap.Readings)

			b.model.SetFaults(model.Faults{})
			snap, err = collect(t, s, 10*time.Second)
			require.NoError(t, err)
			require.NotEmpty(t, snap.Readings)
		})
	}
}

// TestConnectionRefused polls an address nothing listens on.
func TestConnectionRefused(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := "http://" + ln.Addr().String()
	require.NoError(t, ln.Close())
	s, _ := newSource(t, target(t, addr), redfish.Options{})
	snap, err := collect(t, s, 10*time.Second)
	requireClass(t, err, sources.ClassUnreachable)
	require.Contains(t, err.Error(), "refused")
	require.False(t, snap.Up)
}

// TestFaultBlackHole answers nothing: the poll ends at its deadline (or
// the request timeout), promptly, as a timeout.
func TestFaultBlackHole(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name     string
		deadline time.Duration
		opts     redfish.Options
	}{
		{"poll deadline", 300 * time.Millisecond, redfish.Options{}},
		{"request timeout", 30 * time.Second, redfish.Options{RequestTimeout: 300 * time.Millisecond}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			b := serveBMC(t, "idrac", nil)
			tc.opts.Now = b.clock.Now
			s, _ := newSource(t, target(t, b.srv.URL), tc.opts)
			_, err := collect(t, s, 10*time.Second)
			require.NoError(t, err)

			b.model.SetFaults(model.Faults{BlackHole: true})
			start := time.Now()
			snap, err := collect(t, s, tc.deadline)
			took := time.Since(start)
			requireClass(t, err, sources.ClassTimeout)
			require.Less(t, took, 3*time.Second)
			require.False(t, snap.Up, "nothing answered")
			require.Empty(t, snap.Readings)

			// Close is bounded by its context too.
			ctx, cancel := context.WithTimeout(t.Context(), 200*time.Millisecond)
			defer cancel()
			start = time.Now()
			requireClass(t, s.Close(ctx), sources.ClassTimeout)
			require.Less(t, time.Since(start), 3*time.Second)
		})
	}
}

// TestDeadlineMidPoll answers Thermal and holds Power past the poll's
// deadline: Thermal's readings come back with Up, Partial and a timeout.
func TestDeadlineMidPoll(t *testing.T) {
	t.Parallel()
	b := serveBMC(t, "ilo", func(h http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if strings.HasSuffix(r.URL.Path, "/Power") && r.Header.Get("X-Auth-Token") != "" {
				<-r.Context().Done()
				return
			}
			h.ServeHTTP(w, r)
		})
	})
	s, _ := newSource(t, target(t, b.srv.URL), redfish.Options{Now: b.clock.Now})
	start := time.Now()
	snap, err := collect(t, s, 500*time.Millisecond)
	require.Less(t, time.Since(start), 3*time.Second)
	requireClass(t, err, sources.ClassTimeout)
	require.True(t, snap.Up)
	require.True(t, snap.Partial)
	require.NotEmpty(t, bySensorType(snap.Readings, "Temperatures"))
	require.Empty(t, bySensorType(snap.Readings, "PowerControl"))
	require.Equal(t, "ProLiant DL380 Gen10", snap.Info["model"])
}

// TestFanFailedAndPowerOff checks health and power state flow through.
func TestFanFailedAndPowerOff(t *testing.T) {
	for _, name := range []string{"supermicro", "openbmc"} {
		t.Run(name, func(t *testing.T) {
			b := serveBMC(t, name, nil)
			b.model.SetFaults(model.Faults{FanFailed: 1, PowerOff: true})
			s, _ := newSource(t, target(t, b.srv.URL), redfish.Options{Now: b.clock.Now})
			snap, err := collect(t, s, 10*time.Second)
			require.NoError(t, err)
			require.Equal(t, "Off", snap.Info["power_state"])
			require.Equal(t, "Critical", snap.Info["health"])
			var fan *v1.Reading
			for i, r := range snap.Readings {
				if r.Kind == v1.Kind_KIND_FAN {
					fan = &snap.Readings[i]
					break
				}
			}
			require.NotNil(t, fan)
			require.Zero(t, fan.Value)
			require.Equal(t, v1.Health_HEALTH_CRITICAL, fan.Health)
			power := bySensorType(snap.Readings, "PowerControl")
			require.Len(t, power, 1)
			require.InDelta(t, 8, power[0].Value, 1e-9, "standby power")
		})
	}
}
