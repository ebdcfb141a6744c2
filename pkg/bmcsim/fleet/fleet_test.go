package fleet

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/bougou/go-ipmi/pkg/client"
	"github.com/bougou/go-ipmi/pkg/types"
	"github.com/stmcginnis/gofish"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/bmcstream/bmcstream/pkg/bmcsim/model"
	"github.com/bmcstream/bmcstream/pkg/inventory"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func personalities(t testing.TB) map[string]*model.Personality {
	t.Helper()
	ps, err := model.Builtin()
	require.NoError(t, err)
	return ps
}

func TestLayout(t *testing.T) {
	cfg := DefaultConfig
	cfg.Count = 45
	cfg.Mix = map[string]int{"ilo": 2, "idrac": 1}
	f, err := New(cfg, personalities(t))
	require.NoError(t, err)
	counts := map[string]int{}
	for _, m := range f.Members {
		counts[m.BMC.Personality.Name]++
	}
	require.InDelta(t, 30, counts["ilo"], 3)
	require.InDelta(t, 15, counts["idrac"], 3)
	require.Equal(t, "127.20.0.1", f.Members[0].Addr.String())
	require.Equal(t, "127.20.0.45", f.Members[44].Addr.String())
	require.Equal(t, "r002", f.Members[44].Labels["rack"])
	require.Equal(t, "5", f.Members[44].Labels["position"])

	// Addresses skip .0 and .255.
	require.Equal(t, "127.20.1.1", addrAt(netip.MustParseAddr("127.20.0.254"), 1).String())

	dir := t.TempDir()
	require.NoError(t, f.WriteInventory(filepath.Join(dir, "inventory.yml"), "/ca.pem"))
	inv, err := inventory.Load(filepath.Join(dir, "inventory.yml"))
	require.NoError(t, err)
	require.Equal(t, 45, inv.Len())
	e, _ := inv.Get("bmc-00002")
	require.Equal(t, "127.20.0.2", e.Address)
	require.Equal(t, 8443, e.RedfishPort)
	require.Equal(t, 6230, e.IPMIPort)
	require.Equal(t, "https", e.RedfishScheme)
	require.Equal(t, inventory.Both, e.Protocol)
	require.Equal(t, CredentialsRef, e.Credentials)
	require.NoError(t, f.WriteCredentials(filepath.Join(dir, "credentials.yml")))
	st, err := os.Stat(filepath.Join(dir, "credentials.yml"))
	require.NoError(t, err)
	require.Equal(t, os.FileMode(0o600), st.Mode().Perm())

	_, err = New(Config{Count: 0, Addressing: "x"}, personalities(t))
	require.ErrorContains(t, err, "count must be at least 1")
	require.ErrorContains(t, err, `addressing "x"`)
	cfg.Mix = map[string]int{"hpe": 1}
	_, err = New(cfg, personalities(t))
	require.ErrorContains(t, err, `unknown personality "hpe"`)
}

func TestParseFaultSpec(t *testing.T) {
	req, err := ParseFaultSpec("fraction=0.1,black_hole,seed=3")
	require.NoError(t, err)
	require.Equal(t, 0.1, req.Fraction)
	require.Equal(t, uint64(3), req.Seed)
	require.True(t, req.Faults.BlackHole)
	req, err = ParseFaultSpec("ids=bmc-00001,psu_failed=2")
	require.NoError(t, err)
	require.Equal(t, 2, req.Faults.PSUFailed)
	req, err = ParseFaultSpec("ids=bmc-00001;bmc-00002,http_status=503,retry_after_seconds=5")
	require.NoError(t, err)
	require.Equal(t, []string{"bmc-00001", "bmc-00002"}, req.IDs)
	require.Equal(t, 503, req.Faults.HTTPStatus)
	require.Equal(t, 5, req.Faults.RetryAfterSeconds)
	_, err = ParseFaultSpec("fraction=0.1,blackhole")
	require.ErrorContains(t, err, "blackhole")
}

func gofishClient(t *testing.T, f *Fleet, m *Member) *gofish.APIClient {
	t.Helper()
	hc := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: f.CA().CertPool()}}}
	t.Cleanup(hc.CloseIdleConnections)
	c, err := gofish.ConnectContext(t.Context(), gofish.ClientConfig{
		Endpoint: m.RedfishURL(true), Username: "admin", Password: DefaultConfig.Password, HTTPClient: hc,
	})
	require.NoError(t, err)
	t.Cleanup(c.Logout)
	return c
}

func ipmiClient(t testing.TB, m *Member) *client.Client {
	t.Helper()
	c, err := client.NewClient(m.Addr.String(), m.IPMIPort, "admin", DefaultConfig.Password)
	require.NoError(t, err)
	c.WithInterface(client.InterfaceLanplus).WithCipherSuiteID(types.CipherSuiteID3).WithMaxPrivilegeLevel(types.PrivilegeLevelUser).WithTimeout(3 * time.Second).WithRetry(1)
	require.NoError(t, c.Connect(context.Background()))
	t.Cleanup(func() { _ = c.Close(context.Background()) })
	return c
}

// TestTenThousandBMCs starts 10 000 virtual BMCs in one process, each on its
// own loopback address, and polls a sample over Redfish (gofish, verifying
// the fleet CA) and IPMI (go-ipmi's client).
func TestTenThousandBMCs(t *testing.T) {
	if testing.Short() {
		t.Skip("starts 10 000 BMCs")
	}
	cfg := DefaultConfig
	cfg.Count = 10000
	cfg.FirstAddress = netip.MustParseAddr("127.30.0.1")
	cfg.RedfishPort, cfg.IPMIPort = freeTCPPort(t), freeUDPPort(t)
	f, err := New(cfg, personalities(t))
	require.NoError(t, err)
	start := time.Now()
	require.NoError(t, f.Start(StartOptions{IgnoreSensorLatency: true}))
	t.Logf("started %d BMCs in %s", cfg.Count, time.Since(start))
	defer func() { require.NoError(t, f.Close()) }()

	for _, i := range []int{0, 1, 2, 3, 4, 5, 1234, 5000, 7777, 9999} {
		m := f.Members[i]
		t.Run(m.BMC.ID, func(t *testing.T) {
			c := gofishClient(t, f, m)
			ch, err := c.Service.Chassis()
			require.NoError(t, err)
			require.Len(t, ch, 1)
			require.Equal(t, m.BMC.Serial, ch[0].SerialNumber)
			require.Equal(t, 1, func() int { r, _ := f.SessionCounts(m.BMC.ID); return r }())

			ic := ipmiClient(t, m)
			dev, err := ic.GetDeviceID(t.Context())
			require.NoError(t, err)
			require.Equal(t, m.BMC.Personality.IPMI.ManufacturerID, uint32(dev.ManufacturerID))
			cs, err := ic.GetChassisStatus(t.Context())
			require.NoError(t, err)
			require.True(t, cs.PowerIsOn)
		})
	}
}

func TestPortModeAndAdmin(t *testing.T) {
	cfg := DefaultConfig
	cfg.Count = 3
	cfg.Addressing = ByPort
	cfg.FirstAddress = netip.MustParseAddr("127.0.0.1")
	cfg.RedfishPort, cfg.IPMIPort = freeTCPPort(t), freeUDPPort(t)
	cfg.RedfishPort = freeRange(t, cfg.RedfishPort, 3)
	cfg.Mix = map[string]int{"xcc": 1}
	f, err := New(cfg, personalities(t))
	require.NoError(t, err)
	require.NoError(t, f.Start(StartOptions{IgnoreSensorLatency: true}))
	defer func() { require.NoError(t, f.Close()) }()
	m := f.Members[2]
	require.Equal(t, cfg.RedfishPort+2, m.RedfishPort)
	c := gofishClient(t, f, m)
	sys, err := c.Service.Systems()
	require.NoError(t, err)
	require.Equal(t, m.BMC.Serial, sys[0].SerialNumber)

	admin := httptest.NewServer(f.AdminHandler())
	defer admin.Close()
	resp, err := http.Post(admin.URL+"/faults", "application/json", strings.NewReader(`{"ids":["bmc-00003"],"faults":{"http_status":503,"retry_after_seconds":7}}`))
	require.NoError(t, err)
	require.Equal(t, http.StatusOK, resp.StatusCode)
	require.NoError(t, resp.Body.Close())
	require.Equal(t, 503, m.BMC.Faults().HTTPStatus)
	// The fault shows on the wire.
	hc := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: f.CA().CertPool()}}}
	defer hc.CloseIdleConnections()
	req, _ := http.NewRequest(http.MethodGet, m.RedfishURL(true)+"/redfish/v1/Chassis", nil)
	req.SetBasicAuth("admin", cfg.Password)
	r2, err := hc.Do(req)
	require.NoError(t, err)
	require.Equal(t, http.StatusServiceUnavailable, r2.StatusCode)
	require.Equal(t, "7", r2.Header.Get("Retry-After"))
	require.NoError(t, r2.Body.Close())

	resp, err = http.Get(admin.URL + "/fleet")
	require.NoError(t, err)
	var views []memberView
	require.NoError(t, json.NewDecoder(resp.Body).Decode(&views))
	require.NoError(t, resp.Body.Close())
	require.Len(t, views, 3)
	require.Equal(t, 503, views[2].Faults.HTTPStatus)

	ids, err := f.Apply(FaultRequest{Fraction: 1, Personality: "xcc", Faults: model.Faults{FanFailed: 1}})
	require.NoError(t, err)
	require.Len(t, ids, 3)
	req, _ = http.NewRequest(http.MethodDelete, admin.URL+"/faults", nil)
	resp, err = http.DefaultClient.Do(req)
	require.NoError(t, err)
	require.Equal(t, http.StatusNoContent, resp.StatusCode)
	require.NoError(t, resp.Body.Close())
	require.Equal(t, model.Faults{}, m.BMC.Faults())
}

func freeTCPPort(t testing.TB) int {
	t.Helper()
	srv := httptest.NewServer(http.NotFoundHandler())
	defer srv.Close()
	var port int
	_, err := fmt.Sscanf(srv.URL[strings.LastIndex(srv.URL, ":")+1:], "%d", &port)
	require.NoError(t, err)
	return port
}
