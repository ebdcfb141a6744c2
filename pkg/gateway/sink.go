package gateway

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/bmcstream/bmcstream/pkg/bus"
	"github.com/bmcstream/bmcstream/pkg/inventory"
	"github.com/bmcstream/bmcstream/pkg/pipeline"
	"github.com/bmcstream/bmcstream/pkg/series"
	"github.com/bmcstream/bmcstream/pkg/sinks/remotewrite"
	v1 "github.com/bmcstream/bmcstream/proto/bmcstream/v1"

	"log/slog"
)

// sink is one remote-write destination with its own consumer. Each sink
// decodes and normalises independently: CPU is spent once per sink, and in
// exchange a sink that is down only holds back its own consumer while the
// stream keeps the data (see docs/delivery.md).
type sink struct {
	name    string
	g       *Gateway
	queue   *remotewrite.Queue
	cons    jetstream.Consumer // nil in core mode
	coreSub *nats.Subscription // core mode only
	logger  *slog.Logger
	metrics *sinkMetrics

	// One goroutine (run) owns these.
	limits  pipeline.Limits // set by run
	snap    v1.Snapshot
	samples []series.Sample
	norm    *pipeline.Normaliser
	relabel *pipeline.Relabeler // nil: no write_relabel_configs
	rollup  *pipeline.Rollup    // nil: roll-ups off
	newest  int64               // newest poll time seen, the roll-ups' time
	// lastRollup is the time of the last roll-up written; rollupBuf is
	// reused between emits.
	lastRollup int64
	rollupBuf  []series.Sample
	dedup      *pipeline.Dedup
	stale      *pipeline.Staleness
	seen       pipeline.DedupStats
	sources    *pipeline.Sources // made by the first handle
	srcSeen    pipeline.SourcesStats
	// srcEvent is the protocol move the snapshot being handled made, for
	// the automation stream's event.
	srcEvent  pipeline.SourceChange
	srcPrefer v1.Protocol

	removedMu sync.Mutex
	removed   []string // BMCs that left the inventory, for run to forget

	// track bounds the BMCs this loop keeps state for (see bmcs.go).
	track bmcTracker

	// out, when set, makes this consumer the automation stream instead of
	// a remote-write sink (queue is then nil).
	out *automation

	// part is the stream partition this loop consumes, -1 for the whole
	// stream; several loops (one per partition held) share a queue.
	part int
	// drain, closed, makes run stop fetching and return once every
	// snapshot it took is finished with: a partition's graceful handover.
	drain chan struct{}

	pending inFlight
	watch   consumerWatch // see watchdog.go

	// Per-BMC serialisation (JetStream sinks): at most one snapshot of a
	// BMC is with the queue at a time; later ones wait here, in stream
	// order, until it is acked. Owned by run. See docs/delivery.md.
	inflight map[string][]jetstream.Msg // raw subject → snapshots waiting behind the one in flight
	parked   int
	// started is when this sink began consuming (Unix ms) after an unclean
	// predecessor (0 otherwise): roll-ups are never written before it, so
	// replaying older snapshots cannot write a roll-up behind one the
	// predecessor wrote.
	started int64

	releaseMu sync.Mutex
	released  []string      // subjects whose snapshot the queue finished
	releaseCh chan struct{} // signalled (never blocking) when released grows
}

// run consumes until ctx is cancelled. It owns the decode buffers.
func (s *sink) run(ctx context.Context) {
	defer s.untrackAll()
	s.limits = limitsFor(s.g.cfg)
	if s.cons == nil {
		s.runCore(ctx)
		return
	}
	keepCtx, stopKeep := context.WithCancel(context.Background())
	defer stopKeep()
	go s.pending.keepAlive(keepCtx, time.Duration(s.g.cfg.Consumer.AckWait)/3)
	go s.watchConsumer(keepCtx, time.Duration(s.g.cfg.Consumer.WatchdogInterval))

	s.inflight = make(map[string][]jetstream.Msg)
	s.releaseCh = make(chan struct{}, 1)
	var backlog uint64 // a predecessor's unacked snapshots, redelivered first
	if s.out == nil {
		var waited bool
		if waited, backlog = s.awaitRedeliveries(ctx); waited {
			s.started = time.Now().UnixMilli()
		}
	}

	// One pull subscription for the loop's life, not a fetch per round: a
	// fetch whose client side gives up (1 s after the server's expiry) while
	// its messages are still on the way drops them, and JetStream
	// redelivers them only after AckWait, behind newer snapshots of the
	// same BMCs, which would then be refused as out of order: on a
	// saturated machine that lost polls. The iterator's subscription stays
	// open across its pulls, so nothing delivered is dropped.
	var it jetstream.MessagesContext
	defer func() {
		if it != nil {
			it.Stop()
		}
	}()
	drained := false // the iterator was drained: nothing more will come
	lastRollup := time.Now()
	for ctx.Err() == nil {
		s.forgetRemoved(ctx)
		s.sweepBMCs(ctx)
		if time.Since(lastRollup) >= rollupEvery {
			s.emitRollups(ctx)
			lastRollup = time.Now()
		}
		s.drainReleased(ctx)
		if s.draining() && it != nil && !drained {
			// Stop pulling; what is already buffered is still handled.
			it.Drain()
		}
		if s.draining() && (it == nil || drained) {
			if len(s.inflight) == 0 {
				return
			}
			s.waitRelease(ctx)
			continue
		}
		if it == nil {
			var err error
			if it, err = s.cons.Messages(jetstream.PullMaxMessages(s.g.cfg.Consumer.FetchBatch)); err != nil {
				it = nil
				s.metrics.fetchErrors.Inc()
				s.logger.Warn("pull from stream", "err", err)
				sleep(ctx, time.Second)
				continue
			}
			if backlog > 0 {
				s.replayInOrder(ctx, it, backlog)
				backlog = 0
			}
		}
		// Releases are handled between messages: while snapshots are
		// with the queue, wait only briefly for the next message.
		wait := 200 * time.Millisecond
		if len(s.inflight) > 0 {
			wait = 20 * time.Millisecond
		}
		s.restartIfStalled(it)
		m, err := it.Next(jetstream.NextMaxWait(wait))
		switch {
		case err == nil:
			s.watch.received.Add(1)
			s.pending.add(m)
			s.dispatch(ctx, m)
		case errors.Is(err, nats.ErrTimeout):
			s.watch.idle.Add(1)
			if len(s.inflight) > 0 {
				s.waitRelease(ctx)
			}
		case errors.Is(err, jetstream.ErrMsgIteratorClosed):
			if s.draining() {
				drained = true
				continue
			}
			// The connection closed under it, or the watchdog drained
			// it: pull anew.
			it.Stop()
			it = nil
			sleep(ctx, time.Second)
		default:
			s.metrics.fetchErrors.Inc()
			s.metrics.logLimiter.Do(func() { s.logger.Warn("pull from stream", "err", err) })
			if ctx.Err() == nil {
				sleep(ctx, 100*time.Millisecond)
			}
		}
	}
}

// waitRelease waits a little for the queue to finish a snapshot.
func (s *sink) waitRelease(ctx context.Context) {
	if s.queue != nil && (s.parked > 0 || s.draining()) {
		// A backlog (or a handover) waits on the snapshots with the
		// queue: send them now rather than at the batch deadline.
		s.queue.FlushNow()
	}
	t := time.NewTimer(50 * time.Millisecond)
	select {
	case <-ctx.Done():
	case <-s.releaseCh:
	case <-t.C:
	}
	t.Stop()
}

func (s *sink) draining() bool {
	if s.drain == nil {
		return false
	}
	select {
	case <-s.drain:
		return true
	default:
		return false
	}
}

// awaitRedeliveries holds a starting sink back while its consumer has
// snapshots another gateway took and has not acked: the server redelivers
// them only after AckWait, and newer snapshots of the same BMCs written
// first would make them out of order, which Prometheus rejects (with the
// whole request). A replica handing a partition over acks everything it
// took before it lets go, so the wait ends as soon as those acks are in; a
// gateway that was killed leaves them pending, and the wait lasts AckWait,
// which lets them come first.
//
// It reports whether it waited: a previous gateway held the consumer, and
// the roll-ups it wrote may be ahead of the backlog about to be replayed.
//
// It also returns how many remain unacked after the wait: the snapshots
// the server redelivers first, which replayInOrder puts back in order.
func (s *sink) awaitRedeliveries(ctx context.Context) (bool, uint64) {
	pending := func() (uint64, bool) {
		ictx, cancel := context.WithTimeout(ctx, 10*time.Second)
		defer cancel()
		info, err := s.cons.Info(ictx)
		if err != nil {
			return 0, false
		}
		return uint64(info.NumAckPending), true
	}
	n, _ := pending()
	if n == 0 {
		return false, 0
	}
	wait := time.Duration(s.g.cfg.Consumer.AckWait) + time.Second
	s.logger.Info("snapshots of a previous gateway are unacknowledged; waiting for their ack or redelivery so they are written before newer ones",
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
func (s *sink) replayInOrder(ctx context.Context, it jetstream.MessagesContext, backlog uint64) {
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
		s.pending.add(m) // its ack wait is kept alive while the backlog is gathered
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
	s.logger.Info("replaying a previous gateway's unacknowledged snapshots in stream order",
		"snapshots", len(msgs), "redelivered_late", late)
	for _, r := range msgs {
		s.dispatch(ctx, r.m)
	}
}

// dispatch handles m now, or parks it behind the snapshot of the same BMC
// that is still with the queue. Every snapshot of a BMC arrives on a
// subject ending in its token, so that is the key; no decoding needed to
// park.
func (s *sink) dispatch(ctx context.Context, m jetstream.Msg) {
	key := bmcKey(m.Subject())
	if waiting, busy := s.inflight[key]; busy {
		s.inflight[key] = append(waiting, m)
		s.parked++
		return
	}
	s.inflight[key] = nil
	if !s.handle(ctx, m.Subject(), m.Data(), m) {
		s.next(ctx, key)
	}
}

// next handles the snapshots parked behind a BMC's finished one, until one
// goes to the queue (and will be released in turn) or none is left.
func (s *sink) next(ctx context.Context, key string) {
	for {
		waiting, ok := s.inflight[key]
		if !ok {
			return
		}
		if len(waiting) == 0 {
			delete(s.inflight, key)
			return
		}
		m := waiting[0]
		waiting[0] = nil
		s.inflight[key] = waiting[1:]
		s.parked--
		if s.handle(ctx, m.Subject(), m.Data(), m) {
			return
		}
	}
}

// release is called by the queue (from any goroutine) when a BMC's
// snapshot is finished with: run then hands on the next one.
func (s *sink) release(key string) {
	s.releaseMu.Lock()
	s.released = append(s.released, key)
	s.releaseMu.Unlock()
	select {
	case s.releaseCh <- struct{}{}:
	default:
	}
}

func (s *sink) drainReleased(ctx context.Context) {
	s.releaseMu.Lock()
	keys := s.released
	s.released = nil
	s.releaseMu.Unlock()
	if len(keys) == 0 {
		return
	}
	for _, key := range keys {
		s.next(ctx, key)
	}
}

// subscribeCore subscribes in core-NATS mode. Messages wait in the
// subscription's own buffer, bounded in count and in bytes (core NATS has
// no back-pressure): when this sink falls behind by more than coreBuffer
// snapshots or coreBufferBytes, NATS drops messages for it and counts them.
func (s *sink) subscribeCore() error {
	sub, err := s.g.nc.QueueSubscribeSync(bus.RawWildcard, s.g.cfg.Consumer.NamePrefix+"-"+s.name)
	if err != nil {
		return fmt.Errorf("subscribe %s: %w", bus.RawWildcard, err)
	}
	if err := sub.SetPendingLimits(coreBuffer, coreBufferBytes); err != nil {
		_ = sub.Unsubscribe()
		return fmt.Errorf("subscribe %s: %w", bus.RawWildcard, err)
	}
	s.coreSub = sub
	return s.g.nc.Flush()
}

// coreBuffer and coreBufferBytes bound what one core-mode sink holds
// unread: 4096 snapshots are seconds of a large fleet; 64 MiB keeps a
// publisher of 1 MiB messages from parking gigabytes in the gateway.
const (
	coreBuffer      = 4096
	coreBufferBytes = 64 << 20
)

func (s *sink) runCore(ctx context.Context) {
	defer func() { _ = s.coreSub.Unsubscribe() }()
	last := time.Now()
	for ctx.Err() == nil {
		if time.Since(last) >= time.Second {
			s.forgetRemoved(ctx)
			s.sweepBMCs(ctx)
			s.emitRollups(ctx)
			last = time.Now()
		}
		m, err := s.coreSub.NextMsg(200 * time.Millisecond)
		switch {
		case err == nil:
			s.handle(ctx, m.Subject, m.Data, nil)
			// A handle held up by a full queue was busy, not quiet.
			s.track.active = time.Now()
		case errors.Is(err, nats.ErrTimeout):
		case errors.Is(err, nats.ErrSlowConsumer):
			// NATS dropped messages for this sink (counted by the
			// subscription); reading goes on.
			s.metrics.logLimiter.Do(func() {
				dropped, _ := s.coreSub.Dropped()
				s.logger.Warn("core NATS dropped snapshots: this sink fell behind", "dropped_total", dropped)
			})
		default:
			s.metrics.fetchErrors.Inc()
			s.metrics.logLimiter.Do(func() { s.logger.Warn("read from subscription", "err", err) })
			sleep(ctx, time.Second)
		}
	}
}

// handle turns one message into samples and hands them to the queue. With
// JetStream, m is acked once the queue has delivered (or permanently
// dropped) every sample, terminated when it can never be processed, and
// left alone (redelivered later) when shutdown interrupts it. It reports
// whether the queue took the samples: the sink's release is then called
// for m's subject once they are finished with.
func (s *sink) handle(ctx context.Context, subject string, data []byte, m jetstream.Msg) (queued bool) {
	if err := s.limits.Decode(data, &s.snap); err != nil {
		s.reject(m, rejectReason(err), err)
		return false
	}
	if id, err := bus.BMCFromRawSubject(subject); err != nil || id != s.snap.BmcId {
		s.reject(m, "subject_mismatch", errors.New("bmc_id does not match the subject"))
		return false
	}
	// Times from a wrong clock would stop the series (later samples look
	// out of order) or make a receiver refuse whole requests.
	now := time.Now()
	removed, err := s.limits.CheckTimes(&s.snap, now.UnixMilli())
	if err != nil {
		s.reject(m, rejectReason(err), err)
		return false
	}
	// Before any state is kept for the BMC: bounded and reclaimed.
	if reason, err := s.admit(s.snap.BmcId, bmcKey(subject), s.snap.PollStartMs, now); err != nil {
		s.reject(m, reason, err)
		return false
	}
	s.metrics.badTime.Add(float64(removed))
	// HA pairs: one leader per BMC; redelivered and older snapshots are
	// done with (acked), not errors.
	if !s.dedup.Accept(&s.snap) {
		s.countDedup()
		s.metrics.snapshots.WithLabelValues("duplicate").Inc()
		if m != nil {
			s.pending.remove(m)
			if err := m.Ack(); err != nil {
				s.metrics.ackErrors.Inc()
			}
		}
		return false
	}
	base, found := s.g.enrich.Load().Labels(s.snap.BmcId)
	if !found {
		s.metrics.unknownBMC.Inc()
	}
	var st pipeline.Stats
	s.samples = s.norm.Normalise(s.samples[:0], &s.snap, base, &st)
	// One source per series (protocol: both): samples[:fed] feed their
	// series; the rest, whose series the preferred protocol feeds, are
	// seen by staleness only, then left out.
	fed := s.splitSources()
	if s.rollup != nil {
		s.rollup.Observe(s.samples[:fed])
		s.newest = max(s.newest, s.snap.PollStartMs)
	}
	if s.relabel != nil {
		// Each part in place: what is written never overtakes what is read.
		kept := s.relabel.Apply(s.samples[:0], s.samples[:fed])
		rest := s.relabel.Apply(s.samples[len(kept):len(kept)], s.samples[fed:])
		s.samples, fed = s.samples[:len(kept)+len(rest)], len(kept)
	}
	n0 := len(s.samples)
	s.samples = s.stale.Observe(s.samples, &s.snap, s.samples)
	s.samples = append(s.samples[:fed], s.samples[n0:]...)
	n0 = fed
	s.metrics.staleMarkers.Add(float64(len(s.samples) - n0))
	if s.rollup != nil && len(s.samples) > n0 {
		// A BMC gone dark leaves the roll-ups at once, not after their
		// stale window.
		s.rollup.Observe(s.samples[n0:])
	}
	s.samples = s.dedup.Filter(s.samples[:0], s.snap.BmcId, s.samples)
	s.countDedup()
	s.metrics.addSkipped(&st)
	s.metrics.age.Observe(time.Since(time.UnixMilli(s.snap.PollStartMs)).Seconds())
	n := len(s.samples)
	ack := func() {
		if m != nil {
			s.pending.remove(m)
			if err := m.Ack(); err != nil {
				s.metrics.ackErrors.Inc()
			}
		}
	}
	if s.out != nil {
		// The automation stream: publish, then ack.
		if err := s.out.publish(&s.snap, s.samples); err != nil {
			if permanent(err) {
				// It would fail the same way on every redelivery.
				s.reject(m, "unpublishable", err)
				return false
			}
			s.metrics.logLimiter.Do(func() { s.logger.Warn("publish to the automation stream", "err", err) })
			if m != nil {
				// Redelivered after a pause. Merely leaving it unacked
				// would keep it in flight for good: the keep-alive
				// extends its ack wait while it is tracked.
				s.pending.remove(m)
				if err := m.NakWithDelay(time.Second); err != nil {
					s.metrics.ackErrors.Inc()
				}
			}
			return false
		}
		if s.srcEvent != pipeline.SourceUnchanged {
			s.publishSourceEvent()
		}
		ack()
		s.metrics.snapshots.WithLabelValues("ok").Inc()
		s.metrics.samples.Add(float64(n))
		return false
	}
	done := ack
	if m != nil {
		key := bmcKey(subject)
		done = func() {
			ack()
			s.release(key)
		}
	}
	if err := s.queue.AppendKey(ctx, remotewrite.ShardKey(s.snap.BmcId), s.samples, done); err != nil {
		// Shutting down: leave the message unacked for redelivery.
		return false
	}
	s.metrics.snapshots.WithLabelValues("ok").Inc()
	s.metrics.samples.Add(float64(n))
	return m != nil
}

// splitSources runs the one-source-per-series stage over s.samples (see
// pipeline.Sources) and returns how many of them feed their series; it
// counts and logs a BMC's series moving from one protocol to the other.
func (s *sink) splitSources() int {
	if s.sources == nil {
		s.sources = pipeline.NewSources()
	}
	prefer := v1.Protocol_PROTOCOL_REDFISH // a BMC the gateway does not know may be polled over both
	if e, ok := s.g.enrich.Load().Inventory().Get(s.snap.BmcId); ok {
		switch {
		case e.Protocol != inventory.Both:
			prefer = v1.Protocol_PROTOCOL_UNSPECIFIED
		case e.Prefer == inventory.IPMI:
			prefer = v1.Protocol_PROTOCOL_IPMI
		}
	}
	fed, change := s.sources.Split(&s.snap, prefer, s.samples)
	s.srcEvent, s.srcPrefer = change, prefer
	now := s.sources.Stats
	s.metrics.passedOver.Add(float64(now.PassedOver - s.srcSeen.PassedOver))
	s.metrics.takeovers.Add(float64(now.Takeovers - s.srcSeen.Takeovers))
	s.metrics.handbacks.Add(float64(now.Handbacks - s.srcSeen.Handbacks))
	s.srcSeen = now
	if change != pipeline.SourceUnchanged && s.logsSources() {
		from, to := prefer, otherProtocol(prefer)
		if change == pipeline.SourceHandback {
			from, to = to, from
		}
		ok, suppressed := s.metrics.changeLog.Allow()
		if suppressed > 0 {
			s.logger.Warn("protocol failovers not logged: too many at once", "suppressed", suppressed)
		}
		if ok {
			if change == pipeline.SourceHandback {
				s.logger.Info("preferred protocol up again: it feeds the BMC's series", "bmc", s.snap.BmcId, "from", protocolName(from), "to", protocolName(to))
			} else {
				s.logger.Info("preferred protocol down: the other feeds the BMC's series", "bmc", s.snap.BmcId, "from", protocolName(from), "to", protocolName(to), "err", s.snap.Error)
			}
		} else {
			s.metrics.changeLogsSuppressed.Inc()
		}
	}
	return fed
}

// publishSourceEvent publishes on the automation stream the event of the
// protocol move the current snapshot made. It is not retried: the move is
// recorded, and a redelivered snapshot would be refused as stale anyway.
func (s *sink) publishSourceEvent() {
	labels := map[string]string{}
	if e, ok := s.g.inv.Load().Get(s.snap.BmcId); ok {
		labels = e.Labels
	}
	ev := pipeline.SourceEvent(&s.snap, s.srcPrefer, s.srcEvent, labels)
	b, err := json.Marshal(&ev)
	if err == nil {
		err = s.out.nc.Publish(bus.EventSubject(ev.Site, ev.Rack, ev.BMC), b)
	}
	if err != nil {
		s.metrics.logLimiter.Do(func() { s.logger.Warn("publish a protocol move event", "bmc", s.snap.BmcId, "err", err) })
		return
	}
	s.g.metrics.events.WithLabelValues(string(ev.Kind)).Inc()
}

// logsSources reports whether this consumer logs protocol failovers: every
// sink's consumer makes the same decisions, so one (the first remote-write
// sink's) logs them.
func (s *sink) logsSources() bool {
	return s.out == nil && len(s.g.cfg.RemoteWrite) > 0 && s.name == s.g.cfg.RemoteWrite[0].Name
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

// countDedup turns the dedup stage's counters into metrics.
func (s *sink) countDedup() {
	now := s.dedup.Stats
	s.metrics.dedupRejected.WithLabelValues("not_leader").Add(float64(now.NotLeader - s.seen.NotLeader))
	s.metrics.dedupRejected.WithLabelValues("stale_sequence").Add(float64(now.StaleSequence - s.seen.StaleSequence))
	s.metrics.failovers.Add(float64(now.Failovers - s.seen.Failovers))
	s.metrics.outOfOrder.Add(float64(now.DroppedSamples - s.seen.DroppedSamples))
	s.seen = now
}

// rollupEvery is how often rack roll-ups are written: a quarter of the
// usual 30 s poll interval keeps them current without a sample per poll.
const rollupEvery = 10 * time.Second

// rollupKey groups the roll-up series in the dedup stage.
const rollupKey = "\x00rollup"

// emitRollups writes the rack roll-ups at the newest poll time seen (never
// the gateway's clock), in order per series.
func (s *sink) emitRollups(ctx context.Context) {
	if s.rollup == nil || s.newest == 0 || s.newest < s.started {
		// Before started: a backlog from before this process, whose
		// roll-ups a previous gateway may have written already.
		return
	}
	// Never the same time twice: a staleness marker written on the time of
	// the previous value would be filtered out as a duplicate.
	t := max(s.newest, s.lastRollup+1)
	s.lastRollup = t
	out := s.rollup.Emit(s.rollupBuf[:0], t)
	s.rollupBuf = out
	if s.relabel != nil {
		out = s.relabel.Apply(out[:0], out)
	}
	out = s.dedup.Filter(out[:0], rollupKey, out)
	if len(out) == 0 {
		return
	}
	if err := s.queue.AppendKey(ctx, remotewrite.ShardKey(rollupKey), out, func() {}); err != nil {
		return
	}
	s.metrics.samples.Add(float64(len(out)))
}

// forgetBMCs queues BMCs that left the inventory; run ends their series.
func (s *sink) forgetBMCs(ids []string) {
	s.removedMu.Lock()
	s.removed = append(s.removed, ids...)
	s.removedMu.Unlock()
}

// forgetRemoved writes staleness markers for every series of the BMCs that
// left the inventory, just after their last sample, and drops their state.
func (s *sink) forgetRemoved(ctx context.Context) {
	s.removedMu.Lock()
	ids := s.removed
	s.removed = nil
	s.removedMu.Unlock()
	for _, id := range ids {
		if !s.forgetBMC(ctx, id, forgetRemoved) {
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

// permanent reports whether an automation publish error would recur on
// every redelivery: a value JSON cannot encode (an infinite threshold in
// base units) or a message over the server's max_payload.
func permanent(err error) bool {
	var unsupported *json.UnsupportedValueError
	return errors.As(err, &unsupported) || errors.Is(err, nats.ErrMaxPayload)
}

func (s *sink) reject(m jetstream.Msg, reason string, err error) {
	s.metrics.snapshots.WithLabelValues(reason).Inc()
	s.metrics.logLimiter.Do(func() {
		s.logger.Warn("dropping snapshot", "reason", reason, "err", err)
	})
	if m != nil {
		s.pending.remove(m)
		if err := m.Term(); err != nil {
			s.metrics.ackErrors.Inc()
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

func (p *inFlight) len() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.msgs)
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
				_ = m.InProgress()
			}
		}
	}
}
