package poller

import (
	"container/list"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/bmcstream/bmcstream/internal/ratelog"
	"github.com/bmcstream/bmcstream/pkg/bus"
	v1 "github.com/bmcstream/bmcstream/proto/bmcstream/v1"
)

// Publisher sends snapshots to NATS without ever blocking a poll.
//
// With JetStream, snapshots wait in a bounded local buffer and are
// published asynchronously, each with Nats-Msg-Id so a republished one is
// stored once; a snapshot leaves the buffer only when the stream
// acknowledged it. While NATS is unreachable the buffer holds the newest
// snapshots (the oldest are dropped first, counted) and is flushed in order
// on reconnect. Per BMC, snapshots reach the stream in poll order: at most
// one snapshot of a BMC is in flight at a time.
//
// In core-NATS mode snapshots are published at once, without
// acknowledgements, as that mode promises.
type Publisher struct {
	js     jetstream.JetStream
	nc     *nats.Conn
	logger *slog.Logger
	m      *publishMetrics

	capacity int
	mu       sync.Mutex
	queue    *list.List // of *outgoing, oldest first
	inflight int        // taken from queue, not yet acked or put back
	wake     chan struct{}
	empty    *sync.Cond

	stop chan struct{}
	done chan struct{}
	once sync.Once

	dropLog, failLog ratelog.Limiter
}

type outgoing struct {
	bmc string
	msg *nats.Msg
}

type publishMetrics struct {
	published prometheus.Counter
	dropped   prometheus.Counter
	errors    prometheus.Counter
	buffered  prometheus.GaugeFunc
}

// DefaultPublishBuffer holds ten minutes of a 500-BMC shard at 30 s, or a
// minute of 5 000: enough to ride out a NATS restart.
const DefaultPublishBuffer = 10000

// publishBatch bounds snapshots in flight, one per BMC.
const publishBatch = 256

// NewPublisher starts a publisher. js is nil in core-NATS mode.
func NewPublisher(nc *nats.Conn, js jetstream.JetStream, capacity int, reg prometheus.Registerer, logger *slog.Logger) (*Publisher, error) {
	if capacity <= 0 {
		capacity = DefaultPublishBuffer
	}
	p := &Publisher{js: js, nc: nc, logger: logger, capacity: capacity, queue: list.New(),
		wake: make(chan struct{}, 1), stop: make(chan struct{}), done: make(chan struct{}),
		dropLog: ratelog.Limiter{Every: 10 * time.Second}, failLog: ratelog.Limiter{Every: 10 * time.Second}}
	p.empty = sync.NewCond(&p.mu)
	p.m = &publishMetrics{
		published: prometheus.NewCounter(prometheus.CounterOpts{Name: "bmcstream_poller_snapshots_published_total", Help: "Snapshots acknowledged by the stream (or sent, in core mode)."}),
		dropped:   prometheus.NewCounter(prometheus.CounterOpts{Name: "bmcstream_poller_snapshots_dropped_total", Help: "Snapshots dropped because the publish buffer was full while NATS was unreachable (oldest first)."}),
		errors:    prometheus.NewCounter(prometheus.CounterOpts{Name: "bmcstream_poller_publish_errors_total", Help: "Failed publish attempts (the snapshot stays buffered and is retried)."}),
	}
	p.m.buffered = prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "bmcstream_poller_publish_buffer_snapshots", Help: "Snapshots waiting to be published."}, func() float64 {
		p.mu.Lock()
		defer p.mu.Unlock()
		return float64(p.queue.Len())
	})
	for _, c := range []prometheus.Collector{p.m.published, p.m.dropped, p.m.errors, p.m.buffered} {
		if err := reg.Register(c); err != nil {
			return nil, err
		}
	}
	if js == nil {
		close(p.done)
		return p, nil
	}
	go p.run()
	return p, nil
}

// Publish queues one snapshot (or sends it, in core mode). It never
// blocks on the network.
func (p *Publisher) Publish(s *v1.Snapshot) error {
	data, err := s.Marshal()
	if err != nil {
		return fmt.Errorf("marshal snapshot of %s: %w", s.BmcId, err)
	}
	msg := &nats.Msg{
		Subject: bus.RawSubject(s.BmcId),
		Data:    data,
		Header:  nats.Header{nats.MsgIdHdr: []string{bus.MsgID(s.PollerId, s.PollerEpoch, s.BmcId, s.Sequence)}},
	}
	if p.js == nil {
		if err := p.nc.PublishMsg(msg); err != nil {
			p.m.errors.Inc()
			return fmt.Errorf("publish snapshot of %s: %w", s.BmcId, err)
		}
		p.m.published.Inc()
		return nil
	}
	p.mu.Lock()
	if p.queue.Len() >= p.capacity {
		p.queue.Remove(p.queue.Front())
		p.m.dropped.Inc()
		p.dropLog.Do(func() {
			p.logger.Warn("publish buffer full; dropping the oldest snapshots (counted in bmcstream_poller_snapshots_dropped_total)", "capacity", p.capacity)
		})
	}
	p.queue.PushBack(&outgoing{bmc: s.BmcId, msg: msg})
	p.mu.Unlock()
	select {
	case p.wake <- struct{}{}:
	default:
	}
	return nil
}

func (p *Publisher) run() {
	defer close(p.done)
	backoff := 100 * time.Millisecond
	for {
		batch := p.take()
		if len(batch) == 0 {
			select {
			case <-p.stop:
				return
			case <-p.wake:
				continue
			}
		}
		failed := p.send(batch)
		p.mu.Lock()
		// Put failures back at the front, in their order: a BMC's later
		// snapshots are still behind them (take sends one per BMC).
		for i := len(failed) - 1; i >= 0; i-- {
			p.queue.PushFront(failed[i])
		}
		p.inflight -= len(batch)
		if p.queue.Len()+p.inflight == 0 {
			p.empty.Broadcast()
		}
		p.mu.Unlock()
		if len(failed) == 0 {
			backoff = 100 * time.Millisecond
			continue
		}
		select {
		case <-p.stop:
			return
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, 5*time.Second)
	}
}

// take removes up to publishBatch snapshots from the front of the queue,
// at most one per BMC, keeping each BMC's later snapshots queued.
func (p *Publisher) take() []*outgoing {
	p.mu.Lock()
	defer p.mu.Unlock()
	var batch []*outgoing
	seen := map[string]bool{}
	for e := p.queue.Front(); e != nil && len(batch) < publishBatch; {
		next := e.Next()
		o := e.Value.(*outgoing)
		if !seen[o.bmc] {
			seen[o.bmc] = true
			batch = append(batch, o)
			p.queue.Remove(e)
		}
		e = next
	}
	p.inflight += len(batch)
	return batch
}

// send publishes a batch asynchronously and returns what was not acked.
func (p *Publisher) send(batch []*outgoing) []*outgoing {
	futures := make([]jetstream.PubAckFuture, len(batch))
	var failed []*outgoing
	for i, o := range batch {
		f, err := p.js.PublishMsgAsync(o.msg)
		if err != nil {
			futures[i] = nil
			continue
		}
		futures[i] = f
	}
	timeout := time.NewTimer(10 * time.Second)
	defer timeout.Stop()
	var lastErr error
	for i, f := range futures {
		if f == nil {
			failed = append(failed, batch[i])
			continue
		}
		select {
		case <-f.Ok():
			p.m.published.Inc()
		case err := <-f.Err():
			lastErr = err
			failed = append(failed, batch[i])
		case <-timeout.C:
			lastErr = errors.New("no acknowledgement within 10s")
			failed = append(failed, batch[i:]...)
			p.m.errors.Add(float64(len(batch) - i))
			return p.keepOrder(batch, failed, lastErr)
		}
	}
	if len(failed) > 0 {
		p.m.errors.Add(float64(len(failed)))
	}
	return p.keepOrder(batch, failed, lastErr)
}

func (p *Publisher) keepOrder(batch, failed []*outgoing, err error) []*outgoing {
	if len(failed) > 0 {
		p.failLog.Do(func() {
			p.logger.Warn("publish failed; keeping snapshots buffered", "failed", len(failed), "batch", len(batch), "err", err)
		})
	}
	return failed
}

// Flush waits until every buffered snapshot is acknowledged or ctx ends.
func (p *Publisher) Flush(ctx context.Context) error {
	if p.js == nil {
		return p.nc.FlushWithContext(ctx)
	}
	done := make(chan struct{})
	go func() {
		p.mu.Lock()
		for p.queue.Len()+p.inflight > 0 && ctx.Err() == nil {
			p.empty.Wait()
		}
		p.mu.Unlock()
		close(done)
	}()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		p.mu.Lock()
		n := p.queue.Len() + p.inflight
		p.empty.Broadcast()
		p.mu.Unlock()
		<-done
		return fmt.Errorf("flush publish buffer: %d snapshots left: %w", n, ctx.Err())
	}
}

// Buffered is the number of snapshots waiting or in flight.
func (p *Publisher) Buffered() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.queue.Len() + p.inflight
}

// Close stops the sender; buffered snapshots are lost (Flush first).
func (p *Publisher) Close() {
	p.once.Do(func() { close(p.stop) })
	<-p.done
}
