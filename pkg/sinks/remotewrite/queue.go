package remotewrite

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/bmcstream/bmcstream/pkg/series"
)

// ErrStopped is returned by Append once Stop has been called.
var ErrStopped = errors.New("remote write queue stopped")

// logEvery is the least time between two log lines of one kind from one
// shard (or, for blocked appends, from one queue). Everything in between is
// counted in metrics and summarised as "suppressed" in the next line.
const logEvery = 10 * time.Second

// Queue batches samples for one remote-write sink and sends them through a
// WriteClient. It has a fixed number of shards; a sample goes to shard
// Hash % shards, each shard has a bounded queue and at most one request in
// flight, so the samples of a series reach the receiver in append order.
//
// A Queue is created with NewQueue, runs between Start and Stop, and is safe
// for concurrent use.
type Queue struct {
	name    string
	cfg     QueueConfig
	client  WriteClient
	logger  *slog.Logger
	metrics *metrics
	shards  []*shard

	// queued counts samples appended and not yet finished (sent, dropped or
	// abandoned); it backs bmcstream_remote_write_queue_samples.
	queued atomic.Int64
	// abandoned counts samples left unsent when Stop gave up.
	abandoned atomic.Int64
	// lastBlockedLog is the UnixNano time of the last "append blocked" log.
	lastBlockedLog atomic.Int64

	// appendMu is held shared by Append while it enqueues, and exclusively by
	// Stop to close the shard channels once no Append can send on them.
	appendMu sync.RWMutex
	stopped  bool // Guarded by appendMu.
	// stopping is closed when Stop begins; it wakes blocked Appends so Stop
	// can take appendMu.
	stopping chan struct{}

	lifeMu     sync.Mutex
	started    bool // Guarded by lifeMu.
	stopCalled bool // Guarded by lifeMu.
	shardsDone chan struct{}

	// sendCtx is the context of every Store call and retry wait; Stop
	// cancels it when its own context ends, which makes the shards give up.
	sendCtx    context.Context
	cancelSend context.CancelFunc
	unregister sync.Once
}

// entry is one queued sample. t is set on the last sample of an Append call
// within its shard only.
type entry struct {
	s series.Sample
	t *tracker
}

// tracker counts the shards that still hold samples of one Append call, plus
// one reference held by Append itself until it has queued every sample. The
// shard that releases the last reference calls done.
type tracker struct {
	refs atomic.Int32
	// abandoned is set when Append failed part way: done must then never
	// run, since the caller will redeliver.
	abandoned atomic.Bool
	done      func()
}

func (t *tracker) release() {
	if t.refs.Add(-1) == 0 && !t.abandoned.Load() && t.done != nil {
		t.done()
	}
}

// NewQueue returns a stopped Queue for the sink described by cfg, sending
// through client. Its self-metrics are registered with reg (nothing is
// registered if reg is nil; two queues with the same cfg.Name cannot share a
// registry). logger may be nil to discard logs. Only cfg.Name and
// cfg.QueueConfig are used; the rest of cfg configures the client.
func NewQueue(cfg Config, client WriteClient, reg prometheus.Registerer, logger *slog.Logger) (*Queue, error) {
	var errs []error
	if cfg.Name == "" {
		errs = append(errs, errors.New("name: must be set"))
	}
	if err := cfg.QueueConfig.Validate(); err != nil {
		errs = append(errs, fmt.Errorf("queue_config: %w", err))
	}
	if client == nil {
		errs = append(errs, errors.New("client: must not be nil"))
	}
	if err := errors.Join(errs...); err != nil {
		return nil, fmt.Errorf("create remote write queue %q: %w", cfg.Name, err)
	}
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}

	qc := cfg.QueueConfig
	q := &Queue{
		name:       cfg.Name,
		cfg:        qc,
		client:     client,
		logger:     logger.With("component", "remote_write", "remote_name", cfg.Name),
		stopping:   make(chan struct{}),
		shardsDone: make(chan struct{}),
	}
	q.metrics = newMetrics(cfg.Name, func() float64 { return float64(q.queued.Load()) })
	q.metrics.queueCapacity.Set(float64(qc.Capacity) * float64(qc.Shards))
	if err := q.metrics.register(reg); err != nil {
		return nil, fmt.Errorf("register metrics of remote write queue %q: %w", cfg.Name, err)
	}
	q.shards = make([]*shard, qc.Shards)
	for i := range q.shards {
		q.shards[i] = &shard{
			q:        q,
			id:       i,
			ch:       make(chan entry, qc.Capacity),
			kick:     make(chan struct{}, 1),
			batch:    make([]entry, 0, min(qc.MaxSamplesPerSend, qc.Capacity)),
			retryLog: logLimiter{every: logEvery},
			dropLog:  logLimiter{every: logEvery},
		}
	}
	q.sendCtx, q.cancelSend = context.WithCancel(context.Background())
	return q, nil
}

// Start starts the shards. Calling it again, or after Stop, does nothing.
func (q *Queue) Start() {
	q.lifeMu.Lock()
	defer q.lifeMu.Unlock()
	if q.started || q.stopCalled {
		return
	}
	q.started = true
	var wg sync.WaitGroup
	for _, s := range q.shards {
		wg.Go(s.run)
	}
	go func() {
		wg.Wait()
		close(q.shardsDone)
	}()
}

// Append queues samples for sending. done is called exactly once, from any
// goroutine, when every one of the samples has been accepted by the receiver
// or dropped for good (and counted with its reason); if samples is empty it
// is called at once. done may be nil. done must be quick and must not call
// Append or Stop: it usually runs on a shard's goroutine, whose sending waits
// for it, and may run inside Append itself.
//
// Append blocks while the queue of a shard it must write to is full; that is
// the queue's back-pressure. It returns ctx.Err() if ctx ends first, and
// ErrStopped once Stop has been called. On any error done is never called,
// although some of the samples may already be queued and be sent: the caller
// must redeliver all of them.
//
// done is also never called if Stop gives up before the samples are sent.
//
// Samples of one series must be appended in time order, by one caller at a
// time; the queue keeps that order up to the receiver. The Labels of each
// sample are retained, unmodified, until the sample is sent.
func (q *Queue) Append(ctx context.Context, samples []series.Sample, done func()) error {
	if len(samples) == 0 {
		if done != nil {
			done()
		}
		return nil
	}
	q.appendMu.RLock()
	defer q.appendMu.RUnlock()
	if q.stopped {
		return ErrStopped
	}

	// Find the last sample of the call in each shard: only that one carries
	// the tracker, since a shard finishes its samples in order.
	n := uint64(len(q.shards))
	var lastBuf [16]int
	var last []int
	if len(q.shards) <= len(lastBuf) {
		last = lastBuf[:len(q.shards)]
	} else {
		last = make([]int, len(q.shards))
	}
	for i := range last {
		last[i] = -1
	}
	for i := range samples {
		last[samples[i].Hash%n] = i
	}

	t := &tracker{done: done}
	t.refs.Store(1) // Append's own reference, released once all are queued.
	// Count the call at once rather than per sample: one atomic add instead
	// of one per sample on a counter all appenders share.
	q.queued.Add(int64(len(samples)))
	for i := range samples {
		idx := samples[i].Hash % n
		e := entry{s: samples[i]}
		if last[idx] == i {
			t.refs.Add(1)
			e.t = t
		}
		if err := q.enqueue(ctx, q.shards[idx], e); err != nil {
			q.queued.Add(-int64(len(samples) - i))
			// Mark before dropping Append's reference, so whichever release
			// reaches zero sees it.
			t.abandoned.Store(true)
			if e.t != nil {
				t.refs.Add(-1) // Never reaches zero: Append's reference remains.
			}
			t.release()
			return err
		}
	}
	t.release()
	return nil
}

// FlushNow asks every shard to send what it holds as soon as it has read
// what is already queued, rather than at its batch deadline. It never
// blocks. A producer that will append nothing more until earlier samples
// are sent (the gateway waiting on a BMC's previous snapshot) calls it so
// it does not wait out the deadline.
func (q *Queue) FlushNow() {
	for _, s := range q.shards {
		select {
		case s.kick <- struct{}{}:
		default:
		}
	}
}

// enqueue puts e on s's queue, waiting for room if it is full.
func (q *Queue) enqueue(ctx context.Context, s *shard, e entry) error {
	select {
	case s.ch <- e:
		return nil
	default:
	}

	start := time.Now()
	q.metrics.appendBlocked.Inc()
	q.logBlocked(s.id)
	var err error
	select {
	case s.ch <- e:
	case <-ctx.Done():
		err = ctx.Err()
	case <-q.stopping:
		err = ErrStopped
	}
	q.metrics.appendBlockedSeconds.Add(time.Since(start).Seconds())
	return err
}

func (q *Queue) logBlocked(shard int) {
	now := time.Now().UnixNano()
	last := q.lastBlockedLog.Load()
	if now-last < int64(logEvery) || !q.lastBlockedLog.CompareAndSwap(last, now) {
		return
	}
	q.logger.Warn("remote write shard queue full, append blocked",
		"shard", shard, "capacity", q.cfg.Capacity, "queued_samples", q.queued.Load())
}

// Stop stops accepting samples, sends everything already queued (retrying
// as usual) until ctx ends, then abandons what is left: the done callbacks of
// abandoned samples are never called, so their producer redelivers them. It
// returns an error wrapping ctx.Err() if samples were abandoned, and nil
// otherwise.
//
// Stop unregisters the queue's metrics, so a new queue with the same name
// can replace it. It may be called before Start (queued samples are then
// abandoned) and more than once, concurrently too; each call waits for the
// shards to finish or for its own ctx.
func (q *Queue) Stop(ctx context.Context) error {
	q.lifeMu.Lock()
	first := !q.stopCalled
	q.stopCalled = true
	started := q.started
	q.lifeMu.Unlock()

	if first {
		close(q.stopping)
		q.appendMu.Lock()
		q.stopped = true
		for _, s := range q.shards {
			// Safe: no Append can send any more. The shards read what is
			// left, then see the channel closed and flush.
			close(s.ch)
		}
		q.appendMu.Unlock()
		if !started {
			if n := q.queued.Swap(0); n > 0 {
				q.abandoned.Add(n)
				q.logger.Warn("remote write queue stopped before start, samples abandoned", "samples", n)
			}
			close(q.shardsDone)
		}
	}

	select {
	case <-q.shardsDone:
	case <-ctx.Done():
		q.cancelSend()
		<-q.shardsDone
	}
	q.cancelSend()
	q.unregister.Do(q.metrics.unregister)

	if n := q.abandoned.Load(); n > 0 {
		if err := ctx.Err(); err != nil {
			return fmt.Errorf("stop remote write queue %q: abandoned %d samples: %w", q.name, n, err)
		}
		return fmt.Errorf("stop remote write queue %q: abandoned %d samples", q.name, n)
	}
	return nil
}

// shard owns one queue, builds batches from it and sends them one at a time.
// Everything but ch is touched by the shard's goroutine only.
type shard struct {
	q        *Queue
	id       int
	ch       chan entry
	kick     chan struct{} // FlushNow's signal; capacity 1
	kicked   bool          // send once ch is empty, not at the deadline
	batch    []entry
	enc      encoder
	retryLog logLimiter
	dropLog  logLimiter
}

// run builds and sends batches until ch is closed and drained, or Stop
// gives up.
func (s *shard) run() {
	deadline := time.Duration(s.q.cfg.BatchSendDeadline)
	timer := time.NewTimer(deadline)
	timer.Stop()
	defer timer.Stop()
	for {
		var expired <-chan time.Time
		if len(s.batch) > 0 {
			expired = timer.C
		}
		select {
		case e, ok := <-s.ch:
			if !ok { // Stopping, and everything queued has been read.
				if len(s.batch) > 0 && !s.send() {
					s.abandon()
				}
				return
			}
			s.batch = append(s.batch, e)
			if len(s.batch) == 1 {
				timer.Reset(deadline)
			}
			if len(s.batch) < s.q.cfg.MaxSamplesPerSend && !(s.kicked && len(s.ch) == 0) {
				continue
			}
			timer.Stop()
		case <-expired:
		case <-s.kick:
			if len(s.batch) == 0 && len(s.ch) == 0 {
				continue // nothing held: a later batch keeps its deadline
			}
			s.kicked = true
			if len(s.ch) > 0 {
				continue // send once what is queued is read
			}
			timer.Stop()
		}
		s.kicked = false
		if !s.send() {
			s.abandon()
			return
		}
	}
}

// send sends the current batch until it is accepted or rejected for good,
// then finishes it. It returns false, leaving the batch in place, if Stop
// gave up first.
func (s *shard) send() bool {
	q := s.q
	n := float64(len(s.batch))
	data, err := s.enc.encode(s.batch)
	if err != nil {
		s.drop(err, reasonEncode)
		return true
	}

	backoff := time.Duration(q.cfg.MinBackoff)
	for attempt := 0; ; attempt++ {
		start := time.Now()
		err := q.client.Store(q.sendCtx, data, attempt)
		canceled := err != nil && q.sendCtx.Err() != nil
		q.metrics.requestDuration.Observe(time.Since(start).Seconds())
		q.metrics.requests.WithLabelValues(requestCode(err, canceled)).Inc()
		switch {
		case err == nil:
			q.metrics.samplesSent.Add(n)
			q.metrics.sentBytes.Add(float64(len(data)))
			s.finish()
			return true
		case canceled:
			return false
		}

		var rerr RecoverableError
		if !errors.As(err, &rerr) {
			s.drop(err, dropReason(err))
			return true
		}
		delay := jitter(backoff)
		if rerr.RetryAfter > delay {
			delay = rerr.RetryAfter
		}
		if ok, suppressed := s.retryLog.allow(time.Now()); ok {
			q.logger.Warn("remote write request failed, retrying",
				"shard", s.id, "samples", len(s.batch), "attempt", attempt,
				"retry_in", delay, "suppressed", suppressed, "err", err)
		}
		if !sleepCtx(q.sendCtx, delay) {
			return false
		}
		q.metrics.samplesRetried.Add(n)
		if maxBackoff := time.Duration(q.cfg.MaxBackoff); backoff < maxBackoff/2 {
			backoff *= 2
		} else {
			backoff = maxBackoff
		}
	}
}

// drop counts the batch as dropped for reason and finishes it.
func (s *shard) drop(err error, reason string) {
	s.q.metrics.samplesDropped.WithLabelValues(reason).Add(float64(len(s.batch)))
	if ok, suppressed := s.dropLog.allow(time.Now()); ok {
		s.q.logger.Error("remote write request rejected, samples dropped",
			"shard", s.id, "samples", len(s.batch), "reason", reason,
			"suppressed", suppressed, "err", err)
	}
	s.finish()
}

// finish releases the batch's trackers (calling the done callbacks of the
// Append calls it completes) and resets the batch for reuse.
func (s *shard) finish() {
	s.q.queued.Add(-int64(len(s.batch)))
	for i := range s.batch {
		if t := s.batch[i].t; t != nil {
			t.release()
		}
	}
	clear(s.batch) // Drop label and tracker references.
	s.batch = s.batch[:0]
	s.enc.reset()
}

// abandon gives up on the batch and whatever is left in ch (closed by now),
// without calling any done.
func (s *shard) abandon() {
	n := int64(len(s.batch) + len(s.ch))
	s.q.abandoned.Add(n)
	s.q.queued.Add(-n)
	clear(s.batch)
	s.batch = s.batch[:0]
	s.enc.reset()
	if n > 0 {
		s.q.logger.Warn("remote write queue stopped before flushing, samples abandoned",
			"shard", s.id, "samples", n)
	}
}

// jitter returns a random duration in [d/2, d], so shards that failed
// together do not retry together.
func jitter(d time.Duration) time.Duration {
	half := d / 2
	return half + rand.N(d-half+1)
}

// sleepCtx waits for d or until ctx ends, reporting whether d elapsed.
func sleepCtx(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}

// logLimiter lets one log line through per interval and counts the rest.
// It is owned by one goroutine.
type logLimiter struct {
	every      time.Duration
	last       time.Time
	suppressed int
}

// allow reports whether to log now and how many lines were suppressed since
// the last one.
func (l *logLimiter) allow(now time.Time) (bool, int) {
	if !l.last.IsZero() && now.Sub(l.last) < l.every {
		l.suppressed++
		return false, 0
	}
	l.last = now
	n := l.suppressed
	l.suppressed = 0
	return true, n
}
