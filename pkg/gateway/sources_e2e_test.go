package gateway_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/require"

	"github.com/bmcstream/bmcstream/internal/synth"
	"github.com/bmcstream/bmcstream/internal/testbed"
	"github.com/bmcstream/bmcstream/pkg/bus"
	"github.com/bmcstream/bmcstream/pkg/gateway"
	"github.com/bmcstream/bmcstream/pkg/inventory"
	"github.com/bmcstream/bmcstream/pkg/pipeline"
	v1 "github.com/bmcstream/bmcstream/proto/bmcstream/v1"
)

// TestBothProtocolsOneSourcePerSeries publishes the polls of BMCs polled
// over both protocols, IPMI 1.5 s after Redfish with readings a tenth of a
// degree apart, as real BMCs give them. Each series in the receiver has
// one sample per poll, from the BMC's preferred protocol (but for the very
// first poll, before the preferred protocol is heard); while Redfish is
// down the IPMI polls feed sim-0000's series, which are not ended in
// between; the takeover and the handback are counted, logged once and
// published once each on the automation stream; nothing is dropped as out
// of order.
func TestBothProtocolsOneSourcePerSeries(t *testing.T) {
	t.Parallel()
	prom := testbed.StartPrometheus(t)
	srv := testbed.StartNATS(t)
	pub, _ := publisher(t, srv.ClientURL())
	fleet := synth.NewFleet(2)
	for i := range fleet.BMCs {
		fleet.BMCs[i].Protocol = inventory.Both
	}
	fleet.BMCs[1].Prefer = inventory.IPMI
	cfg, err := gateway.ParseConfig([]byte(fmt.Sprintf("nats:\n  url: %s\ninventory:\n  files: [%s]\nremote_write:%s%s",
		srv.ClientURL(), writeInventory(t, fleet), sinkYAML("prom", prom.WriteURL()), sinkYAML("second", prom.WriteURL()))))
	require.NoError(t, err)
	var logs syncBuffer
	reg := prometheus.NewRegistry()
	gw, err := gateway.New(cfg, gateway.Options{Registerer: reg, Version: "test", ShutdownTimeout: 5 * time.Second,
		Logger: slog.New(slog.NewJSONHandler(&logs, nil))})
	require.NoError(t, err)
	gctx, gcancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() { errc <- gw.Run(gctx) }()
	t.Cleanup(func() { gcancel(); require.NoError(t, <-errc) })
	require.Eventually(t, gw.Ready, 20*time.Second, 20*time.Millisecond)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	nc, err := nats.Connect(srv.ClientURL())
	require.NoError(t, err)
	defer nc.Close()
	var evMu sync.Mutex
	var events []pipeline.Event
	_, err = nc.Subscribe(bus.EventPrefix+">", func(m *nats.Msg) {
		var e pipeline.Event
		if json.Unmarshal(m.Data, &e) == nil && strings.HasPrefix(string(e.Kind), "protocol_") {
			evMu.Lock()
			events = append(events, e)
			evMu.Unlock()
		}
	})
	require.NoError(t, err)
	require.NoError(t, nc.Flush())

	const ipmiLag = 1500 * time.Millisecond
	down := func(k int) bool { return k >= 4 && k <= 6 } // sim-0000's Redfish
	times := pollTimes(10, 10*time.Second)
	for k, at := range times {
		for i := range fleet.BMCs {
			rf := fleet.Snapshot(i, at, "p", 1, uint64(2*k+1))
			if i == 0 && down(k) {
				rf.Up, rf.Readings, rf.Info = false, nil, nil
				rf.Error, rf.ErrorClass = "timeout: no answer in 8s", "timeout"
			}
			ipmi := fleet.Snapshot(i, at.Add(ipmiLag), "p", 1, uint64(2*k+2))
			ipmi.Protocol = v1.Protocol_PROTOCOL_IPMI
			for j := range ipmi.Readings {
				ipmi.Readings[j].Value += 0.1
			}
			require.NoError(t, pub.Publish(ctx, rf))
			require.NoError(t, pub.Publish(ctx, ipmi))
		}
	}
	prom.WaitFor(ctx, t, `count(count_over_time(bmc_up[10m]) >= 10)`, func(s []testbed.Series) bool {
		return len(s) == 1 && s[0].Samples[0].V == 4 // two BMCs, two protocols
	})
	prom.WaitFor(ctx, t, `count_over_time(bmc_temperature_celsius{sensor="intake"}[10m])`, func(s []testbed.Series) bool {
		return len(s) == 2 && s[0].Samples[0].V >= 10 && s[1].Samples[0].V >= 10
	})

	for i, b := range fleet.BMCs {
		got, err := prom.RawSamples(ctx, fmt.Sprintf(`bmc_temperature_celsius{bmc=%q,sensor="intake"}`, b.ID), 10*time.Minute, time.Now())
		require.NoError(t, err)
		require.Len(t, got, 1)
		var want []string
		if i == 1 {
			// The gateway meets sim-0001 over Redfish: until its preferred
			// IPMI has been heard, Redfish feeds what it has.
			want = append(want, fmt.Sprintf("%d %.2f (redfish)", times[0].UnixMilli(), synth.Inlet(i, times[0].UnixMilli())))
		}
		for k, at := range times {
			ms, proto := at.UnixMilli(), "redfish"
			if i == 1 || down(k) {
				ms, proto = at.Add(ipmiLag).UnixMilli(), "ipmi"
			}
			v := synth.Inlet(i, ms)
			if proto == "ipmi" {
				v += 0.1
			}
			want = append(want, fmt.Sprintf("%d %.2f (%s)", ms, v, proto))
		}
		var have []string
		for _, p := range got[0].Samples {
			proto := "redfish"
			if (p.T-times[0].UnixMilli())%10000 != 0 {
				proto = "ipmi"
			}
			have = append(have, fmt.Sprintf("%d %.2f (%s)", p.T, p.V, proto))
		}
		require.Equal(t, want, have, "%s: one sample per poll, from one protocol at a time", b.ID)
	}

	// Between the failed Redfish poll and the IPMI one that takes over,
	// the series is not ended: no staleness marker at the takeover.
	at := times[4].Add(ipmiLag / 2)
	got, err := prom.Query(ctx, `bmc_temperature_celsius{bmc="sim-0000",sensor="intake"}`, at)
	require.NoError(t, err)
	require.Len(t, got, 1, "sim-0000's intake at %s, between the takeover's polls", at)

	require.Equal(t, 1.0, testbed.MustMetricValue(t, reg, "bmcstream_gateway_protocol_failovers_total", "direction", "takeover", "sink", "prom"))
	require.Equal(t, 1.0, testbed.MustMetricValue(t, reg, "bmcstream_gateway_protocol_failovers_total", "direction", "handback", "sink", "prom"))
	require.Zero(t, testbed.MustMetricValue(t, reg, "bmcstream_gateway_out_of_order_samples_dropped_total", "sink", "prom"))
	require.Positive(t, testbed.MustMetricValue(t, reg, "bmcstream_gateway_protocol_samples_passed_over_total", "sink", "prom"))
	require.Equal(t, 1.0, testbed.MustMetricValue(t, reg, "bmcstream_gateway_protocol_failovers_total", "direction", "takeover", "sink", "second"), "every sink decides alike")

	// Each move is logged once, though two sinks make it.
	var moves []string
	for _, l := range strings.Split(strings.TrimSpace(logs.String()), "\n") {
		var m map[string]any
		require.NoError(t, json.Unmarshal([]byte(l), &m), l)
		if msg, _ := m["msg"].(string); strings.HasPrefix(msg, "preferred protocol") {
			moves = append(moves, fmt.Sprintf("%s %s→%s %v", m["bmc"], m["from"], m["to"], m["err"]))
		}
	}
	require.Equal(t, []string{"sim-0000 redfish→ipmi timeout: no answer in 8s", "sim-0000 ipmi→redfish <nil>"}, moves)

	// And the automation stream has one event each way.
	var published []string
	require.Eventually(t, func() bool {
		evMu.Lock()
		defer evMu.Unlock()
		published = published[:0]
		for _, e := range events {
			published = append(published, fmt.Sprintf("%s %s %s→%s %d %s", e.Kind, e.BMC, e.Previous, e.Current, e.TimeMs, e.ErrorClass))
		}
		return len(published) >= 2
	}, 10*time.Second, 50*time.Millisecond)
	testbed.Never(t, 200*time.Millisecond, func() bool { evMu.Lock(); defer evMu.Unlock(); return len(events) > 2 }, "a third event")
	require.Equal(t, []string{
		fmt.Sprintf("protocol_takeover sim-0000 redfish→ipmi %d timeout", times[4].UnixMilli()),
		fmt.Sprintf("protocol_handback sim-0000 ipmi→redfish %d ", times[7].UnixMilli()),
	}, published)
}

// syncBuffer is a log buffer the gateway's goroutines write to.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}
