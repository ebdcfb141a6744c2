package testbed

import (
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/prometheus/common/model"
	"github.com/stretchr/testify/require"

	"github.com/bmcstream/bmcstream/pkg/bmcsim/fleet"
	bmodel "github.com/bmcstream/bmcstream/pkg/bmcsim/model"
	"github.com/bmcstream/bmcstream/pkg/inventory"
)

// Sim is a running simulated fleet and the files a poller reads about it.
type Sim struct {
	Fleet    *fleet.Fleet
	InvFile  string // inventory, every BMC at the given interval
	CredFile string // credentials the inventory refers to
	CAFile   string // the fleet's Redfish CA
}

// StartSimFleet starts a bmcsim fleet in the test process (sensor latency
// off, closed at cleanup) and writes its inventory, credentials and CA
// files. It picks free loopback ports for Redfish and IPMI, whatever cfg
// says.
func StartSimFleet(t testing.TB, cfg fleet.Config, interval time.Duration) *Sim {
	t.Helper()
	cfg.RedfishPort = FreePort(t)
	pc, err := net.ListenPacket("udp4", "127.0.0.1:0")
	require.NoError(t, err)
	cfg.IPMIPort = pc.LocalAddr().(*net.UDPAddr).Port
	require.NoError(t, pc.Close())
	ps, err := bmodel.Builtin()
	require.NoError(t, err)
	f, err := fleet.New(cfg, ps)
	require.NoError(t, err)
	require.NoError(t, f.Start(fleet.StartOptions{IgnoreSensorLatency: true}))
	t.Cleanup(func() { require.NoError(t, f.Close()) })
	dir := t.TempDir()
	s := &Sim{Fleet: f, InvFile: filepath.Join(dir, "inventory.yml"), CredFile: filepath.Join(dir, "credentials.yml")}
	if cfg.TLS {
		s.CAFile = filepath.Join(dir, "ca.pem")
		require.NoError(t, f.CA().WritePEM(s.CAFile))
	}
	entries := f.Inventory(s.CAFile)
	for i := range entries {
		entries[i].Interval = model.Duration(interval)
	}
	b, err := inventory.Marshal(entries)
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(s.InvFile, b, 0o600))
	require.NoError(t, f.WriteCredentials(s.CredFile))
	return s
}
