package model

import (
	"fmt"
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
	require.Equal(t, []string{"ami", "hgx", "idrac", "ilo", "ilo4", "openbmc", "supermicro", "xcc"}, Names(ps))
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

// TestLayoutValidation checks that every sensor a personality shows on
// Redfish has a resource to appear in under its layout.
func TestLayoutValidation(t *testing.T) {
	for _, tc := range []struct{ name, doc, err string }{
		{"subsystems carry no voltage", "name: x\nredfish: {modern: true, no_sensors: true}\nsensors:\n  - {name: v, kind: voltage, source: voltage, ipmi: {omit: true}}\n",
			"no resource carries a voltage reading"},
		{"chassis power needs EnvironmentMetrics", "name: x\nredfish: {modern: true, no_sensors: true}\nsensors:\n  - {name: p, kind: power, source: chassis_power, ipmi: {omit: true}}\n",
			"no resource carries a chassis_power reading"},
		{"sensors_omit needs legacy", "name: x\nredfish: {modern: true}\nsensors:\n  - {name: f, kind: fan, source: fan, sensors_omit: true, ipmi: {omit: true}}\n",
			"sensors_omit needs both legacy and a Sensors collection"},
		{"ilo4 is legacy only", "name: x\nredfish: {legacy: true, modern: true, style: ilo4}\n", "style ilo4 is a legacy-only service"},
		{"ilo4 has no PSU input", "name: x\nredfish: {legacy: true, style: ilo4}\npsus: [{name: p}]\nsensors:\n  - {name: i, kind: power, source: psu_input, ipmi: {omit: true}}\n",
			"report no input power"},
		{"unknown style", "name: x\nredfish: {legacy: true, style: ilo3}\n", `unknown style "ilo3"`},
		{"no_sensors needs modern", "name: x\nredfish: {legacy: true, no_sensors: true}\n", "no_sensors needs modern"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ParsePersonality([]byte(tc.doc))
			require.ErrorContains(t, err, tc.err)
		})
	}
	_, err := ParsePersonality([]byte("name: x\nredfish: {modern: true, no_sensors: true, environment_metrics: true}\npsus: [{name: p}]\nsensors:\n" +
		"  - {name: t, kind: temperature, source: gpu_inlet, ipmi: {omit: true}}\n  - {name: f, kind: fan, source: fan, ipmi: {omit: true}}\n" +
		"  - {name: p, kind: power, source: chassis_power, ipmi: {omit: true}}\n  - {name: i, kind: power, source: psu_input, ipmi: {omit: true}}\n"))
	require.NoError(t, err, "a subsystem-only layout carries temperatures, fans, chassis and PSU power")
}

// TestInletsAreNotTheRoom checks that the inlets inside a chassis read
// above the room's air, GPU inlets most, and follow it when it warms.
func TestInletsAreNotTheRoom(t *testing.T) {
	ps, err := Builtin()
	require.NoError(t, err)
	at := time.Date(2026, 11, 21, 12, 0, 0, 0, time.UTC)
	b := NewBMC("bmc-1", "r01", ps["hgx"], Room{Seed: 7}, "u", "p")
	check := func(offset float64) {
		room := b.Intake(at)
		seen := map[string]int{}
		for _, r := range b.Readings(at) {
			switch r.Spec.Source {
			case SourceIntake:
				require.InDelta(t, room, r.Value, 0.05)
			case SourceGPUInlet:
				require.Greater(t, r.Value, room+5, r.Spec.Name)
			case SourceBoardInlet, SourcePSUInlet:
				require.Greater(t, r.Value, room, r.Spec.Name)
				require.Less(t, r.Value, room+8, r.Spec.Name)
			default:
				continue
			}
			require.Equal(t, "Intake", r.Spec.Context, "hgx marks every temperature Intake")
			seen[r.Spec.Source]++
		}
		require.Equal(t, map[string]int{SourceIntake: 1, SourceGPUInlet: 4, SourceBoardInlet: 1, SourcePSUInlet: 2}, seen)
		require.Greater(t, room, 15+offset)
	}
	check(0)
	b.SetFaults(Faults{IntakeOffset: 20})
	check(20)
}

// TestPSUFailure checks the PSUFailed and PSUInputLost faults: the supply
// reads nothing and is critical, the others carry the whole load.
func TestPSUFailure(t *testing.T) {
	ps, err := Builtin()
	require.NoError(t, err)
	at := time.Date(2026, 11, 21, 12, 0, 0, 0, time.UTC)
	for _, name := range Names(ps) {
		for _, f := range []Faults{{PSUFailed: 1}, {PSUInputLost: 1}} {
			t.Run(fmt.Sprintf("%s/%+v", name, f), func(t *testing.T) {
				psuDownCase(t, NewBMC("bmc-1", "r01", ps[name], Room{Seed: 7}, "u", "p"), f, at)
			})
		}
	}
}

func psuDownCase(t *testing.T, b *BMC, f Faults, at time.Time) {
	power := b.ChassisPower(at)
	b.SetFaults(f)
	require.True(t, b.PSUDown(0))
	require.False(t, b.PSUDown(1))
	require.Equal(t, f.PSUInputLost == 1, b.PSUInputLost(0))
	for _, r := range b.Readings(at) {
		if r.Spec.Source != SourcePSUInput && r.Spec.Source != SourcePSUOutput {
			continue
		}
		if r.Spec.Index == 0 {
			require.Zero(t, r.Value, r.Spec.Name)
			require.Equal(t, "Critical", r.Health, r.Spec.Name)
			continue
		}
		want := power / float64(len(b.Personality.PSUs)-1)
		if r.Spec.Source == SourcePSUOutput {
			want *= 0.94
		}
		require.InDelta(t, want, r.Value, 1, r.Spec.Name)
		require.Equal(t, "OK", r.Health, r.Spec.Name)
	}
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
