package main

import (
	"testing"

	"go.uber.org/goleak"
)

// TestMain fails the package when a goroutine one of its tests started is
// still running once the last test has finished (goleak waits a while
// before it reports, for goroutines just ending).
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}
