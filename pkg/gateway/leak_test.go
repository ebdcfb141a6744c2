package gateway_test

import (
	"testing"

	"go.uber.org/goleak"
)

// TestMain fails the package when a goroutine its tests started (an
// embedded NATS server, a consumer, an HTTP server or client connection, a
// worker) is still running once the last test has finished. goleak retries
// for a while before it reports, so a goroutine ending just after its test
// is not a failure. Nothing is ignored: every test stops what it started.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}
