package rendezvous

import (
	"fmt"
	"testing"

	"github.com/stretchr/testify/require"
)

func keys(n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = fmt.Sprintf("bmc-%05d", i)
	}
	return out
}

func TestOwnersBalanced(t *testing.T) {
	members := []string{"poller-a", "poller-b", "poller-c", "poller-d"}
	count := map[string]int{}
	for _, k := range keys(10000) {
		o := Owners(k, members, 1)
		require.Len(t, o, 1)
		require.True(t, Owns(o[0], k, members, 1))
		count[o[0]]++
	}
	for _, m := range members {
		require.InDelta(t, 2500, count[m], 250, "member %s", m)
	}
}

func TestOwnersMinimalChurn(t *testing.T) {
	before := []string{"a", "b", "c", "d", "e"}
	after := []string{"a", "b", "d", "e"} // c left
	moved := 0
	for _, k := range keys(5000) {
		ob, oa := Owners(k, before, 1)[0], Owners(k, after, 1)[0]
		if ob != oa {
			require.Equal(t, "c", ob, "only the leaver's keys move")
			moved++
		}
	}
	require.InDelta(t, 1000, moved, 150)

	joined := []string{"a", "b", "c", "d", "e", "f"}
	moved = 0
	for _, k := range keys(6000) {
		ob, oa := Owners(k, before, 1)[0], Owners(k, joined, 1)[0]
		if ob != oa {
			require.Equal(t, "f", oa, "keys only move to the joiner")
			moved++
		}
	}
	require.InDelta(t, 1000, moved, 150)
}

func TestReplicationFactor(t *testing.T) {
	members := []string{"a", "b", "c"}
	perMember := map[string]int{}
	for _, k := range keys(3000) {
		o := Owners(k, members, 2)
		require.Len(t, o, 2)
		require.NotEqual(t, o[0], o[1])
		for _, m := range members {
			require.Equal(t, m == o[0] || m == o[1], Owns(m, k, members, 2), "key %s member %s", k, m)
		}
		for _, m := range o {
			perMember[m]++
		}
	}
	for _, m := range members {
		require.InDelta(t, 2000, perMember[m], 200)
	}
	require.Equal(t, []string{"a"}, Owners("x", []string{"a"}, 2))
	require.Nil(t, Owners("x", nil, 1))
	require.False(t, Owns("z", "x", members, 5))
	require.True(t, Owns("a", "x", members, 5))
}

func BenchmarkOwns(b *testing.B) {
	members := []string{"a", "b", "c", "d", "e", "f", "g", "h"}
	b.ReportAllocs()
	for b.Loop() {
		Owns("c", "bmc-01234", members, 2)
	}
}
