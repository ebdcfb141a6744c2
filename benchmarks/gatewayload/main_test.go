package main

import (
	"bytes"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"
)

// TestMain lets the test binary serve as the infrastructure process and
// as a gateway replica. As the test itself, it fails the package when a
// goroutine its tests started is still running once they have finished.
func TestMain(m *testing.M) {
	if ok, err := roleMain(); ok {
		if err != nil {
			os.Stderr.WriteString("gatewayload " + os.Getenv(roleEnv) + ": " + err.Error() + "\n")
			os.Exit(1)
		}
		os.Exit(0)
	}
	goleak.VerifyTestMain(m)
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
	r, err := run(options{BMCs: 150, Polls: 2, Timeout: time.Minute, CeilingTime: 100 * time.Millisecond, KeepBodies: 256, CeilingBMCs: 100,
		selfCmd: func(args ...string) *exec.Cmd { return exec.Command(exe, args...) }})
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
	// The snappy-only ceiling compresses a sample of the very bodies the
	// gateway sent: again to the sizes it sent them at.
	s := r.summary()
	if s.SnappyBodies == 0 || s.SnappyBodies > 256 || !s.SnappySameBytes || s.SnappyCeiling <= 0 {
		t.Fatalf("snappy-only ceiling over %d bodies: %v samples/s per core, same sizes %v", s.SnappyBodies, s.SnappyCeiling, s.SnappySameBytes)
	}
	if s.FirstPollCPU <= 0 || s.FirstPollExtraPerBMC < 0 {
		t.Fatalf("first poll: %v CPU s, %v s per BMC", s.FirstPollCPU, s.FirstPollExtraPerBMC)
	}
	var out bytes.Buffer
	r.print(&out)
	if !strings.Contains(out.String(), "gateway, steady") || !strings.Contains(out.String(), "snappy-only ceiling") {
		t.Fatalf("table: %s", out.String())
	}
	t.Log("\n" + out.String())
}

// TestSmokeReplicas runs the one-gateway run and then two replicas on a
// small fleet: the partitions are spread over both, both write samples,
// and every sample arrives.
func TestSmokeReplicas(t *testing.T) {
	if testing.Short() {
		t.Skip("starts NATS and three gateways")
	}
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	o := options{BMCs: 200, Polls: 2, Timeout: time.Minute, CeilingTime: 100 * time.Millisecond, Replicas: 2, Partitions: 16,
		selfCmd: func(args ...string) *exec.Cmd { return exec.Command(exe, args...) }}
	r, err := run(o)
	if err != nil {
		t.Fatal(err)
	}
	if r.replicas, err = runReplicas(o); err != nil {
		t.Fatal(err)
	}
	s := r.summary().Replicas
	if s == nil || len(s.PerReplica) != 2 {
		t.Fatalf("replica figures: %+v", s)
	}
	if s.Errors != 0 || s.LeasesLost != 0 {
		t.Fatalf("%d receiver errors, %d leases lost", s.Errors, s.LeasesLost)
	}
	// Every sample arrives: as many as the replicas say they wrote, and
	// at least one per reading. (Not exactly the one-gateway run's count:
	// each partition has roll-ups of its own.)
	if s.WrittenSum != s.Samples || s.Samples < r.load.Readings {
		t.Fatalf("replicas: %d samples received, %d written, for %d readings", s.Samples, s.WrittenSum, r.load.Readings)
	}
	held := 0
	for _, f := range s.PerReplica {
		if f.Samples == 0 || f.Partitions == 0 {
			t.Fatalf("replica %s wrote %d samples from %d partitions", f.ID, f.Samples, f.Partitions)
		}
		held += f.Partitions
	}
	if held != 16 {
		t.Fatalf("%d partitions held, want 16", held)
	}
	var out bytes.Buffer
	r.replicas.print(&out, r)
	if !strings.Contains(out.String(), "2 replicas together") {
		t.Fatalf("table: %s", out.String())
	}
	t.Log("\n" + out.String())
}
