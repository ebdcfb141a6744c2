package poller

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// Dynamic membership. Each poller puts its key in the bucket every TTL/3
// (a heartbeat) and watches the bucket: it learns of a put, a leaving mark
// or a deletion the moment the bucket stores it, and counts a poller gone
// TTL after its last heartbeat arrived, on its own timer, without waiting
// for the bucket to expire the key and a listing to notice. A crashed
// poller's BMCs therefore move at most TTL after its last heartbeat;
// docs/scaling.md derives the longest gap from that.
//
// A poller that stops cleanly hands over instead (leave): it puts a
// leaving mark with a handover time T a second ahead, keeps polling the
// slots before T, and stops; the survivors, seeing the mark, start the
// moved BMCs at their first slot at or after T. No slot is missed and none
// is polled twice, as long as the survivors see the mark within the
// second.

// leavingPrefix starts the value of a leaving mark, followed by the
// handover time in Unix milliseconds.
const leavingPrefix = "leaving "

// handoverDelay is how far ahead of its leaving mark a stopping poller sets
// the handover time: time for the mark to reach every survivor and for
// them to start the moved BMCs' workers.
const handoverDelay = time.Second

// member is one other poller as this one sees it.
type member struct {
	// deadline: gone after this unless it heartbeats again.
	deadline time.Time
	// leaving is zero, or when it hands its BMCs over.
	leaving time.Time
}

// heartbeatValue is what a live poller puts under its key.
func heartbeatValue(now time.Time) []byte {
	return []byte(now.UTC().Format(time.RFC3339))
}

// leavingAt parses a leaving mark; ok is false for a heartbeat.
func leavingAt(v []byte) (time.Time, bool) {
	s, ok := strings.CutPrefix(string(v), leavingPrefix)
	if !ok {
		return time.Time{}, false
	}
	ms, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		return time.Time{}, false
	}
	return time.UnixMilli(ms), true
}

// joinMembership creates the bucket, announces this poller and reads the
// current members.
func (p *Poller) joinMembership(ctx context.Context) error {
	ttl := time.Duration(p.cfg.Sharding.TTL)
	kv, err := p.js.CreateOrUpdateKeyValue(ctx, jetstream.KeyValueConfig{
		Bucket:      p.cfg.Sharding.Bucket,
		Description: "bmcstream poller membership",
		TTL:         ttl,
		History:     1,
	})
	if err != nil {
		return fmt.Errorf("membership bucket %s: %w", p.cfg.Sharding.Bucket, err)
	}
	p.kv = kv
	if _, err := kv.Put(ctx, p.id, heartbeatValue(time.Now())); err != nil {
		return fmt.Errorf("join membership: %w", err)
	}
	w, table, err := p.watchMembers(ctx)
	if err != nil {
		return err
	}
	p.watcher = w
	p.table = table
	p.applyMembers()
	return nil
}

// watchMembers starts a watch of the bucket and reads its current values
// (bounded by 10 s): the members as of now.
func (p *Poller) watchMembers(ctx context.Context) (jetstream.KeyWatcher, map[string]member, error) {
	wctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	// The watch outlives wctx: only its set-up is bounded.
	w, err := p.kv.WatchAll(context.WithoutCancel(ctx))
	if err != nil {
		return nil, nil, fmt.Errorf("watch membership: %w", err)
	}
	ttl := time.Duration(p.cfg.Sharding.TTL)
	table := map[string]member{}
	for {
		select {
		case <-wctx.Done():
			_ = w.Stop() // the watch is abandoned with the context; its error is the one returned
			return nil, nil, fmt.Errorf("watch membership: %w", wctx.Err())
		case e, ok := <-w.Updates():
			if !ok {
				return nil, nil, errors.New("watch membership: watch closed")
			}
			if e == nil {
				return w, table, nil
			}
			// A key written before we watched: it lives until the bucket's
			// TTL from its write, but at least TTL/2 from now, so a clock
			// ahead of the server's cannot count a live poller gone
			// before its next heartbeat (every TTL/3) arrives.
			now := time.Now()
			dl := e.Created().Add(ttl)
			if lo := now.Add(ttl / 2); dl.Before(lo) {
				dl = lo
			}
			if hi := now.Add(ttl); dl.After(hi) {
				dl = hi
			}
			p.note(table, e, dl)
		}
	}
}

// note records one watched entry in a member table.
func (p *Poller) note(table map[string]member, e jetstream.KeyValueEntry, deadline time.Time) {
	if e.Key() == p.id {
		return
	}
	switch e.Operation() {
	case jetstream.KeyValueDelete, jetstream.KeyValuePurge:
		delete(table, e.Key())
		return
	}
	m := member{deadline: deadline}
	if at, ok := leavingAt(e.Value()); ok {
		m.leaving = at
	}
	table[e.Key()] = m
}

// membership heartbeats, follows the watch and expires silent members
// until ctx ends.
func (p *Poller) membership(ctx context.Context) {
	ttl := time.Duration(p.cfg.Sharding.TTL)
	beat := time.NewTicker(ttl / 3)
	defer beat.Stop()
	expiry := time.NewTimer(time.Hour)
	defer expiry.Stop()
	defer func() {
		if p.watcher != nil {
			_ = p.watcher.Stop() // fails only on a subscription or connection closed already: nothing left to end
		}
	}()
	var updates <-chan jetstream.KeyValueEntry
	if p.watcher != nil {
		updates = p.watcher.Updates()
	}
	for {
		expiry.Reset(p.nextExpiry())
		select {
		case <-ctx.Done():
			return
		case <-beat.C:
			hctx, cancel := context.WithTimeout(ctx, 2*time.Second)
			if _, err := p.kv.Put(hctx, p.id, heartbeatValue(time.Now())); err != nil {
				p.logger.Warn("membership heartbeat", "err", err)
			}
			cancel()
			if updates == nil {
				// The watch ended: start it again, with the bucket's
				// current values as the members.
				if w, table, err := p.watchMembers(ctx); err != nil {
					p.logger.Warn("watch membership", "err", err)
				} else {
					p.watcher, updates = w, w.Updates()
					p.memMu.Lock()
					p.table = table
					p.memMu.Unlock()
					p.applyMembers()
				}
			}
		case e, ok := <-updates:
			if !ok {
				updates = nil
				p.logger.Warn("membership watch ended; restarting it at the next heartbeat")
				continue
			}
			if e == nil {
				continue
			}
			p.memMu.Lock()
			p.note(p.table, e, time.Now().Add(ttl))
			p.memMu.Unlock()
			p.applyMembers()
		case <-expiry.C:
			p.applyMembers()
		}
	}
}

// nextExpiry is how long until the next member's deadline (an hour when
// there is none).
func (p *Poller) nextExpiry() time.Duration {
	p.memMu.Lock()
	defer p.memMu.Unlock()
	d := time.Hour
	now := time.Now()
	for _, m := range p.table {
		d = min(d, max(m.deadline.Sub(now), 0))
	}
	return d
}

// applyMembers drops members past their deadline, derives the live
// members (this poller always among them) and the leaving ones, and
// reconciles when either changed.
func (p *Poller) applyMembers() {
	now := time.Now()
	live := []string{p.id}
	leavers := map[string]time.Time{}
	p.memMu.Lock()
	for id, m := range p.table {
		switch {
		case !now.Before(m.deadline):
			delete(p.table, id)
			p.logger.Info("poller gone: no heartbeat within the ttl", "member", id)
		case !m.leaving.IsZero():
			leavers[id] = m.leaving
		default:
			live = append(live, id)
		}
	}
	p.memMu.Unlock()
	sort.Strings(live)
	old := p.members.Load()
	oldLeavers := p.leavers.Load()
	if old != nil && reflect.DeepEqual(*old, live) && oldLeavers != nil && reflect.DeepEqual(*oldLeavers, leavers) {
		return
	}
	p.leavers.Store(&leavers)
	p.members.Store(&live)
	if old == nil || !reflect.DeepEqual(*old, live) {
		p.metrics.membershipChanges.Inc()
		p.logger.Info("membership changed", "members", live, "leaving", len(leavers))
	}
	p.reconcile()
}

// takeOverAt is when this poller may first poll a BMC it newly owns: the
// handover time of a leaving poller that owned it, else zero (its next
// slot). Callers hold p.mu.
func (p *Poller) takeOverAt(id string, members []string, rf int) time.Time {
	lp := p.leavers.Load()
	if lp == nil || len(*lp) == 0 {
		return time.Time{}
	}
	with := append([]string{}, members...)
	for l := range *lp {
		with = append(with, l)
	}
	var at time.Time
	for _, o := range Owners(id, with, rf) {
		if t, ok := (*lp)[o]; ok && t.After(at) {
			at = t
		}
	}
	return at
}

// leave ends this poller's membership on shutdown. With other live
// pollers it hands over: a leaving mark with handover time T, the workers
// poll their slots before T and stop, then the key is deleted. Alone, or
// when the mark cannot be put, it deletes its key and returns at once.
// stopBeat stops the membership loop first, so no heartbeat overwrites the
// mark.
func (p *Poller) leave(stopBeat func()) {
	stopBeat()
	if p.kv == nil {
		return
	}
	defer func() {
		dctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		if err := p.kv.Delete(dctx, p.id); err != nil {
			p.logger.Warn("leave membership", "err", err)
		}
	}()
	if len(p.Members()) < 2 {
		return
	}
	at := time.Now().Add(handoverDelay)
	pctx, cancel := context.WithTimeout(context.Background(), handoverDelay/2)
	_, err := p.kv.Put(pctx, p.id, []byte(leavingPrefix+strconv.FormatInt(at.UnixMilli(), 10)))
	cancel()
	if err != nil {
		p.logger.Warn("leaving mark not stored; deregistering without a handover", "err", err)
		return
	}
	p.mu.Lock()
	ws := make([]*worker, 0, len(p.workers))
	longest := time.Duration(0)
	for _, w := range p.workers {
		w.handOver(at)
		ws = append(ws, w)
		longest = max(longest, pollTimeout(p.cfg, time.Duration(w.bmc.Interval)))
	}
	p.mu.Unlock()
	// Workers finish the polls of their slots before T; bounded by the
	// longest poll timeout after T.
	limit := time.NewTimer(time.Until(at) + longest + time.Second)
	defer limit.Stop()
	for _, w := range ws {
		select {
		case <-w.done:
		case <-limit.C:
			p.logger.Warn("handover: polls still running at the deadline; stopping them")
			return
		}
	}
	p.logger.Info("handed over", "bmcs", len(ws), "at", at.UTC().Format(time.RFC3339Nano))
}
