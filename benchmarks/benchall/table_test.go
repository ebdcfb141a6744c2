package main

import (
	"strings"
	"testing"
)

// Figures as the harnesses write them with --json (one real run each).
const (
	gatewayJSON = `{"bmcs": 10000, "polls": 3, "samples_received": 8040000, "receiver_errors": 0,
  "ceiling_samples_per_core_s": 3390000, "ceiling_shard_order_samples_per_core_s": 1590000,
  "gateway_steady_samples_per_core_s": 562000, "gateway_steady_of_ceiling": 0.1658,
  "gateway_steady_samples_per_s_wall": 262000, "gateway_steady_cores": 0.46,
  "gateway_steady_allocs_per_sample": 1.96, "gateway_steady_bytes_per_sample": 26.4,
  "gateway_all_samples_per_core_s": 296000, "gateway_all_of_ceiling": 0.0873,
  "gateway_peak_rss_bytes": 3690000000, "nats_receiver_cpu_s": 30.1}`
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

func TestTable(t *testing.T) {
	var f results
	for name, b := range map[string]string{"gatewayload": gatewayJSON, "pollerload": pollerJSON, "latency": latencyJSON} {
		if err := f.decode(name, []byte(b)); err != nil {
			t.Fatal(err)
		}
	}
	tab := f.table()
	t.Log("\n" + tab)
	for _, want := range []string{
		"**3.39 M samples/s per core**",
		"**562 k samples/s per core, 16.6 % of the ceiling**",
		// 0.12 cores for 2000 BMCs at 10 s is 0.40 for 20 000 at 30 s.
		"0.40 cores scaled by polls/s, met; ≤ 50 KB per BMC: **not met**",
		"**p50 1.20 s, p99 2.60 s** (max 3.10 s) | p99 ≤ 2 s with default batching: **not met**",
		"default queue configuration (batch_send_deadline 5s)",
		"p50 1.10 s, p99 2.40 s",
	} {
		if !strings.Contains(tab, want) {
			t.Errorf("table lacks %q", want)
		}
	}
	if n := strings.Count("\n"+tab, "\n| "); n != 7 {
		t.Errorf("%d table rows, want 7 (header and 6 figures)", n)
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
	tab := f.table()
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
	if n := strings.Count("\n"+tab, "\n| "); n != 5 {
		t.Errorf("%d table rows, want 5 (header, ceiling and three gateway rows)", n)
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
	tab := f.table()
	if !strings.Contains(tab, "but batch_send_deadline 1s (the default is 5s)") || !strings.Contains(tab, "(not the default batching)") || strings.Contains(tab, "gateway") {
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
