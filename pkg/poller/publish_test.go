package poller

import (
	"context"
	"log/slog"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/stretchr/testify/require"

	"github.com/bmcstream/bmcstream/internal/testbed"
	"github.com/bmcstream/bmcstream/pkg/bus"
	"github.com/bmcstream/bmcstream/pkg/bus/embedded"
	v1 "github.com/bmcstream/bmcstream/proto/bmcstream/v1"
)

func snap(bmc string, seq uint64) *v1.Snapshot {
	return &v1.Snapshot{BmcId: bmc, PollerId: "p1", PollerEpoch: 1, Sequence: seq, PollStartMs: int64(1000 * seq), Up: true}
}

// streamOrder returns, per BMC, the sequences in stream order.
func streamOrder(t *testing.T, js jetstream.JetStream) map[string][]uint64 {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := js.OrderedConsumer(ctx, "BMC_RAW", jetstream.OrderedConsumerConfig{})
	require.NoError(t, err)
	s, err := js.Stream(ctx, "BMC_RAW")
	require.NoError(t, err)
	info, err := s.Info(ctx)
	require.NoError(t, err)
	out := map[string][]uint64{}
	for range info.State.Msgs {
		m, err := c.Next(jetstream.FetchMaxWait(5 * time.Second))
		require.NoError(t, err)
		var s v1.Snapshot
		require.NoError(t, s.Unmarshal(m.Data()))
		out[s.BmcId] = append(out[s.BmcId], s.Sequence)
	}
	return out
}

func TestPublisherRidesOutANATSRestart(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	port := testbed.FreePort(t)
	srv := startNATS(t, port, dir)
	nc, err := nats.Connect(srv.ClientURL(), nats.MaxReconnects(-1), nats.ReconnectWait(50*time.Millisecond))
	require.NoError(t, err)
	defer nc.Close()
	js, err := jetstream.New(nc)
	require.NoError(t, err)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	_, err = bus.EnsureStream(ctx, js, bus.DefaultStreamConfig)
	require.NoError(t, err)
	reg := prometheus.NewRegistry()
	p, err := NewPublisher(nc, js, 1000, reg, slog.New(slog.DiscardHandler))
	require.NoError(t, err)
	defer p.Close()

	bmcs := []string{"10.0.0.1", "10.0.0.2", "srv_3"}
	for seq := uint64(1); seq <= 20; seq++ {
		for _, b := range bmcs {
			require.NoError(t, p.Publish(snap(b, seq)))
		}
	}
	require.NoError(t, p.Flush(ctx))

	// NATS goes away; polls go on.
	srv.Shutdown()
	srv.WaitForShutdown()
	for seq := uint64(21); seq <= 40; seq++ {
		for _, b := range bmcs {
			require.NoError(t, p.Publish(snap(b, seq)))
		}
	}
	// The publisher has tried to send while NATS was away (a batch in
	// flight, its acknowledgements pending, or already failed) and keeps
	// what it could not send.
	testbed.Eventually(t, 15*time.Second, func() bool {
		p.mu.Lock()
		defer p.mu.Unlock()
		return p.inflight > 0 || testutil.ToFloat64(p.m.errors) > 0
	}, "a publish attempt while NATS is away")
	require.Positive(t, p.Buffered())

	srv = startNATS(t, port, dir)
	defer srv.Shutdown()
	require.NoError(t, p.Flush(ctx))
	got := streamOrder(t, js)
	for _, b := range bmcs {
		want := make([]uint64, 40)
		for i := range want {
			want[i] = uint64(i + 1)
		}
		require.Equal(t, want, got[b], "bmc %s: every snapshot once, in poll order", b)
	}
	require.Equal(t, 120.0, testutil.ToFloat64(p.m.published))
	require.Zero(t, testutil.ToFloat64(p.m.dropped))
}

func TestPublisherDropsOldestWhenFull(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	port := testbed.FreePort(t)
	srv := startNATS(t, port, dir)
	nc, err := nats.Connect(srv.ClientURL(), nats.MaxReconnects(-1), nats.ReconnectWait(50*time.Millisecond))
	require.NoError(t, err)
	defer nc.Close()
	js, err := jetstream.New(nc)
	require.NoError(t, err)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	_, err = bus.EnsureStream(ctx, js, bus.DefaultStreamConfig)
	require.NoError(t, err)
	srv.Shutdown()
	srv.WaitForShutdown()

	p, err := NewPublisher(nc, js, 10, prometheus.NewRegistry(), slog.New(slog.DiscardHandler))
	require.NoError(t, err)
	defer p.Close()
	for seq := uint64(1); seq <= 30; seq++ {
		require.NoError(t, p.Publish(snap("a", seq)))
	}
	// Up to one snapshot may be in flight (taken before the buffer filled);
	// the rest of the overflow is dropped, oldest first, and counted.
	require.GreaterOrEqual(t, testutil.ToFloat64(p.m.dropped), 19.0)

	srv = startNATS(t, port, dir)
	defer srv.Shutdown()
	require.NoError(t, p.Flush(ctx))
	got := streamOrder(t, js)["a"]
	require.Equal(t, uint64(30), got[len(got)-1], "the newest survive")
	for i := 1; i < len(got); i++ {
		require.Less(t, got[i-1], got[i])
	}
	require.Equal(t, 30.0, float64(len(got))+testutil.ToFloat64(p.m.dropped))
}

func TestPublisherCoreMode(t *testing.T) {
	t.Parallel()
	srv, err := embedded.Start(bus.EmbeddedConfig{Listen: "127.0.0.1:0"}, false)
	require.NoError(t, err)
	defer srv.Shutdown()
	nc, err := nats.Connect(srv.ClientURL())
	require.NoError(t, err)
	defer nc.Close()
	sub, err := nc.SubscribeSync(bus.RawWildcard)
	require.NoError(t, err)
	p, err := NewPublisher(nc, nil, 0, prometheus.NewRegistry(), slog.New(slog.DiscardHandler))
	require.NoError(t, err)
	require.NoError(t, p.Publish(snap("10.0.0.9", 1)))
	m, err := sub.NextMsg(5 * time.Second)
	require.NoError(t, err)
	require.Equal(t, "bmc.v1.raw.10_0_0_9", m.Subject)
	require.Equal(t, "p1/1/10_0_0_9/1", m.Header.Get(nats.MsgIdHdr))
	p.Close()
}
