package main

import (
	"os/exec"
	"testing"

	"github.com/bmcstream/bmcstream/internal/testbed"
	"github.com/stretchr/testify/require"
)

func TestConfigCheck(t *testing.T) {
	require.NoError(t, run([]string{"--bmcs=500", "--mix=ilo=2,openbmc=1", "--config.check"}))
	require.ErrorContains(t, run([]string{"--mix=hpe=1", "--config.check"}), `unknown personality "hpe"`)
	require.ErrorContains(t, run([]string{"--fault=fraction=0.1,blackhole", "--config.check"}), "blackhole")
	require.ErrorContains(t, run([]string{"--mockup.dir=x", "--config.check"}), "replays Redfish only")
}

// TestHelpExplainsFleetAndMockup keeps the --help text promised by the
// README: how to run a fleet and replay a mockup.
func TestHelpExplainsFleetAndMockup(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary")
	}
	bin := testbed.Build(t, ".")
	out, err := exec.Command(bin, "--help").CombinedOutput()
	require.NoError(t, err, "%s", out)
	for _, want := range []string{"--bmcs", "--mockup.dir", "--fault", "/faults", "inventory"} {
		require.Contains(t, string(out), want)
	}
}
