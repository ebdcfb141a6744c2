package main

import (
	"encoding/json"
	"os"

	"github.com/bmcstream/bmcstream/benchmarks/internal/figures"
)

// summary is one run's headline figures, written by --json.
type summary = figures.Gateway

func (r *result) summary() summary {
	steady, all := between(r.warm, r.end), between(r.cold, r.end)
	ceil := r.ceil.perCore()
	s := summary{BMCs: r.opts.BMCs, Polls: r.opts.Polls, Samples: r.end.received.Samples, Errors: r.end.received.Errors,
		Ceiling: ceil, CeilSharded: r.ceilSharded.perCore(),
		Steady: div(float64(steady.samples), steady.cpu), SteadyWall: div(float64(steady.samples), steady.wall),
		SteadyCores: div(steady.cpu, steady.wall), SteadyAllocs: steady.allocs,
		SteadyBytes: div(float64(steady.bytes), float64(steady.samples)),
		All:         div(float64(all.samples), all.cpu), PeakRSSBytes: float64(r.rssKB) * 1024, InfraCPUSecond: r.infraCPU}
	s.SteadyRatio, s.AllRatio = div(s.Steady, ceil), div(s.All, ceil)
	s.CeilingBMCs = r.ceilBMCs
	if sn := r.ceilSnappy; sn.samples > 0 {
		s.SnappyCeiling = sn.perCore()
		s.SnappyBodies = len(r.bodies)
		s.SnappySameBytes = r.snappySame
		s.SteadySnappyRatio = div(s.Steady, s.SnappyCeiling)
	}
	fp := firstPollOf(between(r.started, r.warm), steady)
	s.FirstPollCPU, s.FirstPollAtSteadyCPU = fp.cpu, fp.atSteady
	s.FirstPollExtraPerBMC = div(fp.extra, float64(r.opts.BMCs))
	s.NewCPU = r.started.cpu - r.cold.cpu
	if r.replicas != nil {
		rs := r.replicas.summary(r)
		s.Replicas = &rs
	}
	return s
}

// div is a/b, or 0 when b is 0: JSON has no infinity, and a window too
// short to take CPU time has no rate.
func div(a, b float64) float64 {
	if b == 0 {
		return 0
	}
	return a / b
}

// writeJSON writes the run's summary to path.
func (r *result) writeJSON(path string) error {
	b, err := json.MarshalIndent(r.summary(), "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(path, append(b, '\n'), 0o644)
}
