//go:build unix

package redfish

import (
	"crypto/tls"
	"errors"
	"net"
	"syscall"
)

// alive says whether a kept connection is still open: a non-blocking peek
// that finds nothing to read. End of stream (the BMC closed it), an error,
// or bytes the BMC sent unasked (a TLS close_notify alert) all mean it is
// not fit for another request.
func alive(c net.Conn) bool {
	if tc, ok := c.(*tls.Conn); ok {
		c = tc.NetConn()
	}
	sc, ok := c.(syscall.Conn)
	if !ok {
		return true
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return false
	}
	ok = false
	var buf [1]byte
	err = rc.Read(func(fd uintptr) bool {
		n, _, err := syscall.Recvfrom(int(fd), buf[:], syscall.MSG_PEEK|syscall.MSG_DONTWAIT)
		_ = n
		ok = errors.Is(err, syscall.EAGAIN) || errors.Is(err, syscall.EWOULDBLOCK)
		return true // never wait for readiness
	})
	return err == nil && ok
}
