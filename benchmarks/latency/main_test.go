package main

import (
	"bytes"
	"context"
	"strings"
	"testing"
	"time"
)

// TestSmoke runs the whole pipeline on a small fleet for a few seconds:
// every stored poll of the watched BMCs is seen queryable, later than it
// started and ended, and the table is printed.
func TestSmoke(t *testing.T) {
	if testing.Short() {
		t.Skip("starts Prometheus, NATS, a fleet, a poller and a gateway for about 20 s")
	}
	o := options{BMCs: 60, Interval: 2 * time.Second, Warmup: 3 * time.Second, Measure: 6 * time.Second,
		Watch: 20, WatchEvery: 100 * time.Millisecond, Latency: "20,100",
		// A deadline below the default keeps the drain short; the default
		// path is the same code with another number.
		Deadline: time.Second, Drain: 15 * time.Second, FirstAddress: "127.71.0.1", Quiet: true}
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	r, err := run(ctx, t, o)
	if err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	r.print(&out)
	t.Log("\n" + out.String())
	// 20 BMCs polled every 2 s over 6 s: 3 polls each, give or take one.
	if r.Polls < 20*2 {
		t.Fatalf("%d polls of the watched BMCs stored in the window, want at least 40", r.Polls)
	}
	if r.Unseen != 0 || r.FromStart.Count != r.Polls {
		t.Fatalf("%d of %d stored polls never seen queryable (%d measured)", r.Unseen, r.Polls, r.FromStart.Count)
	}
	// A reading cannot be queryable before its poll ended, nor the poll
	// end come before its start.
	if r.FromEnd.P50 <= 0 || r.FromStart.P50 < r.FromEnd.P50 || r.PollDuration.Max <= 0 {
		t.Fatalf("delays: from start %+v, from end %+v, poll duration %+v", r.FromStart, r.FromEnd, r.PollDuration)
	}
	// Bounded by the 1 s batch deadline plus ingestion and the watcher's
	// resolution on a loaded machine: a stuck pipeline shows here.
	if r.FromEnd.Max > 10 {
		t.Fatalf("poll end → queryable up to %.1f s", r.FromEnd.Max)
	}
	if r.SeriesPerBMC < 10 || !strings.Contains(out.String(), "(override; the default is") {
		t.Fatalf("table:\n%s", out.String())
	}
}
