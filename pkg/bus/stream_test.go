package bus

import (
	"context"
	"fmt"
	"log/slog"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/common/model"
	"github.com/stretchr/testify/require"
	"go.yaml.in/yaml/v2"
)

func TestStreamSetupAndDuplicateWindow(t *testing.T) {
	js := startJetStream(t)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()

	s, err := EnsureStream(ctx, js, DefaultStreamConfig)
	require.NoError(t, err)
	info, err := s.Info(ctx)
	require.NoError(t, err)
	require.Equal(t, []string{RawWildcard}, info.Config.Subjects)
	require.Equal(t, 24*time.Hour, info.Config.MaxAge)
	require.Equal(t, 2*time.Minute, info.Config.Duplicates)
	require.Equal(t, jetstream.FileStorage, info.Config.Storage)
	require.Equal(t, jetstream.LimitsPolicy, info.Config.Retention)

	// Publishing the same Nats-Msg-Id twice stores it once.
	id := MsgID("poller-a", 1, "10.0.0.1", 1)
	for range 2 {
		_, err = js.PublishMsg(ctx, &nats.Msg{Subject: RawSubject("10.0.0.1"), Data: []byte("x"), Header: nats.Header{nats.MsgIdHdr: []string{id}}})
		require.NoError(t, err)
	}
	_, err = js.PublishMsg(ctx, &nats.Msg{Subject: RawSubject("10.0.0.1"), Data: []byte("y"), Header: nats.Header{nats.MsgIdHdr: []string{MsgID("poller-a", 1, "10.0.0.1", 2)}}})
	require.NoError(t, err)
	info, err = s.Info(ctx)
	require.NoError(t, err)
	require.EqualValues(t, 2, info.State.Msgs)

	// A changed configuration updates the live stream.
	c := DefaultStreamConfig
	c.MaxAge = model.Duration(time.Hour)
	s, err = EnsureStream(ctx, js, c)
	require.NoError(t, err)
	info, err = s.Info(ctx)
	require.NoError(t, err)
	require.Equal(t, time.Hour, info.Config.MaxAge)
	require.EqualValues(t, 2, info.State.Msgs)

	cons, err := EnsureConsumer(ctx, s, ConsumerConfig{Durable: "gw", AckWait: time.Minute, MaxAckPending: 10})
	require.NoError(t, err)
	batch, err := cons.Fetch(2, jetstream.FetchMaxWait(5*time.Second))
	require.NoError(t, err)
	var got []string
	for m := range batch.Messages() {
		got = append(got, string(m.Data()))
		require.NoError(t, m.Ack())
	}
	require.Equal(t, []string{"x", "y"}, got)
}

func TestConfigStrictYAML(t *testing.T) {
	var c Config
	err := yaml.UnmarshalStrict([]byte("url: nats://x:4222\nmode: core\nstrem:\n  name: X\n"), &c)
	require.ErrorContains(t, err, "line 3")
	require.ErrorContains(t, err, "strem")

	c = Config{}
	require.NoError(t, yaml.UnmarshalStrict([]byte("url: nats://x:4222\nstream:\n  max_age: 1h\n"), &c))
	require.Equal(t, ModeJetStream, c.Mode)
	require.Equal(t, "BMC_RAW", c.Stream.Name)
	require.Equal(t, model.Duration(time.Hour), c.Stream.MaxAge)
	require.NoError(t, c.Validate())

	bad := DefaultConfig
	bad.Mode = "kafka"
	bad.Token = "t"
	bad.Password = "p"
	err = bad.Validate()
	require.ErrorContains(t, err, "nats.mode")
	require.ErrorContains(t, err, "at most one")
	_, err = DefaultConfig.Options("t", slog.New(slog.DiscardHandler))
	require.NoError(t, err)
}

// TestPartitionedStream: with partitions the server stores each snapshot
// under bmc.v1.raw.<partition>.<bmc>, every snapshot of a BMC in the same
// partition; partition consumers read disjoint sets that cover the stream;
// a program configured without partitions leaves them in place.
func TestPartitionedStream(t *testing.T) {
	js := startJetStream(t)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()

	c := DefaultStreamConfig
	c.Partitions = 4
	_, err := EnsureStream(ctx, js, c)
	require.NoError(t, err)
	const bmcs, polls = 40, 3
	for p := range polls {
		for i := range bmcs {
			_, err := js.Publish(ctx, RawSubject(fmt.Sprintf("10.0.0.%d", i)), []byte{byte(p)})
			require.NoError(t, err)
		}
	}
	// An unpartitioned program's setup keeps the transform.
	s, err := EnsureStream(ctx, js, DefaultStreamConfig)
	require.NoError(t, err)
	require.NotNil(t, s.CachedInfo().Config.SubjectTransform)

	partOf := map[string]int{}
	total := 0
	for p := range c.Partitions {
		cons, err := EnsureConsumer(ctx, s, ConsumerConfig{Durable: fmt.Sprintf("p%d", p), AckWait: time.Minute, MaxAckPending: 1000, Filter: PartitionFilter(p)})
		require.NoError(t, err)
		msgs, err := cons.FetchNoWait(1000)
		require.NoError(t, err)
		last := map[string]byte{}
		for m := range msgs.Messages() {
			total++
			id, err := BMCFromRawSubject(m.Subject())
			require.NoError(t, err)
			require.Equal(t, fmt.Sprintf("%s%d.%s", RawPrefix, p, EscapeToken(id)), m.Subject())
			if q, seen := partOf[id]; seen {
				require.Equal(t, q, p, "BMC %s in two partitions", id)
			}
			partOf[id] = p
			if prev, ok := last[id]; ok {
				require.Equal(t, prev+1, m.Data()[0], "BMC %s out of order", id)
			}
			last[id] = m.Data()[0]
		}
	}
	require.Equal(t, bmcs*polls, total)
	require.Len(t, partOf, bmcs)
	used := map[int]bool{}
	for _, p := range partOf {
		used[p] = true
	}
	require.Greater(t, len(used), 2, "40 BMCs should spread over the 4 partitions")
}

// startJetStream runs a JetStream server in the test process and connects
// to it. (The package's tests cannot use pkg/bus/embedded, which imports
// this package.)
func startJetStream(t *testing.T) jetstream.JetStream {
	t.Helper()
	srv, err := server.NewServer(&server.Options{Host: "127.0.0.1", Port: server.RANDOM_PORT, JetStream: true,
		StoreDir: t.TempDir(), NoSigs: true, NoLog: true})
	require.NoError(t, err)
	srv.Start()
	t.Cleanup(func() { srv.Shutdown(); srv.WaitForShutdown() })
	require.True(t, srv.ReadyForConnections(10*time.Second))
	nc, err := nats.Connect(srv.ClientURL())
	require.NoError(t, err)
	t.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	require.NoError(t, err)
	return js
}
