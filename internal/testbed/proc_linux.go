package testbed

import "syscall"

// sysProcAttr makes the kernel kill a receiver when the test binary dies
// (a panic, a -timeout, a SIGKILL), so no orphaned receiver keeps a port or
// a temporary directory busy. Go only ends an OS thread when a goroutine
// that locked it exits, which no caller of this package does.
func sysProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}
