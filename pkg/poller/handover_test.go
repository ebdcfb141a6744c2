package poller

import (
	"context"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/stretchr/testify/require"

	"github.com/bmcstream/bmcstream/internal/testbed"
	v1 "github.com/bmcstream/bmcstream/proto/bmcstream/v1"
)

// TestCleanShutdownHandsOver stops one of two pollers cleanly: it puts a
// leaving mark with the handover time T, polls each of its BMCs' slots
// before T and stops; the survivor polls each from T on. Around T every
// moved BMC's last slot before T is polled once, by the leaver, and its
// first slot from T once, by the survivor; no slot of any BMC is polled
// twice in the whole window.
func TestCleanShutdownHandsOver(t *testing.T) {
	t.Parallel()
	const n, interval = 20, 2 * time.Second
	tb := newTestbed(t, n, "redfish", interval)
	rec := testbed.Record(t, tb.nats.ClientURL())
	extra := "sharding:\n  mode: dynamic\n  ttl: 2s\n"
	a, _, stopA := runPoller(t, tb.config(t, "ho-a", extra))
	b, _, _ := runPoller(t, tb.config(t, "ho-b", extra))
	require.Eventually(t, func() bool { return len(a.Members()) == 2 && len(b.Members()) == 2 },
		10*time.Second, 20*time.Millisecond, "both pollers see each other")
	marks := watchLeaving(t, tb.nats.ClientURL(), "ho-a")
	// Ownership settled: the two pollers' BMCs are apart and together the
	// fleet, and every BMC's last poll is its owner's.
	seen := time.Now()
	testbed.Eventually(t, 5*interval, func() bool { return settled(rec, seen, a, b, n) }, "ownership settled")
	// A full interval of stable ownership before the handover: every BMC
	// polled once more.
	from := time.Now()
	testbed.Eventually(t, 2*interval, func() bool { return rec.PolledSince(tb.fleetIDs(), from) }, "every BMC polled since %s", from)
	require.True(t, settled(rec, from, a, b, n), "ownership unchanged")
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
	// The handover second, the last poll before it (at most the poll
	// timeout, 80 % of the interval) and a loaded machine's slack.
	require.Less(t, took, handoverDelay+2*interval, "a clean stop waits for the handover, not longer")
	var at time.Time
	select {
	case at = <-marks:
	case <-time.After(5 * time.Second):
		t.Fatal("ho-a put no leaving mark")
	}
	require.WithinDuration(t, stopped.Add(handoverDelay), at, time.Second, "handover time: a second after the stop began")
	require.Eventually(t, func() bool { return len(b.Members()) == 1 }, 5*time.Second, 20*time.Millisecond)
	require.Len(t, b.Statuses(), n, "ho-b owns every BMC")
	// Two slots of every BMC from the handover on (the first of them is
	// less than an interval after it); once each BMC has a poll started
	// later, those before are published.
	to := at.Add(2 * interval)
	testbed.Eventually(t, 4*interval, func() bool { return rec.PolledSince(tb.fleetIDs(), to) }, "every BMC polled after %s", to)

	slots := rec.SlotsOf(from, to, interval, Offset)
	require.Len(t, slots, n, "every BMC polled")
	for id, s := range slots {
		for k, ps := range s {
			require.LessOrEqual(t, len(ps), 1, "bmc %s slot %d: polled by %v (moved: %v)", id, k, ps, moved[id])
		}
		if !moved[id] {
			continue
		}
		off := Offset(id, interval)
		after := firstSlot(at, interval, off)
		before := after.Add(-interval)
		require.Equal(t, []string{"ho-a"}, s[testbed.SlotNumber(before, off, interval)], "bmc %s: the slot before the handover", id)
		require.Equal(t, []string{"ho-b"}, s[testbed.SlotNumber(after, off, interval)], "bmc %s: the slot after the handover", id)
	}
	t.Logf("%d BMCs handed over at %s with no slot missed or polled twice", len(moved), at.Sub(stopped).Round(time.Millisecond))
}

// settled reports whether the BMCs a and b own are apart and together n,
// and every BMC's latest poll started at or after since was its owner's.
func settled(rec *testbed.Recorder, since time.Time, a, b *Poller, n int) bool {
	owner := map[string]string{}
	for _, p := range []*Poller{a, b} {
		for _, st := range p.Statuses() {
			if owner[st.ID] != "" {
				return false
			}
			owner[st.ID] = p.cfg.PollerID
		}
	}
	if len(owner) != n {
		return false
	}
	last := map[string]*v1.Snapshot{}
	for _, s := range rec.Snapshots() {
		if time.UnixMilli(s.PollStartMs).Before(since) {
			continue
		}
		if l := last[s.BmcId]; l == nil || s.PollStartMs >= l.PollStartMs {
			last[s.BmcId] = s
		}
	}
	for id, who := range owner {
		if last[id] == nil || last[id].PollerId != who {
			return false
		}
	}
	return true
}

// watchLeaving reports the handover time of the first leaving mark put
// under one poller's key.
func watchLeaving(t *testing.T, url, id string) <-chan time.Time {
	t.Helper()
	nc, err := nats.Connect(url)
	require.NoError(t, err)
	t.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	kv, err := js.KeyValue(ctx, DefaultShardingConfig.Bucket)
	require.NoError(t, err)
	w, err := kv.Watch(ctx, id, jetstream.UpdatesOnly())
	require.NoError(t, err)
	out := make(chan time.Time, 1)
	go func() {
		for e := range w.Updates() {
			if e == nil {
				continue
			}
			if at, ok := leavingAt(e.Value()); ok {
				out <- at
				return
			}
		}
	}()
	return out
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
