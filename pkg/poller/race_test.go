//go:build race

package poller

// raceEnabled: the race detector slows every goroutine several times, so
// the tests that wait on poll intervals keep the default parallelism.
const raceEnabled = true
