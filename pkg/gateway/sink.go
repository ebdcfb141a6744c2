package gateway

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/bmcstream/bmcstream/pkg/bus"
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
	coreCh  chan *nats.Msg     // core mode only
	logger  *slog.Logger
	metrics *sinkMetrics

	// One goroutine (run) owns these.
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

	removedMu sync.Mutex
	removed   []string // BMCs that left the inventory, for run to forget

	// out, when set, makes this consumer the automation stream instead of
	// a remote-write sink (queue is then nil).
	out *automation

	pending inFlight
}

// run consumes until ctx is cancelled. It owns the decode buffers.
func (s *sink) run(ctx context.Context) {
	if s.cons == nil {
		s.runCore(ctx)
		return
	}
	keepCtx, stopKeep := context.WithCancel(context.Background())
	defer stopKeep()
	go s.pending.keepAlive(keepCtx, time.Duration(s.g.cfg.Consumer.AckWait)/3)

	batch := s.g.cfg.Consumer.FetchBatch
	lastRollup := time.Now()
	for ctx.Err() == nil {
		s.forgetRemoved(ctx)
		if time.Since(lastRollup) >= rollupEvery {
			s.emitRollups(ctx)
			lastRollup = time.Now()
		}
		msgs, err := s.cons.Fetch(batch, jetstream.FetchMaxWait(time.Second))
		if err != nil {
			s.metrics.fetchErrors.Inc()
			s.logger.Warn("fetch from stream", "err", err)
			sleep(ctx, time.Second)
			continue
		}
		for m := range msgs.Messages() {
			s.pending.add(m)
			s.handle(ctx, m.Subject(), m.Data(), m)
		}
		if err := msgs.Error(); err != nil && !errors.Is(err, nats.ErrTimeout) && !errors.Is(err, jetstream.ErrNoMessages) && ctx.Err() == nil {
			s.metrics.fetchErrors.Inc()
			s.logger.Warn("fetch from stream", "err", err)
			sleep(ctx, time.Second)
		}
	}
}

// subscribeCore subscribes in core-NATS mode, through a bounded channel:
// when this sink falls behind by more than coreBuffer snapshots, NATS drops
// messages for it (core NATS has no back-pressure) and counts them.
func (s *sink) subscribeCore() error {
	s.coreCh = make(chan *nats.Msg, coreBuffer)
	sub, err := s.g.nc.ChanQueueSubscribe(bus.RawWildcard, s.g.cfg.Consumer.NamePrefix+"-"+s.name, s.coreCh)
	if err != nil {
		return fmt.Errorf("subscribe %s: %w", bus.RawWildcard, err)
	}
	s.coreSub = sub
	return s.g.nc.Flush()
}

const coreBuffer = 4096

func (s *sink) runCore(ctx context.Context) {
	defer func() { _ = s.coreSub.Unsubscribe() }()
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
			s.forgetRemoved(ctx)
			s.emitRollups(ctx)
		case m := <-s.coreCh:
			s.handle(ctx, m.Subject, m.Data, nil)
		}
	}
}

// handle turns one message into samples and hands them to the queue. With
// JetStream, m is acked once the queue has delivered (or permanently
// dropped) every sample, terminated when it can never be processed, and
// left alone (redelivered later) when shutdown interrupts it.
func (s *sink) handle(ctx context.Context, subject string, data []byte, m jetstream.Msg) {
	if err := pipeline.Decode(data, &s.snap); err != nil {
		s.reject(m, "malformed", err)
		return
	}
	if id, err := bus.BMCFromRawSubject(subject); err != nil || id != s.snap.BmcId {
		s.reject(m, "subject_mismatch", errors.New("bmc_id does not match the subject"))
		return
	}
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
		return
	}
	base, found := s.g.enrich.Load().Labels(s.snap.BmcId)
	if !found {
		s.metrics.unknownBMC.Inc()
	}
	var st pipeline.Stats
	s.samples = s.norm.Normalise(s.samples[:0], &s.snap, base, &st)
	if s.rollup != nil {
		s.rollup.Observe(s.samples)
		s.newest = max(s.newest, s.snap.PollStartMs)
	}
	if s.relabel != nil {
		s.samples = s.relabel.Apply(s.samples[:0], s.samples)
	}
	n0 := len(s.samples)
	s.samples = s.stale.Observe(s.samples, &s.snap, s.samples)
	s.metrics.staleMarkers.Add(float64(len(s.samples) - n0))
	if s.rollup != nil && len(s.samples) > n0 {
		// A BMC gone dark leaves the roll-ups at once, not after their
		// stale window.
		s.rollup.Observe(s.samples[n0:])
	}
	s.samples = s.dedup.Filter(s.samples[:0], s.snap.BmcId, s.samples)
	s.countDedup()
	s.metrics.unmapped.Add(float64(st.Unmapped))
	s.metrics.invalid.Add(float64(st.Invalid))
	s.metrics.age.Observe(time.Since(time.UnixMilli(s.snap.PollStartMs)).Seconds())
	n := len(s.samples)
	done := func() {}
	if m != nil {
		done = func() {
			s.pending.remove(m)
			if err := m.Ack(); err != nil {
				s.metrics.ackErrors.Inc()
			}
		}
	}
	if s.out != nil {
		// The automation stream: publish, then ack.
		if err := s.out.publish(&s.snap, s.samples); err != nil {
			s.metrics.logLimiter.Do(func() { s.logger.Warn("publish to the automation stream", "err", err) })
			return // unacked: redelivered
		}
		done()
	} else if err := s.queue.Append(ctx, s.samples, done); err != nil {
		// Shutting down: leave the message unacked for redelivery.
		return
	}
	s.metrics.snapshots.WithLabelValues("ok").Inc()
	s.metrics.samples.Add(float64(n))
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
	if s.rollup == nil || s.newest == 0 {
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
	if err := s.queue.Append(ctx, out, func() {}); err != nil {
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
		last, ok := s.stale.LastSeen(id)
		if !ok {
			continue
		}
		markers := s.stale.Forget(nil, id, last+1)
		s.dedup.Forget(id)
		if s.rollup != nil {
			s.rollup.Forget(id)
		}
		if s.out != nil {
			s.out.events.Forget(id)
			continue
		}
		if len(markers) == 0 {
			continue
		}
		if err := s.queue.Append(ctx, markers, func() {}); err != nil {
			return
		}
		s.metrics.staleMarkers.Add(float64(len(markers)))
	}
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

func (s *sink) stop(ctx context.Context) error {
	if s.out != nil {
		return s.out.flush(ctx)
	}
	return s.queue.Stop(ctx)
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
