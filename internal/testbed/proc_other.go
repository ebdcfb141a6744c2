//go:build !linux

package testbed

import "syscall"

// sysProcAttr has no parent-death signal outside Linux: a receiver outlives
// a test binary that dies without running its cleanups.
func sysProcAttr() *syscall.SysProcAttr {
	return nil
}
