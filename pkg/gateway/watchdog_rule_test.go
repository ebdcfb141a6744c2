package gateway

import (
	"testing"

	"github.com/stretchr/testify/require"
)

// TestStalledRule: each condition of the watchdog's rule on its own keeps a
// consumer from being declared stalled.
func TestStalledRule(t *testing.T) {
	t.Parallel()
	last := watchCheck{received: 10, idle: 100, delivered: 500, pending: 30}
	stuck := watchCheck{received: 10, idle: 150, delivered: 500, pending: 40}
	for _, tc := range []struct {
		name       string
		last, now  watchCheck
		ackPending int
		want       bool
	}{
		{"pending grows, nothing delivered, loop waiting", last, stuck, 0, true},
		{"some snapshots unacked, under the limit", last, stuck, 4095, true},
		{"at max_ack_pending: the server holds back by design", last, stuck, 4096, false},
		{"nothing pending now", last, watchCheck{received: 10, idle: 150, delivered: 500}, 0, false},
		{"nothing pending at the previous check", watchCheck{received: 10, idle: 100, delivered: 500}, stuck, 0, false},
		{"the server delivered (to another gateway)", last, watchCheck{received: 10, idle: 150, delivered: 501, pending: 40}, 0, false},
		{"this loop received", last, watchCheck{received: 11, idle: 150, delivered: 500, pending: 40}, 0, false},
		{"the loop never waited in Next: held back by its sink", last, watchCheck{received: 10, idle: 100, delivered: 500, pending: 40}, 0, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			require.Equal(t, tc.want, stalled(tc.last, tc.now, tc.ackPending, 4096))
		})
	}
}
