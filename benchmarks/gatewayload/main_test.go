package main

import (
	"bytes"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"
)

// TestMain lets the test binary serve as the infrastructure process.
func TestMain(m *testing.M) {
	if os.Getenv(roleEnv) == "infra" {
		if err := infraMain(os.Args[1:]); err != nil {
			os.Stderr.WriteString("gatewayload infra: " + err.Error() + "\n")
			os.Exit(1)
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// TestSmoke runs the harness on a small fleet: every snapshot reaches the
// receiver, and the table is printed.
func TestSmoke(t *testing.T) {
	if testing.Short() {
		t.Skip("starts NATS and a gateway")
	}
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	r, err := run(options{BMCs: 150, Polls: 2, Timeout: time.Minute, CeilingTime: 100 * time.Millisecond,
		infraCmd: func(args ...string) *exec.Cmd { return exec.Command(exe, args...) }})
	if err != nil {
		t.Fatal(err)
	}
	if r.end.received.Errors != 0 || r.end.received.Samples == 0 {
		t.Fatalf("receiver counted %+v", r.end.received)
	}
	// Every snapshot yields at least one sample per reading.
	if r.end.received.Samples < r.load.Readings {
		t.Fatalf("received %d samples for %d readings", r.end.received.Samples, r.load.Readings)
	}
	var out bytes.Buffer
	r.print(&out)
	if !strings.Contains(out.String(), "gateway, steady") {
		t.Fatalf("table: %s", out.String())
	}
	t.Log("\n" + out.String())
}
