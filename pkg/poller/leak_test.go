package poller

import (
	"flag"
	"strconv"
	"testing"

	"go.uber.org/goleak"
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
	flag.Parse()
	set := false
	flag.Visit(func(f *flag.Flag) { set = set || f.Name == "test.parallel" })
	if p := flag.Lookup("test.parallel"); !set && !raceEnabled && p != nil {
		if n, err := strconv.Atoi(p.Value.String()); err == nil && n < waitingTests {
			// Lookup found the flag, so Set fails only on a bad value.
			_ = p.Value.Set(strconv.Itoa(waitingTests))
		}
	}
	goleak.VerifyTestMain(m)
}
