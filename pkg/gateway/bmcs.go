package gateway

import (
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/bmcstream/bmcstream/pkg/sinks"
)

// What a consumer keeps per BMC (the deduplication leader and series, the
// staleness set, the one-source-per-series state, roll-up and event state,
// and the normaliser's plan with its label sets) is some 85 KiB for a
// server-class BMC. Every consumer loop therefore admits a BMC before it
// keeps anything for it, and releases what it keeps once the BMC stops:
//
//   - inventory.reject_unknown_bmcs refuses every BMC the inventory does
//     not list (result unknown_bmc);
//   - otherwise at most inventory.max_unknown_bmcs unlisted BMCs have
//     state per sink; a snapshot of one more is refused (unknown_bmc_limit)
//     until some are forgotten;
//   - a BMC, listed or not, without a snapshot for inventory.forget_after
//     is forgotten as one that left the inventory is: its series end with
//     staleness markers just after its last poll, and its state goes.
//
// Whether a BMC stopped is judged on two clocks. The gateway's says no
// snapshot of it was handled for forget_after; the stream's says the
// newest poll time the consumer handled is forget_after past the BMC's,
// or the consumer itself has handled nothing for forget_after (the whole
// stream went quiet). Both must agree: a consumer that was held up (its
// sink down) and replays a backlog sees every BMC late on the gateway's
// clock, but only the BMCs that really stopped are late in the stream.
// A BMC with a snapshot still with the queue (or parked behind one) is
// never forgotten.
// See docs/security.md.

// Reasons a BMC's state is released, for bmcstream_gateway_bmcs_forgotten_total.
const (
	forgetInactive = "inactive"
	forgetRemoved  = "removed"
)

// bmcTracker is what a consumer loop knows of the BMCs it keeps state
// for. Owned by the loop's goroutine.
type bmcTracker struct {
	bmcs   map[string]*trackedBMC
	newest int64     // newest poll time admitted, Unix ms
	active time.Time // when the loop last admitted a snapshot
	swept  time.Time
	ids    []string // sweep buffer
}

type trackedBMC struct {
	key   string    // its per-BMC serialisation key (consumer.inflight)
	seen  time.Time // gateway clock at its last snapshot
	poll  int64     // its newest poll time, Unix ms
	known bool      // listed by the inventory when last seen or swept
}

// admit decides whether the loop may keep state for the BMC of a snapshot
// polled at pollMs, and records that it was seen. It returns the result a
// refused snapshot is counted under, with the error to log.
func (c *consumer) admit(id, key string, pollMs int64, now time.Time) (string, error) {
	_, known := c.enrich().Inventory().Get(id)
	t := &c.track
	b := t.bmcs[id]
	if !known {
		inv := &c.inventory
		if inv.RejectUnknownBMCs {
			return "unknown_bmc", fmt.Errorf("BMC %q is not in the inventory (inventory.reject_unknown_bmcs)", id)
		}
		if b == nil && c.metrics.tracked.unknown.Load() >= int64(inv.MaxUnknownBMCs) {
			return "unknown_bmc_limit", fmt.Errorf("BMC %q is not in the inventory, and state is kept for inventory.max_unknown_bmcs (%d) such BMCs already", id, inv.MaxUnknownBMCs)
		}
	}
	if t.bmcs == nil {
		t.bmcs = make(map[string]*trackedBMC)
	}
	switch {
	case b == nil:
		b = &trackedBMC{key: key, known: known}
		t.bmcs[id] = b
		c.metrics.tracked.add(countOf(known))
	case b.known != known:
		c.metrics.tracked.add(countOf(known))
		c.metrics.tracked.add(negate(countOf(b.known)))
		b.known = known
	}
	b.seen = now
	b.poll = max(b.poll, pollMs)
	t.newest = max(t.newest, pollMs)
	t.active = now
	return "", nil
}

// countOf is one BMC in the known or the unknown count.
func countOf(known bool) (int64, int64) {
	if known {
		return 1, 0
	}
	return 0, 1
}

func negate(a, b int64) (int64, int64) { return -a, -b }

// sweepEvery is how often a loop looks for BMCs to forget: a quarter of
// forget_after, at most every 10 s.
func (c *consumer) sweepEvery() time.Duration {
	return min(time.Duration(c.inventory.ForgetAfter)/4, 10*time.Second)
}

// sweepBMCs forgets the BMCs that stopped (see above) and brings the
// known/unknown split up to date with the inventory in force.
func (c *consumer) sweepBMCs(ctx context.Context) {
	now := time.Now()
	t := &c.track
	if now.Sub(t.swept) < c.sweepEvery() {
		return
	}
	t.swept = now
	after := time.Duration(c.inventory.ForgetAfter)
	// Snapshots parked behind ones still with the queue are work in hand:
	// the loop is not idle, however long the sink takes.
	quiet := now.Sub(t.active) >= after && len(c.inflight) == 0
	inv := c.enrich().Inventory()
	t.ids = t.ids[:0]
	for id, b := range t.bmcs {
		if _, busy := c.inflight[b.key]; busy {
			// A snapshot of it is with the queue, maybe more wait
			// behind it: in hand, however long the sink takes.
			continue
		}
		if now.Sub(b.seen) >= after && (quiet || t.newest-b.poll >= after.Milliseconds()) {
			t.ids = append(t.ids, id)
			continue
		}
		if _, known := inv.Get(id); known != b.known {
			c.metrics.tracked.add(countOf(known))
			c.metrics.tracked.add(negate(countOf(b.known)))
			b.known = known
		}
	}
	slices.Sort(t.ids) // markers in a stable order
	for _, id := range t.ids {
		if !c.forgetBMC(ctx, id, forgetInactive) {
			return
		}
	}
}

// forgetBMC writes staleness markers for every series of a BMC, just after
// its last poll (never at the gateway's clock: a consumer replaying a
// backlog writes the same markers as a live one), and drops all the
// loop's state of it: the processor's, the normaliser's plans and the
// sink's (sinks.Forgetter). It reports false when shutdown interrupted it.
func (c *consumer) forgetBMC(ctx context.Context, id, reason string) bool {
	markers := c.proc.Forget(c.markers[:0], id)
	c.markers = markers[:0]
	if f, ok := c.sink.(sinks.Forgetter); ok {
		f.Forget(id)
	}
	if b, ok := c.track.bmcs[id]; ok {
		delete(c.track.bmcs, id)
		c.metrics.tracked.add(negate(countOf(b.known)))
		c.metrics.forgotten[reason].Inc()
	}
	if c.snapshotsOnly || len(markers) == 0 {
		return true
	}
	if err := c.sink.Append(ctx, sinks.Batch{Source: id, Samples: markers}, func() {}); err != nil {
		return false
	}
	c.metrics.staleMarkers.Add(float64(len(markers)))
	return true
}

// untrackAll takes a stopping loop's BMCs out of the sink's counts: its
// state goes with it (a partition handed over, or shutdown).
func (c *consumer) untrackAll() {
	for _, b := range c.track.bmcs {
		c.metrics.tracked.add(negate(countOf(b.known)))
	}
	c.track.bmcs = nil
}
