package main

import (
	"fmt"
	"strings"
	"time"
)

// The harnesses' --json figures. Every field they write is declared, and
// runAll decodes with unknown fields refused, so a renamed figure fails the
// run instead of showing as zero.

type gatewayFigures struct {
	BMCs           int     `json:"bmcs"`
	Polls          int     `json:"polls"`
	Samples        int64   `json:"samples_received"`
	Errors         int64   `json:"receiver_errors"`
	Ceiling        float64 `json:"ceiling_samples_per_core_s"`
	CeilSharded    float64 `json:"ceiling_shard_order_samples_per_core_s"`
	Steady         float64 `json:"gateway_steady_samples_per_core_s"`
	SteadyRatio    float64 `json:"gateway_steady_of_ceiling"`
	SteadyWall     float64 `json:"gateway_steady_samples_per_s_wall"`
	SteadyCores    float64 `json:"gateway_steady_cores"`
	SteadyAllocs   float64 `json:"gateway_steady_allocs_per_sample"`
	SteadyBytes    float64 `json:"gateway_steady_bytes_per_sample"`
	All            float64 `json:"gateway_all_samples_per_core_s"`
	AllRatio       float64 `json:"gateway_all_of_ceiling"`
	PeakRSSBytes   float64 `json:"gateway_peak_rss_bytes"`
	InfraCPUSecond float64 `json:"nats_receiver_cpu_s"`
	// Replicas is gatewayload's run of several replicas (--replicas).
	Replicas *gatewayReplicaFigures `json:"replicas,omitempty"`
}

type gatewayReplicaFigures struct {
	Replicas    int     `json:"replicas"`
	Partitions  int     `json:"partitions"`
	Samples     int64   `json:"samples_received"`
	Errors      int64   `json:"receiver_errors"`
	WrittenSum  int64   `json:"samples_written_sum"`
	Steady      float64 `json:"steady_samples_per_core_s"`
	SteadyOfOne float64 `json:"steady_of_one_replica"`
	SteadyWall  float64 `json:"steady_samples_per_s_wall"`
	SteadyCores float64 `json:"steady_cores"`
	All         float64 `json:"all_samples_per_core_s"`
	AllOfOne    float64 `json:"all_of_one_replica"`
	OneWall     float64 `json:"one_replica_steady_samples_per_s_wall"`
	SpreadSecs  float64 `json:"spread_s"`
	LeasesLost  int     `json:"leases_lost"`
	Dedup       int64   `json:"dedup_rejected"`
	OutOfOrder  int64   `json:"out_of_order_dropped"`
	InfraCPU    float64 `json:"nats_receiver_cpu_s"`
	PerReplica  []struct {
		ID           string  `json:"id"`
		Partitions   int     `json:"partitions"`
		BMCs         int     `json:"bmcs"`
		Samples      int64   `json:"samples_written"`
		Share        float64 `json:"share"`
		SteadyCPU    float64 `json:"steady_cpu_s"`
		SteadyCores  float64 `json:"steady_cores"`
		Steady       float64 `json:"steady_samples_per_core_s"`
		SteadyAllocs float64 `json:"steady_allocs_per_sample"`
		AllCPU       float64 `json:"all_cpu_s"`
		All          float64 `json:"all_samples_per_core_s"`
		PeakRSSBytes float64 `json:"peak_rss_bytes"`
	} `json:"per_replica"`
}

type pollerFigures struct {
	Protocol    string  `json:"protocol"`
	BMCs        int     `json:"bmcs"`
	Interval    string  `json:"interval"`
	Measure     string  `json:"measure"`
	Cores       float64 `json:"poller_cores"`
	RSSBytes    float64 `json:"peak_rss_bytes"`
	RSSPerBMCKB float64 `json:"rss_per_bmc_kb"`
	PollsPerSec float64 `json:"polls_per_second"`
	OKPercent   float64 `json:"ok_percent"`
	LagP50      float64 `json:"schedule_lag_p50_le_s"`
	LagP99      float64 `json:"schedule_lag_p99_le_s"`
	Latency     string  `json:"bmc_latency_ms"`
}

type latencyStats struct {
	Count int     `json:"count"`
	P50   float64 `json:"p50_s"`
	P99   float64 `json:"p99_s"`
	Max   float64 `json:"max_s"`
}

type latencyFigures struct {
	BMCs            int          `json:"bmcs"`
	Interval        string       `json:"interval"`
	PollsPerSecond  float64      `json:"polls_per_second"`
	SeriesPerBMC    float64      `json:"series_per_bmc"`
	SamplesPerSec   float64      `json:"samples_per_second"`
	BMCLatency      string       `json:"bmc_latency_ms"`
	Deadline        string       `json:"batch_send_deadline"`
	DeadlineDefault bool         `json:"batch_send_deadline_is_default"`
	DefaultDeadline string       `json:"default_batch_send_deadline"`
	Receiver        string       `json:"receiver"`
	Watched         int          `json:"watched_bmcs"`
	WatchEvery      string       `json:"watch_every"`
	QueryP50        float64      `json:"watch_query_p50_s"`
	Measure         string       `json:"measure"`
	Polls           int          `json:"polls"`
	WithLater       int          `json:"with_later_poll"`
	Unseen          int          `json:"unseen"`
	FromStart       latencyStats `json:"poll_start_to_queryable"`
	FromEnd         latencyStats `json:"poll_end_to_queryable"`
	PollDuration    latencyStats `json:"poll_duration"`
}

// figures is one benchall run.
type figures struct {
	Gateway *gatewayFigures
	Poller  *pollerFigures
	Latency *latencyFigures
	Wall    time.Duration
}

// Targets of the performance work, as the table checks them.
const (
	gatewayPerCoreTarget  = 1e6  // samples/s per core, steady state
	gatewayRatioTarget    = 0.25 // of the ceiling, same run
	pollerCoresTarget     = 1.0  // cores for 20 000 Redfish BMCs at 30 s
	pollerTargetBMCs      = 20000
	pollerTargetInterval  = 30 * time.Second
	pollerRSSPerBMCTarget = 50.0 // KB
	latencyP99Target      = 2.0  // seconds, reading → queryable, default batching
)

func verdict(ok bool) string {
	if ok {
		return "met"
	}
	return "**not met**"
}

// table renders the figures as one markdown table with a line per load.
func (f *figures) table() string {
	var b strings.Builder
	fmt.Fprintln(&b, "| what | load | result | target |")
	fmt.Fprintln(&b, "|---|---|---|---|")
	if g := f.Gateway; g != nil {
		load := fmt.Sprintf("one poll of %d BMCs (gwfleet, about 270 samples per BMC), one goroutine", g.BMCs)
		fmt.Fprintf(&b, "| **ceiling**: remote-write encode (gogo marshal + snappy) | %s | **%s samples/s per core** (in the queue's shard order: %s, %.0f %%) | |\n",
			load, si(g.Ceiling), si(g.CeilSharded), 100*g.CeilSharded/g.Ceiling)
		load = fmt.Sprintf("%d BMCs × %d polls from `BMC_RAW` to a decoding receiver, %s samples, %d errors", g.BMCs, g.Polls, si(float64(g.Samples)), g.Errors)
		fmt.Fprintf(&b, "| **gateway** end to end, steady (polls 2-%d) | %s | **%s samples/s per core, %.1f %% of the ceiling**; %.2f cores busy, %s samples/s wall; %.2f allocs and %.1f bytes per sample | ≥ 1 M per core and ≥ 25 %% of the ceiling: %s |\n",
			g.Polls, load, si(g.Steady), 100*g.SteadyRatio, g.SteadyCores, si(g.SteadyWall), g.SteadyAllocs, g.SteadyBytes,
			verdict(g.Steady >= gatewayPerCoreTarget && g.SteadyRatio >= gatewayRatioTarget))
		fmt.Fprintf(&b, "| gateway, all polls (the first builds every BMC's plan) | the same | %s samples/s per core, %.1f %% of the ceiling; peak RSS %.2f GB (%.0f KB per BMC) | |\n",
			si(g.All), 100*g.AllRatio, g.PeakRSSBytes/1e9, g.PeakRSSBytes/1024/float64(g.BMCs))
		if r := g.Replicas; r != nil {
			var per []string
			for _, p := range r.PerReplica {
				per = append(per, fmt.Sprintf("%s %d partitions, %d BMCs, %.0f %% of the samples at %s per core, %.2f GB RSS",
					p.ID, p.Partitions, p.BMCs, 100*p.Share, si(p.Steady), p.PeakRSSBytes/1e9))
			}
			load = fmt.Sprintf("the same load on a fresh stream of %d partitions, %s samples, %d errors, %d leases lost", r.Partitions, si(float64(r.Samples)), r.Errors, r.LeasesLost)
			if r.Dedup > 0 || r.OutOfOrder > 0 {
				load += fmt.Sprintf(", %d snapshots refused as duplicates and %d samples as out of order", r.Dedup, r.OutOfOrder)
			}
			fmt.Fprintf(&b, "| **gateway, %d replicas** (one process each), steady | %s | **%s samples/s per core together, %.2f × one replica's** (all polls %.2f ×), so %d replicas with a core each have %.2f × the capacity of one; %s; wall %s samples/s (one replica: %s) on CPUs shared with NATS and the receiver | |\n",
				r.Replicas, load, si(r.Steady), r.SteadyOfOne, r.AllOfOne, r.Replicas, float64(r.Replicas)*r.SteadyOfOne,
				strings.Join(per, "; "), si(r.SteadyWall), si(r.OneWall))
		}
	}
	if p := f.Poller; p != nil {
		iv, _ := time.ParseDuration(p.Interval)
		// CPU scales with polls per second: the target's fleet polls
		// 20 000 BMCs every 30 s.
		scaled := p.Cores
		if iv > 0 && p.BMCs > 0 {
			scaled = p.Cores * (pollerTargetBMCs / float64(p.BMCs)) * (iv.Seconds() / pollerTargetInterval.Seconds())
		}
		fmt.Fprintf(&b, "| **poller** CPU and RSS per BMC | %d %s bmcsim BMCs every %s, %s ms latency (median,p99), %s window | **%.2f cores, %.1f KB RSS per BMC**; %.0f polls/s, %.1f %% ok; schedule lag p50 ≤ %gs, p99 ≤ %gs | 20 000 BMCs at 30 s in ≤ 1 core: %.2f cores scaled by polls/s, %s; ≤ 50 KB per BMC: %s |\n",
			p.BMCs, p.Protocol, p.Interval, p.Latency, p.Measure, p.Cores, p.RSSPerBMCKB, p.PollsPerSec, p.OKPercent, p.LagP50, p.LagP99,
			scaled, verdict(scaled <= pollerCoresTarget), verdict(p.RSSPerBMCKB <= pollerRSSPerBMCTarget))
	}
	if l := f.Latency; l != nil {
		dl := "default queue configuration (batch_send_deadline " + l.Deadline + ")"
		if !l.DeadlineDefault {
			dl = "default queue configuration but batch_send_deadline " + l.Deadline + " (the default is " + l.DefaultDeadline + ")"
		}
		load := fmt.Sprintf("%d Redfish BMCs every %s (%.0f polls/s, about %s samples/s), %s ms latency; %s; %s; %d polls of %d watched BMCs, queried every %s",
			l.BMCs, l.Interval, l.PollsPerSecond, si(l.SamplesPerSec), l.BMCLatency, dl, l.Receiver, l.Polls, l.Watched, l.WatchEvery)
		target := "p99 ≤ 2 s with default batching: " + verdict(l.FromStart.P99 <= latencyP99Target)
		if !l.DeadlineDefault {
			target = "(not the default batching)"
		}
		if l.Unseen > 0 {
			load += fmt.Sprintf("; %d never seen", l.Unseen)
		}
		fmt.Fprintf(&b, "| **latency**: reading (poll start) → queryable in Prometheus | %s | **p50 %.2f s, p99 %.2f s** (max %.2f s) | %s |\n",
			load, l.FromStart.P50, l.FromStart.P99, l.FromStart.Max, target)
		fmt.Fprintf(&b, "| latency: poll end → queryable | the same | p50 %.2f s, p99 %.2f s (max %.2f s); the poll itself: p50 %.2f s, p99 %.2f s | |\n",
			l.FromEnd.P50, l.FromEnd.P99, l.FromEnd.Max, l.PollDuration.P50, l.PollDuration.P99)
	}
	fmt.Fprintf(&b, "\nOne run of each harness, one after another (%s in all); ratios are within the run.\n", f.Wall.Round(time.Second))
	return b.String()
}

// si writes n with a k or M suffix and three significant digits.
func si(n float64) string {
	switch {
	case n >= 1e6:
		return fmt.Sprintf("%.3g", n/1e6) + " M"
	case n >= 1e3:
		return fmt.Sprintf("%.3g", n/1e3) + " k"
	}
	return fmt.Sprintf("%.3g", n)
}
