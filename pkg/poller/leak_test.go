package poller

import (
	"testing"

	"go.uber.org/goleak"

	"github.com/bmcstream/bmcstream/internal/testbed"
)

// waitingTests is how many parallel tests run at once unless -parallel says
// otherwise. The slow tests here spend their time waiting for the poll
// intervals of simulated BMCs, not computing, so the default (GOMAXPROCS,
// 2 on a small CI machine) would leave the machine idle while they queue.
// Not under the race detector, where they do compute: a simulated BMC
// that answers late fails the tests that expect every poll to succeed.
const waitingTests = 8

// TestMain fails the package when a goroutine its tests started (an
// embedded NATS server, a consumer, an HTTP server or client connection, a
// worker) is still running once the last test has finished. goleak retries
// for a while before it reports, so a goroutine ending just after its test
// is not a failure. Nothing is ignored: every test stops what it started.
func TestMain(m *testing.M) {
	n := waitingTests
	if raceEnabled {
		n = 0 // the default
	}
	testbed.DefaultParallel(n)
	goleak.VerifyTestMain(m)
}
