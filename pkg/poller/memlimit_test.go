package poller

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/bmcstream/bmcstream/pkg/inventory"
)

func TestMemoryLimitFor(t *testing.T) {
	require.Equal(t, int64(64<<20), MemoryLimitFor(nil))
	bmcs := []inventory.BMC{{Protocol: inventory.Redfish}, {Protocol: inventory.IPMI}, {Protocol: inventory.Both}}
	require.Equal(t, int64(64<<20+2*(48<<10)+2*(26<<10)), MemoryLimitFor(bmcs))
	// 10 000 Redfish BMCs: about 533 MiB, 54.6 KB per BMC with the base.
	many := make([]inventory.BMC, 10000)
	for i := range many {
		many[i].Protocol = inventory.Redfish
	}
	require.InDelta(t, 533, float64(MemoryLimitFor(many))/(1<<20), 1)
}
