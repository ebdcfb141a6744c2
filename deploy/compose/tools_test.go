package compose_test

import (
	"bytes"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/bmcstream/bmcstream/internal/testbed"
)

// requireTool finds a tool of a Debian package: skipped with the package
// to install when it is missing, failed instead when CI is set.
func requireTool(t *testing.T, name, pkg string) string {
	t.Helper()
	if p, err := exec.LookPath(name); err == nil {
		return p
	}
	for _, dir := range []string{"/usr/bin", "/usr/sbin"} {
		p := filepath.Join(dir, name)
		if st, err := os.Stat(p); err == nil && st.Mode().IsRegular() && st.Mode().Perm()&0o111 != 0 {
			return p
		}
	}
	msg := fmt.Sprintf("%s not found; install the Debian package: apt-get install %s", name, pkg)
	if os.Getenv("CI") != "" {
		t.Fatalf("%s (CI is set, so the configuration must be checked by the real tool)", msg)
	}
	t.Skip(msg)
	return ""
}

// runTool runs a tool in dir and requires it to succeed.
func runTool(t *testing.T, dir, bin string, args ...string) string {
	t.Helper()
	cmd := exec.Command(bin, args...)
	cmd.Dir = dir
	out, err := cmd.CombinedOutput()
	require.NoError(t, err, "%s %s:\n%s", filepath.Base(bin), strings.Join(args, " "), out)
	return string(out)
}

// TestPrometheusConfig checks prometheus.yml and the rule files it loads
// with Debian's promtool, and runs the rules' unit tests.
func TestPrometheusConfig(t *testing.T) {
	promtool := requireTool(t, "promtool", "prometheus")
	out := runTool(t, "prometheus", promtool, "check", "config", "prometheus.yml")
	require.Contains(t, out, "SUCCESS: 3 rule files found")

	rules, err := filepath.Glob("prometheus/rules/*.rules.yml")
	require.NoError(t, err)
	require.Len(t, rules, 3)
	for i := range rules {
		rules[i] = filepath.Base(rules[i])
	}
	runTool(t, "prometheus/rules", promtool, append([]string{"check", "rules"}, rules...)...)

	tests, err := filepath.Glob("prometheus/rules/*_test.yml")
	require.NoError(t, err)
	require.Len(t, tests, 2)
	for _, tf := range tests {
		out := runTool(t, "prometheus/rules", promtool, "test", "rules", filepath.Base(tf))
		require.Contains(t, out, "SUCCESS", tf)
	}
}

// TestAlertmanagerConfig checks alertmanager.yml with Debian's amtool.
func TestAlertmanagerConfig(t *testing.T) {
	amtool := requireTool(t, "amtool", "prometheus-alertmanager")
	out := runTool(t, "alertmanager", amtool, "check-config", "alertmanager.yml")
	require.Contains(t, out, "SUCCESS")
}

// TestNATSConfig checks nats-server.conf with Debian's nats-server.
func TestNATSConfig(t *testing.T) {
	natsServer := requireTool(t, "nats-server", "nats-server")
	out := runTool(t, "nats", natsServer, "-c", "nats-server.conf", "-t")
	require.Contains(t, out, "is valid")
}

// TestProgramConfigs runs each bmcstream service's command line from the
// compose file with --config.check, as the container would run it: bmcsim
// with the compose file's flags; then, with the files a real bmcsim run
// wrote into the sim volume, the pollers and gateways against a copy of
// their container's mounts.
func TestProgramConfigs(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the programs")
	}
	p := loadProject(t)
	bins := map[string]string{}
	for _, prog := range []string{"bmcsim", "poller", "gateway"} {
		bins[prog] = testbed.Build(t, "github.com/bmcstream/bmcstream/cmd/"+prog)
	}
	healthcheck := testbed.Build(t, "github.com/bmcstream/bmcstream/deploy/healthcheck")

	// bmcsim: its flags as they are.
	sim := p.Services["bmcsim"]
	out := runTool(t, ".", bins["bmcsim"], append(sim.Command[1:], "--config.check")...)
	require.Contains(t, out, "bmcsim configuration is valid: 300 BMCs")

	// The sim volume, written by bmcsim run with the compose flags, moved
	// onto loopback (the container's fixed address does not exist here).
	// Its health check is the compose file's, on the moved admin port.
	simDir := t.TempDir()
	admin := fmt.Sprintf("127.0.0.1:%d", testbed.FreePort(t))
	args := setFlags(sim.Command[1:], map[string]string{
		"--addressing": "address", "--first-address": "127.26.0.1",
		"--redfish.port": fmt.Sprint(testbed.FreePort(t)), "--ipmi.port": fmt.Sprint(freeUDPPort(t)),
		"--out.dir": simDir, "--admin.listen-address": admin,
	})
	cmd := exec.Command(bins["bmcsim"], args...)
	var simLog bytes.Buffer
	cmd.Stdout, cmd.Stderr = &simLog, &simLog
	require.NoError(t, cmd.Start())
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		if t.Failed() {
			t.Logf("bmcsim log:\n%s", &simLog)
		}
	})
	hc := sim.Healthcheck.Test[1:]
	require.Equal(t, "/usr/local/bin/healthcheck", hc[0])
	probe := strings.Replace(hc[1], "127.0.0.1:9390", admin, 1)
	require.Eventually(t, func() bool {
		return exec.Command(healthcheck, probe).Run() == nil
	}, 30*time.Second, 200*time.Millisecond, "bmcsim health check %s", probe)
	for _, f := range []string{"inventory.yml", "credentials.yml", "ca.pem"} {
		_, err := os.Stat(filepath.Join(simDir, f))
		require.NoError(t, err, "bmcsim wrote %s", f)
	}

	for name, prog := range programOf {
		if prog == "bmcsim" {
			continue
		}
		t.Run(name, func(t *testing.T) {
			s := p.Services[name]
			root := containerRoot(t, s.Volumes, simDir)
			args := make([]string, 0, len(s.Command))
			for _, a := range s.Command[1:] {
				if k, v, ok := strings.Cut(a, "="); ok && strings.HasPrefix(v, "/") {
					a = k + "=" + filepath.Join(root, v)
				}
				args = append(args, a)
			}
			out := runTool(t, ".", bins[prog], append(args, "--config.check")...)
			require.Contains(t, out, "is valid")
		})
	}
}

// setFlags returns args with the --flag=value of each key of set replaced
// by (or, when absent, completed with) the given value.
func setFlags(args []string, set map[string]string) []string {
	out := make([]string, 0, len(args)+len(set))
	done := map[string]bool{}
	for _, a := range args {
		k, _, _ := strings.Cut(a, "=")
		if v, ok := set[k]; ok {
			a = k + "=" + v
			done[k] = true
		}
		out = append(out, a)
	}
	for k, v := range set {
		if !done[k] {
			out = append(out, k+"="+v)
		}
	}
	return out
}

// containerRoot lays out a service's mounts under a temporary directory:
// each bind-mounted file copied to its target, the sim volume's files
// (from simDir) under its target.
func containerRoot(t *testing.T, volumes []string, simDir string) string {
	t.Helper()
	root := t.TempDir()
	for _, v := range volumes {
		parts := strings.Split(v, ":")
		src, target := parts[0], filepath.Join(root, filepath.FromSlash(parts[1]))
		if src == "sim" {
			src = simDir
		}
		require.NoError(t, copyTree(filepath.FromSlash(src), target), v)
	}
	return root
}

// copyTree copies a file, or a directory's files, to dst.
func copyTree(src, dst string) error {
	return filepath.Walk(src, func(p string, fi os.FileInfo, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(src, p)
		if err != nil {
			return err
		}
		target := filepath.Join(dst, rel)
		if fi.IsDir() {
			return os.MkdirAll(target, 0o755)
		}
		if err := os.MkdirAll(filepath.Dir(target), 0o755); err != nil {
			return err
		}
		in, err := os.Open(p)
		if err != nil {
			return err
		}
		defer func() { _ = in.Close() }()
		out, err := os.OpenFile(target, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, fi.Mode().Perm())
		if err != nil {
			return err
		}
		if _, err := io.Copy(out, in); err != nil {
			_ = out.Close()
			return err
		}
		return out.Close()
	})
}

// freeUDPPort returns a UDP port that was free a moment ago.
func freeUDPPort(t *testing.T) int {
	t.Helper()
	pc, err := net.ListenPacket("udp4", "127.0.0.1:0")
	require.NoError(t, err)
	port := pc.LocalAddr().(*net.UDPAddr).Port
	require.NoError(t, pc.Close())
	return port
}
