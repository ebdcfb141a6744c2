package poller

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/stretchr/testify/require"

	"github.com/bmcstream/bmcstream/internal/testbed"
	"github.com/bmcstream/bmcstream/pkg/inventory"
	"github.com/bmcstream/bmcstream/pkg/pipeline"
	"github.com/bmcstream/bmcstream/pkg/secret"
	"github.com/bmcstream/bmcstream/pkg/sources"
	v1 "github.com/bmcstream/bmcstream/proto/bmcstream/v1"
)

// unpollableConfig writes an inventory and a credentials file ("lab" only)
// and returns a poller configuration over an embedded NATS server.
func unpollableConfig(t *testing.T, inv string) (*Config, string, string) {
	t.Helper()
	dir := t.TempDir()
	invFile, credFile := filepath.Join(dir, "inventory.yml"), filepath.Join(dir, "credentials.yml")
	require.NoError(t, os.WriteFile(invFile, []byte(inv), 0o600))
	require.NoError(t, os.WriteFile(credFile, []byte("lab:\n  username: monitor\n  password: lab-pw\n"), 0o600))
	srv := startJetStream(t)
	cfg, err := ParseConfig([]byte(fmt.Sprintf(`
poller_id: unpollable
nats:
  url: %s
inventory:
  files: [%s]
  credentials_file: %s
  watch_interval: 1h   # only the test's own Reload calls reload
`, srv.ClientURL(), invFile, credFile)))
	require.NoError(t, err)
	return cfg, credFile, srv.ClientURL()
}

// TestUnpollableBMCsReportConfig: BMCs that cannot be polled as configured
// (a credentials reference that resolves to nothing, a port out of range,
// an address that is no address, credentials written into the address)
// are not skipped: each publishes a snapshot per protocol with up=false,
// error_class config and the reason, at its interval, and appears on
// /status with the reason; the password written into an address appears
// nowhere. Adding the missing credentials and reloading brings the BMC
// back to real polling.
func TestUnpollableBMCsReportConfig(t *testing.T) {
	t.Parallel()
	cfg, credFile, url := unpollableConfig(t, `
defaults:
  credentials: lab
  interval: 1s
bmcs:
  - id: dangling
    address: 127.0.0.1
    protocol: both
    redfish_port: 1   # nothing listens there
    ipmi_port: 1
    credentials: nope
  - id: bad-port
    address: 127.0.0.1:99999
  - id: not-an-address
    address: not an address!
  - id: userinfo
    address: admin:hunter2@127.0.0.1
`)
	rec := testbed.Record(t, url)
	p, _, _ := runPoller(t, cfg)

	reasons := map[string]string{
		"dangling":       `"nope"`,
		"bad-port":       `port "99999" is not from 1 to 65535`,
		"not-an-address": `' ' is not allowed in a host name`,
		"userinfo":       "credentials do not belong in an address",
	}
	// Each BMC's snapshots per protocol: at least two (its interval is
	// 1 s), all down with class config and the reason.
	require.Eventually(t, func() bool {
		n := map[string]int{}
		for _, s := range rec.Snapshots() {
			n[s.BmcId+"/"+s.Protocol.String()]++
		}
		return n["dangling/PROTOCOL_REDFISH"] >= 2 && n["dangling/PROTOCOL_IPMI"] >= 2 &&
			n["bad-port/PROTOCOL_REDFISH"] >= 2 && n["not-an-address/PROTOCOL_REDFISH"] >= 2 && n["userinfo/PROTOCOL_REDFISH"] >= 2
	}, 20*time.Second, 50*time.Millisecond)
	// What the gateway makes of them: bmc_up 0 for each protocol.
	norm, err := pipeline.NewNormaliser(pipeline.NormaliserOptions{})
	require.NoError(t, err)
	snaps := rec.Snapshots()
	ups := map[string]float64{}
	for _, s := range snaps {
		for _, smp := range norm.Normalise(nil, s, nil, nil) {
			lbl := map[string]string{}
			smp.Series.Labels.Range(func(n, v string) { lbl[n] = v })
			if lbl["__name__"] == "bmc_up" {
				ups[s.BmcId+"/"+lbl["protocol"]] = smp.V
			}
		}
	}
	require.Equal(t, map[string]float64{"dangling/redfish": 0, "dangling/ipmi": 0, "bad-port/redfish": 0,
		"not-an-address/redfish": 0, "userinfo/redfish": 0}, ups)
	for _, s := range snaps {
		require.False(t, s.Up, s.BmcId)
		require.Equal(t, string(sources.ClassConfig), s.ErrorClass, s.BmcId)
		require.Contains(t, s.Error, reasons[s.BmcId], s.BmcId)
		require.NotContains(t, s.Error+s.Address, "hunter2")
		require.Empty(t, s.Readings)
	}

	st := p.Statuses()
	require.Len(t, st, 4)
	for _, s := range st {
		require.Equal(t, "error", s.LastResult, s.ID)
		require.Equal(t, "config", s.ErrorClass, s.ID)
		require.Contains(t, s.Error, reasons[s.ID], s.ID)
	}
	js, err := json.Marshal(st)
	require.NoError(t, err)
	require.NotContains(t, string(js), "hunter2")
	require.NotContains(t, string(js), "lab-pw")

	// The missing credentials arrive: the BMC is polled for real (nothing
	// listens on port 1: unreachable, no longer config).
	require.NoError(t, os.WriteFile(credFile, []byte("lab:\n  username: monitor\n  password: lab-pw\nnope:\n  username: u\n  password: nope-pw\n"), 0o600))
	require.NoError(t, p.Reload())
	require.Eventually(t, func() bool {
		for _, s := range p.Statuses() {
			if s.ID == "dangling" {
				return s.ErrorClass != "" && s.ErrorClass != "config"
			}
		}
		return false
	}, 20*time.Second, 50*time.Millisecond)
}

// TestStatusShowsTLSError: a Redfish BMC whose certificate no trusted CA
// signed shows, on /status, its class (protocol) and beside it the
// message that explains it (the certificate), not the class alone; the
// credentials appear nowhere.
func TestStatusShowsTLSError(t *testing.T) {
	t.Parallel()
	bmc := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.WriteHeader(http.StatusNotFound)
	}))
	t.Cleanup(bmc.Close)
	cfg, _, _ := unpollableConfig(t, fmt.Sprintf(`
bmcs:
  - id: self-signed
    address: %s
    credentials: lab
    interval: 1s
`, strings.TrimPrefix(bmc.URL, "https://")))
	p, _, _ := runPoller(t, cfg)
	var last Status
	require.Eventually(t, func() bool {
		st := p.Statuses()
		if len(st) != 1 || st[0].LastResult == "" {
			return false
		}
		last = st[0]
		return true
	}, 20*time.Second, 50*time.Millisecond)
	require.Equal(t, "protocol", last.ErrorClass)
	require.Contains(t, last.Error, "certificate")
	js, err := json.Marshal(last)
	require.NoError(t, err)
	require.NotContains(t, string(js), "lab-pw")
}

// TestStatusErrorHidesURLCredentials: an error message quoting a URL or an
// address with credentials in it loses them on /status, and a long
// message is cut on a character boundary.
func TestStatusErrorHidesURLCredentials(t *testing.T) {
	for in, want := range map[string]string{
		`Get "https://admin:s3cret@10.0.0.1/redfish/v1": EOF`: `Get "https://<redacted>@10.0.0.1/redfish/v1": EOF`,
		`dial admin:s3cret@10.0.0.1:443: refused`:             `dial <redacted>@10.0.0.1:443: refused`,
		`admin:s3cret@10.0.0.1`:                               `<redacted>@10.0.0.1`,
		`x509: certificate signed by unknown authority`:       `x509: certificate signed by unknown authority`,
	} {
		require.Equal(t, want, statusError(in))
	}
	long := statusError(strings.Repeat("é", maxStatusError))
	require.LessOrEqual(t, len(long), maxStatusError+len("…"))
	require.True(t, utf8.ValidString(long))
}

// TestSourceThatCannotBeBuiltReportsConfig: a BMC whose source cannot be
// opened is down with class config and the factory's reason, like a BMC
// with a wrong address or credentials reference.
func TestSourceThatCannotBeBuiltReportsConfig(t *testing.T) {
	t.Parallel()
	cfg, _, _ := unpollableConfig(t, "bmcs:\n  - id: no-source\n    address: 127.0.0.1\n    credentials: lab\n    interval: 1s\n")
	p, err := New(cfg, Options{ShutdownTimeout: time.Second, NewSource: func(inventory.BMC, v1.Protocol, string, secret.Secret) (sources.Source, error) {
		return nil, errors.New("redfish: no such schema")
	}})
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- p.Run(ctx) }()
	defer func() { cancel(); require.NoError(t, <-done) }()
	require.Eventually(t, func() bool {
		st := p.Statuses()
		return len(st) == 1 && st[0].ErrorClass == "config" && strings.Contains(st[0].Error, "open redfish source of no-source: redfish: no such schema")
	}, 20*time.Second, 50*time.Millisecond)
}
