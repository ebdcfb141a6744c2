package main

import (
	"fmt"
	"io"
	"net/http"
	"net/netip"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/bmcstream/bmcstream/internal/testbed"
	"github.com/bmcstream/bmcstream/pkg/bmcsim/fleet"
	"github.com/bmcstream/bmcstream/pkg/bus"
	"github.com/bmcstream/bmcstream/pkg/bus/embedded"
)

// TestProfilesOnlyWithFlag runs the poller binary without and with
// --web.enable-pprof: /debug/pprof/ answers 404 by default, while the
// other endpoints (/status included) answer, and serves the profiles with
// the flag.
func TestProfilesOnlyWithFlag(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the poller binary")
	}
	bin := testbed.Build(t, "github.com/bmcstream/bmcstream/cmd/poller")
	fc := fleet.DefaultConfig
	fc.Count = 1
	fc.FirstAddress = netip.MustParseAddr("127.95.0.1")
	sim := testbed.StartSimFleet(t, fc, time.Second)
	srv, err := embedded.Start(bus.EmbeddedConfig{Listen: "127.0.0.1:0", StoreDir: t.TempDir()}, true)
	require.NoError(t, err)
	t.Cleanup(func() { srv.Shutdown(); srv.WaitForShutdown() })
	cfgFile := filepath.Join(t.TempDir(), "poller.yml")
	require.NoError(t, os.WriteFile(cfgFile, []byte(fmt.Sprintf("poller_id: test\nnats:\n  url: %s\ninventory:\n  files: [%s]\n  credentials_file: %s\n",
		srv.ClientURL(), sim.InvFile, sim.CredFile)), 0o600))

	for _, tc := range []struct {
		name  string
		flags []string
		want  int
	}{
		{"default", nil, http.StatusNotFound},
		{"--web.enable-pprof", []string{"--web.enable-pprof"}, http.StatusOK},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := testbed.StartProgram(t, "poller", bin, append([]string{"--config.file=" + cfgFile}, tc.flags...)...)
			for path, want := range map[string]int{"/debug/pprof/": tc.want, "/debug/pprof/heap": tc.want, "/metrics": http.StatusOK, "/status": http.StatusOK, "/-/healthy": http.StatusOK} {
				code, body := httpGet(t, "http://"+p.Addr+path)
				require.Equal(t, want, code, "%s: %s", path, body)
			}
			// Every program's /metrics says which build it is.
			code, body := httpGet(t, "http://"+p.Addr+"/metrics")
			require.Equal(t, http.StatusOK, code)
			require.Regexp(t, `(?m)^bmcstream_build_info\{branch="[^"]*",goarch="[^"]+",goos="[^"]+",goversion="go[^"]+",revision="[^"]+",version="[^"]+"\} 1$`, body)
			require.NoError(t, p.Cmd.Process.Signal(syscall.SIGTERM))
			require.NoError(t, p.Cmd.Wait())
		})
	}
}

// httpGet returns the status and body of a GET of url.
func httpGet(t *testing.T, url string) (int, string) {
	t.Helper()
	c := &http.Client{Timeout: 10 * time.Second}
	resp, err := c.Get(url)
	require.NoError(t, err)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return resp.StatusCode, string(b)
}
