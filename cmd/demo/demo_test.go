package main

import (
	"bytes"
	"fmt"
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
	cmd := exec.Command(bin, "--duration=15s", "--interval=2s", "--bmcs=10", "--fleet.first-address=127.21.0.1", fmt.Sprintf("--fleet.redfish-port=%d", testbed.FreePort(t)),
		"--data.dir="+dir,
		fmt.Sprintf("--receiver.port=%d", testbed.FreePort(t)),
		fmt.Sprintf("--nats.listen=127.0.0.1:%d", testbed.FreePort(t)),
		fmt.Sprintf("--web.listen-address=127.0.0.1:%d", testbed.FreePort(t)))
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	require.NoError(t, cmd.Run(), "stdout:\n%s\nstderr:\n%s", &stdout, &stderr)
	require.Contains(t, stdout.String(), "answers bmc_up for 10 BMCs", "stdout:\n%s\nstderr:\n%s", &stdout, &stderr)
	_, err := os.Stat(filepath.Join(dir, "inventory.yml"))
	require.NoError(t, err)
}
