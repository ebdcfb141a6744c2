package model

import (
	"testing"

	"github.com/stretchr/testify/require"
)

// TestDiscrete checks the discrete sensors of every built-in personality:
// one status sensor per PSU and per processor and a fan redundancy sensor,
// on numbers no other sensor uses, and their states under the faults.
func TestDiscrete(t *testing.T) {
	ps, err := Builtin()
	require.NoError(t, err)
	for _, name := range Names(ps) {
		t.Run(name, func(t *testing.T) {
			p := ps[name]
			used := map[uint8]string{}
			cpus, fans := 0, 0
			for _, s := range p.Sensors {
				if !s.IPMI.Omit {
					used[s.IPMI.Number] = s.Name
				}
				if s.Source == SourceCPU {
					cpus = max(cpus, s.Index+1)
				}
				if s.Source == SourceFan {
					fans++
				}
			}
			ds := p.Discrete()
			roles := map[string]int{}
			for _, d := range ds {
				other, dup := used[d.Number]
				require.False(t, dup, "%s: number 0x%02x already used by %q", d.Name, d.Number, other)
				used[d.Number] = d.Name
				roles[d.Role]++
				require.Equal(t, d.Normal, d.Normal&d.Supported, d.Name)
				require.LessOrEqual(t, len(d.Name), 16, "an SDR ID string holds 16 bytes")
			}
			require.Equal(t, len(p.PSUs), roles[RolePSU])
			require.Equal(t, cpus, roles[RoleProcessor])
			require.Equal(t, map[bool]int{true: 1}[fans >= 2], roles[RoleFanRedundancy])
			require.Equal(t, ds, p.Discrete(), "stable")

			b := NewBMC("b", "r", p, Room{Seed: 1}, "u", "pw")
			for i := range ds {
				require.Equal(t, ds[i].Normal, b.DiscreteState(&ds[i]), "%s healthy", ds[i].Name)
			}
			b.SetFaults(Faults{PSUFailed: 2, PSUInputLost: 1, FanRedundancyLost: true})
			for i := range ds {
				d := &ds[i]
				want := d.Normal
				switch {
				case d.Role == RolePSU && d.Index == 1:
					want |= 1 << PSUFailure
				case d.Role == RolePSU && d.Index == 0:
					want |= 1 << PSUInputLost
				case d.Role == RoleFanRedundancy:
					want = 1 << RedundancyLost
				}
				require.Equal(t, want, b.DiscreteState(d), d.Name)
				require.Equal(t, want, want&d.Supported, "%s asserts only what its SDR supports", d.Name)
			}
		})
	}
	require.Equal(t, "PS1 Status", ps["idrac"].Discrete()[0].Name)
	require.Equal(t, uint8(EntityPowerSupply), ps["idrac"].Discrete()[0].Entity)
	require.Equal(t, uint8(1), ps["idrac"].Discrete()[0].Instance)
}
