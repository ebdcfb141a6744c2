package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/bmcstream/bmcstream/internal/testbed"
	"github.com/bmcstream/bmcstream/pkg/bmcsim/fleet"
	"github.com/bmcstream/bmcstream/pkg/bus"
	"github.com/bmcstream/bmcstream/pkg/bus/embedded"
	"github.com/bmcstream/bmcstream/pkg/poller"
)

// TestInvalidConfigTouchesNoBMC runs the real poller binary against a
// simulated fleet with broken configurations, inventories and credentials
// files. Each run must exit non-zero with an error naming the key and its
// line, and the fleet must have seen no connection and no datagram. A
// valid configuration then shows that the same setup does reach the fleet.
func TestInvalidConfigTouchesNoBMC(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the poller binary")
	}
	bin := testbed.Build(t, "github.com/bmcstream/bmcstream/cmd/poller")
	fc := fleet.DefaultConfig
	fc.Count = 4
	fc.FirstAddress = netip.MustParseAddr("127.93.0.1")
	sim := testbed.StartSimFleet(t, fc, time.Second)
	srv, err := embedded.Start(bus.EmbeddedConfig{Listen: "127.0.0.1:0", StoreDir: t.TempDir()}, true)
	require.NoError(t, err)
	t.Cleanup(func() { srv.Shutdown(); srv.WaitForShutdown() })

	inv, err := os.ReadFile(sim.InvFile)
	require.NoError(t, err)
	creds, err := os.ReadFile(sim.CredFile)
	require.NoError(t, err)
	config := func(inv, creds string) string {
		return fmt.Sprintf("poller_id: test\nnats:\n  url: %s\ninventory:\n  files: [%s]\n  credentials_file: %s\n", srv.ClientURL(), inv, creds)
	}

	for _, tc := range []struct {
		name string
		// config is the configuration; INV and CREDS stand for the
		// inventory and credentials files of the case.
		config, inv, creds string
		// want are substrings of stderr: the key path with its line.
		want []string
	}{
		{name: "unknown key", config: config("INV", "CREDS") + "polling:\n  max_concurent: 3\n", want: []string{"line 8: polling.max_concurent: unknown key"}},
		{name: "bad duration", config: config("INV", "CREDS") + "polling:\n  request_timeout: soon\n", want: []string{"line 8: polling.request_timeout"}},
		{name: "shard out of range", config: config("INV", "CREDS") + "sharding:\n  shard: 3\n  shards: 2\n", want: []string{"line 8: sharding.shard: shard 3 of 2"}},
		{name: "two nats auth methods", config: strings.Replace(config("INV", "CREDS"), "nats:\n", "nats:\n  token: t0ken-value\n  creds_file: x.creds\n", 1), want: []string{"line 2: nats: set at most one of"}},
		{name: "missing inventory file", config: config("INV.missing", "CREDS"), want: []string{"line 5: inventory.files[0]", "no such file"}},
		{name: "missing credentials file", config: config("INV", "CREDS.missing"), want: []string{"line 6: inventory.credentials_file"}},
		{name: "inventory: bad protocol", inv: strings.Replace(string(inv), "protocol: both", "protocol: snmp", 1),
			want: []string{"bmcs[0].protocol", `"snmp"`}},
		{name: "inventory: duplicate id", inv: strings.Replace(string(inv), "id: bmc-00002", "id: bmc-00001", 1),
			want: []string{"bmcs[1].id", `"bmc-00001" already used`}},
		{name: "inventory: interval below a second", inv: strings.Replace(string(inv), "interval: 1s", "interval: 10ms", 1),
			want: []string{"bmcs[0].interval: 10ms is below the minimum"}},
		{name: "inventory: unknown key", inv: strings.Replace(string(inv), "protocol: both", "protocl: both", 1),
			want: []string{"bmcs[0].protocl: unknown key"}},
		{name: "credentials: no user name", creds: strings.Replace(string(creds), "username:", "user:", 1),
			want: []string{"bmcsim.user: unknown key"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			invFile, credFile := filepath.Join(dir, "inventory.yml"), filepath.Join(dir, "credentials.yml")
			if tc.inv == "" {
				tc.inv = string(inv)
			}
			if tc.creds == "" {
				tc.creds = string(creds)
			}
			if tc.config == "" {
				tc.config = config("INV", "CREDS")
			}
			require.NoError(t, os.WriteFile(invFile, []byte(tc.inv), 0o600))
			require.NoError(t, os.WriteFile(credFile, []byte(tc.creds), 0o600))
			cfg := strings.NewReplacer("INV", invFile, "CREDS", credFile).Replace(tc.config)
			cfgFile := filepath.Join(dir, "poller.yml")
			require.NoError(t, os.WriteFile(cfgFile, []byte(cfg), 0o600))

			before := sim.Fleet.Traffic()
			code, stderr := run(t, bin, "--config.file="+cfgFile, "--web.listen-address=127.0.0.1:0")
			t.Logf("exit %d: %s", code, stderr)
			require.NotZero(t, code)
			for _, w := range tc.want {
				require.Contains(t, stderr, w)
			}
			require.Regexp(t, `line \d+: `, stderr)
			require.NotContains(t, stderr, fc.Password)
			require.NotContains(t, stderr, "t0ken-value")
			require.Equal(t, before, sim.Fleet.Traffic(), "the poller touched a BMC")
			require.Equal(t, fleet.Traffic{}, sim.Fleet.Traffic())
		})
	}

	// The control: the same files, valid, do reach the fleet.
	t.Run("valid configuration polls", func(t *testing.T) {
		cfgFile := filepath.Join(t.TempDir(), "poller.yml")
		require.NoError(t, os.WriteFile(cfgFile, []byte(config(sim.InvFile, sim.CredFile)), 0o600))
		p := testbed.StartProgram(t, "poller", bin, "--config.file="+cfgFile)
		require.Eventually(t, func() bool {
			tr := sim.Fleet.Traffic()
			return tr.RedfishConnections > 0 && tr.IPMIPackets > 0
		}, 30*time.Second, 100*time.Millisecond)
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

// TestExplainFlag runs the poller binary with --explain against a
// simulated BMC polled over both protocols: it prints the readings and
// their series (text, then JSON), touches no NATS, exits 0, and leaves no
// session open; an unknown BMC id exits 1 naming the inventory file read.
// Neither stream ever holds the password.
func TestExplainFlag(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the poller binary")
	}
	bin := testbed.Build(t, "github.com/bmcstream/bmcstream/cmd/poller")
	fc := fleet.DefaultConfig
	fc.Count = 2
	fc.Mix = map[string]int{"ilo": 1}
	fc.FirstAddress = netip.MustParseAddr("127.94.0.1")
	sim := testbed.StartSimFleet(t, fc, time.Second)
	dir := t.TempDir()
	cfgFile := filepath.Join(dir, "poller.yml")
	// NATS points at a closed port: explaining does not publish.
	require.NoError(t, os.WriteFile(cfgFile, []byte(fmt.Sprintf("nats:\n  url: nats://127.0.0.1:%d\ninventory:\n  files: [%s]\n  credentials_file: %s\n",
		testbed.FreePort(t), sim.InvFile, sim.CredFile)), 0o600))
	rules := filepath.Join(dir, "mappings")
	require.NoError(t, os.Mkdir(rules, 0o755))
	require.NoError(t, os.WriteFile(filepath.Join(rules, "site.yml"), []byte("rules:\n  - match: {protocol: redfish, name: '^07-Exhaust$'}\n    set: {drop: true}\n"), 0o600))
	id := sim.Fleet.Members[1].BMC.ID

	code, stdout, stderr := runOut(t, bin, "--config.file="+cfgFile, "--explain="+id, "--explain.rules="+rules, "--log.level=debug")
	require.Zero(t, code, stderr)
	require.Contains(t, stdout, "BMC "+id+" at "+sim.Fleet.Members[1].Addr.String()+", protocol both (prefer redfish)")
	require.Contains(t, stdout, "mapping files: "+rules+", built-in")
	require.Regexp(t, `series bmc_temperature_celsius\{bmc="`+id+`",context="intake",[^}]*sensor="intake"`, stdout)
	require.Contains(t, stdout, "dropped rule_drop: ")
	require.Regexp(t, `(?m)^  redfish: up, \d+ readings, \d+ series; normaliser dropped 1 \(rule_drop 1\); source left out 2 \(absent 2\)$`, stdout)
	require.Regexp(t, `(?m)^  ipmi: up, \d+ readings, \d+ series; `, stdout)
	rf, ipmi := sim.Fleet.SessionCounts(id)
	require.Zero(t, rf+ipmi, "sessions closed")

	code, stdout, stderr = runOut(t, bin, "--config.file="+cfgFile, "--explain="+id, "--explain.format=json")
	require.Zero(t, code, stderr)
	var rep struct {
		BMC   string `json:"bmc"`
		Polls []struct {
			Protocol string `json:"protocol"`
			Up       bool   `json:"up"`
		} `json:"polls"`
	}
	require.NoError(t, json.Unmarshal([]byte(stdout), &rep), stdout)
	require.Equal(t, id, rep.BMC)
	require.Len(t, rep.Polls, 2)
	require.True(t, rep.Polls[0].Up && rep.Polls[1].Up)

	code, stdout, stderr = runOut(t, bin, "--config.file="+cfgFile, "--explain=srv-404")
	require.Equal(t, 1, code)
	require.Empty(t, stdout)
	require.Equal(t, `poller: explain: bmc "srv-404" is not in the inventory (read `+sim.InvFile+")\n", stderr)

}

// runOut runs the program to its end (at most 30 s) and returns its exit
// code, standard output and standard error.
func runOut(t *testing.T, bin string, args ...string) (int, string, string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, args...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	require.NoError(t, ctx.Err(), "the program did not exit: %s", stderr.String())
	require.NotContains(t, stdout.String()+stderr.String(), fleet.DefaultConfig.Password)
	var exit *exec.ExitError
	if errors.As(err, &exit) {
		return exit.ExitCode(), stdout.String(), stderr.String()
	}
	require.NoError(t, err)
	return 0, stdout.String(), stderr.String()
}

func TestParseMemoryLimit(t *testing.T) {
	for in, want := range map[string]int64{
		"auto": poller.AutoMemoryLimit, "off": 0, "0": 0,
		"512MiB": 512 << 20, "1.5GiB": 3 << 29, "1048576": 1 << 20, "64 KiB": 64 << 10,
	} {
		got, err := parseMemoryLimit(in)
		require.NoError(t, err, in)
		require.Equal(t, want, got, in)
	}
	for _, in := range []string{"", "-1MiB", "lots", "12MB"} {
		_, err := parseMemoryLimit(in)
		require.Error(t, err, in)
	}
}
