package gateway

import (
	"context"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
)

// The consumer watchdog notices a pull subscription that has stopped
// receiving while its stream holds snapshots for it, and opens a new one.
//
// nats.go's own guard, the missed-heartbeat error, does not cover the
// gateway's loop: it is armed only inside one Next call, and the loop calls
// Next with a wait of at most 200 ms (it hands acks and releases on between
// messages), far below twice the heartbeat, so it never fires. A pull
// request the server forgot, or one lost on the way, then leaves the
// iterator believing its batch is still owed, and it never pulls again:
// the server shows no waiting request while the consumer's pending count
// grows, and the gateway waits in Next without a word. The watchdog checks
// the consumer's figures from the server instead.
//
// A consumer is declared stalled when, over a whole check interval:
//   - the server had snapshots pending for it at both ends of the interval,
//   - the server delivered none to anyone (its delivered sequence did not
//     move) and this loop received none,
//   - the loop was waiting for messages (a Next timed out), not held back
//     by its own sink (a full queue blocks it outside Next), and
//   - fewer snapshots than max_ack_pending were unacknowledged (at the
//     limit the server holds deliveries back by design).
//
// The loop then drains its iterator (what was already received is still
// handled; nothing is acked that was not written) and opens a new pull
// subscription on the same durable consumer. Snapshots the old subscription
// had taken and not handed on come back after the ack wait and go through
// the usual order and dedup stages.

// consumerWatch is a consumer loop's watchdog state. The counters are
// written by the loop and read by the watcher goroutine; restart is set by
// the watcher and taken by the loop.
type consumerWatch struct {
	received atomic.Uint64 // messages Next returned
	idle     atomic.Uint64 // Next calls that timed out: the loop was waiting
	restart  atomic.Bool

	// Owned by the loop: the iterator it asked to drain, stopped outright
	// if the watcher asks again while it is still open.
	draining jetstream.MessagesContext
}

// watchCheck is what the watcher remembers between two checks.
type watchCheck struct {
	received, idle uint64
	delivered      uint64 // the server's delivered consumer sequence
	pending        uint64
}

// newConsumerRestarts is the watchdog's counter; consumer names are the
// gateway's own durable names (one per sink and partition), never a BMC.
func newConsumerRestarts() *prometheus.CounterVec {
	return prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "bmcstream_gateway_consumer_restarts_total",
		Help: "Pull subscriptions the consumer watchdog reopened because they stopped receiving while the stream held snapshots for them (see consumer.watchdog_interval).",
	}, []string{"consumer"})
}

// watchConsumer checks the loop's consumer every interval until ctx ends.
func (c *consumer) watchConsumer(ctx context.Context, every time.Duration) {
	if every <= 0 || c.cons == nil {
		return
	}
	name := c.cons.CachedInfo().Name
	restarts := c.restarts.WithLabelValues(name)
	t := time.NewTicker(every)
	defer t.Stop()
	var last watchCheck
	have := false
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		if c.draining() {
			return
		}
		ictx, cancel := context.WithTimeout(ctx, every)
		info, err := c.cons.Info(ictx)
		cancel()
		if err != nil {
			// The connection is down or the server busy: the client's own
			// reconnect handles that, and the next check looks again.
			have = false
			continue
		}
		now := watchCheck{
			received:  c.watch.received.Load(),
			idle:      c.watch.idle.Load(),
			delivered: info.Delivered.Consumer,
			pending:   info.NumPending,
		}
		if have && stalled(last, now, info.NumAckPending, c.maxAckPending) {
			c.logger.Warn("consumer stopped receiving while the stream holds snapshots for it; opening a new pull subscription",
				"consumer", name, "pending", info.NumPending, "ack_pending", info.NumAckPending,
				"waiting", info.NumWaiting, "delivered_seq", info.Delivered.Consumer, "stalled_for", every)
			restarts.Inc()
			c.watch.restart.Store(true)
			have = false // a fresh baseline after the restart
			continue
		}
		last, have = now, true
	}
}

// stalled applies the watchdog's rule (see above) to two checks.
func stalled(last, now watchCheck, ackPending, maxAckPending int) bool {
	return last.pending > 0 && now.pending > 0 &&
		now.delivered == last.delivered &&
		now.received == last.received &&
		now.idle > last.idle &&
		ackPending < maxAckPending
}

// restartIfStalled is called by the loop before each Next: when the
// watcher declared the consumer stalled, it drains it (Next then reports
// the iterator closed, and the loop opens a new one); a drain that has not
// finished by the next declaration is cut short.
func (c *consumer) restartIfStalled(it jetstream.MessagesContext) {
	if !c.watch.restart.Swap(false) {
		return
	}
	if c.watch.draining == it {
		it.Stop()
		return
	}
	c.watch.draining = it
	it.Drain()
}
