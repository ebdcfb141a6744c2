package reliability

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/bmcstream/bmcstream/internal/testbed"
)

// soakScale is the soak's fleet and length: 100 IPMI BMCs, the fleet of
// the run in which a consumer once stalled, polled every 5 s; 90 s in the
// short form and 30 minutes in the long one (the stall came six minutes
// in). RELIABILITY_SOAK overrides the length.
func soakScale() scale {
	sc := scale{Name: "short", BMCs: 100, Interval: 5 * time.Second, Run: 90 * time.Second}
	if os.Getenv("RELIABILITY") == "long" {
		sc.Name, sc.Run = "long", 30*time.Minute
	}
	if v, err := time.ParseDuration(os.Getenv("RELIABILITY_SOAK")); err == nil && v > 0 {
		sc.Run = v
	}
	return sc
}

var moduleNATS struct {
	sync.Mutex
	path string
}

// moduleNATSServer builds nats-server at the version go.mod pins (the one
// the embedded server runs), once per test binary.
func moduleNATSServer(t *testing.T) string {
	t.Helper()
	moduleNATS.Lock()
	defer moduleNATS.Unlock()
	if moduleNATS.path == "" {
		dir, err := os.MkdirTemp("", "bmcstream-reliability-nats-")
		require.NoError(t, err)
		path := filepath.Join(dir, "nats-server")
		out, err := exec.Command("go", "build", "-o", path, "github.com/nats-io/nats-server/v2").CombinedOutput()
		require.NoError(t, err, "go build nats-server: %s", out)
		moduleNATS.path = path
	}
	return moduleNATS.path
}

// natsVersion is what a nats-server binary says it is.
func natsVersion(t *testing.T, bin string) string {
	t.Helper()
	out, err := exec.Command(bin, "--version").Output()
	require.NoError(t, err)
	return strings.TrimPrefix(strings.TrimSpace(string(out)), "nats-server: ")
}

// TestScenarioSoakNATSVersions runs the pipeline (a 100-BMC IPMI fleet, a
// poller, the gateway with its Prometheus and automation consumers) against
// each supported nats-server: Debian's package (2.9) and the version go.mod
// pins. Every published snapshot must be written, no consumer may be left
// behind at the end, and any stall must have been recovered by the
// consumer watchdog (counted in bmcstream_gateway_consumer_restarts_total
// and reported per version).
func TestScenarioSoakNATSVersions(t *testing.T) {
	t.Parallel()
	for i, v := range []struct {
		name string
		bin  func(*testing.T) string
	}{
		{"debian", func(t *testing.T) string { return testbed.RequireBinary(t, "nats-server") }},
		{"module", moduleNATSServer},
	} {
		t.Run(v.name, func(t *testing.T) {
			t.Parallel()
			if testing.Short() {
				t.Skip("runs the whole pipeline as processes")
			}
			bin := v.bin(t)
			version := natsVersion(t, bin)
			sc := soakScale()
			b := newBed(t, bedOptions{Block: 140 + i, Sinks: []string{"prom"}, NATSServer: bin, Scale: &sc, Protocols: "ipmi"})
			b.start()
			// The soak's length is its subject; the gateway must have
			// written snapshots all along.
			b.hold(sc.Run, func() bool {
				return b.gatewayMetric("bmcstream_gateway_snapshots_total", `sink="prom"`, `result="ok"`) > 0
			}, "the gateway wrote snapshots")
			end := b.finish()

			p := readPublished(t, b)
			require.Zero(t, p.missingSequences(), "snapshots lost before the stream")
			ts := b.settle(p, end, time.Time{}, time.Time{})
			for _, tl := range ts {
				requireClean(t, tl)
			}
			b.requireGatewayDroppedNothing()
			restarts := metricSum(b.final, "bmcstream_gateway_consumer_restarts_total")
			snapshots := metricSum(b.final, "bmcstream_gateway_snapshots_total", `sink="prom"`, `result="ok"`)
			automation := metricSum(b.final, "bmcstream_gateway_snapshots_total", `sink="automation"`, `result="ok"`)
			t.Logf("nats-server %s: %d snapshots published, prom consumer %v ok, automation consumer %v ok, consumer restarts %v",
				version, p.snapshots, snapshots, automation, restarts)
			require.Positive(t, snapshots)
			report(t, row{
				Scenario: fmt.Sprintf("soak: nats-server %s (%s), %s", version, v.name, sc.Run),
				Load:     fmt.Sprintf("%d IPMI BMCs @ %s, %d poller(s)", sc.BMCs, sc.Interval, b.opts.Pollers),
				Result:   results(ts...),
				Notes:    fmt.Sprintf("%d snapshots; consumer restarts by the watchdog: %v", p.snapshots, restarts),
			})
		})
	}
}

// startNATSBinary runs the given nats-server binary as the bed's NATS.
func startNATSBinary(t *testing.T, bin string) *natsNode {
	t.Helper()
	n := &natsNode{t: t, standalone: true, bin: bin, port: testbed.FreePort(t), store: t.TempDir()}
	n.start()
	t.Cleanup(n.stop)
	return n
}
