package main

import (
	"bytes"
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
