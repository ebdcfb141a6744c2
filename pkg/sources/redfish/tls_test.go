package redfish_test

import (
	"context"
	"net"
	"net/http"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	simredfish "github.com/bmcstream/bmcstream/pkg/bmcsim/redfish"
	"github.com/bmcstream/bmcstream/pkg/secret"
	"github.com/bmcstream/bmcstream/pkg/sources"
	"github.com/bmcstream/bmcstream/pkg/sources/redfish"
)

// serveTLS serves personality's BMC over HTTPS with certificates of ca,
// returning its host and port.
func serveTLS(t *testing.T, personality string, ca *simredfish.CA) (string, int) {
	t.Helper()
	b := newBMC(t, personality)
	h := simredfish.NewHandler(b, simredfish.Options{Now: newClock().Now, IgnoreSensorLatency: true})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	srv := simredfish.NewServer(h, ca.TLSConfig(), nil)
	done := make(chan error, 1)
	go func() { done <- srv.ServeTLS(ln, "", "") }()
	t.Cleanup(func() {
		require.NoError(t, h.Close())
		require.NoError(t, srv.Close())
		require.ErrorIs(t, <-done, http.ErrServerClosed)
	})
	host, port, err := net.SplitHostPort(ln.Addr().String())
	require.NoError(t, err)
	p, err := strconv.Atoi(port)
	require.NoError(t, err)
	return host, p
}

func TestTLS(t *testing.T) {
	ca, err := simredfish.NewCA()
	require.NoError(t, err)
	dir := t.TempDir()
	caFile := filepath.Join(dir, "ca.pem")
	require.NoError(t, ca.WritePEM(caFile))
	other, err := simredfish.NewCA()
	require.NoError(t, err)
	otherFile := filepath.Join(dir, "other.pem")
	require.NoError(t, other.WritePEM(otherFile))
	host, port := serveTLS(t, "xcc", ca)

	tests := []struct {
		name     string
		caFile   string
		insecure bool
		// wantErr is a substring of the error; empty for success.
		wantErr string
	}{
		{"verified with the CA file", caFile, false, ""},
		{"no CA file: system roots do not know bmcsim", "", false, "give the target the CA file"},
		{"the wrong CA file", otherFile, false, "did not sign its certificate"},
		{"verification skipped by opt-in", "", true, ""},
		{"a CA file that is missing", filepath.Join(dir, "missing.pem"), false, "read CA file"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tg := sources.Target{
				Host: host, Port: port, Scheme: "https", Username: user, Password: secret.Secret(password),
				CAFile: tc.caFile, InsecureSkipVerify: tc.insecure,
			}
			// The source builds its own transport from the target here.
			s := redfish.New(tg, redfish.Options{})
			t.Cleanup(func() {
				ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
				defer cancel()
				require.NoError(t, s.Close(ctx))
			})
			snap, err := collect(t, s, 10*time.Second)
			if tc.wantErr == "" {
				require.NoError(t, err)
				require.NotEmpty(t, snap.Readings)
				return
			}
			requireClass(t, err, sources.ClassProtocol)
			require.ErrorContains(t, err, tc.wantErr)
			require.False(t, snap.Up)
			t.Log(err)
		})
	}
}

// TestPlainHTTPToTLS points an https source at a plain HTTP server: a
// protocol error, not a hang or a retry storm.
func TestPlainHTTPToTLS(t *testing.T) {
	b := serveBMC(t, "ilo", nil)
	tg := target(t, b.srv.URL)
	tg.Scheme = "https"
	s, _ := newSource(t, tg, redfish.Options{})
	_, err := collect(t, s, 10*time.Second)
	requireClass(t, err, sources.ClassProtocol)
}

// TestMockup reads DMTF-shaped captured documents (bmcsim's mockup
// fixture): a disabled sensor, old-style thresholds, and a Sensors
// collection without $expand.
func TestMockup(t *testing.T) {
	tests := []struct {
		schema   redfish.Schema
		requests int // per steady-state poll
		names    []string
	}{
		// Auto reads both generations; the legacy CPU1 Temp is the Sensor
		// CPU1 Temperature (same name but for the kind word, same value,
		// same chassis), which carries as much and is kept.
		{redfish.SchemaAuto, 5, []string{
			"Chassis Intake Temp", "BaseBoard System Fan", "BaseBoard System Fan Backup",
			"Server Power Control", "Power Supply Bay", "Power Supply Bay", "VRM1 Voltage", "VRM2 Voltage",
			"Ambient Temperature", "CPU1 Temperature",
		}},
		{redfish.SchemaLegacy, 2, []string{
			"CPU1 Temp", "Chassis Intake Temp", "BaseBoard System Fan", "BaseBoard System Fan Backup",
			"Server Power Control", "Power Supply Bay", "Power Supply Bay", "VRM1 Voltage", "VRM2 Voltage",
		}},
		{redfish.SchemaModern, 3, []string{"Ambient Temperature", "CPU1 Temperature"}},
	}
	for _, tc := range tests {
		t.Run(string(tc.schema)+"schema", func(t *testing.T) {
			clk := newClock()
			h, err := simredfish.NewMockupHandler("../../bmcsim/redfish/testdata/mockup/rackmount", simredfish.MockupOptions{
				Options: simredfish.Options{Now: clk.Now}, Username: user, Password: password,
			})
			require.NoError(t, err)
			t.Cleanup(func() { require.NoError(t, h.Close()) })
			srv := httptestServer(t, h)
			s, count := newSource(t, target(t, srv), redfish.Options{Now: clk.Now, Schema: tc.schema})
			snap, err := collect(t, s, 10*time.Second)
			require.NoError(t, err)
			var names []string
			for _, r := range snap.Readings {
				names = append(names, r.Name)
			}
			require.Equal(t, tc.names, names)
			require.Equal(t, "Contoso", snap.Info["vendor"])
			require.Equal(t, "437XR1138R2", snap.Info["serial"])
			require.Equal(t, "P79 v1.45 (12/06/2017)", snap.Info["bios_version"])
			count.take()
			_, err = collect(t, s, 10*time.Second)
			require.NoError(t, err)
			n, log := count.take()
			require.Equal(t, tc.requests, n, "%v", log)

			switch tc.schema {
			case redfish.SchemaAuto:
				require.EqualValues(t, 2, s.Stats().Skipped.Unavailable, "CPU2 Temp is disabled (twice: two polls)")
				require.Equal(t, map[string]uint64{sources.DropDisabled: 2, sources.DropMerged: 2}, s.Dropped())
				cpu := find(snap.Readings, "CPU1 Temperature")[0]
				require.Len(t, cpu.Thresholds, 3)
				require.Equal(t, "CPU", cpu.Context)
			case redfish.SchemaLegacy:
				require.EqualValues(t, 2, s.Stats().Skipped.Unavailable, "CPU2 Temp is disabled (twice: two polls)")
				cpu := find(snap.Readings, "CPU1 Temp")[0]
				require.Len(t, cpu.Thresholds, 3)
				psu := bySensorType(snap.Readings, "PowerSupplyOutput")
				require.Len(t, psu, 1)
				require.InDelta(t, 330, psu[0].Value, 1e-9)
			default:
				amb := find(snap.Readings, "Ambient Temperature")[0]
				require.Equal(t, "Room", amb.Context)
				require.InDelta(t, 22.5, amb.Value, 1e-9)
				require.Len(t, amb.Thresholds, 3)
			}
		})
	}
}
