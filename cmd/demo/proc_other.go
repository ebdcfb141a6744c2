//go:build !linux

package main

import "syscall"

// sysProcAttr has no parent-death signal outside Linux: the demo stops its
// programs on a clean exit only.
func sysProcAttr() *syscall.SysProcAttr {
	return nil
}
