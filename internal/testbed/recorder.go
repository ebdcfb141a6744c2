package testbed

import (
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/stretchr/testify/require"

	"github.com/bmcstream/bmcstream/pkg/bus"
	v1 "github.com/bmcstream/bmcstream/proto/bmcstream/v1"
)

// Recorder collects every snapshot published on the raw subjects of a
// NATS server, as a subscriber to bmc.v1.raw.> sees them: what pollers
// published, in the order the server delivered it.
type Recorder struct {
	mu    sync.Mutex
	snaps []*v1.Snapshot
}

// Record subscribes to the raw subjects at url until the test ends.
// Messages that are not snapshots are left out.
func Record(t testing.TB, url string) *Recorder {
	t.Helper()
	nc, err := nats.Connect(url)
	require.NoError(t, err)
	t.Cleanup(nc.Close)
	r := &Recorder{}
	_, err = nc.Subscribe(bus.RawWildcard, func(m *nats.Msg) {
		var s v1.Snapshot
		if err := s.Unmarshal(m.Data); err == nil {
			r.mu.Lock()
			r.snaps = append(r.snaps, &s)
			r.mu.Unlock()
		}
	})
	require.NoError(t, err)
	require.NoError(t, nc.Flush())
	return r
}

// Snapshots returns the snapshots recorded so far, in arrival order. The
// slice is the caller's; the snapshots are shared and must not be changed.
func (r *Recorder) Snapshots() []*v1.Snapshot {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]*v1.Snapshot(nil), r.snaps...)
}

// Pollers returns, per BMC, the pollers whose polls started in [from, to),
// with how many polls each made.
func (r *Recorder) Pollers(from, to time.Time) map[string]map[string]int {
	out := map[string]map[string]int{}
	for _, s := range r.Snapshots() {
		t := time.UnixMilli(s.PollStartMs)
		if t.Before(from) || !t.Before(to) {
			continue
		}
		if out[s.BmcId] == nil {
			out[s.BmcId] = map[string]int{}
		}
		out[s.BmcId][s.PollerId]++
	}
	return out
}

// PolledSince reports whether each of ids has a published poll that
// started at or after from. A BMC's snapshots are published in poll order,
// so its polls started before from are then published too.
func (r *Recorder) PolledSince(ids []string, from time.Time) bool {
	seen := map[string]bool{}
	for _, s := range r.Snapshots() {
		if !time.UnixMilli(s.PollStartMs).Before(from) {
			seen[s.BmcId] = true
		}
	}
	for _, id := range ids {
		if !seen[id] {
			return false
		}
	}
	return true
}

// SlotsOf maps each BMC's polls that started in [from, to) to their slot
// numbers (which multiple of the interval past the BMC's offset in it, as
// offset says: poller.Offset), noting which poller made each.
func (r *Recorder) SlotsOf(from, to time.Time, interval time.Duration, offset func(id string, interval time.Duration) time.Duration) map[string]map[int64][]string {
	out := map[string]map[int64][]string{}
	for _, s := range r.Snapshots() {
		start := time.UnixMilli(s.PollStartMs)
		if start.Before(from) || !start.Before(to) {
			continue
		}
		// A poll starts at its slot plus the scheduling lag, well under
		// half an interval.
		slot := SlotNumber(start.Add(interval/2), offset(s.BmcId, interval), interval)
		if out[s.BmcId] == nil {
			out[s.BmcId] = map[int64][]string{}
		}
		out[s.BmcId][slot] = append(out[s.BmcId][slot], s.PollerId)
	}
	return out
}

// SlotNumber numbers the slot at or before t of a BMC polled at off past
// each multiple of interval.
func SlotNumber(t time.Time, off, interval time.Duration) int64 {
	return (t.UnixNano() - int64(off)) / int64(interval)
}
