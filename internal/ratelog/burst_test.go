package ratelog

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestBurst(t *testing.T) {
	now := time.Unix(1000, 0)
	b := &Burst{Max: 3, Per: time.Second, Now: func() time.Time { return now }}
	var oks, suppressed int
	for range 1000 {
		ok, s := b.Allow()
		if ok {
			oks++
		}
		suppressed += s
	}
	require.Equal(t, 3, oks)
	require.Zero(t, suppressed, "reported only once the window ends")
	require.Zero(t, b.Flush(), "the window has not ended")

	now = now.Add(time.Second)
	ok, s := b.Allow()
	require.True(t, ok)
	require.Equal(t, 997, s)

	// A window that ends with no further line: Flush hands the count back once.
	for range 10 {
		b.Allow()
	}
	now = now.Add(2 * time.Second)
	require.Equal(t, 8, b.Flush())
	require.Zero(t, b.Flush())
	ok, s = b.Allow()
	require.True(t, ok)
	require.Zero(t, s)

	// Max zero: nothing goes through, everything is counted.
	z := &Burst{Per: time.Second, Now: func() time.Time { return now }}
	ok, _ = z.Allow()
	require.False(t, ok)
}
