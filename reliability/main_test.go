package reliability

import (
	"fmt"
	"net/http"
	"os"
	"testing"

	"go.uber.org/goleak"

	"github.com/bmcstream/bmcstream/internal/testbed"
)

// scenariosAtOnce is how many scenarios of the short form run at a time
// when -parallel is not given. A short scenario waits on real time (its
// faults last seconds, its fleet polls every interval) far more than it
// computes, so running a few side by side cuts the suite's wall time
// without crowding the machine; the default, GOMAXPROCS, would leave a
// 2-core CI machine mostly idle. The long form's beds (a thousand BMCs
// each) run one at a time, so one does not make another late.
func scenariosAtOnce() int {
	if currentScale().Name == "long" {
		return 1
	}
	return 4
}

// TestMain runs the scenarios, several at a time, and then fails the
// package when a goroutine its tests started (an embedded NATS server, the
// simulated fleet, a watcher, a proxy) is still running. goleak retries for
// a while before it reports, so a goroutine ending just after its test is
// not a failure.
func TestMain(m *testing.M) {
	testbed.DefaultParallel(scenariosAtOnce())
	code := m.Run()
	// Scrapes and queries go through the default client: its idle
	// keep-alive connections are the pool's, not a leak.
	http.DefaultClient.CloseIdleConnections()
	if code == 0 {
		if err := goleak.Find(); err != nil {
			fmt.Fprintln(os.Stderr, "goleak: goroutines left after the tests:", err)
			code = 1
		}
	}
	os.Exit(code)
}
