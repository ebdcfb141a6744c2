package model

import (
	"math"
	"math/rand/v2"
	"sort"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestBuiltinPersonalities(t *testing.T) {
	ps, err := Builtin()
	require.NoError(t, err)
	require.Equal(t, []string{"ami", "idrac", "ilo", "openbmc", "supermicro", "xcc"}, Names(ps))
	require.False(t, ps["openbmc"].Redfish.Legacy)
	require.True(t, ps["openbmc"].Redfish.Modern)
	require.False(t, ps["ami"].IPMI.DCMI)
	require.Equal(t, ps["ilo"].PSUs[0].Name, ps["ilo"].PSUs[1].Name)
}

func TestPersonalityValidation(t *testing.T) {
	_, err := ParsePersonality([]byte("name: x\nredfish: {legacy: true}\nsensors:\n  - {name: a, kind: fan, source: intake, ipmi: {number: 1}}\n  - {name: b, kind: fan, source: fan, ipmi: {number: 1}}\n"))
	require.ErrorContains(t, err, "source intake is a temperature, not a fan")
	require.ErrorContains(t, err, `ipmi.number 1 already used by "a"`)
	_, err = ParsePersonality([]byte("name: x\nredfsh: {}\n"))
	require.ErrorContains(t, err, "line 2")
}

func TestReadingsDeterministicAndPlausible(t *testing.T) {
	ps, err := Builtin()
	require.NoError(t, err)
	at := time.Date(2026, 11, 21, 12, 0, 0, 0, time.UTC)
	for _, name := range Names(ps) {
		t.Run(name, func(t *testing.T) {
			a := NewBMC("bmc-1", "r01", ps[name], Room{Seed: 7}, "admin", "pw")
			b := NewBMC("bmc-1", "r01", ps[name], Room{Seed: 7}, "admin", "pw")
			ra, rb := a.Readings(at), b.Readings(at)
			require.Equal(t, ra, rb, "same seed and time must read the same")
			for _, r := range ra {
				if r.State == "Absent" {
					require.Zero(t, r.Value)
					continue
				}
				switch r.Spec.Source {
				case SourceIntake:
					require.InDelta(t, 22, r.Value, 6)
				case SourceCPU:
					require.Greater(t, r.Value, 30.0)
				case SourceMargin:
					require.Less(t, r.Value, 0.0)
				case SourceFan:
					require.Greater(t, r.Value, 1000.0)
				case SourceChassisPower:
					require.InDelta(t, 320, r.Value, 190)
				}
			}
		})
	}
}

func TestValuesDriftSmoothly(t *testing.T) {
	room := Room{Seed: 1}
	at := time.Date(2026, 11, 21, 12, 0, 0, 0, time.UTC)
	prev := room.RackIntake("r1", at)
	var min, max = prev, prev
	for i := 1; i <= 120; i++ {
		v := room.RackIntake("r1", at.Add(time.Duration(i)*30*time.Second))
		require.Less(t, math.Abs(v-prev), 0.5, "30 s steps must be small")
		prev = v
		min, max = math.Min(min, v), math.Max(max, v)
	}
	require.Greater(t, max-min, 1.0, "an hour must show drift")
	require.NotEqual(t, room.RackIntake("r1", at), room.RackIntake("r2", at))
}

func TestFaultsChangeReadings(t *testing.T) {
	ps, _ := Builtin()
	at := time.Date(2026, 11, 21, 12, 0, 0, 0, time.UTC)
	b := NewBMC("x", "r1", ps["idrac"], Room{Seed: 3}, "u", "p")
	before := b.Intake(at)
	b.SetFaults(Faults{FanFailed: 2, IntakeOffset: 25})
	require.InDelta(t, before+25, b.Intake(at), 1e-9)
	var fan Reading
	for _, r := range b.Readings(at) {
		if r.Spec.Name == "System Board Fan2A" {
			fan = r
		}
		if r.Spec.Name == "System Board Inlet Temp" {
			require.Equal(t, "Critical", r.Health)
		}
	}
	require.Zero(t, fan.Value)
	require.Equal(t, "Critical", fan.Health)
	require.Equal(t, "Critical", b.Health(at))
}

func TestLatencyDistribution(t *testing.T) {
	ps, _ := Builtin()
	b := NewBMC("x", "r1", ps["ilo"], Room{}, "u", "p")
	require.Zero(t, b.Latency(rand.New(rand.NewPCG(1, 2))))
	b.SetFaults(Faults{LatencyMedianMs: 100, LatencyP99Ms: 1000})
	rng := rand.New(rand.NewPCG(1, 2))
	var d []float64
	for range 20000 {
		d = append(d, float64(b.Latency(rng))/float64(time.Millisecond))
	}
	sort.Float64s(d)
	require.InDelta(t, 100, d[len(d)/2], 10)
	require.InDelta(t, 1000, d[len(d)*99/100], 150)
}
