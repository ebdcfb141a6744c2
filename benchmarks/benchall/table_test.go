package main

import (
	"strings"
	"testing"
	"time"

	"github.com/bmcstream/bmcstream/benchmarks/internal/figures"
)

// Figures as the harnesses write them with --json (one real run each).
const (
	gatewayJSON = `{"bmcs": 10000, "polls": 3, "samples_received": 8040000, "receiver_errors": 0,
  "ceiling_samples_per_core_s": 3390000, "ceiling_shard_order_samples_per_core_s": 1590000,
  "gateway_steady_samples_per_core_s": 562000, "gateway_steady_of_ceiling": 0.1658,
  "gateway_steady_samples_per_s_wall": 262000, "gateway_steady_cores": 0.46,
  "gateway_steady_allocs_per_sample": 1.96, "gateway_steady_bytes_per_sample": 26.4,
  "gateway_all_samples_per_core_s": 296000, "gateway_all_of_ceiling": 0.0873,
  "gateway_peak_rss_bytes": 3690000000, "nats_receiver_cpu_s": 30.1,
  "ceiling_bmcs": 10000, "ceiling_snappy_samples_per_core_s": 9530000, "snappy_bodies": 256, "snappy_same_bytes": true,
  "gateway_steady_of_snappy_ceiling": 0.0590, "first_poll_cpu_s": 16.2, "first_poll_at_steady_cpu_s": 4.8,
  "first_poll_extra_cpu_per_bmc_s": 0.00114, "gateway_new_cpu_s": 0.9}`
	pollerJSON = `{"protocol": "redfish", "bmcs": 2000, "interval": "10s", "measure": "1m0s",
  "poller_cores": 0.12, "peak_rss_bytes": 300000000, "rss_per_bmc_kb": 146.5, "polls_per_second": 200,
  "ok_percent": 100, "schedule_lag_p50_le_s": 0.001, "schedule_lag_p99_le_s": 0.005, "bmc_latency_ms": "50,400"}`
	latencyJSON = `{"bmcs": 2000, "interval": "15s", "polls_per_second": 133.3, "series_per_bmc": 48.5,
  "samples_per_second": 6466, "bmc_latency_ms": "50,400", "batch_send_deadline": "5s",
  "batch_send_deadline_is_default": true, "default_batch_send_deadline": "5s", "receiver": "prometheus 2.42.0+ds",
  "watched_bmcs": 200, "watch_every": "100ms", "watch_query_p50_s": 0.009, "measure": "1m0s", "polls": 800,
  "with_later_poll": 0, "unseen": 0,
  "poll_start_to_queryable": {"count": 800, "p50_s": 1.2, "p99_s": 2.6, "max_s": 3.1},
  "poll_end_to_queryable": {"count": 800, "p50_s": 1.1, "p99_s": 2.4, "max_s": 2.9},
  "poll_duration": {"count": 800, "p50_s": 0.11, "p99_s": 0.9, "max_s": 1.4}}`
)

// gateway50kJSON is the 50 000-BMC gatewayload run's (made up from the
// 10 000 one's shape).
const gateway50kJSON = `{"bmcs": 50000, "polls": 3, "samples_received": 40200000, "receiver_errors": 0,
  "ceiling_samples_per_core_s": 3300000, "ceiling_shard_order_samples_per_core_s": 3200000,
  "gateway_steady_samples_per_core_s": 520000, "gateway_steady_of_ceiling": 0.1576,
  "gateway_steady_samples_per_s_wall": 250000, "gateway_steady_cores": 0.48,
  "gateway_steady_allocs_per_sample": 1.97, "gateway_steady_bytes_per_sample": 22.2,
  "gateway_all_samples_per_core_s": 280000, "gateway_all_of_ceiling": 0.0848,
  "gateway_peak_rss_bytes": 18100000000, "nats_receiver_cpu_s": 150,
  "ceiling_bmcs": 10000, "ceiling_snappy_samples_per_core_s": 9400000, "snappy_bodies": 256, "snappy_same_bytes": true,
  "gateway_steady_of_snappy_ceiling": 0.0553, "first_poll_cpu_s": 85, "first_poll_at_steady_cpu_s": 25,
  "first_poll_extra_cpu_per_bmc_s": 0.0012, "gateway_new_cpu_s": 4.4}`

const pollerIPMIJSON = `{"protocol": "ipmi", "bmcs": 2000, "interval": "10s", "measure": "1m0s",
  "poller_cores": 0.05, "peak_rss_bytes": 55000000, "rss_per_bmc_kb": 26.9, "polls_per_second": 200,
  "ok_percent": 100, "schedule_lag_p50_le_s": 0.001, "schedule_lag_p99_le_s": 0.005, "bmc_latency_ms": "50,400"}`

// all decodes one run of every harness.
func all(t *testing.T, gateway, gateway50k, poller, pollerIPMI, latency string) *results {
	t.Helper()
	var f results
	for name, b := range map[string]string{"gatewayload": gateway, "gatewayload-50k": gateway50k, "pollerload": poller,
		"pollerload-ipmi": pollerIPMI, "latency": latency} {
		if err := f.decode(name, []byte(b)); err != nil {
			t.Fatal(err)
		}
	}
	return &f
}

// rows counts a markdown text's table rows (headers included).
func rows(tab string) int { return strings.Count("\n"+tab, "\n| ") }

// TestTable: one run of every harness gives every target row of the
// issue, with its target and verdict, then the detail rows.
func TestTable(t *testing.T) {
	f := all(t, gatewayJSON, gateway50kJSON, pollerJSON, pollerIPMIJSON, latencyJSON)
	tab := table([]*results{f}, 5*time.Minute)
	t.Log("\n" + tab)
	for _, want := range []string{
		// 3.69 GB over 10 000 BMCs is 360 KB; 18.1 GB over 50 000, 354 KB.
		"| gateway peak RSS per BMC, 10 000 | 10000 BMCs × 3 polls (gatewayload) | **360 KB** (peak 3.69 GB) | ≤ 48 KB: **not met** |",
		"| gateway peak RSS per BMC, 50 000 | 50000 BMCs × 3 polls (gatewayload) | **354 KB** (peak 18.10 GB) | ≤ 48 KB: **not met** |",
		"**16.6 %** (562 k of 3.39 M samples/s per core) | ≥ 60 %: **not met** |",
		"| gateway steady throughput, of a snappy-only ceiling | the same; snappy.Encode over 256 of the uncompressed request bodies",
		"**5.9 %** (of 9.53 M samples/s per core) | reported |",
		"| first poll of a BMC (plan build), CPU per BMC |",
		"**1.140 ms** | ≤ 0.2 ms: **not met** |",
		"| poller RSS per Redfish BMC | 2000 redfish bmcsim BMCs every 10s, 50,400 ms latency (median,p99), 1m0s window (pollerload) | **146.5 KB** | ≤ 50 KB: **not met** |",
		// 0.12 cores for 2000 BMCs at 10 s is 0.20 for 10 000 at 30 s.
		"| poller CPU, 10000 Redfish BMCs at 30s | the same | **0.20 cores** (0.12 cores measured, scaled by polls/s to 10000 BMCs every 30s) | ≤ 0.5 core: met |",
		"| poller RSS per IPMI BMC | 2000 ipmi bmcsim BMCs every 10s",
		"**26.9 KB** (0.05 cores) | ≤ 20 KB: **not met** |",
		"| allocations per sample, gateway steady | 10000 BMCs × 3 polls, steady | **1.96** | ≤ 0.2: **not met** |",
		// Detail rows.
		"**3.39 M samples/s per core**",
		"**562 k samples/s per core, 16.6 % of the ceiling**",
		"| **gateway**, 50000 BMCs end to end, steady (polls 2-3) |",
		"first poll 1.200 ms of CPU per BMC beyond the steady rate; peak RSS 18.10 GB (354 KB per BMC)",
		"| ceiling: snappy alone | 256 of the uncompressed request bodies the gateway sent (a uniform sample), compressed again to the sizes sent | 9.53 M samples/s per core | |",
		"**p50 1.20 s, p99 2.60 s** (max 3.10 s) | p99 ≤ 2 s with default batching: **not met**",
		"default queue configuration (batch_send_deadline 5s)",
		"p50 1.10 s, p99 2.40 s",
		"One run of each harness",
	} {
		if !strings.Contains(tab, want) {
			t.Errorf("table lacks %q", want)
		}
	}
	// Targets: header and 9 rows; details: header, 2 × 4 gateway rows, 2
	// poller rows, 2 latency rows.
	if n := rows(tab); n != 1+9+1+8+2+2 {
		t.Errorf("%d table rows, want %d", n, 1+9+1+8+2+2)
	}
}

// TestTableNotRun: a harness left out keeps its target rows, marked as not
// measured, so the table always has every target row.
func TestTableNotRun(t *testing.T) {
	var f results
	if err := f.decode("pollerload", []byte(pollerJSON)); err != nil {
		t.Fatal(err)
	}
	tab := table([]*results{&f}, time.Minute)
	for _, want := range []string{
		"| gateway peak RSS per BMC, 10 000 | 10 000 BMCs × 3 polls | not run | ≤ 48 KB: not measured |",
		"| gateway peak RSS per BMC, 50 000 | 50 000 BMCs × 3 polls | not run | ≤ 48 KB: not measured |",
		"| poller RSS per IPMI BMC | IPMI bmcsim fleet | not run | ≤ 20 KB: not measured |",
		"| allocations per sample, gateway steady | 10 000 BMCs × 3 polls | not run | ≤ 0.2: not measured |",
		"**146.5 KB** | ≤ 50 KB: **not met** |",
	} {
		if !strings.Contains(tab, want) {
			t.Errorf("table lacks %q:\n%s", want, tab)
		}
	}
	if n := rows(tab); n != 1+9+1+1 {
		t.Errorf("%d table rows, want %d:\n%s", n, 1+9+1+1, tab)
	}
}

// TestTableRuns: over three runs every figure is the median, with the
// range, ratios taken within each run; verdicts go by the median.
func TestTableRuns(t *testing.T) {
	var runs []*results
	// The steady throughput and its ratio move together; allocations
	// straddle the target: 0.1, 0.3, 0.15 (median 0.15, met).
	for _, v := range []struct{ steady, ratio, allocs, rss, rf string }{
		{"562000", "0.1658", "0.1", "3690000000", "146.5"},
		{"700000", "0.65", "0.3", "3000000000", "40.2"},
		{"600000", "0.61", "0.15", "3300000000", "48.0"},
	} {
		g := strings.NewReplacer(`"gateway_steady_samples_per_core_s": 562000`, `"gateway_steady_samples_per_core_s": `+v.steady,
			`"gateway_steady_of_ceiling": 0.1658`, `"gateway_steady_of_ceiling": `+v.ratio,
			`"gateway_steady_allocs_per_sample": 1.96`, `"gateway_steady_allocs_per_sample": `+v.allocs,
			`"gateway_peak_rss_bytes": 3690000000`, `"gateway_peak_rss_bytes": `+v.rss).Replace(gatewayJSON)
		p := strings.Replace(pollerJSON, `"rss_per_bmc_kb": 146.5`, `"rss_per_bmc_kb": `+v.rf, 1)
		runs = append(runs, all(t, g, gateway50kJSON, p, pollerIPMIJSON, latencyJSON))
	}
	tab := table(runs, 15*time.Minute)
	t.Log("\n" + tab)
	for _, want := range []string{
		// 3.0, 3.3, 3.69 GB over 10 000 BMCs: 293, 322, 360 KB.
		"**322 (293–360) KB** (peak 3.30 (3.00–3.69) GB) | ≤ 48 KB: **not met** |",
		"**61.0 (16.6–65.0) %** (600 k (562 k–700 k) of 3.39 M samples/s per core) | ≥ 60 %: met |",
		"| allocations per sample, gateway steady | 10000 BMCs × 3 polls, steady | **0.15 (0.10–0.30)** | ≤ 0.2: met |",
		"**48.0 (40.2–146.5) KB** | ≤ 50 KB: met |",
		"3 runs of each harness",
	} {
		if !strings.Contains(tab, want) {
			t.Errorf("table lacks %q", want)
		}
	}
}

// TestOver: the median of an odd and an even number of runs, the range,
// and runs without the figure left out.
func TestOver(t *testing.T) {
	mk := func(xs ...float64) []*results {
		var rs []*results
		for _, x := range xs {
			r := &results{}
			if x >= 0 {
				r.Poller = &figures.Poller{Cores: x}
			}
			rs = append(rs, r)
		}
		return rs
	}
	cores := func(r *results) (float64, bool) {
		if r.Poller == nil {
			return 0, false
		}
		return r.Poller.Cores, true
	}
	for _, c := range []struct {
		xs   []float64
		want stat
		text string
	}{
		{[]float64{3, 1, 2}, stat{2, 1, 3, 3}, "2.00 (1.00–3.00)"},
		{[]float64{4, 1, 2, 3}, stat{2.5, 1, 4, 4}, "2.50 (1.00–4.00)"},
		{[]float64{5, -1}, stat{5, 5, 5, 1}, "5.00"},
		{[]float64{5, 5.00390625}, stat{5.001953125, 5, 5.00390625, 2}, "5.00"},
		{[]float64{-1}, stat{}, "0.00"},
	} {
		s := over(mk(c.xs...), cores)
		if s != c.want || s.fmt(f2) != c.text {
			t.Errorf("over(%v) = %+v %q, want %+v %q", c.xs, s, s.fmt(f2), c.want, c.text)
		}
	}
}

// replicasJSON is gatewayload --replicas=2's addition to gatewayJSON (one
// real run, rounded).
const replicasJSON = `, "replicas": {"replicas": 2, "partitions": 16, "samples_received": 8053821, "receiver_errors": 0,
  "samples_written_sum": 8053821, "steady_samples_per_core_s": 1102858, "steady_of_one_replica": 1.0667,
  "steady_samples_per_s_wall": 481726, "steady_cores": 0.441, "all_samples_per_core_s": 443347, "all_of_one_replica": 1.0767,
  "one_replica_steady_samples_per_s_wall": 387598, "spread_s": 3.36, "leases_lost": 0, "dedup_rejected": 0, "out_of_order_dropped": 0, "nats_receiver_cpu_s": 19.3,
  "per_replica": [
    {"id": "gw-1", "partitions": 6, "bmcs": 3739, "samples_written": 3026700, "share": 0.3758, "steady_cpu_s": 1.37,
     "steady_cores": 0.135, "steady_samples_per_core_s": 1110736, "steady_allocs_per_sample": 1.96, "all_cpu_s": 6.96,
     "all_samples_per_core_s": 434820, "peak_rss_bytes": 1474920448},
    {"id": "gw-2", "partitions": 10, "bmcs": 6261, "samples_written": 5027121, "share": 0.6242, "steady_cpu_s": 2.31,
     "steady_cores": 0.409, "steady_samples_per_core_s": 1098191, "steady_allocs_per_sample": 1.97, "all_cpu_s": 11.2,
     "all_samples_per_core_s": 448644, "peak_rss_bytes": 2602135552}]}}`

// TestTableReplicas: gatewayload's two-replica figures add a row.
func TestTableReplicas(t *testing.T) {
	var f results
	if err := f.decode("gatewayload", []byte(strings.TrimSuffix(gatewayJSON, "}")+replicasJSON)); err != nil {
		t.Fatal(err)
	}
	tab := table([]*results{&f}, time.Minute)
	t.Log("\n" + tab)
	for _, want := range []string{
		"**gateway, 2 replicas** (one process each), steady",
		"**1.1 M samples/s per core together, 1.07 × one replica's** (all polls 1.08 ×), so 2 replicas with a core each have 2.13 × the capacity of one",
		"gw-1 6 partitions, 3739 BMCs, 38 % of the samples at 1.11 M per core, 1.47 GB RSS",
		"wall 482 k samples/s (one replica: 388 k)",
	} {
		if !strings.Contains(tab, want) {
			t.Errorf("table lacks %q", want)
		}
	}
	// Targets: header and 9 rows; details: header, two ceilings and three
	// gateway rows.
	if n := rows(tab); n != 1+9+1+5 {
		t.Errorf("%d table rows, want %d", n, 1+9+1+5)
	}
}

// TestTableOverride: a run with another deadline is not checked against
// the target, which is about the default batching.
func TestTableOverride(t *testing.T) {
	var f results
	if err := f.decode("latency", []byte(strings.Replace(strings.Replace(latencyJSON,
		`"batch_send_deadline": "5s"`, `"batch_send_deadline": "1s"`, 1), `"batch_send_deadline_is_default": true`, `"batch_send_deadline_is_default": false`, 1))); err != nil {
		t.Fatal(err)
	}
	tab := table([]*results{&f}, time.Minute)
	if !strings.Contains(tab, "but batch_send_deadline 1s (the default is 5s)") || !strings.Contains(tab, "(not the default batching)") || strings.Contains(tab, "gateway,") {
		t.Fatalf("table:\n%s", tab)
	}
}

// TestDecodeRefusesUnknownFields: a figure a harness renamed fails the run
// instead of reading as zero.
func TestDecodeRefusesUnknownFields(t *testing.T) {
	var f results
	if err := f.decode("pollerload", []byte(strings.Replace(pollerJSON, `"poller_cores"`, `"cores"`, 1))); err == nil {
		t.Fatal("a renamed field decoded without error")
	}
}

// TestTableFailed: a step that failed keeps its target row, with the
// harness's last words, and the other steps' figures stand; a step that
// failed in one run of two shows the other run's figures and the failure
// below the table.
func TestTableFailed(t *testing.T) {
	var l lastLine
	_, _ = l.Write([]byte("loaded 150000 snapshots\ngatewayload: 79364 of 150000 snapshots acked | peak RSS 22.17 GB: stopped\n\n"))
	why := l.String()
	if why != "gatewayload: 79364 of 150000 snapshots acked | peak RSS 22.17 GB: stopped" {
		t.Fatalf("last line %q", why)
	}
	one := all(t, gatewayJSON, gateway50kJSON, pollerJSON, pollerIPMIJSON, latencyJSON)
	one.Gateway50k = nil
	one.fail("gatewayload-50k", why)
	two := all(t, gatewayJSON, gateway50kJSON, pollerJSON, pollerIPMIJSON, latencyJSON)
	two.Gateway50k, two.PollerIPMI = nil, nil
	two.fail("gatewayload-50k", why)
	two.fail("pollerload-ipmi", "pollerload: exit status 1")
	tab := table([]*results{one, two}, time.Minute)
	t.Log("\n" + tab)
	for _, want := range []string{
		"| gateway peak RSS per BMC, 50 000 | 50 000 BMCs × 3 polls | **failed**: gatewayload: 79364 of 150000 snapshots acked / peak RSS 22.17 GB: stopped | ≤ 48 KB: not measured |",
		"| gateway peak RSS per BMC, 10 000 | 10000 BMCs × 3 polls (gatewayload) | **360 KB** (peak 3.69 GB) | ≤ 48 KB: **not met** |",
		// Run 1 measured IPMI: its figures, and run 2's failure below.
		"**26.9 KB** (0.05 cores) | ≤ 20 KB: **not met** |",
		"Failed: run 1: gatewayload-50k failed: gatewayload: 79364",
		"run 2: pollerload-ipmi failed: pollerload: exit status 1.",
	} {
		if !strings.Contains(tab, want) {
			t.Errorf("table lacks %q", want)
		}
	}
	if strings.Contains(tab, "**gateway**, 50000 BMCs") {
		t.Error("a detail row for the failed 50 000-BMC run")
	}
}
