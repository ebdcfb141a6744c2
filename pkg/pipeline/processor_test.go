package pipeline

import (
	"math"
	"slices"
	"sort"
	"strconv"
	"strings"
	"testing"

	"github.com/prometheus/prometheus/model/value"
	"github.com/stretchr/testify/require"

	"github.com/bmcstream/bmcstream/pkg/inventory"
	"github.com/bmcstream/bmcstream/pkg/series"
	v1 "github.com/bmcstream/bmcstream/proto/bmcstream/v1"
)

// The Processor tests run the real normaliser over snapshots as pollers
// send them, with an inventory parsed from YAML: no NATS, no sink.

const procInventory = `
bmcs:
  - id: b1
    address: 127.0.0.1
    labels: {site: s1, rack: r1}
  - id: b2
    address: 127.0.0.2
    labels: {site: s1, rack: r1}
  - id: both
    address: 127.0.0.3
    protocol: both
    labels: {site: s1, rack: r2}
`

func procEnricher(t *testing.T) *Enricher {
	t.Helper()
	inv, err := inventory.Parse([]byte(procInventory))
	require.NoError(t, err)
	return NewEnricher(inv)
}

func procProcessor(t *testing.T, opts ProcessorOptions) *Processor {
	t.Helper()
	n, err := NewNormaliser(NormaliserOptions{})
	require.NoError(t, err)
	opts.Normaliser = n
	return NewProcessor(opts)
}

// procSnap is a snapshot of bmc at poll time tMs (seconds after an
// arbitrary start) with temperature readings name=value.
func procSnap(bmc string, proto v1.Protocol, tMs int64, temps ...any) *v1.Snapshot {
	s := &v1.Snapshot{BmcId: bmc, PollerId: "p1", Protocol: proto, PollStartMs: tMs, PollEndMs: tMs + 100, Up: true}
	for i := 0; i+1 < len(temps); i += 2 {
		s.Readings = append(s.Readings, v1.Reading{Name: temps[i].(string), Kind: kTemp, Unit: "Cel", Value: temps[i+1].(float64)})
	}
	return s
}

// procLine renders a sample as name{labels} value@t, labels sorted; the
// one place these tests read a sample's labels.
func procLine(s series.Sample) string {
	var name string
	var ls []string
	s.Series.Labels.Range(func(n, v string) {
		if n == "__name__" {
			name = v
			return
		}
		ls = append(ls, n+"="+v)
	})
	sort.Strings(ls)
	v := strconv.FormatFloat(s.V, 'g', -1, 64)
	if math.Float64bits(s.V) == value.StaleNaN {
		v = "stale"
	}
	return name + "{" + strings.Join(ls, ",") + "} " + v + "@" + strconv.FormatInt(s.T, 10)
}

// temps keeps the temperature series of out, rendered.
func temps(out []series.Sample) []string {
	var lines []string
	for _, s := range out {
		if l := procLine(s); strings.HasPrefix(l, "bmc_temperature_celsius{") {
			lines = append(lines, l)
		}
	}
	slices.Sort(lines)
	return lines
}

func TestProcessorSnapshotToSamples(t *testing.T) {
	p := procProcessor(t, ProcessorOptions{})
	enrich := procEnricher(t)

	out := p.Process(procSnap("b1", v1.Protocol_PROTOCOL_REDFISH, 1000, "Inlet Temp", 21.0, "CPU1 Temp", 60.0), enrich)
	require.True(t, out.Accepted)
	require.True(t, out.Known)
	require.Equal(t, SourceUnchanged, out.Change)
	require.Equal(t, v1.Protocol_PROTOCOL_UNSPECIFIED, out.Prefer, "polled over one protocol")
	require.Equal(t, []string{
		"bmc_temperature_celsius{bmc=b1,context=cpu,rack=r1,sensor=cpu1,site=s1} 60@1000",
		"bmc_temperature_celsius{bmc=b1,context=intake,rack=r1,sensor=intake,site=s1} 21@1000",
	}, temps(out.Samples))
	var up []string
	for _, s := range out.Samples {
		if l := procLine(s); strings.HasPrefix(l, "bmc_up{") {
			up = append(up, l)
		}
	}
	require.Equal(t, []string{"bmc_up{bmc=b1,protocol=redfish,rack=r1,site=s1} 1@1000"}, up)
	require.Equal(t, Counters{}, p.TakeCounters())

	// A BMC the inventory does not list: its bmc label only.
	out = p.Process(procSnap("stranger", v1.Protocol_PROTOCOL_REDFISH, 1000, "Inlet Temp", 22.0), enrich)
	require.True(t, out.Accepted)
	require.False(t, out.Known)
	require.Equal(t, v1.Protocol_PROTOCOL_REDFISH, out.Prefer, "an unknown BMC may be polled over both")
	require.Equal(t, []string{"bmc_temperature_celsius{bmc=stranger,context=intake,inventory=missing,sensor=intake} 22@1000"}, temps(out.Samples))

	// Skipped readings are counted by reason.
	s := procSnap("b1", v1.Protocol_PROTOCOL_REDFISH, 2000, "Inlet Temp", 21.0, "CPU1 Temp", 60.0)
	s.Readings = append(s.Readings, v1.Reading{Name: "Odd", Kind: kTemp, Unit: "Cel", Value: math.NaN()})
	out = p.Process(s, enrich)
	require.Equal(t, 1, out.Skipped.Invalid)
}

func TestProcessorDedupAndStaleness(t *testing.T) {
	p := procProcessor(t, ProcessorOptions{FailoverTimeout: 30_000_000_000})
	enrich := procEnricher(t)

	require.True(t, p.Process(procSnap("b1", v1.Protocol_PROTOCOL_REDFISH, 1000, "Inlet Temp", 21.0, "CPU1 Temp", 60.0), enrich).Accepted)
	// A redelivery of the same poll, and an older one: refused.
	require.False(t, p.Process(procSnap("b1", v1.Protocol_PROTOCOL_REDFISH, 1000, "Inlet Temp", 21.0, "CPU1 Temp", 60.0), enrich).Accepted)
	require.False(t, p.Process(procSnap("b1", v1.Protocol_PROTOCOL_REDFISH, 500, "Inlet Temp", 21.0), enrich).Accepted)
	// Another poller of the HA pair while the leader is active: refused.
	other := procSnap("b1", v1.Protocol_PROTOCOL_REDFISH, 1500, "Inlet Temp", 21.0)
	other.PollerId = "p2"
	require.False(t, p.Process(other, enrich).Accepted)
	c := p.TakeCounters()
	require.Equal(t, uint64(2), c.StaleSequence)
	require.Equal(t, uint64(1), c.NotLeader)
	require.Equal(t, Counters{}, p.TakeCounters(), "taken: reset")

	// The CPU sensor is gone: its series ends with a staleness marker at
	// the poll that no longer has it.
	out := p.Process(procSnap("b1", v1.Protocol_PROTOCOL_REDFISH, 2000, "Inlet Temp", 22.0), enrich)
	require.True(t, out.Accepted)
	require.Equal(t, []string{
		"bmc_temperature_celsius{bmc=b1,context=cpu,rack=r1,sensor=cpu1,site=s1} stale@2000",
		"bmc_temperature_celsius{bmc=b1,context=intake,rack=r1,sensor=intake,site=s1} 22@2000",
	}, temps(out.Samples))
	stale := 0
	for _, s := range out.Samples {
		if math.Float64bits(s.V) == value.StaleNaN {
			stale++
		}
	}
	require.Equal(t, uint64(stale), p.TakeCounters().StaleMarkers, "every marker written is counted (the sensor's other series end too)")
}

func TestProcessorOneSourcePerSeries(t *testing.T) {
	p := procProcessor(t, ProcessorOptions{})
	enrich := procEnricher(t)

	rf := p.Process(procSnap("both", v1.Protocol_PROTOCOL_REDFISH, 1000, "Inlet Temp", 21.0), enrich)
	require.Equal(t, v1.Protocol_PROTOCOL_REDFISH, rf.Prefer, "Redfish preferred by default")
	require.Len(t, temps(rf.Samples), 1)
	// IPMI reports the same series: the preferred protocol feeds it, so
	// IPMI's sample is passed over.
	ipmi := p.Process(procSnap("both", v1.Protocol_PROTOCOL_IPMI, 1100, "Inlet Temp", 21.5), enrich)
	require.True(t, ipmi.Accepted)
	require.Empty(t, temps(ipmi.Samples))
	require.Equal(t, uint64(1), p.TakeCounters().PassedOver)

	// Redfish goes down: IPMI takes the BMC's series over.
	down := procSnap("both", v1.Protocol_PROTOCOL_REDFISH, 2000)
	down.Up, down.Error = false, "connection refused"
	out := p.Process(down, enrich)
	require.Equal(t, SourceTakeover, out.Change)
	require.Equal(t, uint64(1), p.TakeCounters().Takeovers)
	ipmi = p.Process(procSnap("both", v1.Protocol_PROTOCOL_IPMI, 2100, "Inlet Temp", 23.0), enrich)
	require.Equal(t, []string{"bmc_temperature_celsius{bmc=both,context=intake,rack=r2,sensor=intake,site=s1} 23@2100"}, temps(ipmi.Samples))
}

func TestProcessorRelabelAndRollups(t *testing.T) {
	cfgs, err := ParseRelabelYAML([]byte(`
- source_labels: [context]
  regex: cpu
  action: drop
`))
	require.NoError(t, err)
	rl, err := NewRelabeler(cfgs)
	require.NoError(t, err)
	p := procProcessor(t, ProcessorOptions{Relabel: rl, Rollup: NewRollup(RollupOptions{GroupBy: []string{"rack"}})})
	enrich := procEnricher(t)

	require.Nil(t, p.Rollups(0), "nothing observed yet")
	out := p.Process(procSnap("b1", v1.Protocol_PROTOCOL_REDFISH, 1000, "Inlet Temp", 21.0, "CPU1 Temp", 60.0), enrich)
	require.Equal(t, []string{"bmc_temperature_celsius{bmc=b1,context=intake,rack=r1,sensor=intake,site=s1} 21@1000"}, temps(out.Samples), "the cpu series is relabelled away")
	p.Process(procSnap("b2", v1.Protocol_PROTOCOL_REDFISH, 1500, "Inlet Temp", 25.0), enrich)

	require.Nil(t, p.Rollups(2000), "a backlog older than notBefore writes no roll-ups")
	var lines []string
	for _, s := range p.Rollups(0) {
		lines = append(lines, procLine(s))
	}
	require.Contains(t, lines, RackIntakeMaxMetric+"{rack=r1} 25@1500", "at the newest poll time, the max of the rack's intakes")
	require.Contains(t, lines, RackReportingMetric+"{rack=r1} 2@1500")
	// Emitted again with nothing newer: never at the same time twice.
	for _, s := range p.Rollups(0) {
		require.Equal(t, int64(1501), s.T)
	}
}

func TestProcessorForget(t *testing.T) {
	p := procProcessor(t, ProcessorOptions{})
	enrich := procEnricher(t)
	p.Process(procSnap("b1", v1.Protocol_PROTOCOL_REDFISH, 1000, "Inlet Temp", 21.0), enrich)
	p.Process(procSnap("b1", v1.Protocol_PROTOCOL_REDFISH, 2000, "Inlet Temp", 21.0), enrich)

	markers := p.Forget(nil, "b1")
	require.NotEmpty(t, markers)
	for _, m := range markers {
		require.Equal(t, value.StaleNaN, math.Float64bits(m.V), procLine(m))
		require.Equal(t, int64(2001), m.T, "just after the last poll")
	}
	require.Contains(t, temps(markers), "bmc_temperature_celsius{bmc=b1,context=intake,rack=r1,sensor=intake,site=s1} stale@2001")
	require.Empty(t, p.Forget(nil, "b1"), "nothing left")

	// Dedup forgot it too: an older poll is accepted afresh.
	require.True(t, p.Process(procSnap("b1", v1.Protocol_PROTOCOL_REDFISH, 1500, "Inlet Temp", 20.0), enrich).Accepted)
}
