package gateway

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sort"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/prometheus/prompb"

	"github.com/bmcstream/bmcstream/pkg/bus"
	"github.com/bmcstream/bmcstream/pkg/bus/embedded"
	"github.com/bmcstream/bmcstream/pkg/inventory"
	"github.com/bmcstream/bmcstream/pkg/pipeline"
	"github.com/bmcstream/bmcstream/pkg/sinks"
	"github.com/bmcstream/bmcstream/pkg/sinks/automation"
	"github.com/bmcstream/bmcstream/pkg/sinks/remotewrite"
)

// Options are the process-level settings of a gateway.
type Options struct {
	Logger     *slog.Logger
	Registerer prometheus.Registerer
	// Version goes into the remote-write User-Agent.
	Version string
	// ShutdownTimeout bounds the flush of queued samples at shutdown.
	// Snapshots not delivered by then stay unacked and are redelivered to
	// the next gateway: nothing is lost, some samples may be sent twice.
	ShutdownTimeout time.Duration
}

// Gateway is one running gateway: NATS connection (and, when configured,
// the embedded server), one consumer and one remote-write queue per sink.
type Gateway struct {
	cfg     *Config
	opts    Options
	logger  *slog.Logger
	metrics *metrics

	inv         atomic.Pointer[inventory.Inventory]
	enrich      atomic.Pointer[pipeline.Enricher] // base labels of inv, indexed
	norm        *pipeline.Normaliser              // shared by every consumer: safe for concurrent use
	invMu       sync.Mutex                        // guards fileEntries and kvEntries
	fileEntries []inventory.BMC
	kvEntries   map[string]inventory.BMC

	embedded *server.Server
	nc       *nats.Conn
	queues   []*remotewrite.Queue // one per remote_write sink, in order
	loopsMu  sync.Mutex           // guards loops
	loops    []*consumer          // the consumer loops running
	replicas *replicas            // nil unless the stream is partitioned
	ready    atomic.Bool
}

// New validates the configuration and loads the inventory. It touches no
// network: Run connects.
func New(cfg *Config, opts Options) (*Gateway, error) {
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.Registerer == nil {
		opts.Registerer = prometheus.NewRegistry()
	}
	if opts.ShutdownTimeout <= 0 {
		opts.ShutdownTimeout = 30 * time.Second
	}
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	g := &Gateway{cfg: cfg, opts: opts, logger: opts.Logger}
	m, err := newMetrics(opts.Registerer)
	if err != nil {
		return nil, err
	}
	g.metrics = m
	files, err := loadInventory(cfg.Inventory)
	if err != nil {
		return nil, err
	}
	inv, err := merge(files, nil)
	if err != nil {
		return nil, err
	}
	g.fileEntries = files
	g.setInventory(inv)
	rules, err := pipeline.ReadRuleFiles(cfg.Normalise.RuleFiles...)
	if err != nil {
		return nil, err
	}
	if g.norm, err = pipeline.NewNormaliser(pipeline.NormaliserOptions{RuleFiles: rules}); err != nil {
		return nil, err
	}
	return g, nil
}

func loadInventory(c InventoryConfig) ([]inventory.BMC, error) {
	var all []inventory.BMC
	for _, f := range c.Files {
		inv, err := inventory.Load(f)
		if err != nil {
			return nil, err
		}
		all = append(all, inv.All()...)
	}
	return all, nil
}

// merge builds the inventory in force: the files' entries, overridden by
// the KV bucket's entries of the same id.
func merge(files []inventory.BMC, kv map[string]inventory.BMC) (*inventory.Inventory, error) {
	all := make([]inventory.BMC, 0, len(files)+len(kv))
	for _, b := range files {
		if _, over := kv[b.ID]; !over {
			all = append(all, b)
		}
	}
	ids := make([]string, 0, len(kv))
	for id := range kv {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	for _, id := range ids {
		all = append(all, kv[id])
	}
	out, err := inventory.Marshal(all)
	if err != nil {
		return nil, fmt.Errorf("merge inventory: %w", err)
	}
	inv, err := inventory.Parse(out)
	if err != nil {
		return nil, fmt.Errorf("merge inventory: %w", err)
	}
	return inv, nil
}

func (g *Gateway) setInventory(inv *inventory.Inventory) {
	g.enrich.Store(pipeline.NewEnricher(inv))
	old := g.inv.Swap(inv)
	g.metrics.inventoryBMCs.Set(float64(inv.Len()))
	if old == nil {
		return
	}
	var removed []string
	for _, b := range old.All() {
		if _, ok := inv.Get(b.ID); !ok {
			removed = append(removed, b.ID)
		}
	}
	if len(removed) > 0 {
		g.loopsMu.Lock()
		for _, c := range g.loops {
			c.forgetBMCs(removed)
		}
		g.loopsMu.Unlock()
	}
}

// ReloadInventory re-reads the inventory files named in the configuration
// (the KV bucket's entries stay in force). On error the previous inventory
// stays in force. BMCs that left end their series with staleness markers.
func (g *Gateway) ReloadInventory() error {
	files, err := loadInventory(g.cfg.Inventory)
	if err == nil {
		g.invMu.Lock()
		var inv *inventory.Inventory
		if inv, err = merge(files, g.kvEntries); err == nil {
			g.fileEntries = files
			g.setInventory(inv)
		}
		g.invMu.Unlock()
	}
	if err != nil {
		g.metrics.inventoryReloads.WithLabelValues("failure").Inc()
		return err
	}
	g.metrics.inventoryReloads.WithLabelValues("success").Inc()
	return nil
}

// watchKV keeps the inventory's KV entries current: each key of the
// bucket is a BMC id escaped as a subject token (bus.EscapeToken), each
// value one inventory entry in YAML. Changes apply without a restart.
func (g *Gateway) watchKV(ctx context.Context, kv jetstream.KeyValue) {
	w, err := kv.WatchAll(ctx)
	if err != nil {
		g.logger.Error("watch inventory bucket", "bucket", g.cfg.Inventory.KVBucket, "err", err)
		return
	}
	defer func() { _ = w.Stop() }() // fails only on a subscription or connection closed already: nothing left to end
	for {
		select {
		case <-ctx.Done():
			return
		case e, ok := <-w.Updates():
			if !ok {
				return
			}
			if e == nil {
				continue // the initial values are in
			}
			g.applyKV(e)
		}
	}
}

func (g *Gateway) applyKV(e jetstream.KeyValueEntry) {
	id, err := bus.UnescapeToken(e.Key())
	if err != nil {
		g.metrics.inventoryReloads.WithLabelValues("failure").Inc()
		g.logger.Warn("inventory bucket key is not an escaped BMC id", "key", e.Key(), "err", err)
		return
	}
	g.invMu.Lock()
	defer g.invMu.Unlock()
	next := make(map[string]inventory.BMC, len(g.kvEntries)+1)
	for k, v := range g.kvEntries {
		next[k] = v
	}
	if e.Operation() == jetstream.KeyValuePut {
		b, err := inventory.ParseEntry(e.Value())
		if err == nil && b.ID != id {
			err = fmt.Errorf("entry id %q under key for %q", b.ID, id)
		}
		if err != nil {
			g.metrics.inventoryReloads.WithLabelValues("failure").Inc()
			g.logger.Warn("bad inventory entry in the bucket; ignored", "bmc", id, "err", err)
			return
		}
		next[id] = b
	} else {
		delete(next, id)
	}
	inv, err := merge(g.fileEntries, next)
	if err != nil {
		g.metrics.inventoryReloads.WithLabelValues("failure").Inc()
		g.logger.Warn("inventory bucket change rejected", "bmc", id, "err", err)
		return
	}
	g.kvEntries = next
	g.setInventory(inv)
	g.metrics.inventoryReloads.WithLabelValues("success").Inc()
}

// Inventory returns the inventory in force (files merged with the KV
// bucket). Callers must not modify it.
func (g *Gateway) Inventory() *inventory.Inventory { return g.inv.Load() }

// Ready reports whether every sink's consumer is set up and running.
func (g *Gateway) Ready() bool { return g.ready.Load() }

// EmbeddedURL is the client URL of the embedded NATS server, or "".
func (g *Gateway) EmbeddedURL() string {
	if g.embedded == nil {
		return ""
	}
	return g.embedded.ClientURL()
}

// Run connects, consumes until ctx is cancelled, then shuts down: it stops
// fetching, flushes every sink within Options.ShutdownTimeout, acks what was
// delivered, and closes NATS (and the embedded server last).
//
// With a partitioned stream (nats.stream.partitions) the consumer loops
// follow the partitions this replica holds (replicas.go); otherwise there is
// one loop per sink over the whole stream.
func (g *Gateway) Run(ctx context.Context) error {
	defer g.closeNATS()
	if err := g.connect(ctx); err != nil {
		return err
	}
	for i := range g.cfg.RemoteWrite {
		q, err := g.newQueue(g.cfg.RemoteWrite[i])
		if err != nil {
			return err
		}
		g.queues = append(g.queues, q)
	}
	partitioned := g.cfg.NATS.Mode == bus.ModeJetStream && g.cfg.NATS.Stream.Partitions > 0
	if !partitioned {
		loops, err := g.newLoops(ctx, -1)
		if err != nil {
			return err
		}
		for _, c := range loops {
			if c.cons != nil {
				c.drain = make(chan struct{})
			}
		}
		g.loopsMu.Lock()
		g.loops = loops
		g.loopsMu.Unlock()
	}
	fetchCtx, stopFetching := context.WithCancel(context.Background())
	defer stopFetching()
	if b := g.cfg.Inventory.KVBucket; b != "" {
		js, err := jetstream.New(g.nc)
		if err != nil {
			return fmt.Errorf("jetstream: %w", err)
		}
		kv, err := js.CreateOrUpdateKeyValue(ctx, jetstream.KeyValueConfig{Bucket: b, Description: "bmcstream inventory entries", History: 1})
		if err != nil {
			return fmt.Errorf("inventory bucket %s: %w", b, err)
		}
		go g.watchKV(fetchCtx, kv)
	}
	if partitioned {
		r, err := g.joinReplicas(ctx)
		if err != nil {
			return err
		}
		g.replicas = r
	}
	for _, q := range g.queues {
		q.Start()
	}
	var wg, drainable sync.WaitGroup
	if g.replicas != nil {
		wg.Add(1)
		go func() {
			defer wg.Done()
			g.replicas.run(ctx, fetchCtx)
		}()
	} else {
		for _, c := range g.loops {
			wg.Add(1)
			if c.drain != nil {
				drainable.Add(1)
			}
			go func() {
				defer wg.Done()
				if c.drain != nil {
					defer drainable.Done()
				}
				c.run(fetchCtx)
			}()
		}
	}
	g.ready.Store(true)
	g.logger.Info("gateway running", "sinks", len(g.queues), "automation", g.cfg.Automation.Enabled, "mode", string(g.cfg.NATS.Mode),
		"partitions", g.cfg.NATS.Stream.Partitions, "inventory_bmcs", g.inv.Load().Len())

	<-ctx.Done()
	g.ready.Store(false)
	g.logger.Info("gateway shutting down", "timeout", g.opts.ShutdownTimeout)
	deadline := time.Now().Add(g.opts.ShutdownTimeout)
	if g.replicas == nil {
		g.drainSinks(&drainable)
		stopFetching()
	}
	// A replica hands its partitions over first (replicas.run returns once
	// they are drained, or at its deadline), then stops fetching.
	wg.Wait()
	stopFetching()
	g.stopSinks(deadline)
	if g.replicas != nil {
		g.replicas.leave()
	}
	return nil
}

// newLoops makes the consumer loops of one partition (-1: the whole
// stream): one per remote-write sink, sharing the sink's queue, and the
// automation stream's when enabled.
func (g *Gateway) newLoops(ctx context.Context, part int) ([]*consumer, error) {
	var loops []*consumer
	for i := range g.cfg.RemoteWrite {
		c, err := g.newRemoteWriteLoop(ctx, g.cfg.RemoteWrite[i], g.queues[i], part)
		if err != nil {
			return nil, err
		}
		loops = append(loops, c)
	}
	if g.cfg.Automation.Enabled {
		c, err := g.newAutomationLoop(ctx, part)
		if err != nil {
			return nil, err
		}
		loops = append(loops, c)
	}
	return loops, nil
}

// partitionLabel labels the roll-ups of a partition's loop: each sees only
// the BMCs of its partition.
const partitionLabel = "partition"

// drainSinks, at shutdown: each JetStream consumer loop stops pulling,
// hands what it already took (its prefetched messages and the snapshots
// parked behind a BMC's previous one) to the queue, and returns once all
// of it is written and acked, within half the shutdown timeout. Merely
// stopping would leave those messages unacked: the next gateway would
// then wait the consumer's ack wait for their redelivery before writing
// anything newer.
func (g *Gateway) drainSinks(loops *sync.WaitGroup) {
	for _, c := range g.loops {
		if c.drain != nil {
			close(c.drain)
		}
	}
	done := make(chan struct{})
	go func() {
		loops.Wait()
		close(done)
	}()
	t := time.NewTimer(g.opts.ShutdownTimeout / 2)
	defer t.Stop()
	select {
	case <-done:
	case <-t.C:
		g.logger.Warn("consumers did not finish what they took within half the shutdown timeout; the rest will be redelivered after the ack wait")
	}
}

// stopSinks flushes every queue until deadline.
func (g *Gateway) stopSinks(deadline time.Time) {
	flushCtx, cancel := context.WithDeadline(context.Background(), deadline)
	defer cancel()
	var wg sync.WaitGroup
	for i, q := range g.queues {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := q.Stop(flushCtx); err != nil {
				g.logger.Warn("sink did not flush before the shutdown deadline; its undelivered snapshots will be redelivered", "sink", g.cfg.RemoteWrite[i].Name, "err", err)
			}
		}()
	}
	wg.Wait()
	if g.nc != nil && g.cfg.Automation.Enabled {
		if err := g.nc.FlushWithContext(flushCtx); err != nil {
			g.logger.Warn("automation stream did not flush before the shutdown deadline", "err", err)
		}
	}
}

func (g *Gateway) connect(ctx context.Context) error {
	nc := g.cfg.NATS
	url := nc.URL
	if nc.Embedded.Enabled {
		srv, err := embedded.Start(nc.Embedded, nc.Mode == bus.ModeJetStream)
		if err != nil {
			return err
		}
		g.embedded = srv
		url = srv.ClientURL()
		g.logger.Info("embedded nats server started", "url", url, "store_dir", nc.Embedded.StoreDir)
	}
	opts, err := nc.Options("bmcstream-gateway", g.logger)
	if err != nil {
		return err
	}
	conn, err := nats.Connect(url, opts...)
	if err != nil {
		return fmt.Errorf("connect to nats %s: %w", url, err)
	}
	g.nc = conn
	if nc.Mode != bus.ModeJetStream {
		return nil
	}
	js, err := jetstream.New(conn)
	if err != nil {
		return fmt.Errorf("jetstream: %w", err)
	}
	// The server may still be starting (or reconnecting): retry the stream
	// setup until ctx ends instead of failing the process.
	for {
		setupCtx, cancel := context.WithTimeout(ctx, 10*time.Second)
		_, err = bus.EnsureStream(setupCtx, js, nc.Stream)
		cancel()
		if err == nil {
			return nil
		}
		g.logger.Warn("stream setup failed, retrying", "stream", nc.Stream.Name, "err", err)
		select {
		case <-ctx.Done():
			return errors.Join(ctx.Err(), err)
		case <-time.After(2 * time.Second):
		}
	}
}

func (g *Gateway) closeNATS() {
	if g.nc != nil {
		// Flush pending acks before closing.
		if err := g.nc.FlushTimeout(5 * time.Second); err != nil && !errors.Is(err, nats.ErrConnectionClosed) {
			g.logger.Warn("flush nats before close", "err", err)
		}
		g.nc.Close()
	}
	if g.embedded != nil {
		g.embedded.Shutdown()
		g.embedded.WaitForShutdown()
	}
}

// automationName names the automation stream's consumer (and its metrics).
const automationName = "automation"

// loopOptions are the options every consumer loop of a sink shares.
func (g *Gateway) loopOptions(name string, part int, logger *slog.Logger) consumerOptions {
	cc := g.cfg.Consumer
	if part >= 0 {
		logger = logger.With("partition", part)
	}
	return consumerOptions{
		name:             name,
		part:             part,
		enrich:           g.enrich.Load,
		limits:           limitsFor(g.cfg),
		inventory:        g.cfg.Inventory,
		ackWait:          time.Duration(cc.AckWait),
		fetchBatch:       cc.FetchBatch,
		maxAckPending:    cc.MaxAckPending,
		watchdogInterval: time.Duration(cc.WatchdogInterval),
		logger:           logger,
		metrics:          g.metrics.forSink(name),
		restarts:         g.metrics.consumerRestarts,
	}
}

// newAutomationLoop makes the automation stream's consumer loop for one
// partition (-1: the whole stream): no relabelling, no roll-ups, and it
// starts at the stream's end.
func (g *Gateway) newAutomationLoop(ctx context.Context, part int) (*consumer, error) {
	o := g.loopOptions(automationName, part, g.logger.With("component", "automation"))
	o.proc = pipeline.NewProcessor(pipeline.ProcessorOptions{
		Normaliser:      g.norm,
		FailoverTimeout: time.Duration(g.cfg.HATracker.FailoverTimeout),
	})
	o.sink = automation.New(automation.Options{
		Conn:       g.nc,
		Normaliser: g.norm,
		Enricher:   g.enrich.Load,
		Events:     g.metrics.events,
		Logger:     o.logger,
		LogLimiter: o.metrics.logLimiter,
	})
	o.snapshotsOnly = true
	// The automation stream is about now: a new deployment does not
	// replay a day of history into alerts.
	if err := g.attach(ctx, &o, true); err != nil {
		return nil, err
	}
	return newConsumer(o), nil
}

// attach gives a consumer loop its input: a durable JetStream consumer
// named <prefix>-<name> (<prefix>-<name>-p<partition> for a partition), or
// a core-NATS queue subscription.
func (g *Gateway) attach(ctx context.Context, o *consumerOptions, deliverNew bool) error {
	cc := g.cfg.Consumer
	if g.cfg.NATS.Mode == bus.ModeCore {
		sub, err := subscribeCore(g.nc, cc.NamePrefix+"-"+o.name)
		o.coreSub = sub
		return err
	}
	js, err := jetstream.New(g.nc)
	if err != nil {
		return fmt.Errorf("jetstream: %w", err)
	}
	stream, err := js.Stream(ctx, g.cfg.NATS.Stream.Name)
	if err != nil {
		return fmt.Errorf("open stream %s: %w", g.cfg.NATS.Stream.Name, err)
	}
	durable, filter := cc.NamePrefix+"-"+o.name, ""
	if o.part >= 0 {
		durable += "-p" + strconv.Itoa(o.part)
		filter = bus.PartitionFilter(o.part)
	}
	o.cons, err = bus.EnsureConsumer(ctx, stream, bus.ConsumerConfig{
		Durable:       durable,
		AckWait:       time.Duration(cc.AckWait),
		MaxAckPending: cc.MaxAckPending,
		DeliverNew:    cc.DeliverNew || deliverNew,
		Filter:        filter,
	})
	return err
}

// newQueue makes a remote-write sink's queue; the sink's consumer loops
// (one, or one per partition held) share it.
func (g *Gateway) newQueue(rc remotewrite.Config) (*remotewrite.Queue, error) {
	client, err := remotewrite.NewClient(rc, g.opts.Version)
	if err != nil {
		return nil, fmt.Errorf("remote_write %s: %w", rc.Name, err)
	}
	if rc.HTTPClientConfig.TLSConfig.InsecureSkipVerify {
		g.logger.Warn("TLS certificate verification is disabled for a remote-write sink", "sink", rc.Name)
	}
	q, err := remotewrite.NewQueue(rc, client, g.opts.Registerer, g.logger.With("component", "remote_write", "sink", rc.Name))
	if err != nil {
		return nil, fmt.Errorf("remote_write %s: %w", rc.Name, err)
	}
	return q, nil
}

// newRemoteWriteLoop makes the consumer loop of a remote-write sink for
// one partition (-1: the whole stream).
func (g *Gateway) newRemoteWriteLoop(ctx context.Context, rc remotewrite.Config, q *remotewrite.Queue, part int) (*consumer, error) {
	o := g.loopOptions(rc.Name, part, g.logger.With("component", "consumer", "sink", rc.Name))
	po := pipeline.ProcessorOptions{
		Normaliser:      g.norm,
		FailoverTimeout: time.Duration(g.cfg.HATracker.FailoverTimeout),
	}
	var err error
	if len(rc.WriteRelabelConfigs) > 0 {
		if po.Relabel, err = pipeline.NewRelabeler(rc.WriteRelabelConfigs); err != nil {
			return nil, fmt.Errorf("remote_write %s: write_relabel_configs: %w", rc.Name, err)
		}
	}
	if g.cfg.Rollup.Enabled {
		opts := pipeline.RollupOptions{GroupBy: g.cfg.Rollup.GroupBy}
		if part >= 0 {
			opts.Extra = partitionLabels(part)
		}
		po.Rollup = pipeline.NewRollup(opts)
	}
	o.proc = pipeline.NewProcessor(po)
	o.sink = sinks.RemoteWrite{Queue: q}
	o.awaitPredecessor = true
	o.logSources = rc.Name == g.cfg.RemoteWrite[0].Name
	if err := g.attach(ctx, &o, false); err != nil {
		return nil, err
	}
	return newConsumer(o), nil
}

// partitionLabels label the roll-ups of a partition's loop: each sees only
// the BMCs of its partition.
func partitionLabels(part int) []prompb.Label {
	return []prompb.Label{{Name: partitionLabel, Value: strconv.Itoa(part)}}
}
