package pipeline

import (
	"fmt"
	"math"
	"regexp"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	simipmi "github.com/bmcstream/bmcstream/pkg/bmcsim/ipmi"
	"github.com/bmcstream/bmcstream/pkg/bmcsim/model"
	"github.com/bmcstream/bmcstream/pkg/series"
)

// physicalSeries are the value series of physical quantities by their
// name and labels, base labels left out: `bmc_fan_speed_rpm{fan="fan1"}`.
func physicalSeries(t *testing.T, ss []series.Sample) map[string]float64 {
	t.Helper()
	out := map[string]float64{}
	for _, s := range ss {
		name := s.Series.Labels.Get("__name__")
		if !isPhysical(name) {
			continue
		}
		var b strings.Builder
		b.WriteString(name)
		b.WriteByte('{')
		first := true
		for _, l := range s.Series.Labels.Prom() {
			switch l.Name {
			case "__name__", "bmc", "rack", "site":
				continue
			}
			if !first {
				b.WriteByte(',')
			}
			first = false
			fmt.Fprintf(&b, "%s=%q", l.Name, l.Value)
		}
		b.WriteByte('}')
		_, dup := out[b.String()]
		require.False(t, dup, "series %s twice in one snapshot", b.String())
		out[b.String()] = s.V
	}
	return out
}

// isPhysical reports whether a metric is a reading's value series.
func isPhysical(name string) bool {
	for c := class(1); c < numClasses; c++ {
		for _, b := range classes[c].bases {
			if name == metricName(c, b) {
				return true
			}
		}
	}
	return false
}

// hpePrefix is HPE's position prefix ("10-Chipset"), stripped when a
// letter follows.
var hpePrefix = regexp.MustCompile(`^\d{1,3}-([A-Za-z])`)

// rotor is the rotor letter of a fan name ("Fan1A").
var rotor = regexp.MustCompile(`\d([A-Za-z])$`)

// truthKey is the series a model sensor must feed, from the model's own
// knowledge of what it is (its source and index), not from its name.
func truthKey(spec *model.SensorSpec, ratioFan bool) string {
	ctxSeries := func(metric, ctx, sensor string) string {
		return fmt.Sprintf(`%s{context=%q,sensor=%q}`, metric, ctx, sensor)
	}
	n := spec.Index + 1
	slugged := slug(sdrID(strings.TrimSpace(spec.Name)))
	switch spec.Source {
	case model.SourceIntake:
		return ctxSeries("bmc_temperature_celsius", "intake", "intake")
	case model.SourceExhaust:
		if spec.Name == "Peripheral Temp" {
			// bmcsim drives Supermicro's Peripheral Temp like exhaust
			// air; on real boards it is a board temperature by the PCH
			// and PCIe slots, and the name rules say so.
			return ctxSeries("bmc_temperature_celsius", "system_board", "peripheral_temp")
		}
		return ctxSeries("bmc_temperature_celsius", "exhaust", "exhaust")
	case model.SourceCPU, model.SourceMemory, model.SourcePSU, model.SourceGPU, model.SourceStorage:
		return ctxSeries("bmc_temperature_celsius", spec.Source, fmt.Sprintf("%s%d", spec.Source, n))
	case model.SourceSystemBoard:
		// HPE's "NN-" position prefix is not part of the name.
		return ctxSeries("bmc_temperature_celsius", "system_board", slug(sdrID(hpePrefix.ReplaceAllString(strings.TrimSpace(spec.Name), "$1"))))
	case model.SourceGPUInlet:
		return ctxSeries("bmc_temperature_celsius", "gpu", fmt.Sprintf("gpu%d_inlet", n))
	case model.SourcePSUInlet:
		return ctxSeries("bmc_temperature_celsius", "psu", fmt.Sprintf("psu%d_inlet", n))
	case model.SourceBoardInlet:
		// Beside the room's inlet, a board's inlet is the board's.
		return ctxSeries("bmc_temperature_celsius", "system_board", slugged)
	case model.SourceMargin:
		return ctxSeries("bmc_temperature_margin_celsius", "cpu", fmt.Sprintf("cpu%d", n))
	case model.SourceFan:
		fan := fmt.Sprintf("fan%d", n)
		if m := rotor.FindStringSubmatch(spec.Name); m != nil {
			fan += strings.ToLower(m[1])
		}
		if ratioFan {
			return fmt.Sprintf(`bmc_fan_speed_ratio{fan=%q}`, fan)
		}
		return fmt.Sprintf(`bmc_fan_speed_rpm{fan=%q}`, fan)
	case model.SourceChassisPower:
		return `bmc_power_watts{}`
	case model.SourcePSUInput:
		return fmt.Sprintf(`bmc_psu_input_watts{psu="psu%d"}`, n)
	case model.SourcePSUOutput:
		return fmt.Sprintf(`bmc_psu_output_watts{psu="psu%d"}`, n)
	case model.SourceVoltage:
		return fmt.Sprintf(`bmc_voltage_volts{sensor=%q}`, slugged)
	case model.SourceCurrent:
		return fmt.Sprintf(`bmc_current_amperes{sensor=%q}`, slugged)
	}
	return "unknown source " + spec.Source
}

// ipmiTolerance is how far an IPMI reading may be from the Redfish one:
// half a step of the SDR's conversion. Temperatures travel in whole
// degrees; other sensors in 255 steps of their full scale, which stays
// within 1 % of the readings the model makes.
func ipmiTolerance(v float64) float64 { return math.Max(0.5, 0.01*math.Abs(v)) + 1e-9 }

// TestNormaliseRedfishAndIPMIAgree polls one virtual BMC of every
// personality over both protocols at one instant and checks that the same
// physical quantity gets the same name and labels from both, with values
// within IPMI's resolution, and that those names and labels are the ones
// the model's ground truth (each sensor's source and index) calls for.
func TestNormaliseRedfishAndIPMIAgree(t *testing.T) {
	n, err := NewNormaliser(NormaliserOptions{})
	require.NoError(t, err)
	ps := simPersonalities(t)
	for _, name := range sortedKeys(ps) {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			p := ps[name]
			sp := pollSim(t, name)
			var st Stats
			rf := physicalSeries(t, n.Normalise(nil, sp.redfish, simBase("bmc-1"), &st))
			ip := physicalSeries(t, n.Normalise(nil, sp.ipmi, simBase("bmc-1"), &st))
			require.Zero(t, st.Unmapped)

			// Every sensor feeds the series its nature calls for, on
			// each protocol that carries it.
			ids := simipmi.SensorIDs(p)
			both := 0
			for i := range p.Sensors {
				spec := &p.Sensors[i]
				if spec.Absent {
					continue
				}
				// A subsystem-only service shows a fan only through its
				// Fan resource's SpeedPercent: a duty cycle over Redfish.
				rfKey := truthKey(spec, spec.Unit == "Percent" || spec.Kind == model.KindFan && p.Redfish.NoSensors)
				ipKey := truthKey(spec, false)
				onRedfish := !spec.RedfishOmit
				onIPMI := ids[i] != ""
				if onRedfish {
					require.Contains(t, rf, rfKey, "%s over Redfish", spec.Name)
				}
				if onIPMI {
					require.Contains(t, ip, ipKey, "%s over IPMI", spec.Name)
				}
				if onRedfish && onIPMI && rfKey == ipKey {
					both++
					require.InDelta(t, rf[rfKey], ip[ipKey], ipmiTolerance(rf[rfKey]), "%s: redfish %v, ipmi %v", rfKey, rf[rfKey], ip[ipKey])
				}
			}
			require.GreaterOrEqual(t, both, 4, "intake, CPU, chassis power and more are carried by both")

			// No series the IPMI view makes is missing from the Redfish
			// one (bmcsim puts every IPMI sensor on Redfish too), except
			// a fan Redfish reports as a duty cycle.
			for k, iv := range ip {
				rv, ok := rf[k]
				if !ok && strings.HasPrefix(k, "bmc_fan_speed_rpm") {
					_, ok = rf[strings.Replace(k, "_rpm", "_ratio", 1)]
					require.True(t, ok, "IPMI fan %s has no Redfish counterpart", k)
					continue
				}
				require.True(t, ok, "IPMI series %s has no Redfish counterpart", k)
				require.InDelta(t, rv, iv, ipmiTolerance(rv), "%s: redfish %v, ipmi %v", k, rv, iv)
			}
		})
	}
}
