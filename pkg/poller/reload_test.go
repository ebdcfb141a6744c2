package poller

import (
	"context"

	"os"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/prometheus/common/model"
	"github.com/stretchr/testify/require"

	"github.com/bmcstream/bmcstream/internal/testbed"
	"github.com/bmcstream/bmcstream/pkg/inventory"
)

// TestInventoryChangeKeepsUnchangedSessions edits the inventory file while
// the poller runs: a removed BMC is released (its session closed), an
// added one is polled, one whose labels changed keeps its session and its
// sequence numbers (its worker was not restarted).
func TestInventoryChangeKeepsUnchangedSessions(t *testing.T) {
	t.Parallel()
	tb := newTestbed(t, 4, "redfish", time.Second)
	inv, err := inventory.Load(tb.invFile)
	require.NoError(t, err)
	all := inv.All()
	write := func(entries []inventory.BMC) {
		b, err := inventory.Marshal(entries)
		require.NoError(t, err)
		require.NoError(t, os.WriteFile(tb.invFile, b, 0o600))
	}
	write(all[:3]) // bmc-00004 not yet in the inventory
	rec := testbed.Record(t, tb.nats.ClientURL())
	cfg := tb.config(t, "reloader", "")
	cfg.Inventory.WatchInterval = model.Duration(time.Second)
	p, _, _ := runPoller(t, cfg)
	require.Eventually(t, func() bool { return len(p.Statuses()) == 3 }, 5*time.Second, 50*time.Millisecond)
	// A few polls on the first session.
	testbed.Eventually(t, 10*time.Second, func() bool { return maxSeq(rec, "bmc-00001") >= 2 }, "bmc-00001 polled twice")
	seqBefore := maxSeq(rec, "bmc-00001")
	require.Positive(t, seqBefore)

	changed := append([]inventory.BMC{}, all[0], all[1], all[3]) // drop 3, add 4
	changed[0].Labels = map[string]string{"site": "sim", "rack": "moved"}
	write(changed)
	require.Eventually(t, func() bool {
		st := p.Statuses()
		return len(st) == 3 && st[2].ID == "bmc-00004"
	}, 5*time.Second, 50*time.Millisecond)
	// The removed BMC's session was closed.
	require.Eventually(t, func() bool { rs, _ := tb.fleet.SessionCounts("bmc-00003"); return rs == 0 }, 5*time.Second, 50*time.Millisecond)
	// Polls after the change: the added BMC's first ones, the relabelled
	// one's next.
	reloaded := maxSeq(rec, "bmc-00001")
	testbed.Eventually(t, 10*time.Second, func() bool {
		return maxSeq(rec, "bmc-00001") >= reloaded+2 && maxSeq(rec, "bmc-00004") >= 2
	}, "bmc-00001 and bmc-00004 polled after the change")
	// The relabelled BMC kept its worker: sequences continue, one session.
	require.Greater(t, maxSeq(rec, "bmc-00001"), seqBefore)
	require.Equal(t, uint64(1), minSeqAfter(rec, "bmc-00004"))
	rs, _ := tb.fleet.SessionCounts("bmc-00001")
	require.Equal(t, 1, rs)
}

func maxSeq(r *testbed.Recorder, bmc string) uint64 {
	var m uint64
	for _, s := range r.Snapshots() {
		if s.BmcId == bmc && s.Sequence > m {
			m = s.Sequence
		}
	}
	return m
}

func minSeqAfter(r *testbed.Recorder, bmc string) uint64 {
	m := ^uint64(0)
	for _, s := range r.Snapshots() {
		if s.BmcId == bmc && s.Sequence < m {
			m = s.Sequence
		}
	}
	return m
}

// TestRestartedWorkerNeverRepeatsAMessageID removes a BMC from the
// inventory and adds it back, as an ownership change or a reload does: its
// new worker continues the BMC's sequence rather than starting at 1 again,
// so no snapshot's Nats-Msg-Id repeats one already in JetStream's
// duplicate window, and the stream holds every snapshot the poller made.
func TestRestartedWorkerNeverRepeatsAMessageID(t *testing.T) {
	t.Parallel()
	tb := newTestbed(t, 2, "redfish", time.Second)
	inv, err := inventory.Load(tb.invFile)
	require.NoError(t, err)
	all := inv.All()
	write := func(entries []inventory.BMC) {
		b, err := inventory.Marshal(entries)
		require.NoError(t, err)
		require.NoError(t, os.WriteFile(tb.invFile, b, 0o600))
	}
	rec := testbed.Record(t, tb.nats.ClientURL())
	cfg := tb.config(t, "restarter", "")
	cfg.Inventory.WatchInterval = model.Duration(500 * time.Millisecond)
	p, _, stop := runPoller(t, cfg)
	require.Eventually(t, func() bool { return maxSeq(rec, "bmc-00002") >= 2 }, 10*time.Second, 50*time.Millisecond)
	write(all[:1])
	require.Eventually(t, func() bool { return len(p.Statuses()) == 1 }, 5*time.Second, 50*time.Millisecond)
	before := maxSeq(rec, "bmc-00002")
	write(all)
	require.Eventually(t, func() bool { return maxSeq(rec, "bmc-00002") >= before+2 }, 10*time.Second, 50*time.Millisecond)
	stop()

	snaps := rec.Snapshots()
	seen := map[uint64]int{}
	total := len(snaps)
	for _, s := range snaps {
		if s.BmcId == "bmc-00002" {
			seen[s.Sequence]++
		}
	}
	for seq, n := range seen {
		require.Equal(t, 1, n, "sequence %d of bmc-00002 published %d times", seq, n)
	}
	// Every snapshot published reached the stream: none was taken for a
	// duplicate of an earlier one.
	nc, err := nats.Connect(tb.nats.ClientURL())
	require.NoError(t, err)
	defer nc.Close()
	js, err := jetstream.New(nc)
	require.NoError(t, err)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	st, err := js.Stream(ctx, "BMC_RAW")
	require.NoError(t, err)
	info, err := st.Info(ctx)
	require.NoError(t, err)
	require.Equal(t, uint64(total), info.State.Msgs, "snapshots published vs held by the stream")
}
