package e2e

import (
	"testing"

	"go.uber.org/goleak"
)

// TestMain fails the package when a goroutine its tests started (an
// embedded NATS server, a poller, a gateway, an HTTP server or client
// connection, a simulated BMC) is still running once the last test has
// finished. goleak retries for a while before it reports, so a goroutine
// ending just after its test is not a failure. Nothing is ignored: every
// test stops what it started.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// spansPrograms skips t under -short: every test here runs a poller and a
// gateway together for several poll intervals.
func spansPrograms(t *testing.T) {
	t.Helper()
	if testing.Short() {
		t.Skip("spans programs: runs pollers and a gateway for several poll intervals")
	}
}
