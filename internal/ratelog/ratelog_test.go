package ratelog

import (
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/require"
)

func TestLimiter(t *testing.T) {
	// Fake time: the interval is the subject, and a bubble's clock moves
	// only when the test says so.
	synctest.Test(t, func(t *testing.T) {
		l := &Limiter{Every: time.Hour}
		n := 0
		for range 100 {
			l.Do(func() { n++ })
		}
		require.Equal(t, 1, n, "once per interval")
		time.Sleep(time.Hour - time.Nanosecond)
		l.Do(func() { n++ })
		require.Equal(t, 1, n, "not before the interval has passed")
		time.Sleep(time.Nanosecond)
		l.Do(func() { n++ })
		require.Equal(t, 2, n, "again once it has")
		l.Do(func() { n++ })
		require.Equal(t, 2, n, "and the interval starts over")

		l = &Limiter{Every: time.Nanosecond}
		l.Do(func() { n++ })
		time.Sleep(time.Nanosecond)
		l.Do(func() { n++ })
		require.Equal(t, 4, n)
	})
}
