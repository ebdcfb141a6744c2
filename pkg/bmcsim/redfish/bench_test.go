package redfish_test

import (
	"io"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strconv"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/bmcstream/bmcstream/pkg/bmcsim/model"
	"github.com/bmcstream/bmcstream/pkg/bmcsim/redfish"
)

// discard is a ResponseWriter that keeps nothing, so benchmarks measure
// the handler and not a recorder's buffer.
type discard struct{ h http.Header }

func (d *discard) Header() http.Header         { return d.h }
func (d *discard) Write(b []byte) (int, error) { return len(b), nil }
func (d *discard) WriteHeader(int)             {}

func benchServe(b *testing.B, personality, path string) {
	bmc := newBMC(b, personality)
	clk := newClock()
	h := redfish.NewHandler(bmc, redfish.Options{Now: clk.Now, IgnoreSensorLatency: true})
	req := httptest.NewRequest(http.MethodGet, path, nil)
	req.SetBasicAuth(user, password)
	w := &discard{h: http.Header{}}
	b.ReportAllocs()
	for b.Loop() {
		clear(w.h)
		h.ServeHTTP(w, req)
	}
}

func BenchmarkServeThermal(b *testing.B) {
	benchServe(b, "idrac", "/redfish/v1/Chassis/System.Embedded.1/Thermal")
}

func BenchmarkServePower(b *testing.B) {
	benchServe(b, "ilo", "/redfish/v1/Chassis/1/Power")
}

func BenchmarkServeSensorsExpanded(b *testing.B) {
	benchServe(b, "openbmc", "/redfish/v1/Chassis/chassis/Sensors?$expand=.($levels=1)")
}

func BenchmarkServeSensor(b *testing.B) {
	benchServe(b, "openbmc", "/redfish/v1/Chassis/chassis/Sensors/inlet_temp")
}

// BenchmarkHTTPThermal is one handler answering Thermal over loopback HTTP
// to parallel keep-alive clients: its ns/op is the inverse of the requests
// per second one virtual BMC sustains on this machine.
func BenchmarkHTTPThermal(b *testing.B) {
	bmc := newBMC(b, "idrac")
	h := redfish.NewHandler(bmc, redfish.Options{IgnoreSensorLatency: true})
	srv := httptest.NewServer(h)
	defer srv.Close()
	defer h.Close()
	url := srv.URL + "/redfish/v1/Chassis/System.Embedded.1/Thermal"
	client := srv.Client()
	client.Transport.(*http.Transport).MaxIdleConnsPerHost = 64
	defer client.CloseIdleConnections()
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			req, _ := http.NewRequest(http.MethodGet, url, nil)
			req.SetBasicAuth(user, password)
			resp, err := client.Do(req)
			if err != nil {
				b.Error(err)
				return
			}
			_, _ = io.Copy(io.Discard, resp.Body)
			_ = resp.Body.Close()
			if resp.StatusCode != http.StatusOK {
				b.Errorf("status %d", resp.StatusCode)
				return
			}
		}
	})
}

// BenchmarkIdleHandlerMemory reports the heap one idle handler holds (its
// BMC excluded), the cost of a fleet of ten thousand.
func BenchmarkIdleHandlerMemory(b *testing.B) {
	ps, err := model.Builtin()
	require.NoError(b, err)
	const n = 10000
	bmcs := make([]*model.BMC, n)
	for i := range bmcs {
		bmcs[i] = model.NewBMC("bmc-"+strconv.Itoa(i), "r01", ps["idrac"], model.Room{Seed: 1}, user, password)
	}
	handlers := make([]*redfish.Handler, n)
	for b.Loop() {
		var before, after runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&before)
		for i := range handlers {
			handlers[i] = redfish.NewHandler(bmcs[i], redfish.Options{})
		}
		runtime.GC()
		runtime.ReadMemStats(&after)
		b.ReportMetric(float64(after.HeapAlloc-before.HeapAlloc)/n, "B/handler")
		runtime.KeepAlive(handlers)
		clear(handlers)
	}
}

// TestServeAllocations guards the hot path: serving one Sensor document
// took 39 allocations when written (BenchmarkServeSensor), so a change that
// makes every poll of every simulated BMC allocate more shows up here.
func TestServeAllocations(t *testing.T) {
	b := newBMC(t, "openbmc")
	h := redfish.NewHandler(b, redfish.Options{Now: newClock().Now})
	req := httptest.NewRequest(http.MethodGet, "/redfish/v1/Chassis/chassis/Sensors/inlet_temp", nil)
	req.SetBasicAuth(user, password)
	w := &discard{h: http.Header{}}
	allocs := testing.AllocsPerRun(200, func() {
		clear(w.h)
		h.ServeHTTP(w, req)
	})
	require.LessOrEqual(t, allocs, 45.0, "allocations per sensor request")
}
