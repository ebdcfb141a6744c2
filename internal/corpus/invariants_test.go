package corpus

import (
	"fmt"
	"slices"
	"strings"

	"github.com/bmcstream/bmcstream/pkg/series"
)

// An invariant checks one snapshot's series and returns what violates it,
// one line each.
type invariant struct {
	name  string
	check func(ss []series.Sample) []string
}

// seriesInvariants hold for the series of any BMC (docs/metrics.md).
var seriesInvariants = []invariant{
	{"intake_at_most_one", intakeAtMostOne},
	{"intake_is_room_air", intakeIsRoomAir},
	{"temperature_range", temperatureRange},
	{"margins_not_temperatures", marginsNotTemperatures},
	{"one_protocol_per_sensor", oneProtocolPerSensor},
	{"no_duplicate_series", noDuplicateSeries},
}

const (
	metricTemperature = "bmc_temperature_celsius"
	metricSensorInfo  = "bmc_sensor_info"
)

// intakeAtMostOne: at most one temperature is the canonical sensor="intake".
func intakeAtMostOne(ss []series.Sample) []string {
	var found []string
	for _, s := range ss {
		if s.Series.Labels.Get("__name__") == metricTemperature && s.Series.Labels.Get("sensor") == "intake" {
			found = append(found, expoLine(s))
		}
	}
	if len(found) <= 1 {
		return nil
	}
	return []string{fmt.Sprintf("%d series with sensor=\"intake\": %s", len(found), strings.Join(found, "; "))}
}

// names maps a (kind, sensor) to the vendor names bmc_sensor_info gives it.
func names(ss []series.Sample) map[[2]string][]string {
	out := map[[2]string][]string{}
	for _, s := range ss {
		if s.Series.Labels.Get("__name__") != metricSensorInfo {
			continue
		}
		k := [2]string{s.Series.Labels.Get("kind"), s.Series.Labels.Get("sensor")}
		out[k] = append(out[k], s.Series.Labels.Get("name"))
	}
	return out
}

// componentInletWords name a component inside the chassis whose own air
// inlet a sensor may measure: a board, GPU, PSU, DIMM, CPU or voltage
// regulator inlet is not the room's air.
var componentInletWords = map[string]bool{
	"board": true, "baseboard": true, "bb": true, "mb": true, "pdb": true,
	"gpu": true, "hgx": true, "psu": true, "ps": true, "dimm": true, "mem": true, "memory": true,
	"cpu": true, "proc": true, "processor": true, "soc": true, "vr": true, "vrm": true,
}

// componentInlet reports whether a vendor name says a component's inlet
// ("GPU Inlet Temp", "BB Inlet Temp", "55-P/S 2 Inlet", "15-Board Inlet").
// "System Board Inlet" is the server's own inlet (the system board being
// the whole server), not a component's.
func componentInlet(name string) bool {
	ws := tokens(name)
	if !slices.Contains(ws, "inlet") {
		return false
	}
	for i, w := range ws {
		if w == "board" && i > 0 && ws[i-1] == "system" {
			continue
		}
		if componentInletWords[w] {
			return true
		}
		if w == "p" && i+1 < len(ws) && ws[i+1] == "s" { // "P/S"
			return true
		}
	}
	return false
}

// intakeIsRoomAir: context="intake" is never on a component's inlet.
func intakeIsRoomAir(ss []series.Sample) []string {
	ns := names(ss)
	var out []string
	for _, s := range ss {
		if s.Series.Labels.Get("__name__") != metricTemperature || s.Series.Labels.Get("context") != "intake" {
			continue
		}
		sensor := s.Series.Labels.Get("sensor")
		for _, n := range ns[[2]string{"temperature", sensor}] {
			if componentInlet(n) {
				out = append(out, fmt.Sprintf("%s is context=\"intake\" but its vendor name %q says a component's inlet", expoLine(s), n))
			}
		}
	}
	return out
}

// temperatureRange: no temperature outside -40..150 °C.
func temperatureRange(ss []series.Sample) []string {
	var out []string
	for _, s := range ss {
		if s.Series.Labels.Get("__name__") == metricTemperature && (s.V < -40 || s.V > 150) {
			out = append(out, expoLine(s)+" is outside -40..150 °C")
		}
	}
	return out
}

// marginWords say a reading is a distance to a limit, not a temperature.
var marginWords = map[string]bool{"dts": true, "margin": true, "mgn": true, "headroom": true}

// marginsNotTemperatures: a reading whose name says DTS, margin or headroom
// is never a temperature.
func marginsNotTemperatures(ss []series.Sample) []string {
	var out []string
	for _, s := range ss {
		if s.Series.Labels.Get("__name__") != metricSensorInfo || s.Series.Labels.Get("kind") != "temperature" {
			continue
		}
		for _, w := range tokens(s.Series.Labels.Get("name")) {
			if marginWords[w] {
				out = append(out, expoLine(s)+": a margin as a temperature")
				break
			}
		}
	}
	return out
}

// oneProtocolPerSensor: each sensor's bmc_sensor_info has one protocol.
func oneProtocolPerSensor(ss []series.Sample) []string {
	protos := map[[2]string]map[string]bool{}
	for _, s := range ss {
		if s.Series.Labels.Get("__name__") != metricSensorInfo {
			continue
		}
		k := [2]string{s.Series.Labels.Get("kind"), s.Series.Labels.Get("sensor")}
		if protos[k] == nil {
			protos[k] = map[string]bool{}
		}
		protos[k][s.Series.Labels.Get("protocol")] = true
	}
	var out []string
	for k, ps := range protos {
		if len(ps) > 1 {
			out = append(out, fmt.Sprintf("%s sensor %q comes from %v", k[0], k[1], sortedKeys(ps)))
		}
	}
	slices.Sort(out)
	return out
}

// noDuplicateSeries: no two samples of a snapshot share a label set.
func noDuplicateSeries(ss []series.Sample) []string {
	seen := map[string]int{}
	for _, s := range ss {
		line := expoLine(s)
		seen[line[:strings.LastIndexByte(line, ' ')]]++
	}
	var out []string
	for k, n := range seen {
		if n > 1 {
			out = append(out, fmt.Sprintf("%s appears %d times", k, n))
		}
	}
	slices.Sort(out)
	return out
}
