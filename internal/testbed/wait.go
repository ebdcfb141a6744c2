package testbed

import (
	"context"
	"fmt"
	"testing"
	"time"
)

// PollEvery is how often Eventually and Until look at their condition.
const PollEvery = 10 * time.Millisecond

// Eventually waits until cond holds, looking every PollEvery, and fails the
// test with what (a description of the condition, formatted with args) if
// it does not hold within timeout. It is the bounded polling helper tests
// use instead of a fixed sleep: it returns as soon as the condition holds,
// and a slow machine only makes it look more often, not fail.
//
// Call it from the test's goroutine only (it calls t.Fatalf).
func Eventually(t testing.TB, timeout time.Duration, cond func() bool, what string, args ...any) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	if err := Until(ctx, cond); err != nil {
		t.Fatalf("after %v, still not %s", timeout, fmt.Sprintf(what, args...))
	}
}

// Until waits until cond holds, looking every PollEvery, or ctx ends; it
// returns ctx's error in the second case. Safe from any goroutine.
func Until(ctx context.Context, cond func() bool) error {
	tick := time.NewTicker(PollEvery)
	defer tick.Stop()
	for {
		if cond() {
			return nil
		}
		select {
		case <-ctx.Done():
			if cond() {
				return nil
			}
			return ctx.Err()
		case <-tick.C:
		}
	}
}

// Never checks that cond stays false for d, looking every PollEvery, and
// fails the test with what if it becomes true. It is for "nothing happens"
// assertions: the wait is the subject of the test, so it is a fixed
// duration by nature, and a slow machine can only make the check pass more
// weakly, never fail spuriously.
func Never(t testing.TB, d time.Duration, cond func() bool, what string, args ...any) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	if Until(ctx, cond) == nil {
		t.Fatalf("within %v, %s", d, fmt.Sprintf(what, args...))
	}
}
