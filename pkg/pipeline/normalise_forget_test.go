package pipeline

import (
	"testing"

	"github.com/prometheus/prometheus/prompb"
	"github.com/stretchr/testify/require"

	v1 "github.com/bmcstream/bmcstream/proto/bmcstream/v1"
)

// TestNormaliserForget drops every plan of one BMC, over each protocol and
// both cache generations, and no other BMC's; a protocol outside the enum
// (a hostile snapshot) is forgotten too.
func TestNormaliserForget(t *testing.T) {
	n, err := NewNormaliser(NormaliserOptions{})
	require.NoError(t, err)
	n.cacheSize = 2 // BMCs per generation
	var st Stats
	norm := func(id string, p v1.Protocol) {
		s := vendorSnap("Acme", p, v1.Reading{Name: "Inlet", Kind: kTemp, Unit: "Cel", Value: 20})
		s.BmcId = id
		n.Normalise(nil, s, []prompb.Label{{Name: "bmc", Value: id}}, &st)
	}
	plans := func(id string) int {
		c := 0
		for _, m := range []map[string]*bmcState{n.cur, n.prev} {
			if bs := m[id]; bs != nil {
				for i := range bs.plans {
					if bs.plans[i].Load() != nil {
						c++
					}
				}
			}
		}
		return c
	}
	norm("a", pRedfish)
	norm("a", pIPMI)
	norm("b", pRedfish)
	norm("c", pRedfish) // a's plans move to the previous generation
	require.Equal(t, 2, plans("a"))
	require.NotEmpty(t, n.prev)
	n.Forget("a")
	require.Zero(t, plans("a"))
	require.Equal(t, 1, plans("b"))
	require.Equal(t, 1, plans("c"))

	norm("d", v1.Protocol(7))
	norm("d", pRedfish)
	require.Equal(t, 2, plans("d"))
	n.Forget("d")
	require.Zero(t, plans("d"))
	require.Equal(t, 1, plans("b"))
}
