package poller

import (
	"sort"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// slotsOf maps each BMC's polls that started in [from, to) to their slot
// numbers (which multiple of the interval past the BMC's offset), counting
// polls per slot, and notes which poller made each.
func (r *recorder) slotsOf(from, to time.Time, interval time.Duration) map[string]map[int64][]string {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := map[string]map[int64][]string{}
	for _, s := range r.snaps {
		start := time.UnixMilli(s.PollStartMs)
		if start.Before(from) || !start.Before(to) {
			continue
		}
		off := offset(s.BmcId, interval)
		// A poll starts at its slot plus the scheduling lag, well under
		// half an interval.
		slot := slotNumber(start.Add(interval/2), off, interval)
		if out[s.BmcId] == nil {
			out[s.BmcId] = map[int64][]string{}
		}
		out[s.BmcId][slot] = append(out[s.BmcId][slot], s.PollerId)
	}
	return out
}

// slotNumber numbers the slot at or before t.
func slotNumber(t time.Time, off, interval time.Duration) int64 {
	return (t.UnixNano() - int64(off)) / int64(interval)
}

// TestCleanShutdownHandsOver stops one of two pollers cleanly: its BMCs
// move to the survivor at the handover time, and every BMC is polled in
// every slot exactly once across the handover, none missed, none twice.
func TestCleanShutdownHandsOver(t *testing.T) {
	const n, interval = 20, 2 * time.Second
	tb := newTestbed(t, n, "redfish", interval)
	rec := record(t, tb.nats.ClientURL())
	extra := "sharding:\n  mode: dynamic\n  ttl: 2s\n"
	a, _, stopA := runPoller(t, tb.config(t, "ho-a", extra))
	b, _, _ := runPoller(t, tb.config(t, "ho-b", extra))
	require.Eventually(t, func() bool { return len(a.Members()) == 2 && len(b.Members()) == 2 },
		10*time.Second, 20*time.Millisecond, "both pollers see each other")
	// A full interval of stable ownership before the handover.
	time.Sleep(interval + interval/2)
	from := time.Now()
	time.Sleep(interval)
	moved := map[string]bool{}
	for _, st := range a.Statuses() {
		moved[st.ID] = true
	}
	require.NotEmpty(t, moved, "ho-a owns some BMCs")
	require.Less(t, len(moved), n, "ho-b owns some BMCs")
	stopped := time.Now()
	stopA()
	took := time.Since(stopped)
	t.Logf("ho-a stopped in %s", took.Round(10*time.Millisecond))
	require.Less(t, took, handoverDelay+interval, "a clean stop waits for the handover, not longer")
	require.Eventually(t, func() bool { return len(b.Members()) == 1 }, 5*time.Second, 20*time.Millisecond)
	require.Len(t, b.Statuses(), n, "ho-b owns every BMC")
	time.Sleep(2*interval + interval/2)
	to := time.Now()

	slots := rec.slotsOf(from, to, interval)
	require.Len(t, slots, n, "every BMC polled")
	var handedOver int
	for id, s := range slots {
		nums := make([]int64, 0, len(s))
		for k := range s {
			nums = append(nums, k)
		}
		sort.Slice(nums, func(i, j int) bool { return nums[i] < nums[j] })
		for k := nums[0]; k <= nums[len(nums)-1]; k++ {
			require.Len(t, s[k], 1, "bmc %s slot %d: polled by %v (moved: %v)", id, k, s[k], moved[id])
		}
		// The window's first and last slots are there too (a poll is
		// recorded well within 500 ms of its slot).
		off := offset(id, interval)
		first := firstSlot(from, interval, off)
		last := firstSlot(to.Add(-500*time.Millisecond-interval), interval, off)
		require.LessOrEqual(t, nums[0], slotNumber(first, off, interval), "bmc %s: first slot of the window", id)
		require.GreaterOrEqual(t, nums[len(nums)-1], slotNumber(last, off, interval), "bmc %s: last slot of the window", id)
		if moved[id] {
			require.Equal(t, "ho-a", s[nums[0]][0], "bmc %s: first polled by ho-a", id)
			require.Equal(t, "ho-b", s[nums[len(nums)-1]][0], "bmc %s: last polled by ho-b", id)
			handedOver++
		}
	}
	t.Logf("%d BMCs handed over with no slot missed or polled twice", handedOver)
}

// TestHandoverValues parses leaving marks and tells them from heartbeats.
func TestHandoverValues(t *testing.T) {
	at, ok := leavingAt([]byte("leaving 1765000000123"))
	require.True(t, ok)
	require.Equal(t, time.UnixMilli(1765000000123), at)
	for _, v := range []string{"2026-12-07T20:00:00Z", "leaving ", "leaving soon", ""} {
		_, ok := leavingAt([]byte(v))
		require.False(t, ok, "%q", v)
	}
}

// TestWorkerStopsAtHandover checks the worker's rule: slots before the
// handover time are polled, those at or after it are not.
func TestWorkerStopsAtHandover(t *testing.T) {
	w := &worker{leave: make(chan struct{})}
	at := time.Unix(1000, 0)
	require.False(t, w.handedOver(at.Add(time.Hour)), "no handover yet")
	w.handOver(at)
	w.handOver(at.Add(time.Minute)) // a second call changes nothing
	select {
	case <-w.leave:
	default:
		t.Fatal("handOver wakes the worker")
	}
	require.False(t, w.handedOver(at.Add(-time.Millisecond)))
	require.True(t, w.handedOver(at))
	require.True(t, w.handedOver(at.Add(time.Second)))
}
