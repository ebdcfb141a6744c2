package testbed

import (
	"testing"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/stretchr/testify/require"

	"github.com/bmcstream/bmcstream/pkg/bus"
	"github.com/bmcstream/bmcstream/pkg/bus/embedded"
)

// StartNATS starts a NATS server with JetStream in the test process, on a
// free loopback port with its store in t.TempDir(), and shuts it down (and
// waits for its goroutines, so leak checks pass) in t.Cleanup.
func StartNATS(t testing.TB) *server.Server {
	t.Helper()
	srv, err := embedded.Start(bus.EmbeddedConfig{Listen: "127.0.0.1:0", StoreDir: t.TempDir()}, true)
	require.NoError(t, err)
	t.Cleanup(func() { srv.Shutdown(); srv.WaitForShutdown() })
	return srv
}
