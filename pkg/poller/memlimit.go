package poller

import (
	"math"
	"os"
	"runtime/debug"

	"github.com/bmcstream/bmcstream/pkg/inventory"
)

// AutoMemoryLimit, as Options.MemoryLimit, sizes the Go runtime's soft
// memory limit from the BMCs the poller owns (MemoryLimitFor), again at
// every change of ownership or inventory.
const AutoMemoryLimit = -1

// The automatic memory limit's budget: a base for the runtime, NATS and
// the publish buffer, and a share per owned BMC above what a BMC keeps live
// (benchmarks/pollerload: about 30 KiB per Redfish BMC, 17 KiB per IPMI
// BMC), leaving the collector a third of headroom or more: a limit at the
// live size would keep the collector running at its cap. Without a limit Go lets
// the heap grow to twice its live size between collections (GOGC=100);
// with it, collections come sooner as the process nears the limit, which
// costs a little CPU and keeps RSS near the live heap. The limit is soft: a
// poller that needs more than it gets more (the runtime caps the CPU its
// collector then spends at about half), it never fails for it.
//
// 48 KiB per Redfish BMC is a trade of memory for CPU measured at 10 000
// BMCs at 30 s: 53.8 KB of RSS per BMC for 0.69 cores; 40 KiB gave 50.9 KB
// for 1.34 cores (the collector running near its cap), no limit about
// twice the live heap.
const (
	memoryLimitBase       = 64 << 20
	memoryLimitRedfishBMC = 48 << 10
	memoryLimitIPMIBMC    = 26 << 10
)

// MemoryLimitFor is the automatic memory limit of a poller owning bmcs.
func MemoryLimitFor(bmcs []inventory.BMC) int64 {
	n := int64(memoryLimitBase)
	for _, b := range bmcs {
		switch b.Protocol {
		case inventory.Redfish:
			n += memoryLimitRedfishBMC
		case inventory.IPMI:
			n += memoryLimitIPMIBMC
		default:
			n += memoryLimitRedfishBMC + memoryLimitIPMIBMC
		}
	}
	return n
}

// GOMEMLIMITSet says the GOMEMLIMIT environment variable sets the limit: it
// wins over the poller's own.
func GOMEMLIMITSet() bool {
	v, ok := os.LookupEnv("GOMEMLIMIT")
	return ok && v != ""
}

// applyMemoryLimit sets the automatic limit for the owned BMCs, when
// Options.MemoryLimit asks for it and GOMEMLIMIT does not overrule it.
// Called with p.mu held.
func (p *Poller) applyMemoryLimit() {
	if p.opts.MemoryLimit != AutoMemoryLimit || GOMEMLIMITSet() {
		return
	}
	owned := make([]inventory.BMC, 0, len(p.workers))
	for _, w := range p.workers {
		owned = append(owned, w.bmc)
	}
	lim := MemoryLimitFor(owned)
	if prev := debug.SetMemoryLimit(lim); prev != lim {
		p.logger.Info("memory limit set for the owned BMCs", "bmcs", len(owned), "limit_mib", math.Round(float64(lim)/(1<<20)))
	}
}
