package automation

import (
	"context"
	"encoding/json"
	"log/slog"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/stretchr/testify/require"

	"github.com/bmcstream/bmcstream/internal/ratelog"
	"github.com/bmcstream/bmcstream/pkg/inventory"
	"github.com/bmcstream/bmcstream/pkg/pipeline"
	"github.com/bmcstream/bmcstream/pkg/sinks"
	v1 "github.com/bmcstream/bmcstream/proto/bmcstream/v1"
)

// startNATS runs a core NATS server on loopback with the given
// max_payload (0: the default).
func startNATS(t *testing.T, maxPayload int32) *nats.Conn {
	t.Helper()
	srv, err := server.NewServer(&server.Options{Host: "127.0.0.1", Port: server.RANDOM_PORT, NoSigs: true, NoLog: true, MaxPayload: maxPayload})
	require.NoError(t, err)
	srv.Start()
	t.Cleanup(func() { srv.Shutdown(); srv.WaitForShutdown() })
	require.True(t, srv.ReadyForConnections(10*time.Second))
	nc, err := nats.Connect(srv.ClientURL())
	require.NoError(t, err)
	t.Cleanup(nc.Close)
	return nc
}

func newPublisher(t *testing.T, nc *nats.Conn) (*Publisher, *prometheus.CounterVec, *pipeline.Normaliser) {
	t.Helper()
	inv, err := inventory.Parse([]byte("bmcs:\n  - id: b1\n    address: 127.0.0.1\n    labels: {site: s1, rack: r1}\n"))
	require.NoError(t, err)
	enrich := pipeline.NewEnricher(inv)
	norm, err := pipeline.NewNormaliser(pipeline.NormaliserOptions{})
	require.NoError(t, err)
	events := prometheus.NewCounterVec(prometheus.CounterOpts{Name: "events"}, []string{"kind"})
	return New(Options{
		Conn: nc, Normaliser: norm, Enricher: func() *pipeline.Enricher { return enrich }, Events: events,
		Logger: slog.New(slog.DiscardHandler), LogLimiter: &ratelog.Limiter{Every: time.Second},
	}), events, norm
}

func TestPublisherPublishesThenDone(t *testing.T) {
	nc := startNATS(t, 0)
	sub, err := nc.SubscribeSync("bmc.v1.>")
	require.NoError(t, err)
	require.NoError(t, nc.Flush())
	p, events, norm := newPublisher(t, nc)

	snap := &v1.Snapshot{BmcId: "b1", PollerId: "p", Protocol: v1.Protocol_PROTOCOL_REDFISH, PollStartMs: 1000, PollEndMs: 1100, Up: true,
		Readings: []v1.Reading{{Name: "Inlet Temp", Kind: v1.Kind_KIND_TEMPERATURE, Unit: "Cel", Value: 21}}}
	samples := norm.Normalise(nil, snap, []prompbLabel{{Name: "bmc", Value: "b1"}}, &pipeline.Stats{})
	done := 0
	require.NoError(t, p.Append(context.Background(), sinks.Batch{Source: "b1", Samples: samples, Snapshot: snap}, func() { done++ }))
	require.Equal(t, 1, done, "done is called once, before Append returns")

	// The BMC goes down: a bmc_down event.
	down := &v1.Snapshot{BmcId: "b1", PollerId: "p", Protocol: v1.Protocol_PROTOCOL_REDFISH, PollStartMs: 2000, PollEndMs: 2100, Error: "connection refused"}
	require.NoError(t, p.Append(context.Background(), sinks.Batch{Source: "b1", Snapshot: down}, func() { done++ }))
	require.Equal(t, 2, done)

	var subjects []string
	for {
		m, err := sub.NextMsg(2 * time.Second)
		if err != nil {
			break
		}
		subjects = append(subjects, m.Subject)
		if m.Subject == "bmc.v1.norm.s1.r1.b1" {
			var msg map[string]any
			require.NoError(t, json.Unmarshal(m.Data, &msg))
			require.Equal(t, "b1", msg["bmc"])
		}
	}
	require.Contains(t, subjects, "bmc.v1.norm.s1.r1.b1")
	// The first snapshot of a BMC shows it up: an event.
	evs := 0
	for _, s := range subjects {
		if s == "bmc.v1.events.s1.r1.b1" {
			evs++
		}
	}
	require.Positive(t, evs)
	require.Equal(t, float64(evs), total(t, events), "every event published is counted")
	require.Equal(t, 1.0, testutil.ToFloat64(events.WithLabelValues(string(pipeline.EventBMCDown))))

	// Samples of no snapshot are not published, and done.
	require.NoError(t, p.Append(context.Background(), sinks.Batch{Source: pipeline.RollupKey, Samples: samples}, func() { done++ }))
	require.Equal(t, 3, done)
}

// total sums a counter over its labels.
func total(t *testing.T, v *prometheus.CounterVec) float64 {
	reg := prometheus.NewRegistry()
	reg.MustRegister(v)
	mfs, err := reg.Gather()
	require.NoError(t, err)
	sum := 0.0
	for _, mf := range mfs {
		for _, m := range mf.GetMetric() {
			sum += m.GetCounter().GetValue()
		}
	}
	return sum
}

func TestPublisherErrorMarks(t *testing.T) {
	// Over the server's max_payload: would fail on every redelivery.
	nc := startNATS(t, 256)
	p, _, _ := newPublisher(t, nc)
	snap := &v1.Snapshot{BmcId: "b1", PollerId: "p", Protocol: v1.Protocol_PROTOCOL_REDFISH, PollStartMs: 1000, PollEndMs: 1100, Up: true}
	for range 20 {
		snap.Readings = append(snap.Readings, v1.Reading{Name: "Inlet Temp", Kind: v1.Kind_KIND_TEMPERATURE, Unit: "Cel", Value: 21})
	}
	samples := make([]sampleT, 0)
	for i := range 40 {
		samples = append(samples, sampleOf("bmc_temperature_celsius", "sensor", string(rune('a'+i%26))+"-long-sensor-name", 1000, 21))
	}
	err := p.Append(context.Background(), sinks.Batch{Source: "b1", Samples: samples, Snapshot: snap}, func() { t.Fatal("done after an error") })
	require.Error(t, err)
	require.True(t, sinks.IsPermanent(err), "%v", err)

	// The connection closed: passing, retried after a pause.
	nc2 := startNATS(t, 0)
	p2, _, _ := newPublisher(t, nc2)
	nc2.Close()
	err = p2.Append(context.Background(), sinks.Batch{Source: "b1", Snapshot: snap}, func() { t.Fatal("done after an error") })
	require.Error(t, err)
	require.True(t, sinks.IsRetry(err), "%v", err)
}
