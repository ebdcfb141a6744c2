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
	for ctx.Err() == nil {
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
	for {
		select {
		case <-ctx.Done():
			return
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
	inv := s.g.inv.Load()
	base, found := pipeline.BaseLabels(inv, s.snap.BmcId)
	if !found {
		s.metrics.unknownBMC.Inc()
	}
	var st pipeline.Stats
	s.samples = pipeline.Normalise(s.samples[:0], &s.snap, base, &st)
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
	if err := s.queue.Append(ctx, s.samples, done); err != nil {
		// Shutting down: leave the message unacked for redelivery.
		return
	}
	s.metrics.snapshots.WithLabelValues("ok").Inc()
	s.metrics.samples.Add(float64(n))
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
