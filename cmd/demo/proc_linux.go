package main

import "syscall"

// sysProcAttr makes the kernel end the system programs the demo started
// (Prometheus, Alertmanager) when the demo dies without stopping them.
func sysProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Pdeathsig: syscall.SIGTERM}
}
