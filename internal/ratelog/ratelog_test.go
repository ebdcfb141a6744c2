package ratelog

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestLimiter(t *testing.T) {
	l := &Limiter{Every: time.Hour}
	n := 0
	for range 100 {
		l.Do(func() { n++ })
	}
	require.Equal(t, 1, n)
	l = &Limiter{Every: time.Nanosecond}
	l.Do(func() { n++ })
	time.Sleep(time.Millisecond)
	l.Do(func() { n++ })
	require.Equal(t, 3, n)
}
