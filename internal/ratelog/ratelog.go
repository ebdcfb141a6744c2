// Package ratelog bounds how often a repeated problem is logged: it is
// counted every time (by the caller's metrics) and logged at most once per
// interval.
package ratelog

import (
	"sync"
	"time"
)

// Limiter runs a function at most once per interval. The zero value with
// Every set is ready; safe for concurrent use.
type Limiter struct {
	Every time.Duration

	mu   sync.Mutex
	last time.Time
}

// Do runs f unless it ran less than Every ago.
func (l *Limiter) Do(f func()) {
	l.mu.Lock()
	now := time.Now()
	ok := l.last.IsZero() || now.Sub(l.last) >= l.Every
	if ok {
		l.last = now
	}
	l.mu.Unlock()
	if ok {
		f()
	}
}
