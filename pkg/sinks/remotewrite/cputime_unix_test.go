//go:build unix

package remotewrite

import (
	"syscall"
	"time"
)

// cpuTime returns the CPU time the process has used (user and system), so
// benchmarks on a shared machine can report CPU per sample, which other
// processes' load disturbs far less than wall time.
func cpuTime() (time.Duration, bool) {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0, false
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano()), true
}
