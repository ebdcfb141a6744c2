package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"syscall"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/require"

	"github.com/bmcstream/bmcstream/internal/testbed"
	"github.com/bmcstream/bmcstream/pkg/bmcsim/fleet"
	"github.com/bmcstream/bmcstream/pkg/bmcsim/model"
	"github.com/bmcstream/bmcstream/pkg/gateway"
	"github.com/bmcstream/bmcstream/pkg/poller"
)

func buildPoller(t *testing.T) string {
	return testbed.Build(t, "github.com/bmcstream/bmcstream/cmd/poller")
}

func startPollerProcess(t *testing.T, bin, config, id string) (*exec.Cmd, string) {
	t.Helper()
	p := testbed.StartProgram(t, id, bin, "--config.file="+config, "--poller.id="+id)
	return p.Cmd, p.Addr
}

// pollerStatus is what a poller's status page says, or an error.
type pollerStatus struct {
	Poller  string          `json:"poller"`
	Members []string        `json:"members"`
	BMCs    []poller.Status `json:"bmcs"`
}

func getStatus(addr string) (pollerStatus, error) {
	var status pollerStatus
	resp, err := http.Get("http://" + addr + "/status?format=json")
	if err != nil {
		return status, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return status, fmt.Errorf("status page: %s", resp.Status)
	}
	return status, json.NewDecoder(resp.Body).Decode(&status)
}

// everyBMCPolled reports whether each of n BMCs has at least k polls in
// got.
func everyBMCPolled(got map[string]map[string]int, n, k int) bool {
	if len(got) < n {
		return false
	}
	for _, ps := range got {
		polls := 0
		for _, c := range ps {
			polls += c
		}
		if polls < k {
			return false
		}
	}
	return true
}

// TestTwoPollersFailover runs the whole path: a simulated fleet, two poller
// processes sharing it by dynamic membership, NATS, the gateway and a real
// Prometheus. Every BMC's series arrive; each BMC is polled by exactly one
// poller; after one poller is killed with SIGKILL, the survivor polls all
// its BMCs within two intervals, and alone.
func TestTwoPollersFailover(t *testing.T) {
	spansPrograms(t)
	const n, interval = 30, 4 * time.Second
	prom := testbed.StartPrometheus(t)
	tb := newSimbed(t, "127.74.0.1", n, "redfish", interval)
	rec := testbed.Record(t, tb.nats.ClientURL())
	bin := buildPoller(t)
	config := filepath.Join(t.TempDir(), "poller.yml")
	require.NoError(t, os.WriteFile(config, []byte(fmt.Sprintf(`
nats:
  url: %s
inventory:
  files: [%s]
  credentials_file: %s
sharding:
  mode: dynamic
  ttl: 2s
`, tb.nats.ClientURL(), tb.invFile, tb.credFile)), 0o600))

	gwCfg, err := gateway.ParseConfig([]byte(fmt.Sprintf(`
nats:
  url: %s
inventory:
  files: [%s]
remote_write:
  - name: prom
    url: %s
    queue_config: {batch_send_deadline: 200ms}
`, tb.nats.ClientURL(), tb.invFile, prom.WriteURL())))
	require.NoError(t, err)
	gw, err := gateway.New(gwCfg, gateway.Options{Version: "test", ShutdownTimeout: 5 * time.Second})
	require.NoError(t, err)
	gctx, gcancel := context.WithCancel(context.Background())
	gdone := make(chan error, 1)
	go func() { gdone <- gw.Run(gctx) }()
	defer func() { gcancel(); require.NoError(t, <-gdone) }()

	a, aAddr := startPollerProcess(t, bin, config, "poller-a")
	_, bAddr := startPollerProcess(t, bin, config, "poller-b")
	// Let membership settle: both see each other and between them own
	// every BMC. Then observe two polls of every BMC: each by exactly one
	// poller.
	testbed.Eventually(t, time.Minute, func() bool {
		owned := 0
		for _, addr := range []string{aAddr, bAddr} {
			st, err := getStatus(addr)
			if err != nil || len(st.Members) != 2 {
				return false
			}
			owned += len(st.BMCs)
		}
		return owned == n
	}, "both pollers see each other and own the %d BMCs between them", n)
	from := time.Now()
	testbed.Eventually(t, time.Minute, func() bool { return everyBMCPolled(rec.Pollers(from, time.Now()), n, 2) },
		"every BMC polled twice")
	stable := rec.Pollers(from, time.Now())
	perPoller := map[string]int{}
	for id, ps := range stable {
		require.Len(t, ps, 1, "bmc %s polled by %v", id, ps)
		for p := range ps {
			perPoller[p]++
		}
	}
	require.Len(t, perPoller, 2, "both pollers share the fleet: %v", perPoller)
	t.Logf("shares before the kill: %v", perPoller)
	// The status page lists what poller-b owns, with its last result.
	status, err := getStatus(bAddr)
	require.NoError(t, err)
	require.Equal(t, "poller-b", status.Poller)
	require.Equal(t, []string{"poller-a", "poller-b"}, status.Members)
	require.Len(t, status.BMCs, perPoller["poller-b"])
	for _, b := range status.BMCs {
		require.Equal(t, "ok", b.LastResult, b.ID)
	}

	// Every BMC's series are in Prometheus with rack labels.
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	prom.WaitFor(ctx, t, `count(bmc_up{site="sim"} == 1)`, func(s []testbed.Series) bool {
		return len(s) == 1 && s[0].Samples[0].V == n
	})
	got, err := prom.Query(ctx, `count by (rack) (bmc_temperature_celsius{context="intake"})`, time.Time{})
	require.NoError(t, err)
	require.Len(t, got, 2, "30 BMCs sit in two racks of 20")

	// Kill poller-a; poller-b must take its BMCs within two intervals.
	require.NoError(t, a.Process.Signal(syscall.SIGKILL))
	_ = a.Wait()
	killed := time.Now()
	deadline := killed.Add(2 * interval)
	require.Eventually(t, func() bool {
		after := rec.Pollers(killed, time.Now())
		if len(after) < n {
			return false
		}
		for _, ps := range after {
			if ps["poller-b"] == 0 {
				return false
			}
		}
		return true
	}, time.Until(deadline)+time.Second, 100*time.Millisecond, "survivor did not take over within two intervals")
	took := time.Since(killed)
	t.Logf("takeover of all %d BMCs completed %s after the kill", n, took.Round(100*time.Millisecond))
	require.LessOrEqual(t, took, 2*interval+time.Second)

	// Afterwards, only the survivor polls: from an interval on, every
	// BMC's next poll is poller-b's.
	from = time.Now().Add(interval)
	testbed.Eventually(t, time.Minute, func() bool { return everyBMCPolled(rec.Pollers(from, time.Now()), n, 1) },
		"every BMC polled again")
	for id, ps := range rec.Pollers(from, time.Now()) {
		require.Equal(t, []string{"poller-b"}, sortedKeys(ps), "bmc %s", id)
	}

	// Each of poller-a's BMCs missed at most ⌈(ttl + poll)/interval⌉ = 1
	// slot (docs/scaling.md), and none was polled twice.
	slots := rec.SlotsOf(killed.Add(-2*interval), time.Now(), interval, poller.Offset)
	missed := 0
	for id, s := range slots {
		nums := make([]int64, 0, len(s))
		for k := range s {
			nums = append(nums, k)
		}
		sort.Slice(nums, func(i, j int) bool { return nums[i] < nums[j] })
		if s[nums[0]][0] != "poller-a" {
			continue
		}
		gap := 0
		for k := nums[0]; k <= nums[len(nums)-1]; k++ {
			require.LessOrEqual(t, len(s[k]), 1, "bmc %s slot %d: polled by %v", id, k, s[k])
			if len(s[k]) == 0 {
				gap++
			}
		}
		require.LessOrEqual(t, gap, 1, "bmc %s: slots missed after the kill", id)
		missed += gap
	}
	t.Logf("polls never made after the kill: %d", missed)
}

func sortedKeys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// TestReplicationFactorTwo runs an HA pair: each BMC is polled by both
// pollers and holds one session per poller.
func TestReplicationFactorTwo(t *testing.T) {
	spansPrograms(t)
	tb := newSimbed(t, "127.75.0.1", 10, "redfish", 2*time.Second)
	rec := testbed.Record(t, tb.nats.ClientURL())
	extra := "sharding:\n  mode: dynamic\n  ttl: 3s\n  replication_factor: 2\n"
	runPoller(t, tb.pollerConfig(t, "ha-a", extra))
	runPoller(t, tb.pollerConfig(t, "ha-b", extra))
	from := time.Now()
	both := func() bool {
		got := rec.Pollers(from, time.Now())
		if len(got) < 10 {
			return false
		}
		for _, ps := range got {
			if len(ps) < 2 {
				return false
			}
		}
		return true
	}
	testbed.Eventually(t, time.Minute, both, "every BMC polled by both pollers")
	got := rec.Pollers(from, time.Now())
	require.Len(t, got, 10)
	for id, ps := range got {
		require.Equal(t, []string{"ha-a", "ha-b"}, sortedKeys(ps), "bmc %s", id)
		rs, _ := tb.fleet.SessionCounts(id)
		require.Equal(t, 2, rs, "bmc %s: one session per poller", id)
	}
}

// TestScheduleLagWithBlackHoledBMCs black-holes 10 % of the fleet and checks
// the other BMCs' polls still start on time: p99 lag under 1 s, measured
// in steady state (after every session is open).
func TestScheduleLagWithBlackHoledBMCs(t *testing.T) {
	spansPrograms(t)
	// A 4 s interval (poll deadline 3.2 s): at 2 s, a machine starved by
	// the race detector and parallel packages timed healthy polls out, and
	// backoff then (rightly) skipped their next polls, failing the count
	// below for a reason that is not the subject. The subject, black-holed
	// BMCs delaying no other, is the same at any interval.
	tb := newSimbed(t, "127.76.0.1", 100, "redfish", 4*time.Second)
	ids, err := tb.fleet.Apply(fleet.FaultRequest{Fraction: 0.1, Faults: model.Faults{BlackHole: true}})
	require.NoError(t, err)
	require.Len(t, ids, 10)
	rec := testbed.Record(t, tb.nats.ClientURL())
	start := time.Now()
	_, reg, _ := runPoller(t, tb.pollerConfig(t, "lag", ""))
	blackholed := map[string]bool{}
	for _, id := range ids {
		blackholed[id] = true
	}
	// healthyPolled reports whether every healthy BMC made at least k
	// polls since since.
	healthyPolled := func(since time.Time, k int) bool {
		got := rec.Pollers(since, time.Now())
		for _, m := range tb.fleet.Members {
			if !blackholed[m.BMC.ID] && got[m.BMC.ID]["lag"] < k {
				return false
			}
		}
		return true
	}
	// Logins and discovery are over once every healthy BMC polled twice.
	testbed.Eventually(t, time.Minute, func() bool { return healthyPolled(start, 2) }, "every healthy BMC polled twice")
	before := lagBuckets(t, reg)
	from := time.Now()
	// Every healthy BMC delivers every interval; the black-holed ones do
	// not stall anyone: three polls each within four intervals.
	if err := testbed.Until(ctxFor(t, 4*tb.interval), func() bool { return healthyPolled(from, 3) }); err != nil {
		got := rec.Pollers(from, time.Now())
		behind := map[string]int{}
		for _, m := range tb.fleet.Members {
			if !blackholed[m.BMC.ID] && got[m.BMC.ID]["lag"] < 3 {
				behind[m.BMC.ID] = got[m.BMC.ID]["lag"]
			}
		}
		t.Fatalf("within four intervals, %d healthy BMCs polled fewer than three times: %v", len(behind), behind)
	}
	after := lagBuckets(t, reg)
	p99 := deltaQuantile(before, after, 0.99)
	t.Logf("steady-state schedule lag p99 <= %gs with 10%% of the fleet black-holed (%d polls)", p99, int(after.count-before.count))
	require.Less(t, p99, 1.0)
}

type buckets struct {
	count  uint64
	bounds []float64
	cum    []uint64
}

func lagBuckets(t *testing.T, reg *prometheus.Registry) buckets {
	t.Helper()
	mfs, err := reg.Gather()
	require.NoError(t, err)
	for _, mf := range mfs {
		if mf.GetName() == "bmcstream_poller_schedule_lag_seconds" {
			h := mf.GetMetric()[0].GetHistogram()
			b := buckets{count: h.GetSampleCount()}
			for _, bk := range h.GetBucket() {
				b.bounds = append(b.bounds, bk.GetUpperBound())
				b.cum = append(b.cum, bk.GetCumulativeCount())
			}
			return b
		}
	}
	t.Fatal("no lag histogram")
	return buckets{}
}

// deltaQuantile is the upper bound of the bucket holding quantile q of the
// observations made between two snapshots of a histogram.
func deltaQuantile(before, after buckets, q float64) float64 {
	total := float64(after.count - before.count)
	for i := range after.bounds {
		var b uint64
		if i < len(before.cum) {
			b = before.cum[i]
		}
		if float64(after.cum[i]-b) >= q*total {
			return after.bounds[i]
		}
	}
	return 1e9
}
