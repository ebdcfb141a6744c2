package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/bmcstream/bmcstream/benchmarks/internal/figures"
	"github.com/bmcstream/bmcstream/pkg/bus"
	"github.com/bmcstream/bmcstream/pkg/gateway"
)

const (
	// holderID holds every partition's lease until the replicas have
	// found one another. It is not a member, so owns nothing.
	holderID = "gatewayload-hold"
	// leaseKey is the gateway's lease key of a partition (replicas.go).
	leaseKey = "partition."
)

// replicaRun is the run of several replicas on a partitioned stream.
type replicaRun struct {
	n, partitions int
	load          infraReady
	ids           []string
	// cold: before the stream was loaded; warm: every partition's first
	// poll acked; end: every snapshot acked.
	cold, warm, end replicaInstant
	// ownWarm is each replica's counters when its own partitions' first
	// polls were all acked: its steady state starts there.
	ownWarm   []replicaPoint
	ownWarmAt []time.Time
	// owner is the replica holding each partition.
	owner  []int
	spread time.Duration // from the release until every replica held its partitions
	// bmcs is, per replica, the BMCs of the partitions whose leases it
	// held at the end.
	bmcs     []int
	infraCPU float64
}

// replicaInstant is every replica's counters and the receiver's at one
// instant.
type replicaInstant struct {
	at       time.Time
	received receiverStats
	r        []replicaPoint
}

// runReplicas runs o.Replicas replica processes on a fresh stream of
// o.Partitions partitions, loaded as the one-gateway run's, until every
// snapshot is acked.
//
// The stream is created partitioned and empty. The harness holds every
// partition's lease (under an id that is not a member) while the replicas
// start, until each counts all o.Replicas members, then lets go: each takes
// the partitions rendezvous hashing gives it, with no handover. Only once
// every partition is held, by every replica some, is the stream loaded.
// Loading first would not start them together: a replica takes its
// partitions one after another within a renewal round, and once the other
// replica, NATS and the receiver have the CPUs busy a round runs out of
// time (replicas.ttl/3) and the rest waits for the next rounds, seconds
// later. Loading takes about a second, consuming it tens of seconds.
func runReplicas(o options) (*replicaRun, error) {
	ctx, cancel := context.WithTimeout(context.Background(), o.Timeout)
	defer cancel()
	dir, err := os.MkdirTemp("", "gatewayload")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir) // a temporary directory; one left behind costs only disk
	_, invFile, err := writeInventory(ctx, o.BMCs, dir)
	if err != nil {
		return nil, err
	}
	infra, err := startInfra(ctx, o, dir, o.Partitions, true)
	if err != nil {
		return nil, err
	}
	defer infra.stop()
	rr := &replicaRun{n: o.Replicas, partitions: o.Partitions}

	nc, err := nats.Connect(infra.ready.NATS)
	if err != nil {
		return nil, err
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		return nil, err
	}
	kv, release, err := holdLeases(ctx, js, o.Partitions)
	if err != nil {
		return nil, err
	}
	defer func() { _ = release() }() // on an early return

	procs := make([]*replicaProc, o.Replicas)
	defer stopReplicas(procs)
	for i := range procs {
		id := "gw-" + strconv.Itoa(i+1)
		rr.ids = append(rr.ids, id)
		cfgFile := filepath.Join(dir, id+".yml")
		// Automation off: in the one-gateway run its consumer starts at
		// new snapshots on a stream already loaded, so it has nothing to
		// do; here the stream is loaded after the replicas start, and it
		// would normalise and publish every snapshot a second time.
		cfg := fmt.Sprintf("nats:\n  url: %s\n  stream: {partitions: %d}\nreplicas: {id: %s}\nautomation: {enabled: false}\ninventory:\n  files: [%s]\nremote_write:\n  - name: %s\n    url: %s\n",
			infra.ready.NATS, o.Partitions, id, invFile, sinkName, infra.ready.Receiver)
		if err := os.WriteFile(cfgFile, []byte(cfg), 0o600); err != nil {
			return nil, err
		}
		if procs[i], err = startReplica(o, id, cfgFile); err != nil {
			return nil, err
		}
	}
	fmt.Fprintf(os.Stderr, "%d replicas started; holding the partitions until each sees the others\n", o.Replicas)
	if _, err := waitReplicas(ctx, procs, infra.ready.Stats, func(ps []replicaPoint) bool {
		for _, p := range ps {
			if p.Replicas != o.Replicas || p.Held != 0 {
				return false
			}
		}
		return true
	}); err != nil {
		return nil, fmt.Errorf("the replicas did not see one another: %w", err)
	}
	released := time.Now()
	if err := release(); err != nil {
		return nil, err
	}
	inst, err := waitReplicas(ctx, procs, infra.ready.Stats, func(ps []replicaPoint) bool { return spreadOut(ps, o.Partitions) })
	if err != nil {
		return nil, fmt.Errorf("the partitions were not spread over the replicas (held %s): %w", heldList(inst.r), err)
	}
	rr.spread = inst.at.Sub(released)
	if rr.owner, err = rr.leaseHolders(ctx, kv); err != nil {
		return nil, err
	}
	fmt.Fprintf(os.Stderr, "every partition held %.1fs after the release (%s partitions)\n", rr.spread.Seconds(), heldList(inst.r))

	if rr.cold, err = sampleReplicas(ctx, procs, infra.ready.Stats); err != nil {
		return nil, err
	}
	fmt.Fprintf(os.Stderr, "loading %d snapshots (%d BMCs × %d polls)\n", o.BMCs*o.Polls, o.BMCs, o.Polls)
	if err := infra.load(ctx); err != nil {
		return nil, err
	}
	rr.load = infra.ready
	if len(rr.load.PartitionBMCs) != o.Partitions {
		return nil, fmt.Errorf("infrastructure process counted %d partitions, want %d", len(rr.load.PartitionBMCs), o.Partitions)
	}
	if err := rr.follow(ctx, js, procs, o, infra.exited); err != nil {
		return nil, err
	}
	owner, err := rr.leaseHolders(ctx, kv)
	if err != nil {
		return nil, err
	}
	if !slices.Equal(owner, rr.owner) {
		return nil, fmt.Errorf("partitions moved during the run: held by %v, then %v", rr.owner, owner)
	}
	rr.bmcs = make([]int, rr.n)
	for p, i := range rr.owner {
		rr.bmcs[i] += rr.load.PartitionBMCs[p]
	}
	stopReplicas(procs)
	infra.stop()
	rr.infraCPU = infra.cpu
	return rr, nil
}

// waitReplicas samples the replicas every 100 ms until done holds, for a
// minute at most.
func waitReplicas(ctx context.Context, procs []*replicaProc, statsURL string, done func([]replicaPoint) bool) (replicaInstant, error) {
	var inst replicaInstant
	deadline := time.Now().Add(time.Minute)
	for {
		select {
		case <-ctx.Done():
			return inst, ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
		var err error
		if inst, err = sampleReplicas(ctx, procs, statsURL); err != nil {
			return inst, err
		}
		if done(inst.r) {
			return inst, nil
		}
		if time.Now().After(deadline) {
			return inst, errors.New("not within a minute")
		}
	}
}

// follow watches every partition's consumer until each has acked its
// snapshots, and records the warm and end instants.
func (rr *replicaRun) follow(ctx context.Context, js jetstream.JetStream, procs []*replicaProc, o options, infraExited <-chan struct{}) error {
	cons := make([]jetstream.Consumer, rr.partitions)
	rr.ownWarm, rr.ownWarmAt = make([]replicaPoint, rr.n), make([]time.Time, rr.n)
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	for rr.end.at.IsZero() {
		select {
		case <-ctx.Done():
			return fmt.Errorf("replicas did not ack every snapshot: %w", ctx.Err())
		case <-infraExited:
			return errors.New("the infrastructure process exited")
		case <-tick.C:
		}
		warm, end := true, true
		ownWarm := make([]bool, rr.n)
		for i := range ownWarm {
			ownWarm[i] = true
		}
		for p := range cons {
			if cons[p] == nil {
				c, err := consumer(ctx, js, consumerName+"-p"+strconv.Itoa(p))
				if err != nil {
					warm, end, ownWarm[rr.owner[p]] = false, false, false
					continue // not created yet
				}
				cons[p] = c
			}
			ictx, cancel := context.WithTimeout(ctx, 5*time.Second)
			info, err := cons[p].Info(ictx)
			cancel()
			if err != nil {
				warm, end, ownWarm[rr.owner[p]] = false, false, false
				continue
			}
			// A partition's snapshots are delivered in stream order, its
			// first poll first; nothing is redelivered in this run.
			n := uint64(rr.load.PartitionBMCs[p])
			warm = warm && info.AckFloor.Consumer >= n
			ownWarm[rr.owner[p]] = ownWarm[rr.owner[p]] && info.AckFloor.Consumer >= n
			end = end && info.AckFloor.Consumer >= n*uint64(o.Polls) && info.NumPending == 0 && info.NumAckPending == 0
		}
		var err error
		for i, w := range ownWarm {
			if w && rr.ownWarmAt[i].IsZero() {
				inst, err := sampleReplicas(ctx, procs, rr.load.Stats)
				if err != nil {
					return err
				}
				rr.ownWarm[i], rr.ownWarmAt[i] = inst.r[i], inst.at
			}
		}
		if warm && rr.warm.at.IsZero() {
			if rr.warm, err = sampleReplicas(ctx, procs, rr.load.Stats); err != nil {
				return err
			}
		}
		if end {
			if rr.end, err = quietInstant(ctx, procs, rr.load.Stats); err != nil {
				return err
			}
		}
	}
	if !spreadOut(rr.end.r, rr.partitions) {
		return fmt.Errorf("the partitions did not stay spread over the replicas: held %s", heldList(rr.end.r))
	}
	return nil
}

// spreadOut: every partition held, and by each replica some.
func spreadOut(ps []replicaPoint, partitions int) bool {
	sum := 0
	for _, p := range ps {
		if p.Held == 0 {
			return false
		}
		sum += p.Held
	}
	return sum == partitions
}

func heldList(ps []replicaPoint) string {
	var s []string
	for _, p := range ps {
		s = append(s, strconv.Itoa(p.Held))
	}
	return strings.Join(s, " + ")
}

func consumer(ctx context.Context, js jetstream.JetStream, name string) (jetstream.Consumer, error) {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	return js.Consumer(ctx, bus.DefaultStreamConfig.Name, name)
}

// holdLeases creates the replicas' bucket as the gateway does and writes
// every partition's lease under holderID, renewing them until release,
// which stops renewing and deletes them.
func holdLeases(ctx context.Context, js jetstream.JetStream, partitions int) (kv jetstream.KeyValue, release func() error, err error) {
	kv, err = js.CreateOrUpdateKeyValue(ctx, jetstream.KeyValueConfig{
		Bucket:      gateway.DefaultReplicasConfig.Bucket,
		Description: "bmcstream gateway replicas and partition leases",
		TTL:         time.Duration(gateway.DefaultReplicasConfig.TTL),
		History:     1,
	})
	if err != nil {
		return nil, nil, err
	}
	put := func() error {
		for p := range partitions {
			pctx, cancel := context.WithTimeout(ctx, 5*time.Second)
			_, err := kv.Put(pctx, leaseKey+strconv.Itoa(p), []byte(holderID))
			cancel()
			if err != nil {
				return fmt.Errorf("hold partition %d: %w", p, err)
			}
		}
		return nil
	}
	if err := put(); err != nil {
		return nil, nil, err
	}
	stop, done := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(done)
		t := time.NewTicker(time.Duration(gateway.DefaultReplicasConfig.TTL) / 3)
		defer t.Stop()
		for {
			select {
			case <-stop:
				return
			case <-ctx.Done():
				return
			case <-t.C:
				if err := put(); err != nil {
					fmt.Fprintln(os.Stderr, "gatewayload:", err)
				}
			}
		}
	}()
	released := false
	return kv, func() error {
		if released {
			return nil
		}
		released = true
		close(stop)
		<-done
		for p := range partitions {
			dctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			err := kv.Delete(dctx, leaseKey+strconv.Itoa(p))
			cancel()
			if err != nil {
				return fmt.Errorf("release partition %d: %w", p, err)
			}
		}
		return nil
	}, nil
}

// leaseHolders reads which replica holds each partition's lease.
func (rr *replicaRun) leaseHolders(ctx context.Context, kv jetstream.KeyValue) ([]int, error) {
	owner := make([]int, rr.partitions)
	for p := range rr.partitions {
		gctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		e, err := kv.Get(gctx, leaseKey+strconv.Itoa(p))
		cancel()
		if err != nil {
			return nil, fmt.Errorf("partition %d's lease: %w", p, err)
		}
		owner[p] = slices.Index(rr.ids, string(e.Value()))
		if owner[p] < 0 {
			return nil, fmt.Errorf("partition %d's lease is held by %q, not a replica", p, e.Value())
		}
	}
	return owner, nil
}

// replicaProc is one replica process.
type replicaProc struct {
	id      string
	cmd     *exec.Cmd
	stdin   io.WriteCloser
	lines   chan []byte // its answers; closed when its stdout ends
	stopped bool
}

func startReplica(o options, id, configFile string) (*replicaProc, error) {
	c, err := o.command("replica", "--config", configFile, "--timeout", (o.Timeout + time.Minute).String())
	if err != nil {
		return nil, err
	}
	stdin, err := c.StdinPipe()
	if err != nil {
		return nil, err
	}
	stdout, err := c.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := c.Start(); err != nil {
		return nil, err
	}
	p := &replicaProc{id: id, cmd: c, stdin: stdin, lines: make(chan []byte, 4)}
	go func() {
		defer close(p.lines)
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			p.lines <- append([]byte(nil), sc.Bytes()...)
		}
	}()
	return p, nil
}

// sampleReplicas asks every replica for its counters, then reads the
// receiver's.
func sampleReplicas(ctx context.Context, procs []*replicaProc, statsURL string) (replicaInstant, error) {
	inst := replicaInstant{at: time.Now(), r: make([]replicaPoint, len(procs))}
	for _, p := range procs {
		if _, err := io.WriteString(p.stdin, "sample\n"); err != nil {
			return inst, fmt.Errorf("replica %s: %w", p.id, err)
		}
	}
	for i, p := range procs {
		select {
		case l, ok := <-p.lines:
			if !ok {
				return inst, fmt.Errorf("replica %s exited", p.id)
			}
			if err := json.Unmarshal(l, &inst.r[i]); err != nil {
				return inst, fmt.Errorf("replica %s: %q: %w", p.id, l, err)
			}
		case <-time.After(10 * time.Second):
			return inst, fmt.Errorf("replica %s did not answer within 10 s", p.id)
		case <-ctx.Done():
			return inst, ctx.Err()
		}
	}
	var err error
	inst.received, err = receiverStatsAt(ctx, statsURL)
	return inst, err
}

// quietInstant samples the replicas and the receiver at an instant when
// nothing is on its way to the receiver: every replica's queue is empty
// when sampled, and no replica appended anything (a roll-up) before it was
// sampled again after the receiver was read. Then the receiver holds
// exactly what the replicas wrote. Otherwise it returns a zero instant,
// and the caller tries again at its next tick: roll-ups leave 10 s between
// them, and the queue sends within its 1 s batch deadline.
func quietInstant(ctx context.Context, procs []*replicaProc, statsURL string) (replicaInstant, error) {
	first, err := sampleReplicas(ctx, procs, statsURL)
	if err != nil {
		return first, err
	}
	again, err := sampleReplicas(ctx, procs, statsURL)
	if err != nil {
		return first, err
	}
	for i := range first.r {
		if first.r[i].Queued != 0 || again.r[i].Samples != first.r[i].Samples {
			return replicaInstant{}, nil
		}
	}
	return first, nil
}

// stopReplicas closes every replica's stdin, which stops its gateway, and
// waits for them all (each killed 45 s later if it has not exited).
func stopReplicas(procs []*replicaProc) {
	var wg sync.WaitGroup
	for _, p := range procs {
		if p == nil || p.stopped {
			continue
		}
		p.stopped = true
		_ = p.stdin.Close() // closing stdin asks the replica to stop; the wait below makes sure it does
		wg.Add(1)
		go func() {
			defer wg.Done()
			waitOrKill(p.cmd, 45*time.Second)
		}()
	}
	wg.Wait()
}

// summary computes the replica run's figures; one is the one-gateway run.
// replicasSummary and replicaFigures are the replica run's --json figures.
type (
	replicasSummary = figures.GatewayReplicas
	replicaFigures  = figures.Replica
)

func (rr *replicaRun) summary(one *result) replicasSummary {
	s := replicasSummary{Replicas: rr.n, Partitions: rr.partitions, SpreadSecs: rr.spread.Seconds(), InfraCPU: rr.infraCPU,
		Samples: rr.end.received.Samples - rr.cold.received.Samples, Errors: rr.end.received.Errors}
	var steadySamples, allSamples int64
	var steadyCPU, allCPU float64
	for i, id := range rr.ids {
		c, w, e := rr.cold.r[i], rr.ownWarm[i], rr.end.r[i]
		f := replicaFigures{ID: id, Partitions: e.Held, BMCs: rr.bmcs[i], Samples: e.Samples - c.Samples,
			SteadyCPU: e.CPU - w.CPU, AllCPU: e.CPU - c.CPU, PeakRSSBytes: float64(e.RSSKB) * 1024}
		ss := e.Samples - w.Samples
		f.Steady, f.All = div(float64(ss), f.SteadyCPU), div(float64(f.Samples), f.AllCPU)
		f.SteadyCores = div(f.SteadyCPU, rr.end.at.Sub(rr.ownWarmAt[i]).Seconds())
		f.SteadyAllocs = div(float64(e.Mallocs-w.Mallocs), float64(ss))
		s.PerReplica = append(s.PerReplica, f)
		steadySamples += ss
		allSamples += f.Samples
		steadyCPU += f.SteadyCPU
		allCPU += f.AllCPU
		s.LeasesLost += e.LeasesLost
		s.DedupRejected += e.DedupRejected
		s.OutOfOrder += e.OutOfOrder
	}
	for i := range s.PerReplica {
		s.PerReplica[i].Share = div(float64(s.PerReplica[i].Samples), float64(allSamples))
	}
	s.WrittenSum = allSamples
	steadyWall := rr.end.at.Sub(rr.warm.at).Seconds()
	s.Steady, s.All = div(float64(steadySamples), steadyCPU), div(float64(allSamples), allCPU)
	s.SteadyWall = div(float64(rr.end.received.Samples-rr.warm.received.Samples), steadyWall)
	s.SteadyCores = div(rr.end.sumCPU()-rr.warm.sumCPU(), steadyWall)
	oneSteady, oneAll := between(one.warm, one.end), between(one.cold, one.end)
	s.SteadyOfOne = div(s.Steady, div(float64(oneSteady.samples), oneSteady.cpu))
	s.AllOfOne = div(s.All, div(float64(oneAll.samples), oneAll.cpu))
	s.OneWall = div(float64(oneSteady.samples), oneSteady.wall)
	return s
}

// print writes the replica run's table after the one-gateway run's.
func (rr *replicaRun) print(out *bytes.Buffer, one *result) {
	s := rr.summary(one)
	oneSteady, oneAll := between(one.warm, one.end), between(one.cold, one.end)
	fmt.Fprintf(out, "%d gateway replicas, each its own process, on a fresh stream of the same load partitioned in %d (held %s, spread %.1fs after the harness let their leases go, before the stream was loaded)\n",
		rr.n, rr.partitions, heldList(rr.end.r), s.SpreadSecs)
	fmt.Fprintln(out, "| replica | partitions | BMCs | samples written | share | steady CPU s | steady cores | steady samples/s per core | all polls CPU s | all polls samples/s per core | steady allocs/sample | peak RSS MB |")
	fmt.Fprintln(out, "|---|---|---|---|---|---|---|---|---|---|---|---|")
	var rss float64
	for _, f := range s.PerReplica {
		fmt.Fprintf(out, "| %s | %d | %d | %d | %.1f%% | %.2f | %.2f | %.0f | %.2f | %.0f | %.2f | %.0f |\n", f.ID, f.Partitions, f.BMCs, f.Samples, 100*f.Share,
			f.SteadyCPU, f.SteadyCores, f.Steady, f.AllCPU, f.All, f.SteadyAllocs, f.PeakRSSBytes/(1<<20))
		rss += f.PeakRSSBytes
	}
	var steadyCPU, allCPU float64
	for _, f := range s.PerReplica {
		steadyCPU += f.SteadyCPU
		allCPU += f.AllCPU
	}
	fmt.Fprintf(out, "| **%d replicas together** | %d | %d | %d | 100%% | %.2f | %.2f | **%.0f** | %.2f | %.0f | | %.0f |\n",
		rr.n, rr.partitions, sum(rr.bmcs), s.WrittenSum, steadyCPU, s.SteadyCores, s.Steady, allCPU, s.All, rss/(1<<20))
	fmt.Fprintf(out, "| 1 replica (the run above) | | %d | %d | | %.2f | %.2f | **%.0f** | %.2f | %.0f | %.2f | %.0f |\n",
		one.opts.BMCs, one.end.received.Samples, oneSteady.cpu, oneSteady.cpu/oneSteady.wall, float64(oneSteady.samples)/oneSteady.cpu,
		oneAll.cpu, float64(oneAll.samples)/oneAll.cpu, oneSteady.allocs, float64(one.rssKB)/1024)
	fmt.Fprintf(out, "scale-out: samples/s per core of %d replicas together ÷ 1 replica's: steady %.2f, all polls %.2f. A replica's capacity is its cores × its samples/s per core, so %d replicas with a core each have %.2f × the capacity of one with one core.\n",
		rr.n, s.SteadyOfOne, s.AllOfOne, rr.n, float64(rr.n)*s.SteadyOfOne)
	fmt.Fprintf(out, "wall clock, steady: 1 replica %.0f samples/s (%.2f cores busy), %d replicas %.0f samples/s (%.2f cores busy in all). This machine's %d CPUs run the replicas, NATS and the receiver together (NATS and the receiver used %.2f s of CPU in the replica run, the replicas %.2f s), so wall throughput here is set by the whole pipeline on shared CPUs, not by the replicas' capacity: it cannot grow %d-fold.\n",
		s.OneWall, oneSteady.cpu/oneSteady.wall, rr.n, s.SteadyWall, s.SteadyCores, runtime.NumCPU(), s.InfraCPU, allCPU, rr.n)
	check := "the same"
	if s.WrittenSum != s.Samples {
		check = fmt.Sprintf("%d", s.WrittenSum)
	}
	fmt.Fprintf(out, "receiver: %d samples (%d errors); the replicas' own bmcstream_gateway_samples_total add up to %s; partition leases lost: %d; snapshots refused by HA deduplication: %d; samples dropped as out of order: %d\n",
		s.Samples, s.Errors, check, s.LeasesLost, s.DedupRejected, s.OutOfOrder)
}

func sum(xs []int) int {
	n := 0
	for _, x := range xs {
		n += x
	}
	return n
}

func (in replicaInstant) sumCPU() float64 {
	var c float64
	for _, p := range in.r {
		c += p.CPU
	}
	return c
}
