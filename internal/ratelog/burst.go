package ratelog

import (
	"sync"
	"time"
)

// Burst bounds a stream of log lines that each say something different
// (one per BMC changing state, say) across a whole fleet: at most Max lines
// per Per go through; the rest are suppressed and counted, and the count is
// handed back once the window ends, for one summary line. A thousand BMCs
// going down at once thus log Max lines and one summary, not a thousand.
//
// The zero value with Max and Per set is ready; safe for concurrent use.
type Burst struct {
	// Max lines per Per; zero or less suppresses every line.
	Max int
	Per time.Duration
	// Now is the clock; nil means time.Now.
	Now func() time.Time

	mu         sync.Mutex
	start      time.Time // of the current window
	n          int       // lines let through in it
	suppressed int       // lines suppressed in it
}

// Allow reports whether one more line may be logged now. When a new window
// begins it also returns how many lines the previous windows suppressed
// (since the last time it returned them), for the caller to log one summary
// line before its own.
func (b *Burst) Allow() (ok bool, suppressed int) {
	b.mu.Lock()
	defer b.mu.Unlock()
	now := b.now()
	if b.start.IsZero() || now.Sub(b.start) >= b.Per || now.Before(b.start) {
		suppressed, b.suppressed = b.suppressed, 0
		b.start, b.n = now, 0
	}
	if b.n < b.Max {
		b.n++
		return true, suppressed
	}
	b.suppressed++
	return false, suppressed
}

// Flush returns the lines suppressed so far once their window has ended
// (zero before), for a caller that logs the summary on a timer when no
// further line comes.
func (b *Burst) Flush() (suppressed int) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.suppressed == 0 || b.now().Sub(b.start) < b.Per {
		return 0
	}
	suppressed, b.suppressed = b.suppressed, 0
	return suppressed
}

func (b *Burst) now() time.Time {
	if b.Now != nil {
		return b.Now()
	}
	return time.Now()
}
