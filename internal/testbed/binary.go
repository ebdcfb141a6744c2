package testbed

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

// RequireBinary returns the path of the named executable, looked up on PATH
// and then in /usr/sbin and /usr/bin (which a non-root PATH often lacks).
//
// When the binary is absent the test is skipped with a message naming the
// Debian package to install — unless the environment variable CI is
// non-empty: CI must run the real receivers, so there it fails the test.
func RequireBinary(t testing.TB, name string) string {
	t.Helper()
	if path, ok := lookBinary(name); ok {
		return path
	}
	msg := fmt.Sprintf("testbed: %s not found on PATH, in /usr/sbin or in /usr/bin; install the Debian package: apt-get install %s",
		name, debianPackage(name))
	if os.Getenv("CI") != "" {
		t.Fatalf("%s (CI is set, so end-to-end tests must run the real binary)", msg)
		return ""
	}
	t.Skip(msg)
	return ""
}

// lookBinary finds an executable regular file named name.
func lookBinary(name string) (string, bool) {
	if path, err := exec.LookPath(name); err == nil {
		return path, true
	}
	for _, dir := range []string{"/usr/sbin", "/usr/bin"} {
		path := filepath.Join(dir, name)
		fi, err := os.Stat(path)
		if err == nil && fi.Mode().IsRegular() && fi.Mode().Perm()&0o111 != 0 {
			return path, true
		}
	}
	return "", false
}

// debianPackage names the Debian package that ships the binary name.
func debianPackage(name string) string {
	switch name {
	case "prometheus", "promtool":
		return "prometheus"
	case "victoria-metrics":
		return "victoria-metrics"
	case "nats-server":
		return "nats-server"
	case "ipmitool":
		return "ipmitool"
	default:
		return name
	}
}

// FreePort returns a TCP port on 127.0.0.1 that was free a moment ago: it
// listens on port 0, reads the port the kernel chose, and closes the
// listener. Another process can take the port before the caller binds it;
// the receiver starters retry on a new port when that happens.
func FreePort(t testing.TB) int {
	t.Helper()
	port, err := freePort()
	if err != nil {
		t.Fatalf("testbed: %v", err)
	}
	return port
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("listen on 127.0.0.1:0: %w", err)
	}
	addr, ok := l.Addr().(*net.TCPAddr)
	if !ok {
		_ = l.Close() // the listener is dropped; the address error is the one to report
		return 0, fmt.Errorf("listen on 127.0.0.1:0: unexpected address type %T", l.Addr())
	}
	if err := l.Close(); err != nil {
		return 0, fmt.Errorf("close listener on %s: %w", addr, err)
	}
	return addr.Port, nil
}
