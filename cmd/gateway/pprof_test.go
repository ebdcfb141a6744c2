package main

import (
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/bmcstream/bmcstream/internal/synth"
	"github.com/bmcstream/bmcstream/internal/testbed"
	"github.com/bmcstream/bmcstream/pkg/inventory"
)

// TestProfilesOnlyWithFlag runs the gateway binary without and with
// --web.enable-pprof: /debug/pprof/ answers 404 by default, while the
// other endpoints answer, and serves the profiles with the flag.
func TestProfilesOnlyWithFlag(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the gateway binary")
	}
	bin := testbed.Build(t, "github.com/bmcstream/bmcstream/cmd/gateway")
	rcv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusNoContent) }))
	t.Cleanup(rcv.Close)
	dir := t.TempDir()
	inv, err := inventory.Marshal(synth.NewFleet(1).BMCs)
	require.NoError(t, err)
	invFile := filepath.Join(dir, "inventory.yml")
	require.NoError(t, os.WriteFile(invFile, inv, 0o600))
	cfgFile := filepath.Join(dir, "gateway.yml")
	require.NoError(t, os.WriteFile(cfgFile, []byte(fmt.Sprintf("inventory:\n  files: [%s]\nautomation:\n  enabled: false\nremote_write:\n  - name: prom\n    url: %s/api/v1/write\n", invFile, rcv.URL)), 0o600))

	for _, tc := range []struct {
		name  string
		flags []string
		want  int
	}{
		{"default", nil, http.StatusNotFound},
		{"--web.enable-pprof", []string{"--web.enable-pprof"}, http.StatusOK},
	} {
		t.Run(tc.name, func(t *testing.T) {
			args := append([]string{"--config.file=" + cfgFile, "--nats.embedded",
				"--nats.embedded.store-dir=" + t.TempDir(), fmt.Sprintf("--nats.embedded.listen=127.0.0.1:%d", testbed.FreePort(t))}, tc.flags...)
			p := testbed.StartProgram(t, "gateway", bin, args...)
			for path, want := range map[string]int{"/debug/pprof/": tc.want, "/debug/pprof/heap": tc.want, "/metrics": http.StatusOK, "/-/healthy": http.StatusOK} {
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
