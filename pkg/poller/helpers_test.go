package poller

import (
	"fmt"
	"testing"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/stretchr/testify/require"

	"github.com/bmcstream/bmcstream/pkg/bus"
	"github.com/bmcstream/bmcstream/pkg/bus/embedded"
)

// startNATS starts an embedded NATS server with JetStream on a port (0:
// any) and store directory the caller chooses, so a test can stop it and
// start it again on the same ones; stopping it is the caller's.
func startNATS(t *testing.T, port int, dir string) *server.Server {
	t.Helper()
	srv, err := embedded.Start(bus.EmbeddedConfig{Listen: fmt.Sprintf("127.0.0.1:%d", port), StoreDir: dir}, true)
	require.NoError(t, err)
	return srv
}

// startJetStream starts an embedded NATS server with JetStream for the
// test, stopped when it ends.
func startJetStream(t *testing.T) *server.Server {
	t.Helper()
	srv := startNATS(t, 0, t.TempDir())
	t.Cleanup(func() { srv.Shutdown(); srv.WaitForShutdown() })
	return srv
}
