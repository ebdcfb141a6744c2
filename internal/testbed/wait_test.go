package testbed

import (
	"context"
	"fmt"
	"runtime"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestUntil(t *testing.T) {
	var n atomic.Int32
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	require.NoError(t, Until(ctx, func() bool { return n.Add(1) == 3 }))
	require.Equal(t, int32(3), n.Load(), "Until stops looking once the condition holds")

	ctx, cancel = context.WithTimeout(context.Background(), 3*PollEvery)
	defer cancel()
	require.ErrorIs(t, Until(ctx, func() bool { return false }), context.DeadlineExceeded)
}

func TestEventuallyAndNever(t *testing.T) {
	var n atomic.Int32
	Eventually(t, 10*time.Second, func() bool { return n.Add(1) >= 2 }, "counted twice")
	Never(t, 3*PollEvery, func() bool { return false }, "false became true")

	// The failing sides, on a recorder that does not stop this test.
	rec := &fatalRecorder{TB: t}
	done := make(chan struct{})
	go func() { // t.Fatalf ends the calling goroutine: run each on its own.
		defer close(done)
		Eventually(rec, 3*PollEvery, func() bool { return false }, "ready (%d)", 7)
	}()
	<-done
	require.Equal(t, "after 30ms, still not ready (7)", rec.msg)
	done = make(chan struct{})
	go func() {
		defer close(done)
		Never(rec, time.Second, func() bool { return true }, "it happened")
	}()
	<-done
	require.Equal(t, "within 1s, it happened", rec.msg)
}

// fatalRecorder records Fatalf's message and ends the goroutine, as
// testing.T does, without failing the test it wraps.
type fatalRecorder struct {
	testing.TB
	msg string
}

func (r *fatalRecorder) Helper() {}
func (r *fatalRecorder) Fatalf(format string, args ...any) {
	r.msg = fmt.Sprintf(format, args...)
	runtime.Goexit()
}
