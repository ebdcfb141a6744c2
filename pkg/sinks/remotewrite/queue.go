package remotewrite

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"slices"
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
// WriteClient. It has a fixed number of shards, each with a bounded queue and
// at most one request in flight. AppendKey hands all the samples of a call
// to shard key % shards, Append each sample to shard Hash % shards; either
// way a series that is always appended the same way reaches the same shard,
// so its samples reach the receiver in append order.
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

	// chunkMax is the most samples one chunk holds: no more than a shard's
	// capacity, so a chunk always fits in an empty queue, and no more than
	// one request, so pooled chunks stay request-sized.
	chunkMax int
	// chunks pools the copies Append makes, so a steady stream of appends
	// allocates nothing for them.
	chunks sync.Pool

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

// chunk is a run of samples of one Append call, all for one shard, handed to
// the shard in one channel send. The samples are a copy: the caller may
// reuse its slice once Append returns. t is set on the last chunk of the call
// within its shard only.
type chunk struct {
	s []series.Sample
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
		chunkMax:   min(qc.Capacity, qc.MaxSamplesPerSend),
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
			q:  q,
			id: i,
			// Every chunk holds at least one sample and room bounds the
			// samples in ch by the capacity, so sends on ch never block.
			ch:          make(chan *chunk, qc.Capacity),
			room:        room{free: qc.Capacity},
			kick:        make(chan struct{}, 1),
			batch:       make([]series.Sample, 0, min(qc.MaxSamplesPerSend, qc.Capacity)),
			retryLog:    logLimiter{every: logEvery},
			dropLog:     logLimiter{every: logEvery},
			conflictLog: logLimiter{every: logEvery},
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

// Append queues samples for sending, each to the shard of its series hash.
// done is called exactly once, from any goroutine, when every one of the
// samples has been accepted by the receiver or dropped for good (and counted
// with its reason); if samples is empty it is called at once. done may be
// nil. done must be quick and must not call Append or Stop: it usually runs
// on a shard's goroutine, whose sending waits for it, and may run inside
// Append itself.
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
// time, and always through Append or always through AppendKey with the same
// key; the queue keeps that order up to the receiver. Append copies the
// samples, so the caller may reuse the slice once it returns; the Series of
// each sample is retained, unmodified, until the sample is sent.
func (q *Queue) Append(ctx context.Context, samples []series.Sample, done func()) error {
	if len(q.shards) == 1 {
		return q.AppendKey(ctx, 0, samples, done)
	}
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

	// Find the last sample of the call in each shard: only the chunk that
	// holds it carries the tracker, since a shard finishes its samples in
	// order.
	n := uint64(len(q.shards))
	var lastBuf [16]int
	var openBuf [16]*chunk
	var last []int
	var open []*chunk // Each shard's chunk being filled.
	if len(q.shards) <= len(lastBuf) {
		last, open = lastBuf[:len(q.shards)], openBuf[:len(q.shards)]
	} else {
		last, open = make([]int, len(q.shards)), make([]*chunk, len(q.shards))
	}
	for i := range last {
		last[i] = -1
	}
	for i := range samples {
		last[samples[i].Series.Hash%n] = i
	}

	t := &tracker{done: done}
	t.refs.Store(1) // Append's own reference, released once all are queued.
	for i := range samples {
		idx := samples[i].Series.Hash % n
		c := open[idx]
		if c == nil {
			c = q.getChunk()
			open[idx] = c
		}
		c.s = append(c.s, samples[i])
		if last[idx] != i && len(c.s) < q.chunkMax {
			continue
		}
		open[idx] = nil
		if last[idx] == i {
			t.refs.Add(1)
			c.t = t
		}
		if err := q.enqueue(ctx, q.shards[idx], c); err != nil {
			for _, o := range open {
				if o != nil {
					q.recycle(o)
				}
			}
			q.abandonAppend(t, c)
			return err
		}
	}
	t.release()
	return nil
}

// AppendKey queues samples for sending, all of them to shard key % shards,
// in order, handed over a request's worth at a time rather than sample by
// sample. Batches then hold whole calls: a producer that appends the series
// of one source per call with that source's key (the gateway: one snapshot
// of one BMC, keyed by the BMC) gets requests whose series share most
// labels, which compress a little better than series spread over every
// shard, for one channel send per call.
//
// Everything else is as for Append, which documents done, blocking, errors
// and ordering: every sample of a series must be appended with the same key.
func (q *Queue) AppendKey(ctx context.Context, key uint64, samples []series.Sample, done func()) error {
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

	s := q.shards[key%uint64(len(q.shards))]
	t := &tracker{done: done}
	t.refs.Store(1) // Append's own reference, released once all are queued.
	for len(samples) > 0 {
		k := min(len(samples), q.chunkMax)
		c := q.getChunk()
		c.s = append(c.s, samples[:k]...)
		samples = samples[k:]
		if len(samples) == 0 {
			t.refs.Add(1)
			c.t = t
		}
		if err := q.enqueue(ctx, s, c); err != nil {
			q.abandonAppend(t, c)
			return err
		}
	}
	t.release()
	return nil
}

// abandonAppend undoes the tracker of an Append that failed with chunk c not
// queued, so done never runs, and recycles c.
func (q *Queue) abandonAppend(t *tracker, c *chunk) {
	// Mark before dropping Append's reference, so whichever release reaches
	// zero sees it.
	t.abandoned.Store(true)
	if c.t != nil {
		t.refs.Add(-1) // Never reaches zero: Append's reference remains.
	}
	q.recycle(c)
	t.release()
}

func (q *Queue) getChunk() *chunk {
	if c, ok := q.chunks.Get().(*chunk); ok {
		return c
	}
	// No capacity yet: the first append sizes it to its call, so a pool fed
	// by calls of a few hundred samples does not hold request-sized copies.
	return &chunk{}
}

// recycle returns c to the pool once its samples are in a batch or given up.
func (q *Queue) recycle(c *chunk) {
	clear(c.s) // A pooled chunk must not keep series alive.
	c.s = c.s[:0]
	c.t = nil
	q.chunks.Put(c)
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

// enqueue hands c to s, waiting for room if s's queue is full. On error c
// is not queued and still the caller's.
func (q *Queue) enqueue(ctx context.Context, s *shard, c *chunk) error {
	n := len(c.s)
	if !s.room.tryTake(n) {
		start := time.Now()
		q.metrics.appendBlocked.Add(float64(n))
		q.logBlocked(s.id)
		err := s.room.take(ctx, q.stopping, n)
		q.metrics.appendBlockedSeconds.Add(time.Since(start).Seconds())
		if err != nil {
			return err
		}
	}
	q.queued.Add(int64(n))
	s.ch <- c // Never blocks: see NewQueue.
	return nil
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

// room counts the free places, in samples, of one shard's queue: Append
// takes places before it sends a chunk on the shard's channel, the shard
// gives them back as it moves samples into a batch. Appends that wait are
// served in arrival order, so a large chunk is not starved by small ones.
type room struct {
	mu      sync.Mutex
	free    int
	waiters []*roomWaiter
}

type roomWaiter struct {
	n     int
	ready chan struct{} // closed once n places are taken for the waiter
}

// tryTake takes n places if they are free and nobody waits before it.
func (r *room) tryTake(n int) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.waiters) == 0 && r.free >= n {
		r.free -= n
		return true
	}
	return false
}

// take waits for n places, after the Appends already waiting, until ctx
// ends (ctx.Err()) or stopping is closed (ErrStopped).
func (r *room) take(ctx context.Context, stopping <-chan struct{}, n int) error {
	r.mu.Lock()
	if len(r.waiters) == 0 && r.free >= n {
		r.free -= n
		r.mu.Unlock()
		return nil
	}
	w := &roomWaiter{n: n, ready: make(chan struct{})}
	r.waiters = append(r.waiters, w)
	r.mu.Unlock()

	var err error
	select {
	case <-w.ready:
		return nil
	case <-ctx.Done():
		err = ctx.Err()
	case <-stopping:
		err = ErrStopped
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	select {
	case <-w.ready:
		r.free += n // Served meanwhile: give the places back.
	default:
		if i := slices.Index(r.waiters, w); i >= 0 {
			r.waiters = slices.Delete(r.waiters, i, i+1)
		}
	}
	// Without w first in line, those behind it may fit.
	r.serve()
	return err
}

// give returns n places and serves the waiters they make room for.
func (r *room) give(n int) {
	r.mu.Lock()
	r.free += n
	r.serve()
	r.mu.Unlock()
}

func (r *room) serve() {
	for len(r.waiters) > 0 && r.free >= r.waiters[0].n {
		w := r.waiters[0]
		r.free -= w.n
		close(w.ready)
		r.waiters[0] = nil
		r.waiters = r.waiters[1:]
	}
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
// Everything but ch and room is touched by the shard's goroutine only.
type shard struct {
	q    *Queue
	id   int
	ch   chan *chunk
	room room
	kick chan struct{} // FlushNow's signal; capacity 1
	// kicked: send once ch is empty, not at the deadline.
	kicked bool
	batch  []series.Sample
	// trackers are those of the calls whose last sample in this shard is in
	// batch, released when the batch is finished.
	trackers    []*tracker
	timer       *time.Timer // the batch deadline, running while batch is not empty
	deadline    time.Duration
	enc         encoder
	retryLog    logLimiter
	dropLog     logLimiter
	conflictLog logLimiter
	// noSplitUntil: a split found nothing the receiver accepts; refused
	// batches are dropped whole until then.
	noSplitUntil time.Time
}

// run builds and sends batches until ch is closed and drained, or Stop
// gives up.
func (s *shard) run() {
	s.deadline = time.Duration(s.q.cfg.BatchSendDeadline)
	s.timer = time.NewTimer(s.deadline)
	s.timer.Stop()
	defer s.timer.Stop()
	for {
		var expired <-chan time.Time
		if len(s.batch) > 0 {
			expired = s.timer.C
		}
		select {
		case c, ok := <-s.ch:
			if !ok { // Stopping, and everything queued has been read.
				if len(s.batch) > 0 && !s.send() {
					s.abandon(0)
				}
				return
			}
			if !s.take(c) {
				return
			}
			if !s.kicked || len(s.ch) > 0 {
				continue
			}
			// Flushing, and everything queued when it was asked is read.
			s.kicked = false
			if len(s.batch) == 0 {
				continue
			}
		case <-expired:
		case <-s.kick:
			if len(s.batch) == 0 && len(s.ch) == 0 {
				continue // nothing held: a later batch keeps its deadline
			}
			if len(s.ch) > 0 {
				s.kicked = true
				continue // send once what is queued is read
			}
		}
		s.timer.Stop()
		if !s.send() {
			s.abandon(0)
			return
		}
	}
}

// take moves c's samples into the batch, sending every batch that fills,
// and recycles c. It returns false if Stop gave up during a send; the batch,
// the rest of c and everything still queued are then abandoned.
func (s *shard) take(c *chunk) bool {
	maxSamples := s.q.cfg.MaxSamplesPerSend
	rest := c.s
	for len(rest) > 0 {
		k := min(len(rest), maxSamples-len(s.batch))
		if len(s.batch) == 0 {
			s.timer.Reset(s.deadline)
		}
		s.batch = append(s.batch, rest[:k]...)
		rest = rest[k:]
		s.room.give(k)
		if len(rest) == 0 && c.t != nil {
			s.trackers = append(s.trackers, c.t)
		}
		if len(s.batch) < maxSamples {
			break
		}
		s.timer.Stop()
		if !s.send() {
			s.abandon(len(rest))
			s.q.recycle(c)
			return false
		}
	}
	s.q.recycle(c)
	return true
}

// A request the receiver refuses for its content (400 or 413) is split in
// two and each half sent in turn, down to parts of about 1/2^maxSplitDepth
// of the batch: Prometheus refuses a whole request for one sample out of
// order, and a batch of 2 000 samples should not be lost for one bad
// series. A split that finds nothing the receiver accepts (it refuses
// everything, a misconfiguration rather than bad data) turns splitting off
// for the shard for splitCooldown, so it costs at most 2^(maxSplitDepth+1)-1
// requests per shard and cooldown.
const (
	maxSplitDepth = 8
	splitCooldown = time.Minute
)

// splittable reports whether a permanent error refuses the request's
// content, so that a part of it may be accepted.
func splittable(err error) bool {
	var serr *StatusError
	return errors.As(err, &serr) && (serr.StatusCode == http.StatusBadRequest || serr.StatusCode == http.StatusRequestEntityTooLarge)
}

// send sends the current batch until it is accepted or rejected for good,
// then finishes it. It returns false, leaving the batch in place, if Stop
// gave up first.
func (s *shard) send() bool {
	split := false
	accepted, ok := s.sendPart(s.batch, 0, &split)
	if !ok {
		return false
	}
	if split && accepted == 0 {
		s.noSplitUntil = time.Now().Add(splitCooldown)
	}
	s.finish()
	return true
}

// sendPart sends part of the batch until it is accepted or rejected for
// good, splitting it when the receiver refuses its content (see
// maxSplitDepth). It returns how many of its samples were accepted, and
// false if Stop gave up first.
func (s *shard) sendPart(part []series.Sample, depth int, split *bool) (int, bool) {
	q := s.q
	n := float64(len(part))
	data, err := s.enc.encode(part)
	if err != nil {
		s.drop(len(part), err, reasonEncode)
		return 0, true
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
			return len(part), true
		case canceled:
			return 0, false
		}

		var rerr RecoverableError
		if !errors.As(err, &rerr) {
			if len(part) > 1 && depth < maxSplitDepth && splittable(err) && time.Now().After(s.noSplitUntil) {
				*split = true
				q.metrics.splits.Inc()
				half := len(part) / 2
				a, ok := s.sendPart(part[:half], depth+1, split)
				if !ok {
					return a, false
				}
				b, ok := s.sendPart(part[half:], depth+1, split)
				return a + b, ok
			}
			s.drop(len(part), err, dropReason(err))
			return 0, true
		}
		delay := jitter(backoff)
		if rerr.RetryAfter > delay {
			delay = rerr.RetryAfter
		}
		if ok, suppressed := s.retryLog.allow(time.Now()); ok {
			q.logger.Warn("remote write request failed, retrying",
				"shard", s.id, "samples", len(part), "attempt", attempt,
				"retry_in", delay, "suppressed", suppressed, "err", err)
		}
		if !sleepCtx(q.sendCtx, delay) {
			return 0, false
		}
		q.metrics.samplesRetried.Add(n)
		if maxBackoff := time.Duration(q.cfg.MaxBackoff); backoff < maxBackoff/2 {
			backoff *= 2
		} else {
			backoff = maxBackoff
		}
	}
}

// drop counts n samples as dropped for reason.
func (s *shard) drop(n int, err error, reason string) {
	s.q.metrics.samplesDropped.WithLabelValues(reason).Add(float64(n))
	msg, level, limit := "remote write request rejected, samples dropped", slog.LevelError, &s.dropLog
	if reason == reasonConflict {
		// Not a lost request: the receiver kept the samples that did not
		// conflict, and says which did in err. Limited apart, so that
		// conflicts never hide a request lost whole.
		msg, level, limit = "remote write request partly refused (409 conflict), the receiver stored its other samples", slog.LevelWarn, &s.conflictLog
	}
	if ok, suppressed := limit.allow(time.Now()); ok {
		s.q.logger.Log(context.Background(), level, msg,
			"shard", s.id, "samples", n, "reason", reason,
			"suppressed", suppressed, "err", err)
	}
}

// finish releases the batch's trackers (calling the done callbacks of the
// Append calls it completes) and resets the batch for reuse.
func (s *shard) finish() {
	s.q.queued.Add(-int64(len(s.batch)))
	for _, t := range s.trackers {
		t.release()
	}
	clear(s.trackers)
	s.trackers = s.trackers[:0]
	clear(s.batch) // Drop series references.
	s.batch = s.batch[:0]
}

// abandon gives up on the batch, on the held samples left of a chunk being
// taken, and on whatever is still in ch, without calling any done. Only Stop
// makes a send give up, and Stop closes ch (at once, or once the Appends in
// progress return), so draining ch ends.
func (s *shard) abandon(held int) {
	n := int64(len(s.batch) + held)
	for c := range s.ch {
		n += int64(len(c.s))
		s.q.recycle(c)
	}
	s.q.abandoned.Add(n)
	s.q.queued.Add(-n)
	clear(s.trackers)
	s.trackers = s.trackers[:0]
	clear(s.batch)
	s.batch = s.batch[:0]
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

// ShardKey is the AppendKey key of a BMC id (or any other name): the
// gateway keys a BMC's samples by it, so a BMC's series share a shard, stay
// in order and travel together in requests. FNV-1a, so a fleet spreads over
// the shards the same way in every run; its low bits, which pick the
// shard, depend only on the low bits of each byte, so the high half is
// folded in.
func ShardKey(id string) uint64 {
	h := uint64(14695981039346656037)
	for i := 0; i < len(id); i++ {
		h ^= uint64(id[i])
		h *= 1099511628211
	}
	return h ^ h>>32
}
