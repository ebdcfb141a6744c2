package gateway_test

import (
	"testing"

	"go.uber.org/goleak"

	"github.com/bmcstream/bmcstream/internal/testbed"
)

// defaultParallel is how many of this package's tests run at once unless
// -parallel says otherwise. The tests spend their time waiting on servers
// and timers (a roll-up every 10 s, a stall that must outlast 15 s), not
// on the CPU, so more of them than GOMAXPROCS (the default) overlap well.
const defaultParallel = 8

// TestMain fails the package when a goroutine its tests started (an
// embedded NATS server, a consumer, an HTTP server or client connection, a
// worker) is still running once the last test has finished. goleak retries
// for a while before it reports, so a goroutine ending just after its test
// is not a failure. Nothing is ignored: every test stops what it started.
func TestMain(m *testing.M) {
	testbed.DefaultParallel(defaultParallel)
	goleak.VerifyTestMain(m)
}
