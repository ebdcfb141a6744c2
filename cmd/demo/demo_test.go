package main

import (
	"bytes"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/bmcstream/bmcstream/internal/testbed"
)

// TestDemoRunsThePipeline runs the README's run command (with free ports
// and a short duration) and checks it reports data queryable in the real
// receiver.
func TestDemoRunsThePipeline(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the whole pipeline")
	}
	testbed.RequireBinary(t, "prometheus")
	bin := testbed.Build(t, ".")
	dir := t.TempDir()
	cmd := exec.Command(bin, append([]string{"--duration=15s", "--interval=2s", "--bmcs=10", "--fleet.first-address=127.21.0.1", "--data.dir=" + dir},
		freePorts(t)...)...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	require.NoError(t, cmd.Run(), "stdout:\n%s\nstderr:\n%s", &stdout, &stderr)
	require.Contains(t, stdout.String(), "answers bmc_up for 10 BMCs", "stdout:\n%s\nstderr:\n%s", &stdout, &stderr)
	_, err := os.Stat(filepath.Join(dir, "bmcstream", "sim", "inventory.yml"))
	require.NoError(t, err)
}

// freePorts returns the demo's flags for every address it listens on, each
// on a free loopback port, so that tests never collide with each other or
// with a demo someone runs.
func freePorts(t *testing.T) []string {
	t.Helper()
	pc, err := net.ListenPacket("udp4", "127.0.0.1:0")
	require.NoError(t, err)
	ipmi := pc.LocalAddr().(*net.UDPAddr).Port
	require.NoError(t, pc.Close())
	free := func() string { return fmt.Sprintf("127.0.0.1:%d", testbed.FreePort(t)) }
	return []string{
		fmt.Sprintf("--fleet.redfish-port=%d", testbed.FreePort(t)),
		fmt.Sprintf("--fleet.ipmi-port=%d", ipmi),
		"--fleet.admin-address=" + free(),
		fmt.Sprintf("--receiver.port=%d", testbed.FreePort(t)),
		fmt.Sprintf("--alertmanager.port=%d", testbed.FreePort(t)),
		"--nats.listen=" + free(),
		"--web.listen-address=" + free(),
		"--poller.web.listen-address=" + free(),
		"--poller.web.listen-address=" + free(),
	}
}
