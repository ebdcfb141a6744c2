package poller

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/bmcstream/bmcstream/internal/ratelog"
	"github.com/bmcstream/bmcstream/pkg/bus"
	"github.com/bmcstream/bmcstream/pkg/inventory"
	"github.com/bmcstream/bmcstream/pkg/secret"
	"github.com/bmcstream/bmcstream/pkg/sources"
	v1 "github.com/bmcstream/bmcstream/proto/bmcstream/v1"
)

// SourceFactory opens the source of one BMC over one protocol. The poller
// calls it when it takes a BMC over, and closes the source when it lets go.
type SourceFactory func(b inventory.BMC, proto v1.Protocol, user string, password secret.Secret) (sources.Source, error)

// Options are the process-level settings of a poller.
type Options struct {
	Logger     *slog.Logger
	Registerer prometheus.Registerer
	// NewSource opens sources; required.
	NewSource SourceFactory
	// Now is the clock; nil means time.Now.
	Now func() time.Time
	// ShutdownTimeout bounds how long Run, once its context ends, spends
	// flushing buffered snapshots; zero means DefaultShutdownTimeout.
	ShutdownTimeout time.Duration
	// MemoryLimit is AutoMemoryLimit to size the runtime's soft memory
	// limit from the owned BMCs (memlimit.go), unless GOMEMLIMIT is set;
	// anything else leaves the limit to the caller.
	MemoryLimit int64
}

// Poller owns a shard of the inventory and polls it.
type Poller struct {
	cfg     *Config
	opts    Options
	logger  *slog.Logger
	metrics *metrics
	id      string
	epoch   int64
	now     func() time.Time
	// stateLog bounds the lines logging BMCs' changes of state.
	stateLog *ratelog.Burst

	nc  *nats.Conn
	js  jetstream.JetStream
	kv  jetstream.KeyValue
	pub *Publisher
	sem chan struct{}

	inv     atomic.Pointer[inventory.Inventory]
	creds   atomic.Pointer[inventory.Credentials]
	members atomic.Pointer[[]string]
	// Dynamic membership (membership.go): the watch of the bucket, the
	// other pollers as seen through it, and the leaving ones' handover
	// times.
	watcher jetstream.KeyWatcher
	memMu   sync.Mutex
	table   map[string]member
	leavers atomic.Pointer[map[string]time.Time]

	mu      sync.Mutex
	workers map[string]*worker
	runCtx  context.Context
	ready   atomic.Bool

	// seqs holds each BMC's poll sequence (BMC id → *atomic.Uint64) for the
	// life of the process, across the workers ownership changes and reloads
	// start and stop: a snapshot's Nats-Msg-Id (poller, epoch, BMC,
	// sequence) must never repeat, or JetStream's duplicate window would
	// silently drop a new snapshot as a copy of an old one. One counter per
	// BMC ever owned: a few dozen bytes each.
	seqs sync.Map
}

// sequence returns the poll sequence counter of a BMC.
func (p *Poller) sequence(bmcID string) *atomic.Uint64 {
	if c, ok := p.seqs.Load(bmcID); ok {
		return c.(*atomic.Uint64)
	}
	c, _ := p.seqs.LoadOrStore(bmcID, new(atomic.Uint64))
	return c.(*atomic.Uint64)
}

// New validates the configuration and loads inventory and credentials; it
// touches no network.
func New(cfg *Config, opts Options) (*Poller, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if opts.NewSource == nil {
		return nil, errors.New("poller: no source factory")
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.Registerer == nil {
		opts.Registerer = prometheus.NewRegistry()
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	id := cfg.PollerID
	if id == "" {
		h, err := os.Hostname()
		if err != nil {
			return nil, fmt.Errorf("poller_id: not set and no host name: %w", err)
		}
		id = bus.EscapeToken(h)
	}
	p := &Poller{cfg: cfg, opts: opts, logger: opts.Logger, id: id, now: opts.Now,
		epoch: opts.Now().UnixMilli(), sem: make(chan struct{}, cfg.Polling.MaxConcurrent), workers: map[string]*worker{},
		stateLog: newStateLog(opts.Now)}
	m, err := newMetrics(opts.Registerer, p)
	if err != nil {
		return nil, err
	}
	p.metrics = m
	if err := p.load(); err != nil {
		return nil, err
	}
	static := staticMembers(cfg.Sharding)
	p.members.Store(&static)
	return p, nil
}

// ID is the poller's id.
func (p *Poller) ID() string { return p.id }

func staticMembers(s ShardingConfig) []string {
	if s.Mode != "static" {
		return nil
	}
	out := make([]string, s.Shards)
	for i := range out {
		out[i] = fmt.Sprintf("shard-%d", i)
	}
	return out
}

func (p *Poller) self() string {
	if p.cfg.Sharding.Mode == "static" {
		return fmt.Sprintf("shard-%d", p.cfg.Sharding.Shard)
	}
	return p.id
}

// load reads inventory files and credentials.
func (p *Poller) load() error {
	inv, creds, err := loadInventory(p.cfg)
	if err != nil {
		return err
	}
	p.inv.Store(inv)
	p.creds.Store(creds)
	warnSkipVerify(p.logger, inv.All())
	return nil
}

// loadInventory reads the configuration's inventory files, merged into
// one inventory (an id in two files is an error), and its credentials.
func loadInventory(cfg *Config) (*inventory.Inventory, *inventory.Credentials, error) {
	var all []inventory.BMC
	for _, f := range cfg.Inventory.Files {
		inv, err := inventory.Load(f)
		if err != nil {
			return nil, nil, err
		}
		all = append(all, inv.All()...)
	}
	b, err := inventory.Marshal(all)
	if err != nil {
		return nil, nil, err
	}
	inv, err := inventory.Parse(b)
	if err != nil {
		return nil, nil, fmt.Errorf("merge inventory files: %w", err)
	}
	creds, err := inventory.LoadCredentials(cfg.Inventory.CredentialsFile)
	if err != nil {
		return nil, nil, err
	}
	return inv, creds, nil
}

// Reload re-reads inventory and credentials and reconciles: new BMCs are
// taken over, removed ones released (their sessions closed), changed ones
// restarted; unchanged BMCs keep their sessions. On error the previous
// inventory stays in force.
func (p *Poller) Reload() error {
	if err := p.load(); err != nil {
		p.metrics.reloads.WithLabelValues("failure").Inc()
		return err
	}
	p.metrics.reloads.WithLabelValues("success").Inc()
	p.reconcile()
	return nil
}

// DefaultShutdownTimeout is Options.ShutdownTimeout's default.
const DefaultShutdownTimeout = 15 * time.Second

// Run connects to NATS, joins the membership (dynamic sharding), polls
// until ctx ends, then stops polling, waits for in-flight polls, logs out
// of every session and flushes the publish buffer (bounded by
// Options.ShutdownTimeout).
func (p *Poller) Run(ctx context.Context) error {
	flushTimeout := p.opts.ShutdownTimeout
	if flushTimeout <= 0 {
		flushTimeout = DefaultShutdownTimeout
	}
	if err := p.connect(ctx); err != nil {
		return err
	}
	defer p.nc.Close()
	pub, err := NewPublisher(p.nc, p.js, p.cfg.PublishBuffer, p.opts.Registerer, p.logger.With("component", "publisher"))
	if err != nil {
		return err
	}
	p.pub = pub
	defer pub.Close()

	runCtx, cancel := context.WithCancel(context.Background())
	defer cancel()
	p.mu.Lock()
	p.runCtx = runCtx
	p.mu.Unlock()

	var wg sync.WaitGroup
	memCtx, stopMembership := context.WithCancel(runCtx)
	defer stopMembership()
	if p.cfg.Sharding.Mode == "dynamic" {
		if err := p.joinMembership(ctx); err != nil {
			return err
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			p.membership(memCtx)
		}()
	}
	p.reconcile()
	p.ready.Store(true)
	p.logger.Info("poller running", "poller_id", p.id, "owned", p.owned(), "inventory", p.inv.Load().Len())

	watch := time.NewTicker(max(time.Duration(p.cfg.Inventory.WatchInterval), time.Second))
	defer watch.Stop()
	stamp := p.fileStamp()
loop:
	for {
		select {
		case <-ctx.Done():
			break loop
		case <-watch.C:
			p.flushStateLog()
			if s := p.fileStamp(); s != stamp {
				stamp = s
				if err := p.Reload(); err != nil {
					p.logger.Error("reload changed inventory; keeping the previous one", "err", err)
				} else {
					p.logger.Info("inventory changed and reloaded", "bmcs", p.inv.Load().Len(), "owned", p.owned())
				}
			}
		}
	}
	p.ready.Store(false)
	p.logger.Info("poller shutting down")
	// Leave the membership first: the others take the BMCs over at a
	// handover time, and this poller polls them until then.
	p.leave(func() { stopMembership(); wg.Wait() })
	cancel()
	p.stopAll()
	wg.Wait()
	fctx, fcancel := context.WithTimeout(context.Background(), flushTimeout)
	defer fcancel()
	if err := pub.Flush(fctx); err != nil {
		p.logger.Warn("publish buffer not flushed before the deadline", "err", err)
	}
	return nil
}

// Ready reports whether the poller is connected and polling.
func (p *Poller) Ready() bool { return p.ready.Load() }

func (p *Poller) connect(ctx context.Context) error {
	opts, err := p.cfg.NATS.Options("bmcstream-poller-"+p.id, p.logger)
	if err != nil {
		return err
	}
	nc, err := nats.Connect(p.cfg.NATS.URL, opts...)
	if err != nil {
		return fmt.Errorf("connect to nats %s: %w", p.cfg.NATS.URL, err)
	}
	p.nc = nc
	if p.cfg.NATS.Mode != bus.ModeJetStream {
		return nil
	}
	js, err := jetstream.New(nc)
	if err != nil {
		return fmt.Errorf("jetstream: %w", err)
	}
	p.js = js
	for {
		sctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		_, err = bus.EnsureStream(sctx, js, p.cfg.NATS.Stream)
		cancel()
		if err == nil {
			return nil
		}
		p.logger.Warn("stream setup failed, retrying", "err", err)
		select {
		case <-ctx.Done():
			return errors.Join(ctx.Err(), err)
		case <-time.After(2 * time.Second):
		}
	}
}

// reconcile starts workers for BMCs this poller owns and stops the rest.
func (p *Poller) reconcile() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.runCtx == nil {
		return
	}
	inv := p.inv.Load()
	members := *p.members.Load()
	rf := p.cfg.Sharding.ReplicationFactor
	self := p.self()
	want := map[string]inventory.BMC{}
	for _, b := range inv.All() {
		if Owns(self, b.ID, members, rf) {
			want[b.ID] = b
		}
	}
	// Stop what is no longer ours (or changed) all at once, then wait:
	// each stop logs out of a session, and a joiner taking 1/n of a large
	// shard must not wait for them one by one.
	var stopping []*worker
	for id, w := range p.workers {
		nb, keep := want[id]
		if keep && sameTarget(w.bmc, nb) && !w.unpollable {
			continue
		}
		w.cancel()
		stopping = append(stopping, w)
		delete(p.workers, id)
	}
	for _, w := range stopping {
		<-w.done
	}
	for id, b := range want {
		if _, running := p.workers[id]; running {
			continue
		}
		w, err := p.newWorker(b)
		if err != nil {
			p.metrics.sourceErrors.Inc()
			p.logger.Error("cannot poll bmc", "bmc", id, "err", err)
			w = p.unpollableWorker(b, err)
		}
		p.workers[id] = w
		wctx, cancel := context.WithCancel(p.runCtx)
		w.cancel = cancel
		w.from, w.leave = p.takeOverAt(id, members, rf), make(chan struct{})
		go w.run(wctx)
	}
	p.applyMemoryLimit()
}

// sameTarget reports whether two entries poll the same way (labels and the
// like may differ without restarting the session).
func sameTarget(a, b inventory.BMC) bool {
	return a.Address == b.Address && a.Protocol == b.Protocol && a.Credentials == b.Credentials &&
		a.Interval == b.Interval && a.RedfishPort == b.RedfishPort && a.IPMIPort == b.IPMIPort &&
		a.RedfishScheme == b.RedfishScheme && a.RedfishSchema == b.RedfishSchema && a.CAFile == b.CAFile && a.InsecureSkipVerify == b.InsecureSkipVerify
}

func (p *Poller) newWorker(b inventory.BMC) (*worker, error) {
	if err := inventory.CheckAddress(b.Address); err != nil {
		return nil, err
	}
	user, pw, err := p.creds.Load().Lookup(b.Credentials)
	if err != nil {
		return nil, err
	}
	w := &worker{p: p, bmc: b, done: make(chan struct{}), status: Status{ID: b.ID, Address: b.Address, Protocol: string(b.Protocol)}}
	for _, proto := range protocolsOf(b) {
		src, err := p.opts.NewSource(b, proto, user, pw)
		if err != nil {
			for _, ps := range w.sources {
				// the sources opened so far are released; the open error is the one to report
				_ = ps.src.Close(context.Background())
			}
			return nil, fmt.Errorf("open %s source of %s: %w", protoLabel(proto), b.ID, err)
		}
		w.sources = append(w.sources, protoSource{proto: proto, src: src})
	}
	return w, nil
}

// protocolsOf lists the protocols a BMC is polled over, Redfish first.
func protocolsOf(b inventory.BMC) []v1.Protocol {
	switch b.Protocol {
	case inventory.Redfish:
		return []v1.Protocol{v1.Protocol_PROTOCOL_REDFISH}
	case inventory.IPMI:
		return []v1.Protocol{v1.Protocol_PROTOCOL_IPMI}
	case inventory.Both:
		return []v1.Protocol{v1.Protocol_PROTOCOL_REDFISH, v1.Protocol_PROTOCOL_IPMI}
	}
	return nil
}

func (p *Poller) stopAll() {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, w := range p.workers {
		w.cancel()
	}
	for id, w := range p.workers {
		<-w.done
		delete(p.workers, id)
	}
}

func (p *Poller) owned() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.workers)
}

func (p *Poller) sessions() int {
	p.mu.Lock()
	ws := make([]*worker, 0, len(p.workers))
	for _, w := range p.workers {
		ws = append(ws, w)
	}
	p.mu.Unlock()
	n := 0
	for _, w := range ws {
		n += w.sessions()
	}
	return n
}

// Statuses lists the owned BMCs with their last result, sorted by id.
func (p *Poller) Statuses() []Status {
	p.mu.Lock()
	ws := make([]*worker, 0, len(p.workers))
	for _, w := range p.workers {
		ws = append(ws, w)
	}
	p.mu.Unlock()
	out := make([]Status, len(ws))
	for i, w := range ws {
		out[i] = w.snapshot()
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out
}

// Members is the current membership (static shards or live pollers).
func (p *Poller) Members() []string { return *p.members.Load() }

func (p *Poller) acquire(ctx context.Context) bool {
	select {
	case p.sem <- struct{}{}:
		return true
	case <-ctx.Done():
		return false
	}
}

func (p *Poller) release() { <-p.sem }

// fileStamp summarises the inventory and credentials files' sizes and
// modification times, to notice edits without inotify.
func (p *Poller) fileStamp() string {
	s := ""
	for _, f := range append(append([]string{}, p.cfg.Inventory.Files...), p.cfg.Inventory.CredentialsFile) {
		if f == "" {
			continue
		}
		if st, err := os.Stat(f); err == nil {
			s += fmt.Sprintf("%s:%d:%d;", f, st.Size(), st.ModTime().UnixNano())
		}
	}
	return s
}
