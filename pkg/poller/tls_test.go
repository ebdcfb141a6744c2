package poller

import (
	"context"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/require"

	"github.com/bmcstream/bmcstream/internal/testbed"
	"github.com/bmcstream/bmcstream/pkg/bmcsim/fleet"
	"github.com/bmcstream/bmcstream/pkg/bmcsim/redfish"
	"github.com/bmcstream/bmcstream/pkg/inventory"
	"github.com/bmcstream/bmcstream/pkg/secret"
	v1 "github.com/bmcstream/bmcstream/proto/bmcstream/v1"
)

// TestSkipVerifyWarnedOncePerLoad: BMCs whose inventory entries turn
// Redfish TLS verification off make one warning line per inventory load
// (start and each reload) naming how many and a few ids, not one line per
// BMC each time its source is opened.
func TestSkipVerifyWarnedOncePerLoad(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	var entries []inventory.BMC
	for i := 1; i <= 10; i++ {
		b := inventory.BMC{
			ID:       fmt.Sprintf("bmc-%02d", i),
			Address:  "127.0.0.1",
			Protocol: inventory.Redfish,
			// Nothing listens there; no poll is due within the test anyway.
			RedfishPort: 1,
			Credentials: "lab",
			Interval:    inventory.DefaultInterval,
		}
		switch {
		case i <= 7:
			b.InsecureSkipVerify = true
		case i == 10:
			// IPMI has no TLS: the flag changes nothing and is not counted.
			b.Protocol, b.RedfishPort, b.IPMIPort, b.InsecureSkipVerify = inventory.IPMI, 0, 1, true
		}
		entries = append(entries, b)
	}
	invFile := filepath.Join(dir, "inventory.yml")
	writeInv := func(es []inventory.BMC) {
		b, err := inventory.Marshal(es)
		require.NoError(t, err)
		require.NoError(t, os.WriteFile(invFile, b, 0o600))
	}
	writeInv(entries)
	credFile := filepath.Join(dir, "credentials.yml")
	require.NoError(t, os.WriteFile(credFile, []byte("lab:\n  username: monitor\n  password: lab-pw\n"), 0o600))
	srv := startJetStream(t)
	cfg, err := ParseConfig([]byte(fmt.Sprintf(`
poller_id: warn
nats:
  url: %s
inventory:
  files: [%s]
  credentials_file: %s
  watch_interval: 1h   # only the test's own Reload calls reload
`, srv.ClientURL(), invFile, credFile)))
	require.NoError(t, err)

	logs := &testbed.SyncBuffer{}
	logger := slog.New(slog.NewTextHandler(logs, nil))
	p, err := New(cfg, Options{ShutdownTimeout: time.Second, Logger: logger, Registerer: prometheus.NewRegistry(), NewSource: DefaultSources(cfg, logger)})
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- p.Run(ctx) }()
	defer func() { cancel(); require.NoError(t, <-done) }()
	// Every BMC's sources are open.
	require.Eventually(t, func() bool { return len(p.Statuses()) == len(entries) }, 20*time.Second, 20*time.Millisecond)

	const warning = "verification is disabled"
	got := logs.Lines(warning)
	require.Len(t, got, 1, "one line at start: %q", got)
	require.Contains(t, got[0], "bmcs=7")
	require.Contains(t, got[0], "examples=bmc-01,bmc-02,bmc-03,bmc-04,bmc-05,…")

	require.NoError(t, p.Reload())
	require.NoError(t, p.Reload())
	require.Len(t, logs.Lines(warning), 3, "one more line per reload")

	// A changed entry restarts that BMC's worker and opens its source
	// again: still one line for the reload, none for the source.
	entries[0].RedfishPort = 2
	writeInv(entries)
	require.NoError(t, p.Reload())
	require.Eventually(t, func() bool {
		for _, st := range p.Statuses() {
			if st.ID == "bmc-01" {
				return true
			}
		}
		return false
	}, 10*time.Second, 20*time.Millisecond)
	require.Len(t, logs.Lines(warning), 4)

	// Without any such entry, no warning.
	for i := range entries {
		entries[i].InsecureSkipVerify = false
	}
	writeInv(entries)
	require.NoError(t, p.Reload())
	require.Len(t, logs.Lines(warning), 4)
}

// TestPerBMCCABundle polls two HTTPS fleets signed by different CAs through
// the poller's source factory: the configuration's redfish.ca_file verifies
// the first fleet, an inventory entry's own ca_file takes precedence for a
// BMC of the second, and without it that BMC fails verification: the default
// bundle really is the one in use.
func TestPerBMCCABundle(t *testing.T) {
	t.Parallel()
	simA := fleetWithTLS(t, "127.93.0.1")
	simB := fleetWithTLS(t, "127.94.0.1")
	cfg, err := ParseConfig([]byte(fmt.Sprintf("nats:\n  url: nats://127.0.0.1:4222\ninventory:\n  files: [x.yml]\nredfish:\n  ca_file: %s\n", simA.CAFile)))
	require.NoError(t, err)
	newSource := DefaultSources(cfg, slog.New(slog.DiscardHandler))

	a := simA.Fleet.Inventory("")[0] // no ca_file of its own: redfish.ca_file
	b := simB.Fleet.Inventory(simB.CAFile)[0]
	bDefault := b
	bDefault.CAFile = ""
	for _, tc := range []struct {
		name string
		bmc  inventory.BMC
		// want is a substring of the poll error; "" for a good poll.
		want string
	}{
		{"the configuration's CA bundle", a, ""},
		{"the BMC's own CA bundle", b, ""},
		{"the configuration's CA bundle does not verify another CA's BMC", bDefault, "did not sign its certificate"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			src, err := newSource(tc.bmc, v1.Protocol_PROTOCOL_REDFISH, "admin", secret.Secret(fleet.DefaultConfig.Password))
			require.NoError(t, err)
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			defer func() { require.NoError(t, src.Close(ctx)) }()
			var snap v1.Snapshot
			err = src.Collect(ctx, &snap)
			if tc.want == "" {
				require.NoError(t, err)
				require.True(t, snap.Up)
				require.NotEmpty(t, snap.Readings)
				return
			}
			require.Error(t, err)
			require.False(t, snap.Up)
			require.Contains(t, err.Error(), tc.want)
		})
	}
}

func fleetWithTLS(t *testing.T, first string) *testbed.Sim {
	t.Helper()
	c := fleet.DefaultConfig
	c.Count = 1
	c.Protocols = "redfish"
	c.Mix = map[string]int{"openbmc": 1}
	c.TLS = true
	c.FirstAddress = netip.MustParseAddr(first)
	return testbed.StartSimFleet(t, c, time.Minute)
}

// TestNATSFilesRelativeToConfig: the nats: block's credential and TLS files
// are found beside the configuration file, not in the working directory.
func TestNATSFilesRelativeToConfig(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	// LoadConfig also loads the files as the connection would: create
	// them (a CA, a certificate and its key), and an absolute one
	// elsewhere.
	abs := filepath.Join(t.TempDir(), "cert.pem")
	require.NoError(t, os.Mkdir(filepath.Join(dir, "secrets"), 0o700))
	ca, err := redfish.NewCA()
	require.NoError(t, err)
	leaf, err := ca.Leaf(net.ParseIP("127.0.0.1"), "")
	require.NoError(t, err)
	key, err := x509.MarshalPKCS8PrivateKey(leaf.PrivateKey)
	require.NoError(t, err)
	for f, content := range map[string][]byte{
		"inventory.yml": []byte("{}\n"), "credentials.yml": []byte("{}\n"), "secrets/nats-password": []byte("pw\n"),
		"nats-ca.pem": ca.CertPEM(),
		"key.pem":     pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: key}),
		abs:           pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: leaf.Certificate[0]}),
	} {
		if !filepath.IsAbs(f) {
			f = filepath.Join(dir, f)
		}
		require.NoError(t, os.WriteFile(f, content, 0o600))
	}
	path := filepath.Join(dir, "poller.yml")
	require.NoError(t, os.WriteFile(path, []byte(`nats:
  url: nats://127.0.0.1:4222
  user: poller
  password_file: secrets/nats-password
  tls:
    ca_file: nats-ca.pem
    cert_file: `+abs+`
    key_file: key.pem
inventory:
  files: [inventory.yml]
  credentials_file: credentials.yml
`), 0o600))
	cfg, err := LoadConfig(path)
	require.NoError(t, err)
	require.Equal(t, filepath.Join(dir, "secrets/nats-password"), cfg.NATS.PasswordFile)
	require.Equal(t, filepath.Join(dir, "nats-ca.pem"), cfg.NATS.TLS.CAFile)
	require.Equal(t, abs, cfg.NATS.TLS.CertFile)
	require.Equal(t, filepath.Join(dir, "key.pem"), cfg.NATS.TLS.KeyFile)
}
