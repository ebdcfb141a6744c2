package gateway

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/bmcstream/bmcstream/pkg/bus"
	"github.com/bmcstream/bmcstream/pkg/pipeline"
	"github.com/bmcstream/bmcstream/pkg/series"
	"github.com/bmcstream/bmcstream/pkg/sinks"
	v1 "github.com/bmcstream/bmcstream/proto/bmcstream/v1"
)

// A consumer reads raw snapshots for one sink: a durable JetStream
// consumer (one per sink, or per sink and partition held) or a core-NATS
// queue subscription. For each snapshot it decodes and checks it, admits
// its BMC (bmcs.go), runs it through its pipeline.Processor and appends the
// samples to its sinks.Sink, then acks the snapshot once the sink calls
// done. Each sink decodes and normalises independently: CPU is spent once
// per sink, and in exchange a sink that is down only holds back its own
// consumer while the stream keeps the data (see docs/delivery.md).
//
// With JetStream it also owns:
//   - per-BMC order: at most one snapshot of a BMC is with the sink at a
//     time; later ones are parked, in stream order, until it is done;
//   - the redelivery of a previous gateway's unacked snapshots, first and
//     in stream order (awaitRedeliveries, replayInOrder);
//   - the ack keep-alive of every snapshot taken and not yet acked
//     (inFlight), and the watchdog (watchdog.go);
//   - draining: stop pulling and finish what was taken, for shutdown or a
//     partition's handover.
//
// It knows nothing of the Gateway: everything it uses is handed to it by
// newConsumer's caller.
type consumer struct {
	consumerOptions

	// One goroutine (run) owns these.
	snap    v1.Snapshot
	markers []series.Sample // forgetBMC's buffer
	started int64           // see awaitRedeliveries; roll-ups are never written before it

	removedMu sync.Mutex
	removed   []string // BMCs that left the inventory, for run to forget

	// track bounds the BMCs this loop keeps state for (see bmcs.go).
	track bmcTracker

	// drain, closed, makes run stop fetching and return once every
	// snapshot it took is finished with: a partition's graceful handover,
	// or shutdown. nil in core mode.
	drain chan struct{}

	pending inFlight
	watch   consumerWatch // see watchdog.go

	// Per-BMC serialisation (JetStream): at most one snapshot of a BMC is
	// with the sink at a time; later ones wait here, in stream order,
	// until it is done. Owned by run. See docs/delivery.md.
	inflight map[string][]jetstream.Msg // raw subject's BMC token → snapshots waiting behind the one in flight
	parked   int

	releaseMu sync.Mutex
	released  []string      // keys whose snapshot the sink finished
	releaseCh chan struct{} // signalled (never blocking) when released grows
}

// consumerOptions are what a consumer is given.
type consumerOptions struct {
	// name is the sink's, for logs and metrics; part the stream partition
	// consumed, -1 for the whole stream.
	name string
	part int

	proc *pipeline.Processor
	sink sinks.Sink
	// enrich returns the inventory in force.
	enrich func() *pipeline.Enricher

	// Exactly one of these is set.
	cons    jetstream.Consumer
	coreSub *nats.Subscription

	limits           pipeline.Limits
	inventory        InventoryConfig // admission and forgetting (bmcs.go)
	ackWait          time.Duration
	fetchBatch       int
	maxAckPending    int
	watchdogInterval time.Duration

	// awaitPredecessor makes a starting consumer wait for, then replay in
	// order, the snapshots a previous gateway left unacked (remote-write
	// sinks: Prometheus refuses what is out of order).
	awaitPredecessor bool
	// snapshotsOnly: the sink takes each snapshot's samples only, not the
	// staleness markers of a BMC forgotten (the automation stream).
	snapshotsOnly bool
	// logSources: this consumer logs protocol failovers. Every consumer
	// makes the same decisions, so one (the first remote-write sink's)
	// logs them.
	logSources bool

	logger   *slog.Logger
	metrics  *sinkMetrics
	restarts *prometheus.CounterVec // the watchdog's, by consumer name
}

func newConsumer(o consumerOptions) *consumer {
	return &consumer{consumerOptions: o}
}

// run consumes until ctx is cancelled (or, draining, until everything
// taken is finished with).
func (c *consumer) run(ctx context.Context) {
	defer c.untrackAll()
	if c.cons == nil {
		c.runCore(ctx)
		return
	}
	keepCtx, stopKeep := context.WithCancel(context.Background())
	defer stopKeep()
	c.pending.failed = c.metrics.progressErrs
	go c.pending.keepAlive(keepCtx, c.ackWait/3)
	go c.watchConsumer(keepCtx, c.watchdogInterval)

	c.inflight = make(map[string][]jetstream.Msg)
	c.releaseCh = make(chan struct{}, 1)
	var backlog uint64 // a predecessor's unacked snapshots, redelivered first
	if c.awaitPredecessor {
		var waited bool
		if waited, backlog = c.awaitRedeliveries(ctx); waited {
			c.started = time.Now().UnixMilli()
		}
	}
	var p pull
	defer p.stop()
	lastRollup := time.Now()
	for ctx.Err() == nil {
		c.housekeep(ctx, &lastRollup, rollupEvery)
		c.drainReleased(ctx)
		if c.draining() {
			if p.it != nil && !p.drained {
				// Stop pulling; what is already buffered is still handled.
				p.it.Drain()
			}
			if p.it == nil || p.drained {
				if len(c.inflight) == 0 {
					return
				}
				c.waitRelease(ctx)
				continue
			}
		}
		if p.it == nil {
			if !c.openPull(ctx, &p) {
				continue
			}
			if backlog > 0 {
				c.replayInOrder(ctx, p.it, backlog)
				backlog = 0
			}
		}
		c.receive(ctx, &p)
	}
}

// pull is a consumer's pull subscription: one for the loop's life, not a
// fetch per round. A fetch whose client side gives up (1 s after the
// server's expiry) while its messages are still on the way drops them, and
// JetStream redelivers them only after AckWait, behind newer snapshots of
// the same BMCs, which would then be refused as out of order: on a
// saturated machine that lost polls. The iterator's subscription stays
// open across its pulls, so nothing delivered is dropped.
type pull struct {
	it      jetstream.MessagesContext // nil: none open
	drained bool                      // drained for a handover: nothing more will come
}

func (p *pull) stop() {
	if p.it != nil {
		p.it.Stop()
	}
}

// openPull opens the pull subscription; false after a failure (counted,
// logged, and waited out).
func (c *consumer) openPull(ctx context.Context, p *pull) bool {
	it, err := c.cons.Messages(jetstream.PullMaxMessages(c.fetchBatch))
	if err != nil {
		c.metrics.fetchErrors.Inc()
		c.logger.Warn("pull from stream", "err", err)
		sleep(ctx, time.Second)
		return false
	}
	p.it = it
	return true
}

// receive takes the next message, if one comes soon, and dispatches it.
// While snapshots are with the sink it waits only briefly, so releases are
// handled between messages.
func (c *consumer) receive(ctx context.Context, p *pull) {
	wait := 200 * time.Millisecond
	if len(c.inflight) > 0 {
		wait = 20 * time.Millisecond
	}
	c.restartIfStalled(p.it)
	m, err := p.it.Next(jetstream.NextMaxWait(wait))
	switch {
	case err == nil:
		c.watch.received.Add(1)
		c.pending.add(m)
		c.dispatch(ctx, m)
	case errors.Is(err, nats.ErrTimeout):
		c.watch.idle.Add(1)
		if len(c.inflight) > 0 {
			c.waitRelease(ctx)
		}
	case errors.Is(err, jetstream.ErrMsgIteratorClosed):
		if c.draining() {
			p.drained = true
			return
		}
		// The connection closed under it, or the watchdog drained it:
		// pull anew.
		p.it.Stop()
		p.it = nil
		sleep(ctx, time.Second)
	default:
		c.metrics.fetchErrors.Inc()
		c.metrics.logLimiter.Do(func() { c.logger.Warn("pull from stream", "err", err) })
		if ctx.Err() == nil {
			sleep(ctx, 100*time.Millisecond)
		}
	}
}

// housekeep, between messages: forget the BMCs that left the inventory or
// stopped, and write the roll-ups when due.
func (c *consumer) housekeep(ctx context.Context, lastRollup *time.Time, every time.Duration) {
	c.forgetRemoved(ctx)
	c.sweepBMCs(ctx)
	if time.Since(*lastRollup) >= every {
		c.emitRollups(ctx)
		*lastRollup = time.Now()
	}
}

// waitRelease waits a little for the sink to finish a snapshot.
func (c *consumer) waitRelease(ctx context.Context) {
	if f, ok := c.sink.(sinks.Flusher); ok && (c.parked > 0 || c.draining()) {
		// A backlog (or a handover) waits on the snapshots with the
		// sink: send them now rather than at the batch deadline.
		f.FlushNow()
	}
	t := time.NewTimer(50 * time.Millisecond)
	select {
	case <-ctx.Done():
	case <-c.releaseCh:
	case <-t.C:
	}
	t.Stop()
}

func (c *consumer) draining() bool {
	if c.drain == nil {
		return false
	}
	select {
	case <-c.drain:
		return true
	default:
		return false
	}
}

// awaitRedeliveries holds a starting consumer back while it has snapshots
// another gateway took and has not acked: the server redelivers them only
// after AckWait, and newer snapshots of the same BMCs written first would
// make them out of order, which Prometheus rejects (with the whole
// request). A replica handing a partition over acks everything it took
// before it lets go, so the wait ends as soon as those acks are in; a
// gateway that was killed leaves them pending, and the wait lasts AckWait,
// which lets them come first.
//
// It reports whether it waited: a previous gateway held the consumer, and
// the roll-ups it wrote may be ahead of the backlog about to be replayed.
//
// It also returns how many remain unacked after the wait: the snapshots
// the server redelivers first, which replayInOrder puts back in order.
func (c *consumer) awaitRedeliveries(ctx context.Context) (bool, uint64) {
	pending := func() (uint64, bool) {
		ictx, cancel := context.WithTimeout(ctx, 10*time.Second)
		defer cancel()
		info, err := c.cons.Info(ictx)
		if err != nil {
			return 0, false
		}
		return uint64(info.NumAckPending), true
	}
	n, _ := pending()
	if n == 0 {
		return false, 0
	}
	wait := c.ackWait + time.Second
	c.logger.Info("snapshots of a previous gateway are unacknowledged; waiting for their ack or redelivery so they are written before newer ones",
		"unacked", n, "max_wait", wait)
	deadline := time.Now().Add(wait)
	for ctx.Err() == nil && time.Now().Before(deadline) {
		sleep(ctx, min(250*time.Millisecond, time.Until(deadline)))
		if p, ok := pending(); ok {
			if n = p; n == 0 {
				break
			}
		}
	}
	return true, n
}

// replayInOrder takes the backlog of snapshots a predecessor left unacked,
// which the server redelivers before anything newer, and hands them on in
// stream order. The server queues a message for redelivery when its own
// ack wait ends, and those differ (a gateway extends the ack wait of the
// snapshots it is working on, not of those still in its prefetch buffer),
// so a BMC's older snapshot can come back after its newer one, and dedup
// would then refuse it as stale: a lost poll. Taken in one go and sorted,
// they are written in order. It stops early after a second with nothing
// (a message past its max deliveries is not redelivered).
func (c *consumer) replayInOrder(ctx context.Context, it jetstream.MessagesContext, backlog uint64) {
	type redelivered struct {
		m   jetstream.Msg
		seq uint64
	}
	var msgs []redelivered
	late, newest := 0, uint64(0) // arrived after a newer one
	for uint64(len(msgs)) < backlog && ctx.Err() == nil {
		m, err := it.Next(jetstream.NextMaxWait(time.Second))
		if err != nil {
			break
		}
		c.pending.add(m) // its ack wait is kept alive while the backlog is gathered
		var seq uint64
		if md, err := m.Metadata(); err == nil {
			seq = md.Sequence.Stream
		}
		if seq < newest {
			late++
		}
		newest = max(newest, seq)
		msgs = append(msgs, redelivered{m, seq})
	}
	slices.SortStableFunc(msgs, func(a, b redelivered) int { return cmp.Compare(a.seq, b.seq) })
	c.logger.Info("replaying a previous gateway's unacknowledged snapshots in stream order",
		"snapshots", len(msgs), "redelivered_late", late)
	for _, r := range msgs {
		c.dispatch(ctx, r.m)
	}
}

// dispatch handles m now, or parks it behind the snapshot of the same BMC
// that is still with the sink. Every snapshot of a BMC arrives on a
// subject ending in its token, so that is the key; no decoding needed to
// park.
func (c *consumer) dispatch(ctx context.Context, m jetstream.Msg) {
	key := bmcKey(m.Subject())
	if waiting, busy := c.inflight[key]; busy {
		c.inflight[key] = append(waiting, m)
		c.parked++
		return
	}
	c.inflight[key] = nil
	if !c.handle(ctx, m.Subject(), m.Data(), m) {
		c.next(ctx, key)
	}
}

// next handles the snapshots parked behind a BMC's finished one, until one
// goes to the sink (and will be released in turn) or none is left.
func (c *consumer) next(ctx context.Context, key string) {
	for {
		waiting, ok := c.inflight[key]
		if !ok {
			return
		}
		if len(waiting) == 0 {
			delete(c.inflight, key)
			return
		}
		m := waiting[0]
		waiting[0] = nil
		c.inflight[key] = waiting[1:]
		c.parked--
		if c.handle(ctx, m.Subject(), m.Data(), m) {
			return
		}
	}
}

// release is called (from any goroutine) when the sink is done with a
// BMC's snapshot: run then hands on the next one.
func (c *consumer) release(key string) {
	c.releaseMu.Lock()
	c.released = append(c.released, key)
	c.releaseMu.Unlock()
	select {
	case c.releaseCh <- struct{}{}:
	default:
	}
}

func (c *consumer) drainReleased(ctx context.Context) {
	c.releaseMu.Lock()
	keys := c.released
	c.released = nil
	c.releaseMu.Unlock()
	for _, key := range keys {
		c.next(ctx, key)
	}
}

// subscribeCore subscribes in core-NATS mode. Messages wait in the
// subscription's own buffer, bounded in count and in bytes (core NATS has
// no back-pressure): when a consumer falls behind by more than coreBuffer
// snapshots or coreBufferBytes, NATS drops messages for it and counts them.
func subscribeCore(nc *nats.Conn, queue string) (*nats.Subscription, error) {
	sub, err := nc.QueueSubscribeSync(bus.RawWildcard, queue)
	if err != nil {
		return nil, fmt.Errorf("subscribe %s: %w", bus.RawWildcard, err)
	}
	if err := sub.SetPendingLimits(coreBuffer, coreBufferBytes); err != nil {
		_ = sub.Unsubscribe() // the subscription is dropped; the limits error is the one to report
		return nil, fmt.Errorf("subscribe %s: %w", bus.RawWildcard, err)
	}
	return sub, nc.Flush()
}

// coreBuffer and coreBufferBytes bound what one core-mode consumer holds
// unread: 4096 snapshots are seconds of a large fleet; 64 MiB keeps a
// publisher of 1 MiB messages from parking gigabytes in the gateway.
const (
	coreBuffer      = 4096
	coreBufferBytes = 64 << 20
)

// runCore consumes a core-NATS subscription: no acks, no redelivery, so
// no parking either; a snapshot is handled when it is read.
func (c *consumer) runCore(ctx context.Context) {
	// fails only on a subscription or connection closed already: nothing left to end
	defer func() { _ = c.coreSub.Unsubscribe() }()
	last := time.Now()
	for ctx.Err() == nil {
		if time.Since(last) >= time.Second {
			c.housekeep(ctx, &last, 0)
		}
		m, err := c.coreSub.NextMsg(200 * time.Millisecond)
		switch {
		case err == nil:
			c.handle(ctx, m.Subject, m.Data, nil)
			// A handle held up by a full sink was busy, not quiet.
			c.track.active = time.Now()
		case errors.Is(err, nats.ErrTimeout):
		case errors.Is(err, nats.ErrSlowConsumer):
			// NATS dropped messages for this consumer (counted by the
			// subscription); reading goes on.
			c.metrics.logLimiter.Do(func() {
				// an error means the subscription is closed: reading stops at the next NextMsg
				dropped, _ := c.coreSub.Dropped()
				c.logger.Warn("core NATS dropped snapshots: this sink fell behind", "dropped_total", dropped)
			})
		default:
			c.metrics.fetchErrors.Inc()
			c.metrics.logLimiter.Do(func() { c.logger.Warn("read from subscription", "err", err) })
			sleep(ctx, time.Second)
		}
	}
}

// handle turns one message into samples and appends them to the sink.
// With JetStream, m is acked once the sink is done with every sample,
// terminated when it can never be processed, and left alone (redelivered
// later) when shutdown interrupts it. It reports whether the sink still
// has the samples: release is then called for m's BMC once it is done.
func (c *consumer) handle(ctx context.Context, subject string, data []byte, m jetstream.Msg) (queued bool) {
	if !c.check(subject, data, m) {
		return false
	}
	out := c.proc.Process(&c.snap, c.enrich())
	c.count()
	if !out.Accepted {
		// HA pairs: one leader per BMC; redelivered and older snapshots
		// are done with (acked), not errors.
		c.metrics.snapshots.WithLabelValues("duplicate").Inc()
		c.ack(m)
		return false
	}
	if !out.Known {
		c.metrics.unknownBMC.Inc()
	}
	if out.Change != pipeline.SourceUnchanged && c.logSources {
		c.logSourceChange(out.Change, out.Prefer)
	}
	c.metrics.addSkipped(&out.Skipped)
	c.metrics.age.Observe(time.Since(time.UnixMilli(c.snap.PollStartMs)).Seconds())

	n := len(out.Samples)
	t := &ticket{c: c, m: m, key: bmcKey(subject)}
	b := sinks.Batch{Source: c.snap.BmcId, Samples: out.Samples, Snapshot: &c.snap, Change: out.Change, Prefer: out.Prefer}
	if err := c.sink.Append(ctx, b, t.done); err != nil {
		switch {
		case sinks.IsPermanent(err):
			// It would fail the same way on every redelivery.
			c.reject(m, "unpublishable", err)
		case sinks.IsRetry(err) && m != nil:
			// Redelivered after a pause. Merely leaving it unacked
			// would keep it in flight for good: the keep-alive
			// extends its ack wait while it is tracked.
			c.pending.remove(m)
			if err := m.NakWithDelay(time.Second); err != nil {
				c.metrics.ackErrors.Inc()
			}
		}
		// Otherwise shutting down: left unacked for redelivery.
		return false
	}
	c.metrics.snapshots.WithLabelValues("ok").Inc()
	c.metrics.samples.Add(float64(n))
	// Still with the sink unless done already ran.
	return m != nil && t.state.CompareAndSwap(ticketAppending, ticketWithSink)
}

// check decodes a message into c.snap, checks it and admits its BMC; a
// snapshot that fails is rejected (terminated) and check reports false.
func (c *consumer) check(subject string, data []byte, m jetstream.Msg) bool {
	if err := c.limits.Decode(data, &c.snap); err != nil {
		c.reject(m, rejectReason(err), err)
		return false
	}
	if id, err := bus.BMCFromRawSubject(subject); err != nil || id != c.snap.BmcId {
		c.reject(m, "subject_mismatch", errors.New("bmc_id does not match the subject"))
		return false
	}
	// Times from a wrong clock would stop the series (later samples look
	// out of order) or make a receiver refuse whole requests.
	now := time.Now()
	removed, err := c.limits.CheckTimes(&c.snap, now.UnixMilli())
	if err != nil {
		c.reject(m, rejectReason(err), err)
		return false
	}
	// Before any state is kept for the BMC: bounded and reclaimed.
	if reason, err := c.admit(c.snap.BmcId, bmcKey(subject), c.snap.PollStartMs, now); err != nil {
		c.reject(m, reason, err)
		return false
	}
	c.metrics.badTime.Add(float64(removed))
	return true
}

// A ticket is one snapshot appended to the sink: done acks it and, if the
// sink finished after Append returned, releases its BMC's next snapshot.
type ticket struct {
	c     *consumer
	m     jetstream.Msg // nil in core mode
	key   string
	state atomic.Int32
}

const (
	ticketAppending = iota // in Append
	ticketWithSink         // Append returned, done not yet called
	ticketDoneEarly        // done ran before Append returned
)

func (t *ticket) done() {
	if t.m == nil {
		return
	}
	t.c.ack(t.m)
	if !t.state.CompareAndSwap(ticketAppending, ticketDoneEarly) {
		t.c.release(t.key)
	}
}

// ack acks m (nil: core mode, nothing to ack) and stops its keep-alive.
func (c *consumer) ack(m jetstream.Msg) {
	if m == nil {
		return
	}
	c.pending.remove(m)
	if err := m.Ack(); err != nil {
		c.metrics.ackErrors.Inc()
	}
}

// logSourceChange logs a BMC's series moving from one protocol to the
// other, a few lines at a time.
func (c *consumer) logSourceChange(change pipeline.SourceChange, prefer v1.Protocol) {
	from, to := prefer, otherProtocol(prefer)
	if change == pipeline.SourceHandback {
		from, to = to, from
	}
	ok, suppressed := c.metrics.changeLog.Allow()
	if suppressed > 0 {
		c.logger.Warn("protocol failovers not logged: too many at once", "suppressed", suppressed)
	}
	if !ok {
		c.metrics.changeLogsSuppressed.Inc()
		return
	}
	if change == pipeline.SourceHandback {
		c.logger.Info("preferred protocol up again: it feeds the BMC's series", "bmc", c.snap.BmcId, "from", protocolName(from), "to", protocolName(to))
	} else {
		c.logger.Info("preferred protocol down: the other feeds the BMC's series", "bmc", c.snap.BmcId, "from", protocolName(from), "to", protocolName(to), "err", c.snap.Error)
	}
}

func otherProtocol(p v1.Protocol) v1.Protocol {
	if p == v1.Protocol_PROTOCOL_IPMI {
		return v1.Protocol_PROTOCOL_REDFISH
	}
	return v1.Protocol_PROTOCOL_IPMI
}

func protocolName(p v1.Protocol) string {
	switch p {
	case v1.Protocol_PROTOCOL_REDFISH:
		return "redfish"
	case v1.Protocol_PROTOCOL_IPMI:
		return "ipmi"
	}
	return "unspecified"
}

// count turns the processor's counters into metrics.
func (c *consumer) count() {
	n := c.proc.TakeCounters()
	c.metrics.dedupRejected.WithLabelValues("not_leader").Add(float64(n.NotLeader))
	c.metrics.dedupRejected.WithLabelValues("stale_sequence").Add(float64(n.StaleSequence))
	c.metrics.failovers.Add(float64(n.HAFailovers))
	c.metrics.outOfOrder.Add(float64(n.OutOfOrder))
	c.metrics.passedOver.Add(float64(n.PassedOver))
	c.metrics.takeovers.Add(float64(n.Takeovers))
	c.metrics.handbacks.Add(float64(n.Handbacks))
	c.metrics.staleMarkers.Add(float64(n.StaleMarkers))
}

// rollupEvery is how often rack roll-ups are written: a quarter of the
// usual 30 s poll interval keeps them current without a sample per poll.
const rollupEvery = 10 * time.Second

// emitRollups writes the rack roll-ups (see pipeline.Processor.Rollups).
// Before started: a backlog from before this process, whose roll-ups a
// previous gateway may have written already.
func (c *consumer) emitRollups(ctx context.Context) {
	out := c.proc.Rollups(c.started)
	if len(out) == 0 {
		return
	}
	if err := c.sink.Append(ctx, sinks.Batch{Source: pipeline.RollupKey, Samples: out}, func() {}); err != nil {
		return
	}
	c.metrics.samples.Add(float64(len(out)))
}

// forgetBMCs queues BMCs that left the inventory; run ends their series.
func (c *consumer) forgetBMCs(ids []string) {
	c.removedMu.Lock()
	c.removed = append(c.removed, ids...)
	c.removedMu.Unlock()
}

// forgetRemoved writes staleness markers for every series of the BMCs that
// left the inventory, just after their last sample, and drops their state.
func (c *consumer) forgetRemoved(ctx context.Context) {
	c.removedMu.Lock()
	ids := c.removed
	c.removed = nil
	c.removedMu.Unlock()
	for _, id := range ids {
		if !c.forgetBMC(ctx, id, forgetRemoved) {
			return
		}
	}
}

// limitsFor are the snapshot limits of a gateway: the defaults, with a
// sample age at least the stream's retention plus an hour, since a sink
// coming back from an outage reads everything the stream kept.
func limitsFor(cfg *Config) pipeline.Limits {
	l := pipeline.DefaultLimits
	if cfg.NATS.Mode == bus.ModeJetStream {
		l.MaxAge = max(l.MaxAge, time.Duration(cfg.NATS.Stream.MaxAge)+time.Hour)
	}
	return l
}

// rejectReason names the result a refused snapshot is counted under.
func rejectReason(err error) string {
	switch {
	case errors.Is(err, pipeline.ErrOversized):
		return "oversized"
	case errors.Is(err, pipeline.ErrBadTime):
		return "bad_timestamp"
	}
	return "malformed"
}

func (c *consumer) reject(m jetstream.Msg, reason string, err error) {
	c.metrics.snapshots.WithLabelValues(reason).Inc()
	c.metrics.logLimiter.Do(func() {
		c.logger.Warn("dropping snapshot", "reason", reason, "err", err)
	})
	if m != nil {
		c.pending.remove(m)
		if err := m.Term(); err != nil {
			c.metrics.ackErrors.Inc()
		}
	}
}

// bmcKey is the per-BMC serialisation key of a raw subject: its BMC token,
// the same whether or not the stream is partitioned; a subject that is not
// a raw subject is its own key (handle rejects it).
func bmcKey(subject string) string {
	if tok, ok := bus.RawToken(subject); ok {
		return tok
	}
	return subject
}

func sleep(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-t.C:
	}
}

// inFlight tracks the messages handed to a sink and not yet acked, and
// tells the server they are still being worked on so AckWait does not
// redeliver a snapshot that is merely waiting for a slow sink.
type inFlight struct {
	mu   sync.Mutex
	msgs map[jetstream.Msg]time.Time
	// failed counts progress notices that could not be sent: nothing
	// else to do about one, the next tick tries again.
	failed prometheus.Counter
}

func (p *inFlight) add(m jetstream.Msg) {
	p.mu.Lock()
	if p.msgs == nil {
		p.msgs = make(map[jetstream.Msg]time.Time)
	}
	p.msgs[m] = time.Now()
	p.mu.Unlock()
}

func (p *inFlight) remove(m jetstream.Msg) {
	p.mu.Lock()
	delete(p.msgs, m)
	p.mu.Unlock()
}

func (p *inFlight) keepAlive(ctx context.Context, every time.Duration) {
	t := time.NewTicker(every)
	defer t.Stop()
	var due []jetstream.Msg
	for {
		select {
		case <-ctx.Done():
			return
		case now := <-t.C:
			due = due[:0]
			p.mu.Lock()
			for m, since := range p.msgs {
				if now.Sub(since) >= every {
					due = append(due, m)
					p.msgs[m] = now
				}
			}
			p.mu.Unlock()
			for _, m := range due {
				if err := m.InProgress(); err != nil {
					p.failed.Inc()
				}
			}
		}
	}
}
