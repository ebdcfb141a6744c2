package main

import (
	"bytes"
	"os/exec"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/bmcstream/bmcstream/internal/version"
)

// TestVersion: --version prints the build's version, revision, date, Go
// version and platform, and exits 0 without reading any configuration.
func TestVersion(t *testing.T) {
	var stdout, stderr bytes.Buffer
	require.Equal(t, 0, Main([]string{"--version", "--config.file=/nonexistent/poller.yml"}, &stdout, &stderr))
	require.Empty(t, stderr.String())
	require.Equal(t, version.Get().Print("poller")+"\n", stdout.String())
	require.True(t, strings.HasPrefix(stdout.String(), "poller, version "), stdout.String())
	for _, want := range []string{"revision: ", "\n  build date:  ", "\n  go version:  go", "\n  platform:    "} {
		require.Contains(t, stdout.String(), want)
	}
}

// TestNoNATSServerLinked: the poller is a NATS client only; the embedded
// server (pkg/bus/embedded, for the gateway and tests) would add its size
// and its dependencies to every poller binary.
func TestNoNATSServerLinked(t *testing.T) {
	goBin, err := exec.LookPath("go")
	if err != nil {
		t.Skip("go is not on PATH")
	}
	out, err := exec.Command(goBin, "list", "-deps", ".").CombinedOutput()
	require.NoError(t, err, "%s", out)
	deps := strings.Fields(string(out))
	require.Contains(t, deps, "github.com/nats-io/nats.go", "the poller is a NATS client")
	for _, dep := range deps {
		require.False(t, strings.HasPrefix(dep, "github.com/nats-io/nats-server/") || dep == "github.com/bmcstream/bmcstream/pkg/bus/embedded",
			"the poller links %s", dep)
	}
}
