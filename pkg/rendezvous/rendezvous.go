// Package rendezvous assigns keys to members by rendezvous (highest random
// weight) hashing: pollers share BMCs this way, gateway replicas partitions.
package rendezvous

import (
	"hash/fnv"
	"sort"
)

// Owners returns the rf members that own key, by rendezvous (highest
// random weight) hashing: each member scores hash(member, key) and the rf
// highest scores own it. When a member leaves, only the keys it owned move,
// each to the next-highest scorer; when one joins, it takes about 1/n of
// the keys from the others and nothing else moves. The result is in score
// order, highest first; rf larger than len(members) gives every member.
func Owners(key string, members []string, rf int) []string {
	if rf <= 0 || len(members) == 0 {
		return nil
	}
	type scored struct {
		m string
		s uint64
	}
	ss := make([]scored, len(members))
	for i, m := range members {
		ss[i] = scored{m, score(m, key)}
	}
	sort.Slice(ss, func(i, j int) bool {
		if ss[i].s != ss[j].s {
			return ss[i].s > ss[j].s
		}
		return ss[i].m < ss[j].m
	})
	if rf > len(ss) {
		rf = len(ss)
	}
	out := make([]string, rf)
	for i := range out {
		out[i] = ss[i].m
	}
	return out
}

// Owns reports whether self is among the rf owners of key.
func Owns(self, key string, members []string, rf int) bool {
	if rf >= len(members) {
		for _, m := range members {
			if m == self {
				return true
			}
		}
		return false
	}
	mine := score(self, key)
	higher := 0
	found := false
	for _, m := range members {
		if m == self {
			found = true
			continue
		}
		s := score(m, key)
		if s > mine || s == mine && m < self {
			higher++
			if higher >= rf {
				return false
			}
		}
	}
	return found
}

// score hashes a member and a key into a well-mixed 64-bit weight.
func score(member, key string) uint64 {
	h := fnv.New64a()
	_, _ = h.Write([]byte(member))
	_, _ = h.Write([]byte{0})
	_, _ = h.Write([]byte(key))
	// FNV's low bits mix poorly for short, similar inputs; finish with
	// splitmix64 so scores of similar member names are independent.
	z := h.Sum64() + 0x9e3779b97f4a7c15
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9
	z = (z ^ (z >> 27)) * 0x94d049bb133111eb
	return z ^ (z >> 31)
}
