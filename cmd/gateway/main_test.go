package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/stretchr/testify/require"

	"github.com/bmcstream/bmcstream/internal/synth"
	"github.com/bmcstream/bmcstream/internal/testbed"
	"github.com/bmcstream/bmcstream/internal/version"
	"github.com/bmcstream/bmcstream/pkg/bus"
	"github.com/bmcstream/bmcstream/pkg/bus/embedded"
	"github.com/bmcstream/bmcstream/pkg/inventory"
)

// TestInvalidConfigWritesNothing runs the real gateway binary with broken
// configurations and inventories while the stream holds snapshots it
// would deliver. Each run must exit non-zero with an error naming the key
// and its line, and the remote-write receiver must have received nothing.
// A valid configuration then shows that the same setup does deliver.
func TestInvalidConfigWritesNothing(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the gateway binary")
	}
	bin := testbed.Build(t, "github.com/bmcstream/bmcstream/cmd/gateway")

	var requests atomic.Int64
	rcv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		requests.Add(1)
		w.WriteHeader(http.StatusNoContent)
	}))
	t.Cleanup(rcv.Close)

	srv, err := embedded.Start(bus.EmbeddedConfig{Listen: "127.0.0.1:0", StoreDir: t.TempDir()}, true)
	require.NoError(t, err)
	t.Cleanup(func() { srv.Shutdown(); srv.WaitForShutdown() })
	nc, err := nats.Connect(srv.ClientURL())
	require.NoError(t, err)
	t.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	require.NoError(t, err)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	_, err = bus.EnsureStream(ctx, js, bus.DefaultStreamConfig)
	require.NoError(t, err)
	fl := synth.NewFleet(3)
	pub := &synth.Publisher{NC: nc, JS: js}
	at := time.Now().Add(-5 * time.Second).Truncate(time.Second)
	for i := range fl.BMCs {
		require.NoError(t, pub.Publish(ctx, fl.Snapshot(i, at, "p", 1, 1)))
	}
	inv, err := inventory.Marshal(fl.BMCs)
	require.NoError(t, err)

	// Lines 1 to 9; cases add sink keys or top-level blocks from line 10.
	config := func(invFile string) string {
		return fmt.Sprintf("nats:\n  url: %s\ninventory:\n  files: [%s]\nautomation:\n  enabled: false\nremote_write:\n  - name: prom\n    url: %s/api/v1/write\n", srv.ClientURL(), invFile, rcv.URL)
	}
	for _, tc := range []struct {
		name, config, inv string
		want              []string
	}{
		{name: "unknown sink key", config: config("INV") + "    queue:\n      shards: 2\n", want: []string{"line 10: remote_write[0].queue: unknown key"}},
		{name: "bad queue value", config: config("INV") + "    queue_config:\n      capacity: -1\n", want: []string{"line 11: remote_write[0].queue_config.capacity"}},
		{name: "short ack wait", config: config("INV") + "consumer:\n  ack_wait: 10ms\n", want: []string{"line 11: consumer.ack_wait: must be at least 1s"}},
		{name: "two sink auth methods", config: config("INV") + "    basic_auth: {username: u, password: pw-value}\n    bearer_token: tk-value\n", want: []string{"line 8: remote_write[0]", "at most one of"}},
		{name: "bad relabel regex", config: config("INV") + "    write_relabel_configs:\n      - source_labels: [sensor]\n        regex: '(x'\n", want: []string{"line 12: remote_write[0].write_relabel_configs[0].regex"}},
		{name: "duplicate sink name", config: config("INV") + "  - name: prom\n    url: http://127.0.0.1:1/api/v1/write\n", want: []string{"line 10: remote_write[1].name", "used twice"}},
		{name: "nats url scheme", config: strings.Replace(config("INV"), "url: nats://", "url: http://", 1), want: []string{"line 2: nats.url: server 1: scheme"}},
		{name: "missing inventory file", config: config("INV.missing"), want: []string{"line 4: inventory.files[0]", "no such file"}},
		{name: "missing rule file", config: config("INV") + "normalise:\n  rule_files: [rules.yml]\n", want: []string{"line 11: normalise.rule_files[0]"}},
		{name: "inventory: bad protocol", config: config("INV"), inv: strings.Replace(string(inv), "protocol: redfish", "protocol: snmp", 1),
			want: []string{"line 4: bmcs[0].protocol", `"snmp"`}},
		{name: "inventory: reserved label", config: config("INV"), inv: strings.Replace(string(inv), "rack: rack00", "bmc: rack00", 1),
			want: []string{"bmcs[0].labels", "reserved"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			invFile := filepath.Join(dir, "inventory.yml")
			if tc.inv == "" {
				tc.inv = string(inv)
			}
			require.NoError(t, os.WriteFile(invFile, []byte(tc.inv), 0o600))
			cfgFile := filepath.Join(dir, "gateway.yml")
			require.NoError(t, os.WriteFile(cfgFile, []byte(strings.ReplaceAll(tc.config, "INV", invFile)), 0o600))
			code, stderr := run(t, bin, "--config.file="+cfgFile, "--web.listen-address=127.0.0.1:0")
			t.Logf("exit %d: %s", code, stderr)
			require.NotZero(t, code)
			for _, w := range tc.want {
				require.Contains(t, stderr, w)
			}
			for _, s := range []string{"pw-value", "tk-value"} {
				require.NotContains(t, stderr, s)
			}
			require.Zero(t, requests.Load(), "the gateway wrote to the receiver")
		})
	}

	// The control: valid, the same setup delivers the stream's snapshots.
	t.Run("valid configuration delivers", func(t *testing.T) {
		dir := t.TempDir()
		invFile := filepath.Join(dir, "inventory.yml")
		require.NoError(t, os.WriteFile(invFile, inv, 0o600))
		cfgFile := filepath.Join(dir, "gateway.yml")
		require.NoError(t, os.WriteFile(cfgFile, []byte(config(invFile)+"    queue_config:\n      batch_send_deadline: 100ms\n"), 0o600))
		p := testbed.StartProgram(t, "gateway", bin, "--config.file="+cfgFile)
		require.Eventually(t, func() bool { return requests.Load() > 0 }, 30*time.Second, 50*time.Millisecond)
		require.NoError(t, p.Cmd.Process.Signal(syscall.SIGTERM))
		_ = p.Cmd.Wait()
	})
}

// run runs the program to its end (at most 30 s) and returns its exit
// code and standard error.
func run(t *testing.T, bin string, args ...string) (int, string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, args...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	err := cmd.Run()
	require.NoError(t, ctx.Err(), "the program did not exit: %s", stderr.String())
	var exit *exec.ExitError
	if errors.As(err, &exit) {
		return exit.ExitCode(), stderr.String()
	}
	require.NoError(t, err)
	return 0, stderr.String()
}

// TestHelpAndVersionExitZero: --help and --version print and exit 0
// without reading any configuration.
func TestHelpAndVersionExitZero(t *testing.T) {
	for _, arg := range []string{"--help", "--version"} {
		out, err := os.CreateTemp(t.TempDir(), "out")
		require.NoError(t, err)
		require.Equal(t, 0, Main([]string{arg, "--config.file=/nonexistent/gateway.yml"}, out, out), arg)
		b, err := os.ReadFile(out.Name())
		require.NoError(t, err)
		require.NotContains(t, string(b), "nonexistent", arg)
		require.NotEmpty(t, b, arg)
		if arg == "--version" {
			require.Equal(t, version.Get().Print("gateway")+"\n", string(b))
		}
	}
}
