package gateway

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/bmcstream/bmcstream/pkg/rendezvous"
)

// replicas shares a partitioned stream (nats.stream.partitions = n) among
// the gateway replicas on one NATS system.
//
// Every replica writes member.<id> into the bucket every TTL/3; keys
// expire after TTL, so a dead replica leaves by itself. Partition p belongs
// to the live member with the highest rendezvous score for it, so a
// replica joining or leaving moves only about 1/n of the partitions.
//
// Owning is not enough to consume: two replicas with different views of
// the membership (each refreshes on its own clock) could both read a
// partition and write one BMC's snapshots out of order. A replica consumes
// partition p only while it holds the lease partition.<p>: created when
// absent, renewed with the revision it last wrote (compare and swap), gone
// with the TTL when its holder dies. A replica that holds a lease it no
// longer owns drains the partition's loops (stops fetching, lets every
// snapshot it took be written and acked), then deletes the lease; the new
// owner creates it at its next step and starts at once, since nothing is
// left unacked. After a crash the new owner waits out the lease's TTL and
// then the consumer's ack wait (consumer.awaitRedeliveries), so the dead
// replica's unacked snapshots come back before newer ones.
type replicas struct {
	replicaDeps
	kv  jetstream.KeyValue
	id  string
	n   int
	ttl time.Duration

	// Owned by run, then by leave.
	held map[int]*holding
	live []string // the members, as last listed
}

// replicaDeps are what replicas need of the gateway: its logger and
// metrics, how to make, announce and retire a partition's consumer loops,
// and how to flush acks.
type replicaDeps struct {
	logger *slog.Logger
	// handover bounds the partitions' handover at shutdown.
	handover       time.Duration
	members        prometheus.Gauge // bmcstream_gateway_replicas
	partitionsHeld prometheus.Gauge
	leasesLost     prometheus.Counter
	// newLoops makes the consumer loops of a partition; started and
	// stopped tell the gateway which loops run (inventory removals go to
	// them).
	newLoops func(ctx context.Context, part int) ([]*consumer, error)
	started  func([]*consumer)
	stopped  func([]*consumer)
	// flush sends the acks written so far to the server.
	flush func(ctx context.Context) error
}

// holding is a partition whose lease this replica holds, and its loops.
type holding struct {
	rev      uint64
	loops    []*consumer
	cancel   context.CancelFunc
	done     chan struct{} // closed when every loop has returned
	draining bool
}

func (h *holding) finished() bool {
	select {
	case <-h.done:
		return true
	default:
		return false
	}
}

func (h *holding) startDrain() {
	if h.draining {
		return
	}
	h.draining = true
	for _, s := range h.loops {
		close(s.drain)
	}
}

const (
	memberPrefix = "member."
	leasePrefix  = "partition."
)

// replicaID is the configured id, else host name and process id (made a
// valid key and consumer-name part).
func replicaID(configured string) string {
	if configured != "" {
		return configured
	}
	host, _ := os.Hostname() // without a host name the id is "gateway-<pid>", below
	host = strings.Map(func(r rune) rune {
		if r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '_' {
			return r
		}
		return '_'
	}, host)
	if host == "" {
		host = "gateway"
	}
	return host + "-" + strconv.Itoa(os.Getpid())
}

func (g *Gateway) joinReplicas(ctx context.Context) (*replicas, error) {
	js, err := jetstream.New(g.nc)
	if err != nil {
		return nil, fmt.Errorf("jetstream: %w", err)
	}
	rc := g.cfg.Replicas
	kv, err := js.CreateOrUpdateKeyValue(ctx, jetstream.KeyValueConfig{
		Bucket:      rc.Bucket,
		Description: "bmcstream gateway replicas and partition leases",
		TTL:         time.Duration(rc.TTL),
		History:     1,
	})
	if err != nil {
		return nil, fmt.Errorf("replicas bucket %s: %w", rc.Bucket, err)
	}
	r := &replicas{
		replicaDeps: replicaDeps{
			logger:         g.logger,
			handover:       g.opts.ShutdownTimeout / 2,
			members:        g.metrics.replicas,
			partitionsHeld: g.metrics.partitionsHeld,
			leasesLost:     g.metrics.leasesLost,
			newLoops:       g.newLoops,
			started:        g.addLoops,
			stopped:        g.removeLoops,
			flush:          g.nc.FlushWithContext,
		},
		kv:   kv,
		id:   replicaID(rc.ID),
		n:    g.cfg.NATS.Stream.Partitions,
		ttl:  time.Duration(rc.TTL),
		held: map[int]*holding{},
	}
	if _, err := kv.Put(ctx, memberPrefix+r.id, []byte(time.Now().UTC().Format(time.RFC3339))); err != nil {
		return nil, fmt.Errorf("join replicas: %w", err)
	}
	g.logger.Info("joined the gateway replicas", "replica", r.id, "partitions", r.n, "bucket", rc.Bucket)
	return r, nil
}

// run renews membership and leases and follows ownership until ctx ends;
// then it hands every partition over (drains them) within half the
// shutdown timeout, still renewing the leases meanwhile, and stops the
// loops. loopCtx bounds the loops themselves.
func (r *replicas) run(ctx, loopCtx context.Context) {
	every := r.ttl / 3
	t := time.NewTicker(every)
	defer t.Stop()
	r.step(loopCtx)
	for ctx.Err() == nil {
		select {
		case <-ctx.Done():
		case <-t.C:
			r.step(loopCtx)
		}
	}
	deadline := time.Now().Add(r.handover)
	short := time.NewTicker(100 * time.Millisecond)
	defer short.Stop()
	for len(r.held) > 0 && time.Now().Before(deadline) && loopCtx.Err() == nil {
		renew := false
		select {
		case <-short.C:
		case <-t.C:
			renew = true
		}
		r.drainStep(loopCtx, renew)
	}
	for _, h := range r.held {
		h.cancel()
		<-h.done
	}
}

// drainStep, at shutdown: drain everything, renew leases when due, and
// let go of the partitions whose loops are done.
func (r *replicas) drainStep(ctx context.Context, renew bool) {
	for p, h := range r.held {
		h.startDrain()
		if h.finished() {
			r.release(ctx, p, h)
			continue
		}
		if renew {
			r.renew(ctx, p, h)
		}
	}
}

// step is one round: heartbeat, membership, then each partition.
func (r *replicas) step(ctx context.Context) {
	sctx, cancel := context.WithTimeout(ctx, r.ttl/3)
	defer cancel()
	if _, err := r.kv.Put(sctx, memberPrefix+r.id, []byte(time.Now().UTC().Format(time.RFC3339))); err != nil {
		r.logger.Warn("replica heartbeat", "err", err)
	}
	if members, err := r.listMembers(sctx); err != nil {
		r.logger.Warn("list gateway replicas", "err", err)
	} else if !slices.Equal(members, r.live) {
		r.live = members
		r.logger.Info("gateway replicas changed", "replicas", members)
		r.members.Set(float64(len(members)))
	}
	for p := range r.n {
		want := rendezvous.Owns(r.id, partitionKey(p), r.live, 1)
		h := r.held[p]
		switch {
		case h != nil && h.finished():
			// Drained (or stopped): let go. If it is still ours the
			// next step takes it again.
			r.release(sctx, p, h)
		case h != nil:
			if !r.renew(sctx, p, h) {
				continue
			}
			if !want {
				r.logger.Info("partition moves to another replica; handing it over", "partition", p)
				h.startDrain()
			}
		case want:
			r.acquire(sctx, ctx, p)
		}
	}
	r.partitionsHeld.Set(float64(len(r.held)))
}

func partitionKey(p int) string { return "partition-" + strconv.Itoa(p) }

func (r *replicas) listMembers(ctx context.Context) ([]string, error) {
	keys, err := r.kv.Keys(ctx)
	if err != nil && !errors.Is(err, jetstream.ErrNoKeysFound) {
		return nil, err
	}
	var members []string
	for _, k := range keys {
		if id, ok := strings.CutPrefix(k, memberPrefix); ok {
			members = append(members, id)
		}
	}
	if !slices.Contains(members, r.id) {
		members = append(members, r.id) // alive even if the key just expired
	}
	slices.Sort(members)
	return members, nil
}

// acquire takes partition p's lease if it is free (or was this replica's
// id's, left by a previous process) and starts the partition's loops.
func (r *replicas) acquire(ctx, loopCtx context.Context, p int) {
	key := leasePrefix + strconv.Itoa(p)
	rev, err := r.kv.Create(ctx, key, []byte(r.id))
	if errors.Is(err, jetstream.ErrKeyExists) {
		e, gerr := r.kv.Get(ctx, key)
		if gerr != nil || string(e.Value()) != r.id {
			return // another replica still holds it
		}
		// A previous process under this id held it and died: take it
		// over (its unacked snapshots are waited for by the loops).
		rev, err = r.kv.Update(ctx, key, []byte(r.id), e.Revision())
	}
	if err != nil {
		r.logger.Warn("take partition lease", "partition", p, "err", err)
		return
	}
	lctx, cancel := context.WithCancel(loopCtx)
	loops, err := r.newLoops(lctx, p)
	if err != nil {
		cancel()
		r.logger.Warn("set up partition consumers", "partition", p, "err", err)
		// best effort: the lease expires on its own if the delete fails
		_ = r.kv.Delete(ctx, key, jetstream.LastRevision(rev))
		return
	}
	h := &holding{rev: rev, loops: loops, cancel: cancel, done: make(chan struct{})}
	var wg sync.WaitGroup
	for _, s := range loops {
		s.drain = make(chan struct{})
		wg.Add(1)
		go func() {
			defer wg.Done()
			s.run(lctx)
		}()
	}
	go func() {
		wg.Wait()
		close(h.done)
	}()
	r.held[p] = h
	r.started(loops)
	r.logger.Info("partition taken", "partition", p)
}

// renew extends the lease; on a revision mismatch the lease expired and
// may be another replica's now, so the loops stop at once.
func (r *replicas) renew(ctx context.Context, p int, h *holding) bool {
	rev, err := r.kv.Update(ctx, leasePrefix+strconv.Itoa(p), []byte(r.id), h.rev)
	switch {
	case err == nil:
		h.rev = rev
		return true
	case errors.Is(err, jetstream.ErrKeyRevisionMismatch), errors.Is(err, jetstream.ErrKeyExists), errors.Is(err, jetstream.ErrKeyNotFound):
		r.logger.Warn("partition lease lost (not renewed within replicas.ttl); stopping its consumers", "partition", p, "err", err)
		h.cancel()
		<-h.done
		r.stopped(h.loops)
		delete(r.held, p)
		r.leasesLost.Inc()
		return false
	default:
		r.logger.Warn("renew partition lease", "partition", p, "err", err)
		return true
	}
}

// release lets go of a partition whose loops are done: acks are flushed
// first, so the next holder finds nothing of ours unacknowledged.
func (r *replicas) release(ctx context.Context, p int, h *holding) {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second) // a flush needs a deadline
	defer cancel()
	if err := r.flush(ctx); err != nil {
		r.logger.Warn("flush acks before handing a partition over", "partition", p, "err", err)
	}
	if err := r.kv.Delete(ctx, leasePrefix+strconv.Itoa(p), jetstream.LastRevision(h.rev)); err != nil {
		r.logger.Warn("release partition lease", "partition", p, "err", err)
	}
	h.cancel()
	r.stopped(h.loops)
	delete(r.held, p)
	r.logger.Info("partition handed over", "partition", p)
}

// leave, after the sinks were flushed at shutdown, releases what is still
// held (its loops were stopped, their snapshots are acked or will be
// redelivered) and the membership, so the others take over at once.
func (r *replicas) leave() {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	for p, h := range r.held {
		r.release(ctx, p, h)
	}
	if err := r.kv.Delete(ctx, memberPrefix+r.id); err != nil {
		r.logger.Warn("leave gateway replicas", "err", err)
	}
}

// addLoops and removeLoops keep g.loops, the loops told about inventory
// removals, current.
func (g *Gateway) addLoops(loops []*consumer) {
	g.loopsMu.Lock()
	g.loops = append(g.loops, loops...)
	g.loopsMu.Unlock()
}

func (g *Gateway) removeLoops(loops []*consumer) {
	g.loopsMu.Lock()
	g.loops = slices.DeleteFunc(g.loops, func(c *consumer) bool { return slices.Contains(loops, c) })
	g.loopsMu.Unlock()
}
