package main

import (
	"fmt"
	"strings"
	"time"

	"github.com/bmcstream/bmcstream/benchmarks/internal/figures"
)

// results is one benchall run; the harnesses' figures are decoded with
// unknown fields refused, so a figure a harness adds without benchall
// knowing it fails the run.
type results struct {
	Gateway *figures.Gateway
	Poller  *figures.Poller
	Latency *figures.Latency
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
func (f *results) table() string {
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
			if r.DedupRejected > 0 || r.OutOfOrder > 0 {
				load += fmt.Sprintf(", %d snapshots refused as duplicates and %d samples as out of order", r.DedupRejected, r.OutOfOrder)
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
