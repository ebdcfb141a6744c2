package main

import (
	"bytes"
	"context"
	"encoding/json"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/bmcstream/bmcstream/internal/testbed"
	"github.com/bmcstream/bmcstream/pkg/bus"
	"github.com/bmcstream/bmcstream/pkg/bus/embedded"
	"github.com/bmcstream/bmcstream/pkg/pipeline"
)

// TestMain fails the package when a goroutine its test started (the
// embedded NATS server, the watch) is still running at the end.
func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

type syncBuf struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuf) Write(p []byte) (int, error) { s.mu.Lock(); defer s.mu.Unlock(); return s.b.Write(p) }
func (s *syncBuf) String() string              { s.mu.Lock(); defer s.mu.Unlock(); return s.b.String() }

func TestRackWatchWarnsOnceEachWay(t *testing.T) {
	srv, err := embedded.Start(bus.EmbeddedConfig{Listen: "127.0.0.1:0"}, false)
	require.NoError(t, err)
	defer srv.Shutdown()
	nc, err := nats.Connect(srv.ClientURL())
	require.NoError(t, err)
	defer nc.Close()
	out := &syncBuf{}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	subs := srv.NumSubscriptions()
	go func() { done <- watch(ctx, nc, "ctc", "*", 35, out) }()
	// The watch listens (readings and events) before anything is sent.
	testbed.Eventually(t, 5*time.Second, func() bool { return srv.NumSubscriptions() >= subs+2 }, "subscribed")

	send := func(bmc string, intake float64) {
		msg := pipeline.NormMessage{Version: pipeline.SchemaVersion, BMC: bmc, Labels: map[string]string{"site": "ctc", "rack": "i5"}, TimeMs: 1,
			Samples: []pipeline.NormSample{{Name: "bmc_temperature_celsius", Labels: map[string]string{"context": "intake", "sensor": "intake"}, Value: intake}}}
		b, err := json.Marshal(msg)
		require.NoError(t, err)
		require.NoError(t, nc.Publish(bus.NormSubject("ctc", "i5", bmc), b))
	}
	send("srv-1", 24)
	send("srv-2", 36) // over
	send("srv-2", 37) // still over: no repeat
	send("srv-2", 25) // back
	send("srv-1", 22)
	e, _ := json.Marshal(pipeline.Event{Version: pipeline.SchemaVersion, Kind: pipeline.EventBMCDown, BMC: "srv-3", Rack: "i5"})
	require.NoError(t, nc.Publish(bus.EventSubject("ctc", "i5", "srv-3"), e))
	require.NoError(t, nc.Flush())
	require.Eventually(t, func() bool { return bytes.Count([]byte(out.String()), []byte("\n")) == 3 }, 5*time.Second, 20*time.Millisecond, "%s", out)
	cancel()
	require.NoError(t, <-done)
	require.Contains(t, out.String(), "WARNING rack ctc/i5 intake 36.0 °C at srv-2")
	require.Contains(t, out.String(), "OK rack ctc/i5 intake back to 25.0 °C")
	require.Contains(t, out.String(), "EVENT bmc_down srv-3 rack i5")
}
