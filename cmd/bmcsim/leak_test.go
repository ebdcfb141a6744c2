package main

import (
	"testing"

	"go.uber.org/goleak"
)

// TestMain fails the package when a goroutine its tests started (the
// simulator built and run as a process, its servers) is still running once
// the last test has finished. goleak retries for a while before it reports,
// so a goroutine ending just after its test is not a failure.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}
