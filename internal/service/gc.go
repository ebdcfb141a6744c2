package service

import (
	"os"
	"runtime/debug"
)

// GatewayGCPercent is the gateway's garbage-collection target (GOGC) when
// the environment sets none. The gateway's heap is mostly long-lived
// per-series state (its series tables, dedup and staleness state), and it
// allocates little per sample once its plans are made, so collecting at
// half the live heap instead of Go's default of all of it costs few cycles
// while cutting peak RSS by about a fifth (benchmarks/RESULTS.md).
const GatewayGCPercent = 50

// DefaultGCPercent sets the garbage collector's target to percent unless
// the GOGC environment variable chose one, and reports the target in
// effect. Call it once, early in Main.
func DefaultGCPercent(percent int) int {
	if v, ok := os.LookupEnv("GOGC"); ok && v != "" {
		prev := debug.SetGCPercent(100)
		debug.SetGCPercent(prev)
		return prev
	}
	debug.SetGCPercent(percent)
	return percent
}
