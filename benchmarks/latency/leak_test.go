package main

import (
	"testing"

	"go.uber.org/goleak"
)

// TestMain fails the package when a goroutine its tests started (the
// embedded NATS server, the fleet, the poller and the gateway the smoke
// test runs in process, its watchers) is still running once the last test
// has finished.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}
