package gateway_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"syscall"
	"testing"
	"time"

	"github.com/prometheus/prometheus/prompb"
	"github.com/stretchr/testify/require"

	"github.com/bmcstream/bmcstream/internal/synth"
	"github.com/bmcstream/bmcstream/internal/testbed"
	"github.com/bmcstream/bmcstream/pkg/pipeline"
)

func buildGateway(t *testing.T) string {
	return testbed.Build(t, "github.com/bmcstream/bmcstream/cmd/gateway")
}

func startGateway(t *testing.T, bin, config string) *testbed.Program {
	t.Helper()
	return testbed.StartProgram(t, "gateway", bin, "--config.file="+config, "--log.level=debug", "--shutdown.timeout=2s")
}

// TestKillWhileSinkDownLosesNothing publishes while the only sink is down,
// kills the gateway with SIGKILL once it holds the snapshots unacked,
// brings the sink up, restarts the gateway, and checks every published
// sample arrived exactly once per series and timestamp.
func TestKillWhileSinkDownLosesNothing(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the gateway binary")
	}
	t.Parallel()
	bin := buildGateway(t)
	prom := testbed.NewPrometheus(t) // its URL is fixed; nothing listens yet
	srv := testbed.StartNATS(t)
	pub, js := publisher(t, srv.ClientURL())
	fleet := synth.NewFleet(20)
	config := filepath.Join(t.TempDir(), "gateway.yml")
	require.NoError(t, os.WriteFile(config, []byte(fmt.Sprintf(`
nats:
  url: %s
inventory:
  files: [%s]
consumer:
  ack_wait: 3s
remote_write:%s`, srv.ClientURL(), writeInventory(t, fleet), sinkYAML("prom", prom.WriteURL()))), 0o600))

	gw := startGateway(t, bin, config)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	times := pollTimes(5, 10*time.Second)
	for seq, at := range times {
		for i := range fleet.BMCs {
			require.NoError(t, pub.Publish(ctx, fleet.Snapshot(i, at, "poller-a", 7, uint64(seq+1))))
		}
	}
	total := len(times) * len(fleet.BMCs)
	cons, err := js.Consumer(ctx, "BMC_RAW", "bmcstream-gateway-prom")
	require.NoError(t, err)
	// Wait until the gateway holds every snapshot, none acked: the sink is down.
	require.Eventually(t, func() bool {
		info, err := cons.Info(ctx)
		return err == nil && info.NumAckPending == total
	}, 20*time.Second, 50*time.Millisecond)

	require.NoError(t, gw.Cmd.Process.Signal(syscall.SIGKILL))
	_ = gw.Cmd.Wait()

	require.NoError(t, prom.Start(ctx))
	startGateway(t, bin, config)
	require.Eventually(t, func() bool {
		info, err := cons.Info(ctx)
		return err == nil && info.NumPending == 0 && info.NumAckPending == 0
	}, 60*time.Second, 100*time.Millisecond, "snapshots were not all delivered after restart")

	// Every series has exactly one sample per poll, with the poll's time
	// and value. Identical re-sent samples collapse in the receiver; a lost
	// or extra sample would show here.
	got, err := prom.RawSamples(ctx, `{__name__=~"bmc_.+"}`, 10*time.Minute, time.Now())
	require.NoError(t, err)
	perBMC := map[string]int{}
	for _, s := range got {
		require.Len(t, s.Samples, len(times), "series %v", s.Labels)
		for k, at := range times {
			require.Equal(t, at.UnixMilli(), s.Samples[k].T, "series %v", s.Labels)
		}
		perBMC[s.Labels["bmc"]]++
	}
	require.Len(t, perBMC, len(fleet.BMCs))
	// Per BMC: every series the normaliser makes of one snapshot.
	norm, err := pipeline.NewNormaliser(pipeline.NormaliserOptions{})
	require.NoError(t, err)
	var st pipeline.Stats
	want := len(norm.Normalise(nil, fleet.Snapshot(0, times[0], "x", 1, 1), []prompb.Label{{Name: "bmc", Value: "x"}}, &st))
	require.Greater(t, want, 10)
	for id, n := range perBMC {
		require.Equal(t, want, n, "series of %s", id)
	}
	intake, err := prom.RawSamples(ctx, `bmc_temperature_celsius{context="intake"}`, 10*time.Minute, time.Now())
	require.NoError(t, err)
	sort.Slice(intake, func(a, b int) bool { return intake[a].Labels["bmc"] < intake[b].Labels["bmc"] })
	for i, s := range intake {
		for k, at := range times {
			require.Equal(t, synth.Inlet(i, at.UnixMilli()), s.Samples[k].V)
		}
	}
	t.Logf("%d snapshots, %d series × %d samples delivered after kill -9 with zero loss", total, len(got), len(times))
}

// TestGracefulShutdownAcksWhatItDelivered sends SIGTERM right after
// publishing: the gateway stops fetching, flushes what it holds, acks it,
// and exits 0 leaving nothing in flight; what it had not fetched stays in
// the stream for the next start.
func TestGracefulShutdownAcksWhatItDelivered(t *testing.T) {
	// Not parallel: what it checks must happen within the sink's 10 s
	// batch deadline, which a crowded machine can outlast.
	bed := newBinaryBed(t)
	bin, prom, srv, pub, js := bed.bin, bed.prom, bed.srv, bed.pub, bed.js
	fleet := synth.NewFleet(50)
	config := filepath.Join(t.TempDir(), "gateway.yml")
	require.NoError(t, os.WriteFile(config, []byte(fmt.Sprintf(`
nats:
  url: %s
inventory:
  files: [%s]
remote_write:
  - name: prom
    url: %s
    queue_config:
      batch_send_deadline: 10s
`, srv.ClientURL(), writeInventory(t, fleet), prom.WriteURL())), 0o600))
	gw := startGateway(t, bin, config)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	// Three polls per BMC: while a BMC's first is with the queue, the next
	// ones wait behind it, taken from the stream but not yet written.
	polls := pollTimes(3, time.Second)
	for i := range fleet.BMCs {
		for k, at := range polls {
			require.NoError(t, pub.Publish(ctx, fleet.Snapshot(i, at, "poller-a", 1, uint64(k+1))))
		}
	}
	cons, err := js.Consumer(ctx, "BMC_RAW", "bmcstream-gateway-prom")
	require.NoError(t, err)
	// The batch deadline (10 s) keeps samples queued: only the shutdown
	// flush can deliver them, and the snapshots waiting behind them.
	require.Eventually(t, func() bool {
		info, err := cons.Info(ctx)
		return err == nil && info.NumAckPending > len(fleet.BMCs)
	}, 10*time.Second, 20*time.Millisecond)

	// The operational endpoints answer while it runs.
	for path, want := range map[string]string{
		"/-/healthy": "Healthy",
		"/-/ready":   "Ready",
		"/metrics":   `bmcstream_gateway_snapshots_total{result="ok",sink="prom"}`,
	} {
		resp, err := http.Get("http://" + gw.Addr + path)
		require.NoError(t, err)
		body, err := io.ReadAll(resp.Body)
		require.NoError(t, err)
		require.NoError(t, resp.Body.Close())
		require.Equal(t, http.StatusOK, resp.StatusCode, path)
		require.Contains(t, string(body), want, path)
	}

	require.NoError(t, gw.Cmd.Process.Signal(syscall.SIGTERM))
	require.NoError(t, gw.Cmd.Wait(), "gateway must exit 0 after a graceful shutdown")
	info, err := cons.Info(ctx)
	require.NoError(t, err)
	// Nothing taken is left unacked (the next gateway would otherwise
	// wait the ack wait for its redelivery before writing anything).
	require.Zero(t, info.NumAckPending, "snapshots taken from the stream must be written and acked before exit")
	delivered := len(fleet.BMCs)*len(polls) - int(info.NumPending)
	require.Greater(t, delivered, len(fleet.BMCs), "the test needs snapshots waiting behind others at the shutdown")
	got, err := prom.Query(ctx, "sum(count_over_time(bmc_up[5m]))", time.Now())
	require.NoError(t, err)
	require.Len(t, got, 1)
	require.Equal(t, float64(delivered), got[0].Samples[0].V)
}

func TestConfigCheck(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the gateway binary")
	}
	t.Parallel()
	bin := buildGateway(t)
	dir := t.TempDir()
	good := filepath.Join(dir, "good.yml")
	require.NoError(t, os.WriteFile(good, []byte("remote_write:\n  - name: p\n    url: http://127.0.0.1:1/api/v1/write\n"), 0o600))
	out, err := exec.Command(bin, "--config.file="+good, "--config.check").CombinedOutput()
	require.NoError(t, err, "%s", out)
	require.Contains(t, string(out), "is valid")

	bad := filepath.Join(dir, "bad.yml")
	require.NoError(t, os.WriteFile(bad, []byte("remote_write:\n  - name: p\n    url: http://x\n    shards: 3\n"), 0o600))
	out, err = exec.Command(bin, "--config.file="+bad, "--config.check").CombinedOutput()
	var exit *exec.ExitError
	require.ErrorAs(t, err, &exit)
	require.Equal(t, 1, exit.ExitCode())
	require.Contains(t, string(out), "line 4")
	require.Contains(t, string(out), "shards")
}
