package poller

import (
	"context"
	"errors"
	"hash/fnv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/bmcstream/bmcstream/pkg/inventory"
	"github.com/bmcstream/bmcstream/pkg/sources"
	v1 "github.com/bmcstream/bmcstream/proto/bmcstream/v1"
)

// worker polls one BMC: it alone uses the BMC's sources (one request in
// flight per BMC), on its own schedule, so a slow or dead BMC delays no
// other.
type worker struct {
	p       *Poller
	bmc     inventory.BMC
	sources []protoSource
	cancel  context.CancelFunc
	done    chan struct{}
	// unpollable: the BMC cannot be polled as configured; its sources are
	// unpollableSources (unpollable.go).
	unpollable bool
	// from is when the worker may first poll: a leaving poller's handover
	// time for a BMC taken over from it, else zero (the next slot).
	from time.Time
	// leave is closed by handOver; stopAt is then the handover time: the
	// worker polls its slots before it and returns.
	leave  chan struct{}
	stopAt atomic.Int64

	mu     sync.Mutex
	status Status
	// open counts this worker's sources whose last poll was answered and
	// authenticated: the sessions it holds on the BMC.
	open int
}

type protoSource struct {
	proto v1.Protocol
	src   sources.Source
	// drops is what the source's DropCounter last reported, by reason: the
	// poller's counter grows by the difference.
	drops map[string]uint64
	// malformed is what the source's DocumentCounter last reported.
	malformed uint64
	// state is the result of the last poll, for logging changes.
	state pollState
}

// Status is what the status page shows of one owned BMC.
type Status struct {
	ID         string    `json:"id"`
	Address    string    `json:"address"`
	Protocol   string    `json:"protocol"`
	LastPoll   time.Time `json:"last_poll"`
	LastResult string    `json:"last_result"` // ok, partial, error
	ErrorClass string    `json:"error_class,omitempty"`
	Failures   int       `json:"consecutive_failures"`
	NextPoll   time.Time `json:"next_poll"`
	Sequence   uint64    `json:"sequence"`

	// Error is the last poll's error message (statusError: bounded, no
	// credentials), shown beside ErrorClass: what a TLS failure says about
	// the certificate, which credentials reference resolves to nothing.
	Error string `json:"error,omitempty"`
}

// Offset is where in each interval a poller polls the BMC id: a stable
// position per id (a hash), so polls are flat over time, a restart keeps
// the same rhythm, and every poller of an HA pair or a handover agrees.
func Offset(id string, interval time.Duration) time.Duration {
	h := fnv.New64a()
	_, _ = h.Write([]byte(id)) // a hash.Hash never fails to write
	return time.Duration(h.Sum64() % uint64(interval))
}

// firstSlot is the first time at or after now that is offset past a
// multiple of interval.
func firstSlot(now time.Time, interval, off time.Duration) time.Time {
	base := now.Truncate(interval).Add(off)
	if base.Before(now) {
		base = base.Add(interval)
	}
	return base
}

func (w *worker) run(ctx context.Context) {
	defer close(w.done)
	defer w.closeSources()
	interval := time.Duration(w.bmc.Interval)
	// The BMC's regular slot: a BMC moved from another poller keeps the
	// rhythm it had there. After a handover its first slot is the first at
	// or after the handover time, the one the leaver did not poll: polled
	// late rather than skipped when this worker starts after it (a loaded
	// machine), if by less than an interval.
	now := w.p.now()
	next := firstSlot(now, interval, Offset(w.bmc.ID, interval))
	if !w.from.IsZero() {
		if first := firstSlot(w.from, interval, Offset(w.bmc.ID, interval)); now.Sub(first) < interval {
			next = first
		}
	}
	leave := w.leave
	failures := 0
	seq := w.p.sequence(w.bmc.ID)
	timer := time.NewTimer(time.Until(next))
	defer timer.Stop()
	// Sessions that expire when idle (IPMI's 60 s) are kept open between
	// polls further apart than keepAliveEvery, from this goroutine, so one
	// request at a time still reaches the BMC.
	var keepAlive <-chan time.Time
	if interval > keepAliveEvery && w.hasKeepAlive() {
		t := time.NewTicker(keepAliveEvery)
		defer t.Stop()
		keepAlive = t.C
	}
	for {
		w.setNext(next)
		select {
		case <-ctx.Done():
			return
		case <-keepAlive:
			w.keepAlive(ctx)
			continue
		case <-leave:
			leave = nil
			if w.handedOver(next) {
				return
			}
			continue
		case <-timer.C:
		}
		if !w.p.acquire(ctx) {
			return
		}
		start := w.p.now()
		w.p.metrics.lag.Observe(start.Sub(next).Seconds())
		ok := true
		var wait time.Duration
		for i := range w.sources {
			good, retryAfter := w.poll(ctx, &w.sources[i], seq.Add(1), interval)
			ok = ok && good
			wait = max(wait, retryAfter)
		}
		w.p.release()
		if ok {
			failures = 0
		} else {
			failures++
		}
		// The next slot: the regular one, or a backed-off probe for a BMC
		// that does not answer; never a burst to catch up missed slots.
		step := interval
		if failures > 1 {
			step = min(interval<<min(failures-1, 16), time.Duration(w.p.cfg.Polling.MaxBackoff))
			step = max(step, interval)
		}
		next = next.Add(step)
		if earliest := start.Add(wait); next.Before(earliest) {
			next = earliest // the BMC asked us to wait (Retry-After)
		}
		if now := w.p.now(); !next.After(now) {
			next = firstSlot(now, interval, Offset(w.bmc.ID, interval))
		}
		if w.handedOver(next) {
			return
		}
		timer.Reset(time.Until(next))
	}
}

// handOver makes the worker poll its slots before at and return.
func (w *worker) handOver(at time.Time) {
	if w.stopAt.CompareAndSwap(0, at.UnixNano()) && w.leave != nil {
		close(w.leave)
	}
}

// handedOver reports whether a slot is past the handover time.
func (w *worker) handedOver(slot time.Time) bool {
	at := w.stopAt.Load()
	return at != 0 && slot.UnixNano() >= at
}

// keepAliveEvery is how often idle sessions are touched: half of the
// 30 s idle time after which the IPMI source pings a session, well under
// the 60 s most BMCs allow.
const keepAliveEvery = 15 * time.Second

// keepAliver is a source whose session needs touching between polls.
type keepAliver interface {
	KeepAlive(ctx context.Context) error
}

func (w *worker) hasKeepAlive() bool {
	for _, ps := range w.sources {
		if _, ok := ps.src.(keepAliver); ok {
			return true
		}
	}
	return false
}

func (w *worker) keepAlive(ctx context.Context) {
	for _, ps := range w.sources {
		if ka, ok := ps.src.(keepAliver); ok {
			kctx, cancel := context.WithTimeout(ctx, 5*time.Second)
			_ = ka.KeepAlive(kctx) // a dead session is replaced by the next poll
			cancel()
		}
	}
}

// poll reads one source once and publishes the snapshot. It returns false
// when the BMC should be probed less often: it did not answer, or it
// refused our credentials or sessions (retrying those at full rate locks
// accounts out on BMCs that count failed logins); and how long the BMC
// asked us to wait (Retry-After).
func (w *worker) poll(ctx context.Context, ps *protoSource, seq uint64, interval time.Duration) (bool, time.Duration) {
	pctx, cancel := context.WithTimeout(ctx, pollTimeout(w.p.cfg, interval))
	defer cancel()
	snap := &v1.Snapshot{
		BmcId:       w.bmc.ID,
		Address:     w.bmc.Address,
		Protocol:    ps.proto,
		PollerId:    w.p.id,
		PollerEpoch: w.p.epoch,
		Sequence:    seq,
		// Lets the gateway's HA stage tell a handover (rf 1) from a
		// follower of an HA pair.
		ReplicationFactor: uint32(max(w.p.cfg.Sharding.ReplicationFactor, 1)),
	}
	start := w.p.now()
	snap.PollStartMs = start.UnixMilli()
	err := ps.src.Collect(pctx, snap)
	end := w.p.now()
	snap.PollEndMs = end.UnixMilli()
	snap.Protocol = ps.proto
	if ctx.Err() != nil && err != nil {
		return true, 0 // shutting down: neither publish nor count
	}
	proto := protoLabel(ps.proto)
	result := "ok"
	class := ""
	if err != nil {
		class = string(sources.ClassOf(err))
		result = "error"
		if snap.Up && snap.Partial {
			result = "partial"
		}
		if snap.ErrorClass == "" {
			snap.ErrorClass = class
			snap.Error = err.Error()
		}
	}
	w.p.metrics.polls.WithLabelValues(proto, result, class).Inc()
	w.p.metrics.duration.WithLabelValues(proto).Observe(end.Sub(start).Seconds())
	ps.countDrops(w.p.metrics)
	w.p.logChange(w.bmc.ID, ps, result == "error", class, snap.Error)
	if perr := w.p.pub.Publish(snap); perr != nil {
		w.p.metrics.publishFailures.Inc()
	}
	reached := snap.Up && class != string(sources.ClassAuth) && class != string(sources.ClassSessionLimit)
	w.mu.Lock()
	w.setOpen(ps.proto, reached)
	w.status.LastPoll = start
	w.status.LastResult = result
	w.status.ErrorClass = class
	w.status.Error = statusError(snap.Error)
	w.status.Sequence = seq
	if result == "error" {
		w.status.Failures++
	} else {
		w.status.Failures = 0
	}
	w.mu.Unlock()
	var retryAfter time.Duration
	var se *sources.Error
	if errors.As(err, &se) {
		retryAfter = se.RetryAfter
	}
	switch sources.Class(class) {
	case sources.ClassUnreachable, sources.ClassTimeout:
		return snap.Up, retryAfter
	case sources.ClassAuth, sources.ClassSessionLimit:
		return false, retryAfter
	}
	return true, retryAfter
}

// pollTimeout bounds one poll of a BMC polled every interval:
// polling.poll_timeout, else 80 % of the interval.
func pollTimeout(cfg *Config, interval time.Duration) time.Duration {
	if t := time.Duration(cfg.Polling.PollTimeout); t > 0 {
		return t
	}
	return interval * 8 / 10
}

// setOpen records whether the session of one protocol is open; callers
// hold w.mu.
func (w *worker) setOpen(proto v1.Protocol, open bool) {
	bit := 1 << uint(proto)
	if open {
		w.open |= bit
	} else {
		w.open &^= bit
	}
}

func (w *worker) sessions() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	n := 0
	for b := w.open; b != 0; b &= b - 1 {
		n++
	}
	return n
}

func (w *worker) setNext(t time.Time) {
	w.mu.Lock()
	w.status.NextPoll = t
	w.mu.Unlock()
}

func (w *worker) snapshot() Status {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.status
}

// closeSources logs out of every session, bounded in time.
func (w *worker) closeSources() {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	for i := range w.sources {
		ps := &w.sources[i]
		_ = ps.src.Close(ctx)      // the BMC is being dropped; a failed logout leaves a session the BMC expires
		ps.countDrops(w.p.metrics) // what it counted since its last poll
	}
	w.mu.Lock()
	w.open = 0
	w.mu.Unlock()
}

func protoLabel(p v1.Protocol) string {
	switch p {
	case v1.Protocol_PROTOCOL_REDFISH:
		return "redfish"
	case v1.Protocol_PROTOCOL_IPMI:
		return "ipmi"
	}
	return "unknown"
}
