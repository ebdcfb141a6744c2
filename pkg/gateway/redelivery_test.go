package gateway_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/stretchr/testify/require"

	"github.com/bmcstream/bmcstream/internal/synth"
	"github.com/bmcstream/bmcstream/internal/testbed"
	"github.com/bmcstream/bmcstream/pkg/bus"
)

// TestRedeliveriesReplayedInOrder: the server redelivers a dead gateway's
// unacked snapshots as their ack waits end, and those differ (a gateway
// keeps the ack wait of the snapshot it is writing alive, not of those
// still in its prefetch buffer), so a BMC's newer snapshot can come back
// before its older one, which dedup would then refuse as stale. Here a
// stand-in predecessor takes three polls of each BMC and keeps only the
// first in progress, so the second and third come back first. The gateway
// must still write every poll.
func TestRedeliveriesReplayedInOrder(t *testing.T) {
	t.Parallel()
	bed := newBinaryBed(t)
	bin, prom, srv, pub, js := bed.bin, bed.prom, bed.srv, bed.pub, bed.js
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()

	fleet := synth.NewFleet(4)
	polls := pollTimes(3, time.Second)
	for i := range fleet.BMCs {
		for k, at := range polls {
			require.NoError(t, pub.Publish(ctx, fleet.Snapshot(i, at, "poller-a", 1, uint64(k+1))))
		}
	}
	const ackWait = 2 * time.Second
	stream, err := js.Stream(ctx, bus.DefaultStreamConfig.Name)
	require.NoError(t, err)
	cons, err := bus.EnsureConsumer(ctx, stream, bus.ConsumerConfig{Durable: "bmcstream-gateway-prom", AckWait: ackWait, MaxAckPending: 4096})
	require.NoError(t, err)
	n := len(fleet.BMCs) * len(polls)
	batch, err := cons.Fetch(n, jetstream.FetchMaxWait(5*time.Second))
	require.NoError(t, err)
	var taken []jetstream.Msg
	for m := range batch.Messages() {
		taken = append(taken, m)
	}
	require.Len(t, taken, n)
	// Halfway through the ack wait nothing is redelivered yet; then each
	// BMC's first poll is kept in progress, so its ack wait ends last.
	testbed.Never(t, ackWait/2, func() bool {
		info, err := cons.Info(ctx)
		return err != nil || info.NumAckPending != n || info.NumRedelivered != 0
	}, "a snapshot was redelivered (or the consumer unreadable) before its ack wait")
	for i, m := range taken {
		if i%len(polls) == 0 { // each BMC's first poll
			require.NoError(t, m.InProgress())
		}
	}

	config := filepath.Join(t.TempDir(), "gateway.yml")
	require.NoError(t, os.WriteFile(config, []byte(fmt.Sprintf(`
nats:
  url: %s
consumer: {ack_wait: 2s}
inventory:
  files: [%s]
remote_write:%s`, srv.ClientURL(), writeInventory(t, fleet), sinkYAML("prom", prom.WriteURL()))), 0o600))
	gw := startGateway(t, bin, config)

	var got []testbed.Series
	require.Eventually(t, func() bool {
		got, err = prom.RawSamples(ctx, `bmc_up`, 10*time.Minute, time.Now())
		if err != nil || len(got) != len(fleet.BMCs) {
			return false
		}
		for _, s := range got {
			if len(s.Samples) != len(polls) {
				return false
			}
		}
		return true
	}, 30*time.Second, 200*time.Millisecond, "every poll of every BMC")
	for _, s := range got {
		for k, at := range polls {
			require.Equal(t, at.UnixMilli(), s.Samples[k].T, "bmc %s", s.Labels["bmc"])
		}
	}
	// The server did hand the first polls back last, and all of them.
	logs, err := os.ReadFile(gw.LogFile)
	require.NoError(t, err)
	replay := regexp.MustCompile(`msg="replaying a previous gateway's unacknowledged snapshots in stream order".* snapshots=(\d+) redelivered_late=(\d+)`).FindStringSubmatch(string(logs))
	require.NotNil(t, replay, "%s", logs)
	require.Equal(t, strconv.Itoa(n), replay[1])
	require.NotEqual(t, "0", replay[2], "the test needs redeliveries out of order")
}
