package fleet

import (
	"crypto/tls"
	"io"
	"net/http"
	"net/netip"
	"runtime"
	"testing"

	"github.com/stretchr/testify/require"
)

// BenchmarkIdleFleet starts a fleet of 2000 BMCs serving both protocols and
// reports what one idle virtual BMC costs: heap and stack bytes and
// goroutines. Each iteration is one fleet start and stop.
func BenchmarkIdleFleet(b *testing.B) {
	const n = 2000
	ps := personalities(b)
	var perBMC, gorPerBMC float64
	for b.Loop() {
		cfg := DefaultConfig
		cfg.Count = n
		cfg.FirstAddress = netip.MustParseAddr("127.40.0.1")
		cfg.RedfishPort, cfg.IPMIPort = freeTCPPort(b), freeUDPPort(b)
		f, err := New(cfg, ps)
		require.NoError(b, err)
		before := memInUse()
		g0 := runtime.NumGoroutine()
		require.NoError(b, f.Start(StartOptions{}))
		after := memInUse()
		perBMC = float64(after-before) / n
		gorPerBMC = float64(runtime.NumGoroutine()-g0) / n
		require.NoError(b, f.Close())
	}
	b.ReportMetric(perBMC, "bytes/bmc")
	b.ReportMetric(gorPerBMC, "goroutines/bmc")
}

func memInUse() uint64 {
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.HeapInuse + m.StackInuse
}

// BenchmarkRedfishThermalGET measures one poll request (legacy Thermal of
// an iLO-like BMC) over loopback HTTPS with keep-alive, client and server in
// this process: the server's CPU per request is at most this.
func BenchmarkRedfishThermalGET(b *testing.B) {
	ps := personalities(b)
	cfg := DefaultConfig
	cfg.Count = 1
	cfg.Mix = map[string]int{"ilo": 1}
	cfg.FirstAddress = netip.MustParseAddr("127.40.1.1")
	cfg.RedfishPort, cfg.IPMIPort = freeTCPPort(b), freeUDPPort(b)
	f, err := New(cfg, ps)
	require.NoError(b, err)
	require.NoError(b, f.Start(StartOptions{}))
	defer f.Close()
	hc := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: f.CA().CertPool()}}}
	defer hc.CloseIdleConnections()
	url := f.Members[0].RedfishURL(true) + "/redfish/v1/Chassis/1/Thermal"
	b.ReportAllocs()
	for b.Loop() {
		req, _ := http.NewRequest(http.MethodGet, url, nil)
		req.SetBasicAuth(cfg.Username, cfg.Password)
		resp, err := hc.Do(req)
		if err != nil {
			b.Fatal(err)
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		_ = resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			b.Fatal(resp.Status)
		}
	}
}

// BenchmarkIPMISensorReading measures one Get Sensor Reading over an
// established RMCP+ session (cipher suite 3) on loopback.
func BenchmarkIPMISensorReading(b *testing.B) {
	ps := personalities(b)
	cfg := DefaultConfig
	cfg.Count = 1
	cfg.Mix = map[string]int{"ilo": 1}
	cfg.FirstAddress = netip.MustParseAddr("127.40.2.1")
	cfg.RedfishPort, cfg.IPMIPort = freeTCPPort(b), freeUDPPort(b)
	f, err := New(cfg, ps)
	require.NoError(b, err)
	require.NoError(b, f.Start(StartOptions{}))
	defer f.Close()
	c := ipmiClient(b, f.Members[0])
	b.ReportAllocs()
	for b.Loop() {
		if _, err := c.GetSensorReading(b.Context(), 1); err != nil {
			b.Fatal(err)
		}
	}
}
