package main

import (
	"cmp"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/bmcstream/bmcstream/benchmarks/internal/figures"
)

// results is one run of every harness; the harnesses' figures are decoded
// with unknown fields refused, so a figure a harness adds without benchall
// knowing it fails the run.
type results struct {
	Gateway    *figures.Gateway // gatewayload, 10 000 BMCs by default
	Gateway50k *figures.Gateway // gatewayload at 50 000 BMCs
	Poller     *figures.Poller  // pollerload, Redfish
	PollerIPMI *figures.Poller  // pollerload --protocol=ipmi
	Latency    *figures.Latency
	// Failed is, per step that failed, the last line it wrote.
	Failed map[string]string
}

// fail records that step name failed, with the last line it wrote.
func (f *results) fail(name, why string) {
	if f.Failed == nil {
		f.Failed = map[string]string{}
	}
	f.Failed[name] = why
}

// Targets, as the table checks them: issue 14's first (gateway core and
// poller memory), then the standing ones.
const (
	gatewayRSSPerBMCTarget    = 48.0 // KB, peak, at 10 000 and at 50 000 BMCs × 3 polls
	gatewayRatioTarget        = 0.60 // steady, of the gogo+snappy ceiling, same run
	firstPollPerBMCTarget     = 0.2e-3
	pollerRSSPerBMCTarget     = 50.0 // KB, Redfish
	pollerCoresTarget         = 0.5  // cores for pollerTargetBMCs Redfish BMCs at pollerTargetInterval
	pollerTargetBMCs          = 10000
	pollerTargetInterval      = 30 * time.Second
	pollerIPMIRSSPerBMCTarget = 20.0 // KB
	allocsPerSampleTarget     = 0.2  // gateway steady
	gatewayPerCoreTarget      = 1e6  // samples/s per core, steady state
	latencyP99Target          = 2.0  // seconds, reading → queryable, default batching
)

func verdict(ok bool) string {
	if ok {
		return "met"
	}
	return "**not met**"
}

// table renders the runs as two markdown tables: the targets, one row
// each, then a row per harness run with its load and details. Every
// figure is the median over the runs and, over more than one, the range in
// brackets.
func table(runs []*results, wall time.Duration) string {
	var b strings.Builder
	// first holds each harness's figures from the first run that has them
	// (the loads and labels; every figure printed is over all runs).
	first := &results{}
	var failures []string
	for i := len(runs) - 1; i >= 0; i-- {
		r := runs[i]
		first.Gateway = cmp.Or(r.Gateway, first.Gateway)
		first.Gateway50k = cmp.Or(r.Gateway50k, first.Gateway50k)
		first.Poller = cmp.Or(r.Poller, first.Poller)
		first.PollerIPMI = cmp.Or(r.PollerIPMI, first.PollerIPMI)
		first.Latency = cmp.Or(r.Latency, first.Latency)
	}
	for i, r := range runs {
		for _, name := range slices.Sorted(maps.Keys(r.Failed)) {
			failures = append(failures, fmt.Sprintf("run %d: %s failed: %s", i+1, name, r.Failed[name]))
		}
	}
	get := func(f func(*results) (float64, bool)) stat { return over(runs, f) }

	fmt.Fprintln(&b, "| target figure | load | result | target |")
	fmt.Fprintln(&b, "|---|---|---|---|")
	// notRun is a target row without figures: its step failed in every
	// run, or did not run.
	notRun := func(step, what, load, target string) {
		result := "not run"
		for _, r := range runs {
			if why, ok := r.Failed[step]; ok {
				result = "**failed**: " + strings.ReplaceAll(why, "|", "/")
			}
		}
		fmt.Fprintf(&b, "| %s | %s | %s | %s: not measured |\n", what, load, result, target)
	}
	rssRow := func(g *figures.Gateway, which func(*results) *figures.Gateway, size, step string) {
		what := "gateway peak RSS per BMC, " + size
		if g == nil {
			notRun(step, what, size+" BMCs × 3 polls", "≤ 48 KB")
			return
		}
		s := get(func(r *results) (float64, bool) {
			if g := which(r); g != nil && g.BMCs > 0 {
				return g.PeakRSSBytes / 1024 / float64(g.BMCs), true
			}
			return 0, false
		})
		peak := get(func(r *results) (float64, bool) {
			if g := which(r); g != nil {
				return g.PeakRSSBytes / 1e9, true
			}
			return 0, false
		})
		fmt.Fprintf(&b, "| %s | %d BMCs × %d polls (gatewayload) | **%s KB** (peak %s GB) | ≤ %.0f KB: %s |\n",
			what, g.BMCs, g.Polls, s.fmt(f0), peak.fmt(f2), gatewayRSSPerBMCTarget, verdict(s.med <= gatewayRSSPerBMCTarget))
	}
	rssRow(first.Gateway, func(r *results) *figures.Gateway { return r.Gateway }, "10 000", "gatewayload")
	rssRow(first.Gateway50k, func(r *results) *figures.Gateway { return r.Gateway50k }, "50 000", "gatewayload-50k")
	gw := func(f func(*figures.Gateway) float64) stat {
		return get(func(r *results) (float64, bool) {
			if r.Gateway == nil {
				return 0, false
			}
			return f(r.Gateway), true
		})
	}
	if g := first.Gateway; g != nil {
		load := fmt.Sprintf("%d BMCs × %d polls, steady (polls 2-%d); the ceilings in the same run", g.BMCs, g.Polls, g.Polls)
		ratio := gw(func(g *figures.Gateway) float64 { return 100 * g.SteadyRatio })
		fmt.Fprintf(&b, "| gateway steady throughput, of the gogo+snappy ceiling | %s | **%s %%** (%s of %s samples/s per core) | ≥ %.0f %%: %s |\n",
			load, ratio.fmt(f1), gw(func(g *figures.Gateway) float64 { return g.Steady }).fmt(si),
			gw(func(g *figures.Gateway) float64 { return g.Ceiling }).fmt(si), 100*gatewayRatioTarget, verdict(ratio.med >= 100*gatewayRatioTarget))
		if g.SnappyCeiling > 0 {
			sn := gw(func(g *figures.Gateway) float64 { return 100 * g.SteadySnappyRatio })
			fmt.Fprintf(&b, "| gateway steady throughput, of a snappy-only ceiling | the same; snappy.Encode over %d of the uncompressed request bodies the gateway sent (a uniform sample) | **%s %%** (of %s samples/s per core) | reported |\n",
				g.SnappyBodies, sn.fmt(f1), gw(func(g *figures.Gateway) float64 { return g.SnappyCeiling }).fmt(si))
		} else {
			notRun("gatewayload", "gateway steady throughput, of a snappy-only ceiling", "the same", "reported")
		}
		fp := gw(func(g *figures.Gateway) float64 { return 1e3 * g.FirstPollExtraPerBMC })
		fmt.Fprintf(&b, "| first poll of a BMC (plan build), CPU per BMC | the same, poll 1; derived: gateway CPU from Run until every first poll is acked, less what its samples cost at the steady rate, ÷ BMCs | **%s ms** | ≤ %.1f ms: %s |\n",
			fp.fmt(f3), 1e3*firstPollPerBMCTarget, verdict(fp.med <= 1e3*firstPollPerBMCTarget))
	} else {
		notRun("gatewayload", "gateway steady throughput, of the gogo+snappy ceiling", "10 000 BMCs × 3 polls", "≥ 60 %")
		notRun("gatewayload", "gateway steady throughput, of a snappy-only ceiling", "the same", "reported")
		notRun("gatewayload", "first poll of a BMC (plan build), CPU per BMC", "the same", "≤ 0.2 ms")
	}
	pl := func(which func(*results) *figures.Poller, f func(*figures.Poller) float64) stat {
		return get(func(r *results) (float64, bool) {
			if p := which(r); p != nil {
				return f(p), true
			}
			return 0, false
		})
	}
	redfish := func(r *results) *figures.Poller { return r.Poller }
	ipmi := func(r *results) *figures.Poller { return r.PollerIPMI }
	if p := first.Poller; p != nil {
		rss := pl(redfish, func(p *figures.Poller) float64 { return p.RSSPerBMCKB })
		fmt.Fprintf(&b, "| poller RSS per Redfish BMC | %s (pollerload) | **%s KB** | ≤ %.0f KB: %s |\n",
			pollerLoad(p), rss.fmt(f1), pollerRSSPerBMCTarget, verdict(rss.med <= pollerRSSPerBMCTarget))
		cores := pl(redfish, func(p *figures.Poller) float64 { return p.Cores })
		scaled := pl(redfish, scaledCores)
		how := fmt.Sprintf("%s cores measured, scaled by polls/s to %d BMCs every %s", cores.fmt(f2), pollerTargetBMCs, pollerTargetInterval)
		// an interval that does not parse is 0: not the target's
		if iv, _ := time.ParseDuration(p.Interval); p.BMCs == pollerTargetBMCs && iv == pollerTargetInterval {
			how = "the target's load"
		}
		fmt.Fprintf(&b, "| poller CPU, %d Redfish BMCs at %s | the same | **%s cores** (%s) | ≤ %.1f core: %s |\n",
			pollerTargetBMCs, pollerTargetInterval, scaled.fmt(f2), how, pollerCoresTarget, verdict(scaled.med <= pollerCoresTarget))
	} else {
		notRun("pollerload", "poller RSS per Redfish BMC", "Redfish bmcsim fleet", "≤ 50 KB")
		notRun("pollerload", fmt.Sprintf("poller CPU, %d Redfish BMCs at %s", pollerTargetBMCs, pollerTargetInterval), "the same", "≤ 0.5 core")
	}
	if p := first.PollerIPMI; p != nil {
		rss := pl(ipmi, func(p *figures.Poller) float64 { return p.RSSPerBMCKB })
		fmt.Fprintf(&b, "| poller RSS per IPMI BMC | %s (pollerload) | **%s KB** (%s cores) | ≤ %.0f KB: %s |\n",
			pollerLoad(p), rss.fmt(f1), pl(ipmi, func(p *figures.Poller) float64 { return p.Cores }).fmt(f2),
			pollerIPMIRSSPerBMCTarget, verdict(rss.med <= pollerIPMIRSSPerBMCTarget))
	} else {
		notRun("pollerload-ipmi", "poller RSS per IPMI BMC", "IPMI bmcsim fleet", "≤ 20 KB")
	}
	if g := first.Gateway; g != nil {
		a := gw(func(g *figures.Gateway) float64 { return g.SteadyAllocs })
		fmt.Fprintf(&b, "| allocations per sample, gateway steady | %d BMCs × %d polls, steady | **%s** | ≤ %.1f: %s |\n",
			g.BMCs, g.Polls, a.fmt(f2), allocsPerSampleTarget, verdict(a.med <= allocsPerSampleTarget))
	} else {
		notRun("gatewayload", "allocations per sample, gateway steady", "10 000 BMCs × 3 polls", "≤ 0.2")
	}

	fmt.Fprintln(&b)
	fmt.Fprintln(&b, "| what | load | result | target |")
	fmt.Fprintln(&b, "|---|---|---|---|")
	gatewayRows(&b, runs, func(r *results) *figures.Gateway { return r.Gateway }, true)
	gatewayRows(&b, runs, func(r *results) *figures.Gateway { return r.Gateway50k }, false)
	for _, which := range []func(*results) *figures.Poller{redfish, ipmi} {
		p := which(first)
		if p == nil {
			continue
		}
		f := func(f func(*figures.Poller) float64) stat { return pl(which, f) }
		fmt.Fprintf(&b, "| **poller** CPU and RSS per BMC | %s | **%s cores, %s KB RSS per BMC**; %s polls/s, %s %% ok; schedule lag p50 ≤ %s s, p99 ≤ %s s | |\n",
			pollerLoad(p), f(func(p *figures.Poller) float64 { return p.Cores }).fmt(f2), f(func(p *figures.Poller) float64 { return p.RSSPerBMCKB }).fmt(f1),
			f(func(p *figures.Poller) float64 { return p.PollsPerSec }).fmt(f0), f(func(p *figures.Poller) float64 { return p.OKPercent }).fmt(f1),
			f(func(p *figures.Poller) float64 { return p.LagP50 }).fmt(g3), f(func(p *figures.Poller) float64 { return p.LagP99 }).fmt(g3))
	}
	if l := first.Latency; l != nil {
		lat := func(f func(*figures.Latency) float64) stat {
			return get(func(r *results) (float64, bool) {
				if r.Latency == nil {
					return 0, false
				}
				return f(r.Latency), true
			})
		}
		dl := "default queue configuration (batch_send_deadline " + l.Deadline + ")"
		if !l.DeadlineDefault {
			dl = "default queue configuration but batch_send_deadline " + l.Deadline + " (the default is " + l.DefaultDeadline + ")"
		}
		load := fmt.Sprintf("%d Redfish BMCs every %s (%.0f polls/s, about %s samples/s), %s ms latency; %s; %s; %d polls of %d watched BMCs, queried every %s",
			l.BMCs, l.Interval, l.PollsPerSecond, si(l.SamplesPerSec), l.BMCLatency, dl, l.Receiver, l.Polls, l.Watched, l.WatchEvery)
		p99 := lat(func(l *figures.Latency) float64 { return l.FromStart.P99 })
		target := "p99 ≤ 2 s with default batching: " + verdict(p99.med <= latencyP99Target)
		if !l.DeadlineDefault {
			target = "(not the default batching)"
		}
		if u := lat(func(l *figures.Latency) float64 { return float64(l.Unseen) }); u.hi > 0 {
			load += "; " + u.fmt(f0) + " never seen"
		}
		fmt.Fprintf(&b, "| **latency**: reading (poll start) → queryable in Prometheus | %s | **p50 %s s, p99 %s s** (max %s s) | %s |\n",
			load, lat(func(l *figures.Latency) float64 { return l.FromStart.P50 }).fmt(f2), p99.fmt(f2),
			lat(func(l *figures.Latency) float64 { return l.FromStart.Max }).fmt(f2), target)
		fmt.Fprintf(&b, "| latency: poll end → queryable | the same | p50 %s s, p99 %s s (max %s s); the poll itself: p50 %s s, p99 %s s | |\n",
			lat(func(l *figures.Latency) float64 { return l.FromEnd.P50 }).fmt(f2), lat(func(l *figures.Latency) float64 { return l.FromEnd.P99 }).fmt(f2),
			lat(func(l *figures.Latency) float64 { return l.FromEnd.Max }).fmt(f2), lat(func(l *figures.Latency) float64 { return l.PollDuration.P50 }).fmt(f2),
			lat(func(l *figures.Latency) float64 { return l.PollDuration.P99 }).fmt(f2))
	}
	if len(failures) > 0 {
		fmt.Fprintf(&b, "\nFailed: %s.\n", strings.Join(failures, "; "))
	}
	if len(runs) == 1 {
		fmt.Fprintf(&b, "\nOne run of each harness, one after another (%s in all); ratios are within the run.\n", wall.Round(time.Second))
	} else {
		fmt.Fprintf(&b, "\n%d runs of each harness, the harnesses one after another in each (%s in all); every figure is the median over the runs with the range in brackets; ratios are taken within each run, then summarised.\n",
			len(runs), wall.Round(time.Second))
	}
	return b.String()
}

// gatewayRows writes the ceiling and gateway rows of one gatewayload
// harness run (the 10 000-BMC run with its replicas, or the 50 000-BMC run).
func gatewayRows(b *strings.Builder, runs []*results, which func(*results) *figures.Gateway, main bool) {
	var g *figures.Gateway
	for _, r := range runs {
		if g = which(r); g != nil {
			break
		}
	}
	if g == nil {
		return
	}
	f := func(f func(*figures.Gateway) float64) stat {
		return over(runs, func(r *results) (float64, bool) {
			if g := which(r); g != nil {
				return f(g), true
			}
			return 0, false
		})
	}
	size := ""
	if !main {
		size = fmt.Sprintf(", %d BMCs", g.BMCs)
	}
	ceilBMCs := g.CeilingBMCs
	if ceilBMCs == 0 {
		ceilBMCs = g.BMCs
	}
	load := fmt.Sprintf("one poll of %d BMCs (gwfleet, about 270 samples per BMC), one goroutine", ceilBMCs)
	fmt.Fprintf(b, "| **ceiling**%s: remote-write encode (gogo marshal + snappy) | %s | **%s samples/s per core** (in the queue's shard order: %s, %s %%) | |\n",
		size, load, f(func(g *figures.Gateway) float64 { return g.Ceiling }).fmt(si), f(func(g *figures.Gateway) float64 { return g.CeilSharded }).fmt(si),
		f(func(g *figures.Gateway) float64 { return 100 * g.CeilSharded / g.Ceiling }).fmt(f0))
	if g.SnappyCeiling > 0 {
		same := "compressed again to the sizes sent"
		if !g.SnappySameBytes {
			same = "compressed again to **other** sizes than sent"
		}
		fmt.Fprintf(b, "| ceiling%s: snappy alone | %d of the uncompressed request bodies the gateway sent (a uniform sample), %s | %s samples/s per core | |\n",
			size, g.SnappyBodies, same, f(func(g *figures.Gateway) float64 { return g.SnappyCeiling }).fmt(si))
	}
	load = fmt.Sprintf("%d BMCs × %d polls from `BMC_RAW` to a decoding receiver, %s samples, %s errors", g.BMCs, g.Polls,
		f(func(g *figures.Gateway) float64 { return float64(g.Samples) }).fmt(si), f(func(g *figures.Gateway) float64 { return float64(g.Errors) }).fmt(f0))
	steady := f(func(g *figures.Gateway) float64 { return g.Steady })
	fmt.Fprintf(b, "| **gateway**%s end to end, steady (polls 2-%d) | %s | **%s samples/s per core, %s %% of the ceiling**; %s cores busy, %s samples/s wall; %s allocs and %s bytes per sample | ≥ 1 M per core: %s |\n",
		size, g.Polls, load, steady.fmt(si), f(func(g *figures.Gateway) float64 { return 100 * g.SteadyRatio }).fmt(f1),
		f(func(g *figures.Gateway) float64 { return g.SteadyCores }).fmt(f2), f(func(g *figures.Gateway) float64 { return g.SteadyWall }).fmt(si),
		f(func(g *figures.Gateway) float64 { return g.SteadyAllocs }).fmt(f2), f(func(g *figures.Gateway) float64 { return g.SteadyBytes }).fmt(f1),
		verdict(steady.med >= gatewayPerCoreTarget))
	fmt.Fprintf(b, "| gateway%s, all polls (the first builds every BMC's plan) | the same | %s samples/s per core, %s %% of the ceiling; first poll %s ms of CPU per BMC beyond the steady rate; peak RSS %s GB (%s KB per BMC) | |\n",
		size, f(func(g *figures.Gateway) float64 { return g.All }).fmt(si), f(func(g *figures.Gateway) float64 { return 100 * g.AllRatio }).fmt(f1),
		f(func(g *figures.Gateway) float64 { return 1e3 * g.FirstPollExtraPerBMC }).fmt(f3),
		f(func(g *figures.Gateway) float64 { return g.PeakRSSBytes / 1e9 }).fmt(f2), f(func(g *figures.Gateway) float64 { return g.PeakRSSBytes / 1024 / float64(g.BMCs) }).fmt(f0))
	if r := g.Replicas; r != nil {
		rf := func(f func(*figures.GatewayReplicas) float64) stat {
			return over(runs, func(rs *results) (float64, bool) {
				if g := which(rs); g != nil && g.Replicas != nil {
					return f(g.Replicas), true
				}
				return 0, false
			})
		}
		var per []string
		for i, p := range r.PerReplica {
			pf := func(f func(*figures.Replica) float64) stat {
				return rf(func(r *figures.GatewayReplicas) float64 {
					if i < len(r.PerReplica) {
						return f(&r.PerReplica[i])
					}
					return 0
				})
			}
			per = append(per, fmt.Sprintf("%s %d partitions, %d BMCs, %s %% of the samples at %s per core, %s GB RSS",
				p.ID, p.Partitions, p.BMCs, pf(func(p *figures.Replica) float64 { return 100 * p.Share }).fmt(f0),
				pf(func(p *figures.Replica) float64 { return p.Steady }).fmt(si), pf(func(p *figures.Replica) float64 { return p.PeakRSSBytes / 1e9 }).fmt(f2)))
		}
		load = fmt.Sprintf("the same load on a fresh stream of %d partitions, %s samples, %s errors, %s leases lost", r.Partitions,
			rf(func(r *figures.GatewayReplicas) float64 { return float64(r.Samples) }).fmt(si), rf(func(r *figures.GatewayReplicas) float64 { return float64(r.Errors) }).fmt(f0),
			rf(func(r *figures.GatewayReplicas) float64 { return float64(r.LeasesLost) }).fmt(f0))
		dd, oo := rf(func(r *figures.GatewayReplicas) float64 { return float64(r.DedupRejected) }), rf(func(r *figures.GatewayReplicas) float64 { return float64(r.OutOfOrder) })
		if dd.hi > 0 || oo.hi > 0 {
			load += fmt.Sprintf(", %s snapshots refused as duplicates and %s samples as out of order", dd.fmt(f0), oo.fmt(f0))
		}
		ofOne := rf(func(r *figures.GatewayReplicas) float64 { return r.SteadyOfOne })
		fmt.Fprintf(b, "| **gateway, %d replicas** (one process each), steady | %s | **%s samples/s per core together, %s × one replica's** (all polls %s ×), so %d replicas with a core each have %s × the capacity of one; %s; wall %s samples/s (one replica: %s) on CPUs shared with NATS and the receiver | |\n",
			r.Replicas, load, rf(func(r *figures.GatewayReplicas) float64 { return r.Steady }).fmt(si), ofOne.fmt(f2),
			rf(func(r *figures.GatewayReplicas) float64 { return r.AllOfOne }).fmt(f2), r.Replicas,
			rf(func(r *figures.GatewayReplicas) float64 { return float64(r.Replicas) * r.SteadyOfOne }).fmt(f2),
			strings.Join(per, "; "), rf(func(r *figures.GatewayReplicas) float64 { return r.SteadyWall }).fmt(si),
			rf(func(r *figures.GatewayReplicas) float64 { return r.OneWall }).fmt(si))
	}
}

// pollerLoad describes a pollerload run's load.
func pollerLoad(p *figures.Poller) string {
	return fmt.Sprintf("%d %s bmcsim BMCs every %s, %s ms latency (median,p99), %s window", p.BMCs, p.Protocol, p.Interval, p.Latency, p.Measure)
}

// scaledCores is a Redfish run's CPU scaled by polls per second to the
// target's fleet (pollerTargetBMCs every pollerTargetInterval): CPU grows
// with the polls made.
func scaledCores(p *figures.Poller) float64 {
	// an interval that does not parse is 0, which scales nothing (below)
	iv, _ := time.ParseDuration(p.Interval)
	if iv <= 0 || p.BMCs <= 0 {
		return p.Cores
	}
	return p.Cores * (pollerTargetBMCs / float64(p.BMCs)) * (iv.Seconds() / pollerTargetInterval.Seconds())
}

func f0(x float64) string { return fmt.Sprintf("%.0f", x) }
func f1(x float64) string { return fmt.Sprintf("%.1f", x) }
func f2(x float64) string { return fmt.Sprintf("%.2f", x) }
func f3(x float64) string { return fmt.Sprintf("%.3f", x) }
func g3(x float64) string { return fmt.Sprintf("%.3g", x) }

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
