package main

import (
	"context"
	"fmt"

	"github.com/bmcstream/bmcstream/benchmarks/internal/gwfleet"
	v1 "github.com/bmcstream/bmcstream/proto/bmcstream/v1"
)

// maxBMCs is the largest fleet benchAddress numbers: 198.18.0.0/15.
const maxBMCs = 1 << 17

// benchAddress is BMC i's inventory address: one of 198.18.0.0/15, the
// range set aside for benchmarking networks (RFC 2544). The gateway never
// dials a BMC (it reads snapshots from NATS), so nothing here listens or
// connects per BMC; unlike a loopback port per BMC, the addresses do not
// run out at 45 000 BMCs.
func benchAddress(i int) string {
	return fmt.Sprintf("198.%d.%d.%d", 18+i>>16, i>>8&255, i&255)
}

// newFleet is gwfleet's fleet of n BMCs with benchAddress addresses, in
// the inventory and in every snapshot. The harness and the infrastructure
// process each build it, the same.
func newFleet(n int, templates []*v1.Snapshot) (*gwfleet.Fleet, error) {
	if n < 1 || n > maxBMCs {
		return nil, fmt.Errorf("--bmcs must be from 1 to %d", maxBMCs)
	}
	f := gwfleet.New(n, templates)
	for i := range f.BMCs {
		f.BMCs[i].Address = benchAddress(i)
	}
	return f, nil
}

// loadFleet polls the templates and builds the fleet of n BMCs.
func loadFleet(ctx context.Context, n int) (*gwfleet.Fleet, error) {
	ts, err := gwfleet.Templates(ctx)
	if err != nil {
		return nil, err
	}
	return newFleet(n, ts)
}
