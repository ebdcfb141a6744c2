//go:build !race

package poller

// raceEnabled: see race_test.go.
const raceEnabled = false
