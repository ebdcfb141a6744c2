package main

import (
	"testing"

	"go.uber.org/goleak"
)

// TestMain fails the package when a goroutine its tests started (the demo
// run as a process, the readers of its output) is still running once the
// last test has finished. goleak retries for a while before it reports, so
// a goroutine ending just after its test is not a failure.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}
