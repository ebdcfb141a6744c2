package remotewrite

import (
	"context"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// TestKeepAliveReusesConnections sends many batches from several shards
// and checks the receiver saw about one connection per shard: connections
// are kept alive and not churned by a low idle-connection limit.
func TestKeepAliveReusesConnections(t *testing.T) {
	var conns, requests atomic.Int64
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		requests.Add(1)
		w.WriteHeader(http.StatusNoContent)
	}))
	srv.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		if s == http.StateNew {
			conns.Add(1)
		}
	}
	srv.Start()
	defer srv.Close()

	cfg := testConfig(t, srv.URL)
	cfg.QueueConfig.Shards = 4
	cfg.QueueConfig.MaxSamplesPerSend = 10
	q, _ := newTestQueue(t, cfg, newTestClient(t, cfg))
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	done := make(chan struct{}, 200)
	for round := range 50 {
		require.NoError(t, q.Append(ctx, makeSamples(0, 40, int64(1000+round)), func() { done <- struct{}{} }))
	}
	for range 50 {
		select {
		case <-done:
		case <-ctx.Done():
			t.Fatal("batches not delivered")
		}
	}
	require.GreaterOrEqual(t, requests.Load(), int64(50*4), "several requests per shard")
	// One connection per shard, give or take a request that starts in the
	// instant before another returns its connection to the pool. With Go's
	// default of 2 idle connections per host, the 4 shards would open
	// about one new connection per round: a hundred or more.
	require.LessOrEqual(t, conns.Load(), int64(2*cfg.QueueConfig.Shards), "connections must be reused, not churned")
}
