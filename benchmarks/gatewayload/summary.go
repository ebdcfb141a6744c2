package main

import (
	"encoding/json"
	"os"
)

// summary is one run's headline figures, written by --json for
// benchmarks/benchall, which puts them in the results table.
type summary struct {
	BMCs        int     `json:"bmcs"`
	Polls       int     `json:"polls"`
	Samples     int64   `json:"samples_received"`
	Errors      int64   `json:"receiver_errors"`
	Ceiling     float64 `json:"ceiling_samples_per_core_s"`
	CeilSharded float64 `json:"ceiling_shard_order_samples_per_core_s"`
	// Steady covers polls 2 and later; All includes the first, which
	// builds every BMC's normalisation plan.
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
	// Replicas is the run of several replicas (--replicas of 2 or more).
	Replicas *replicasSummary `json:"replicas,omitempty"`
}

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
