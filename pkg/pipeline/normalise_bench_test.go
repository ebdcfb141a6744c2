package pipeline

import (
	"fmt"
	"runtime"
	"testing"

	"github.com/prometheus/prometheus/prompb"

	"github.com/bmcstream/bmcstream/pkg/series"
	v1 "github.com/bmcstream/bmcstream/proto/bmcstream/v1"
)

// benchReadings is a two-socket server's sensors as a modern Redfish
// service lists them: 32 temperatures, 12 fans, chassis and PSU power, 8
// voltages and 3 currents, most with thresholds and all with health.
func benchReadings() []v1.Reading {
	ok := v1.Health_HEALTH_OK
	var rs []v1.Reading
	temp := func(name, ctx string, v float64, ths ...v1.Threshold) {
		rs = append(rs, v1.Reading{Name: name, Kind: v1.Kind_KIND_TEMPERATURE, Unit: "Cel", Context: ctx, SensorType: "Temperature", Value: v, Health: ok, State: "Enabled", Thresholds: ths})
	}
	uc := func(v float64) v1.Threshold {
		return v1.Threshold{Kind: v1.ThresholdKind_THRESHOLD_UPPER_CRITICAL, Value: v}
	}
	un := func(v float64) v1.Threshold {
		return v1.Threshold{Kind: v1.ThresholdKind_THRESHOLD_UPPER_CAUTION, Value: v}
	}
	lc := func(v float64) v1.Threshold {
		return v1.Threshold{Kind: v1.ThresholdKind_THRESHOLD_LOWER_CRITICAL, Value: v}
	}
	temp("System Board Inlet Temp", "Intake", 21.5, un(38), uc(42))
	temp("System Board Exhaust Temp", "Exhaust", 35, uc(75))
	temp("CPU1 Temp", "CPU", 61, un(88), uc(93))
	temp("CPU2 Temp", "CPU", 63, un(88), uc(93))
	for i := range 16 {
		temp(fmt.Sprintf("DIMM %c%d Temp", 'A'+i/8, i%8+1), "Memory", 38, uc(85))
	}
	for i := range 4 {
		temp(fmt.Sprintf("CPU%d VR%d Temp", i/2+1, i%2), "VoltageRegulator", 45, uc(100))
	}
	temp("PSU1 Temp", "PowerSupply", 40)
	temp("PSU2 Temp", "PowerSupply", 41)
	for i := range 4 {
		temp(fmt.Sprintf("Drive %d Temp", i), "StorageDevice", 33, uc(60))
	}
	temp("NIC1 Temp", "NetworkingDevice", 55, uc(105))
	temp("NIC2 Temp", "NetworkingDevice", 56, uc(105))
	for i := range 12 {
		rs = append(rs, v1.Reading{Name: fmt.Sprintf("System Board Fan%d%c", i/2+1, 'A'+i%2), Kind: v1.Kind_KIND_FAN, Unit: "RPM", SensorType: "Rotational",
			Value: 8730, Health: ok, State: "Enabled", Thresholds: []v1.Threshold{lc(480)}})
	}
	rs = append(rs, v1.Reading{Name: "System Board Pwr Consumption", Kind: v1.Kind_KIND_POWER, Unit: "W", SensorType: "PowerControl", Value: 342, Health: ok,
		State: "Enabled", Thresholds: []v1.Threshold{{Kind: v1.ThresholdKind_THRESHOLD_UPPER_CAUTION, Value: 1386}, uc(1512)}})
	for i := range 2 {
		for _, st := range []string{"PowerSupplyInput", "PowerSupplyOutput"} {
			rs = append(rs, v1.Reading{Name: fmt.Sprintf("PS%d Status", i+1), Kind: v1.Kind_KIND_POWER, Unit: "W", SensorType: st, Context: "PowerSupply",
				Value: 171, Health: ok, State: "Enabled", Parent: fmt.Sprintf("PS%d Status", i+1)})
		}
	}
	for _, v := range []string{"12V", "5V", "3.3V", "1.8V PG", "VBAT", "PVCCIN CPU1", "PVCCIN CPU2", "PVDDQ ABCD"} {
		rs = append(rs, v1.Reading{Name: "System Board " + v, Kind: v1.Kind_KIND_VOLTAGE, Unit: "V", SensorType: "Voltage", Value: 12.01, Health: ok,
			State: "Enabled", Thresholds: []v1.Threshold{lc(10.8), uc(13.2)}})
	}
	for _, c := range []string{"PS1 Current 1", "PS2 Current 2", "System Board Current"} {
		rs = append(rs, v1.Reading{Name: c, Kind: v1.Kind_KIND_CURRENT, Unit: "A", SensorType: "Current", Value: 1.49, Health: ok, State: "Enabled"})
	}
	return rs
}

// benchSnapshotN is a Redfish snapshot of BMC id with n readings.
func benchSnapshotN(id string, n int) *v1.Snapshot {
	all := benchReadings()
	rs := make([]v1.Reading, 0, n)
	for i := 0; len(rs) < n; i++ {
		r := all[i%len(all)]
		if i >= len(all) {
			r.Name = fmt.Sprintf("%s #%d", r.Name, i/len(all))
		}
		rs = append(rs, r)
	}
	return &v1.Snapshot{
		BmcId: id, Protocol: v1.Protocol_PROTOCOL_REDFISH, PollStartMs: 1_700_000_000_000, PollEndMs: 1_700_000_000_400, Up: true,
		Info: map[string]string{"vendor": "Dell Inc.", "model": "PowerEdge R750", "serial": "8LWXQHTLQ5", "firmware": "6.10.30.00",
			"power_state": "On", "health": "OK"},
		Readings: rs,
	}
}

func benchBase(id string) []prompb.Label {
	return []prompb.Label{{Name: "bmc", Value: id}, {Name: "position", Value: "12"}, {Name: "rack", Value: "i5"},
		{Name: "room", Value: "r1"}, {Name: "row", Value: "i"}, {Name: "site", Value: "ctc"}}
}

// BenchmarkNormalise measures the steady state: one BMC's 60-reading
// snapshot, its plan cached. ns/sample and allocs/sample are per sample
// produced.
func BenchmarkNormalise(b *testing.B) {
	n, err := NewNormaliser(NormaliserOptions{})
	if err != nil {
		b.Fatal(err)
	}
	s := benchSnapshotN("bmc-1", 60)
	base := benchBase("bmc-1")
	var st Stats
	dst := n.Normalise(nil, s, base, &st)
	perOp := len(dst)
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	b.ReportAllocs()
	for b.Loop() {
		s.PollStartMs++
		dst = n.Normalise(dst[:0], s, base, &st)
	}
	runtime.ReadMemStats(&after)
	samples := float64(b.N * perOp)
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/samples, "ns/sample")
	b.ReportMetric(float64(after.Mallocs-before.Mallocs)/samples, "allocs/sample")
	b.ReportMetric(float64(perOp), "samples/op")
}

// BenchmarkNormaliseFleet normalises 2000 BMCs' snapshots in turn, as a
// gateway does: every lookup goes through a large plan cache.
func BenchmarkNormaliseFleet(b *testing.B) {
	n, err := NewNormaliser(NormaliserOptions{})
	if err != nil {
		b.Fatal(err)
	}
	const bmcs = 2000
	snaps := make([]*v1.Snapshot, bmcs)
	bases := make([][]prompb.Label, bmcs)
	var st Stats
	var dst []series.Sample
	for i := range snaps {
		id := fmt.Sprintf("bmc-%04d", i)
		snaps[i], bases[i] = benchSnapshotN(id, 60), benchBase(id)
		dst = n.Normalise(dst[:0], snaps[i], bases[i], &st)
	}
	perOp := len(dst)
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		dst = n.Normalise(dst[:0], snaps[i%bmcs], bases[i%bmcs], &st)
		i++
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*perOp), "ns/sample")
}

// BenchmarkNormalisePlan measures the cold path: a snapshot of a shape the
// Normaliser has not seen (a new BMC, a sensor appearing), which builds
// and caches a plan.
func BenchmarkNormalisePlan(b *testing.B) {
	n, err := NewNormaliser(NormaliserOptions{})
	if err != nil {
		b.Fatal(err)
	}
	s := benchSnapshotN("bmc-1", 60)
	base := benchBase("bmc-1")
	var st Stats
	var dst []series.Sample
	b.ReportAllocs()
	for b.Loop() {
		n.Forget("bmc-1")
		dst = n.Normalise(dst[:0], s, base, &st)
	}
}
