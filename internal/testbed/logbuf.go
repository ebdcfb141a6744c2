package testbed

import (
	"fmt"
	"sync"
)

// logBuffer collects a receiver's stdout and stderr across all its runs. It
// keeps the newest max bytes: when a test fails, the end of the log is what
// explains it.
type logBuffer struct {
	mu      sync.Mutex
	buf     []byte
	dropped int64 // bytes discarded from the front so far
	max     int
}

func newLogBuffer(max int) *logBuffer {
	return &logBuffer{max: max}
}

// Write appends p; it never fails.
func (b *logBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.buf = append(b.buf, p...)
	if over := len(b.buf) - b.max; over > 0 {
		// Drop at least a quarter at once so trimming stays amortised O(1).
		n := max(over, b.max/4)
		b.buf = append(b.buf[:0], b.buf[n:]...)
		b.dropped += int64(n)
	}
	return len(p), nil
}

// offset is the number of bytes ever written; pass it to since.
func (b *logBuffer) offset() int64 {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.dropped + int64(len(b.buf))
}

// since returns what was written after offset off, as far as it is kept.
func (b *logBuffer) since(off int64) string {
	b.mu.Lock()
	defer b.mu.Unlock()
	i := max(off-b.dropped, 0)
	if i > int64(len(b.buf)) {
		return ""
	}
	return string(b.buf[i:])
}

// String returns everything kept, noting how much was dropped.
func (b *logBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.dropped > 0 {
		return fmt.Sprintf("[testbed: first %d bytes dropped]\n%s", b.dropped, b.buf)
	}
	return string(b.buf)
}
