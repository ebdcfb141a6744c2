package reliability

import (
	"cmp"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/common/model"
	"github.com/stretchr/testify/require"

	"github.com/bmcstream/bmcstream/internal/testbed"
	"github.com/bmcstream/bmcstream/pkg/bmcsim/fleet"
	"github.com/bmcstream/bmcstream/pkg/bus"
	"github.com/bmcstream/bmcstream/pkg/bus/embedded"
)

// scale is how big and how long the scenarios run.
type scale struct {
	Name     string
	BMCs     int
	Interval time.Duration
	// Run is the steady state around a fault: before it and after it.
	Run time.Duration
	// Outage is how long a component stays down.
	Outage time.Duration
}

// currentScale is the short form unless RELIABILITY=long: tens of BMCs at
// a 2 s interval with outages of seconds, so the suite fits in CI (its Run
// leaves room for the 10 s lateness bound before each fault); the long
// form is 1000 BMCs at 10 s with 10-minute outages.
//
// RELIABILITY_BMCS, RELIABILITY_INTERVAL, RELIABILITY_RUN and
// RELIABILITY_OUTAGE override the form's figures (durations in Go syntax).
func currentScale() scale {
	sc := scale{Name: "short", BMCs: 40, Interval: 2 * time.Second, Run: 15 * time.Second, Outage: 8 * time.Second}
	if os.Getenv("RELIABILITY") == "long" {
		sc = scale{Name: "long", BMCs: 1000, Interval: 10 * time.Second, Run: 2 * time.Minute, Outage: 10 * time.Minute}
	}
	if v, err := strconv.Atoi(os.Getenv("RELIABILITY_BMCS")); err == nil && v > 0 {
		sc.BMCs = v
	}
	for env, d := range map[string]*time.Duration{"RELIABILITY_INTERVAL": &sc.Interval, "RELIABILITY_RUN": &sc.Run, "RELIABILITY_OUTAGE": &sc.Outage} {
		if v, err := time.ParseDuration(os.Getenv(env)); err == nil && v > 0 {
			*d = v
		}
	}
	return sc
}

// bedOptions shape one scenario's test bed.
type bedOptions struct {
	// Block picks the fleet's addresses, 127.<Block>.0.1 onwards, so
	// scenarios never share a BMC address.
	Block int
	// Sinks are "prom" and "vm".
	Sinks []string
	// ProxyProm puts a fault-injecting proxy between the gateway and
	// Prometheus.
	ProxyProm bool
	// Pollers is how many poller processes share the fleet by dynamic
	// membership (1 by default).
	Pollers int
	// PublishBuffer is the pollers' publish_buffer (default of the poller
	// when zero).
	PublishBuffer int
	// StandaloneNATS runs the nats-server binary instead of a server
	// embedded in the test process.
	StandaloneNATS bool
	// NATSServer runs this nats-server binary (standalone) instead.
	NATSServer string
	// Scale replaces the form's scale when set (the soak sets its own).
	Scale *scale
	// Protocols the fleet serves and is polled over ("redfish" when
	// empty).
	Protocols string
	// ReplicationFactor is the pollers' sharding.replication_factor (1
	// when zero).
	ReplicationFactor int
	// FailoverTimeout is the gateway's ha_tracker.failover_timeout (its
	// default when zero).
	FailoverTimeout time.Duration
}

// bed is one scenario's running system.
type bed struct {
	t    *testing.T
	sc   scale
	opts bedOptions
	dir  string

	sim   *testbed.Sim
	nats  *natsNode
	sinks map[string]*testbed.Receiver
	proxy *faultProxy

	pollerBin, gatewayBin string
	pollerCfg, gatewayCfg string
	pollers               map[string]*testbed.Program
	gateway               *testbed.Program
	arrivals              *arrivals
	memory                *memWatch
	started               time.Time
	// final is the gateway's /metrics just before finish stopped it.
	final string
}

var builds struct {
	sync.Mutex
	poller, gateway string
}

// binaries builds the poller and gateway once per test binary.
func binaries(t *testing.T) (poller, gateway string) {
	t.Helper()
	builds.Lock()
	defer builds.Unlock()
	if builds.poller == "" {
		dir, err := os.MkdirTemp("", "bmcstream-reliability-bin-")
		require.NoError(t, err)
		for _, b := range []struct {
			pkg string
			out *string
		}{{"github.com/bmcstream/bmcstream/cmd/poller", &builds.poller}, {"github.com/bmcstream/bmcstream/cmd/gateway", &builds.gateway}} {
			path := filepath.Join(dir, filepath.Base(b.pkg))
			out, err := exec.Command("go", "build", "-o", path, b.pkg).CombinedOutput()
			require.NoError(t, err, "go build %s: %s", b.pkg, out)
			*b.out = path
		}
	}
	return builds.poller, builds.gateway
}

// newBed starts the fleet, NATS and the receivers and writes the poller and
// gateway configurations; start runs the programs.
func newBed(t *testing.T, o bedOptions) *bed {
	t.Helper()
	if testing.Short() {
		t.Skip("runs the whole pipeline as processes")
	}
	if o.Pollers == 0 {
		o.Pollers = 1
	}
	if len(o.Sinks) == 0 {
		o.Sinks = []string{"prom"}
	}
	b := &bed{t: t, sc: currentScale(), opts: o, dir: t.TempDir(), sinks: map[string]*testbed.Receiver{}, pollers: map[string]*testbed.Program{}}
	if o.Scale != nil {
		b.sc = *o.Scale
	}
	b.pollerBin, b.gatewayBin = binaries(t)

	cfg := fleet.DefaultConfig
	cfg.Count = b.sc.BMCs
	cfg.Protocols = cmp.Or(o.Protocols, "redfish")
	cfg.FirstAddress = netip.MustParseAddr(fmt.Sprintf("127.%d.0.1", o.Block))
	b.sim = testbed.StartSimFleet(t, cfg, b.sc.Interval)

	if o.NATSServer != "" {
		b.nats = startNATSBinary(t, o.NATSServer)
	} else {
		b.nats = startNATS(t, o.StandaloneNATS)
	}
	for _, name := range o.Sinks {
		switch name {
		case "prom":
			b.sinks[name] = testbed.StartPrometheus(t, testbed.WithArgs("--storage.tsdb.retention.time=1d"))
		case "vm":
			b.sinks[name] = testbed.StartVictoriaMetrics(t)
		default:
			t.Fatalf("unknown sink %q", name)
		}
	}
	if o.ProxyProm {
		b.proxy = newFaultProxy(t, b.sinks["prom"].WriteURL())
	}
	b.writeConfigs()
	b.arrivals = watchArrivals(t, b)
	return b
}

func (b *bed) writeConfigs() {
	t := b.t
	buffer := ""
	if b.opts.PublishBuffer > 0 {
		buffer = fmt.Sprintf("publish_buffer: %d\n", b.opts.PublishBuffer)
	}
	// Dynamic membership with the shipped TTL scaled to the interval as
	// the shipped TTL is to a 10 s interval (half of it), at least 1 s.
	ttl := model.Duration(memberTTL(b.sc.Interval))
	rf := max(b.opts.ReplicationFactor, 1)
	b.pollerCfg = filepath.Join(b.dir, "poller.yml")
	require.NoError(t, os.WriteFile(b.pollerCfg, []byte(fmt.Sprintf(`nats:
  url: %s
inventory:
  files: [%s]
  credentials_file: %s
sharding:
  mode: dynamic
  ttl: %s
  replication_factor: %d
%s`, b.nats.URL(), b.sim.InvFile, b.sim.CredFile, ttl, rf, buffer)), 0o600))

	var sinks strings.Builder
	for _, name := range b.opts.Sinks {
		url := b.sinks[name].WriteURL()
		if name == "prom" && b.proxy != nil {
			url = b.proxy.URL()
		}
		fmt.Fprintf(&sinks, `
  - name: %s
    url: %s
    queue_config:
      batch_send_deadline: 500ms
      min_backoff: 50ms
      max_backoff: 1s
`, name, url)
	}
	ha := ""
	if b.opts.FailoverTimeout > 0 {
		ha = fmt.Sprintf("ha_tracker:\n  failover_timeout: %s\n", model.Duration(b.opts.FailoverTimeout))
	}
	b.gatewayCfg = filepath.Join(b.dir, "gateway.yml")
	require.NoError(t, os.WriteFile(b.gatewayCfg, []byte(fmt.Sprintf(`nats:
  url: %s
inventory:
  files: [%s]
consumer:
  ack_wait: 5s
%sremote_write:%s`, b.nats.URL(), b.sim.InvFile, ha, sinks.String())), 0o600))
}

// start runs the gateway and the pollers and marks the start of the
// accounted window.
func (b *bed) start() {
	b.started = time.Now()
	b.startGateway()
	for i := range b.opts.Pollers {
		b.startPoller(fmt.Sprintf("poller-%d", i))
	}
}

func (b *bed) startGateway() {
	b.gateway = testbed.StartProgram(b.t, "gateway", b.gatewayBin, "--config.file="+b.gatewayCfg, "--shutdown.timeout=10s")
	if b.memory == nil {
		b.memory = watchMemory(b.t)
	}
	b.memory.follow(b.gateway.Cmd.Process.Pid)
}

func (b *bed) startPoller(id string) {
	b.pollers[id] = testbed.StartProgram(b.t, id, b.pollerBin, "--config.file="+b.pollerCfg, "--poller.id="+id, "--shutdown.timeout=10s")
}

// kill ends a program with SIGKILL: no flush, no goodbye.
func kill(t *testing.T, p *testbed.Program) {
	t.Helper()
	require.NoError(t, p.Cmd.Process.Signal(syscall.SIGKILL))
	_ = p.Cmd.Wait()
}

// stop ends a program with SIGTERM and requires a clean exit.
func stop(t *testing.T, p *testbed.Program) {
	t.Helper()
	require.NoError(t, p.Cmd.Process.Signal(syscall.SIGTERM))
	done := make(chan error, 1)
	go func() { done <- p.Cmd.Wait() }()
	select {
	case err := <-done:
		require.NoError(t, err, "exit after SIGTERM")
	case <-time.After(30 * time.Second):
		_ = p.Cmd.Process.Kill()
		t.Fatalf("no exit within 30 s of SIGTERM")
	}
}

// finish stops the pollers (flushing what they buffered), waits until every
// sink's consumer has delivered the whole stream, and stops the gateway.
// It returns the end of the accounted window.
func (b *bed) finish() time.Time {
	t := b.t
	for _, p := range b.pollers {
		if p.Cmd.ProcessState == nil {
			stop(t, p)
		}
	}
	end := time.Now()
	b.waitDelivered(2*b.sc.Outage + time.Minute)
	b.final = scrape(t, b.gateway)
	stop(t, b.gateway)
	b.arrivals.stop()
	b.memory.stop()
	for _, r := range b.sinks {
		require.NoError(t, r.Flush(context.Background()))
	}
	return end
}

// waitDelivered waits until every sink's consumer has nothing pending and
// nothing unacknowledged.
func (b *bed) waitDelivered(timeout time.Duration) {
	t := b.t
	js := b.js()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	for _, name := range b.opts.Sinks {
		var last string
		for {
			info, err := func() (*jetstream.ConsumerInfo, error) {
				c, err := js.Consumer(ctx, bus.DefaultStreamConfig.Name, "bmcstream-gateway-"+name)
				if err != nil {
					return nil, err
				}
				return c.Info(ctx)
			}()
			if err == nil && info.NumPending == 0 && info.NumAckPending == 0 {
				break
			}
			if err != nil {
				last = err.Error()
			} else {
				last = fmt.Sprintf("pending %d, unacked %d", info.NumPending, info.NumAckPending)
			}
			select {
			case <-ctx.Done():
				t.Fatalf("sink %s never caught up: %s", name, last)
			case <-time.After(200 * time.Millisecond):
			}
		}
	}
}

// hold keeps a fault (or, for a soak, the steady state) in place for d and
// then until held reports that the system felt it: a retry counter
// advanced, a buffer filled. How long the fault lasts is the scenario's
// subject, so d is a fixed duration by nature; held makes sure the fault
// was not over before anything noticed it. It fails the test when held is
// still false a minute after d. A nil held is only the duration.
func (b *bed) hold(d time.Duration, held func() bool, what string) {
	b.t.Helper()
	until := time.Now().Add(d)
	// The time is looked at first, so held (a scrape, say) runs only once
	// d has passed.
	testbed.Eventually(b.t, d+time.Minute, func() bool {
		return !time.Now().Before(until) && (held == nil || held())
	}, "held for %s and %s", d, what)
}

// fleetIDs are the ids of the bed's simulated BMCs.
func (b *bed) fleetIDs() []string {
	ids := make([]string, 0, len(b.sim.Fleet.Members))
	for _, m := range b.sim.Fleet.Members {
		ids = append(ids, m.BMC.ID)
	}
	return ids
}

// waitPolls waits until each of ids has n polls, made at since or later,
// queryable in each of sinks: the system is running (again), measured in
// polls delivered rather than in time passed.
func (b *bed) waitPolls(since time.Time, n int, ids []string, sinks ...string) {
	b.t.Helper()
	testbed.Eventually(b.t, time.Duration(n)*b.sc.Interval+3*time.Minute, func() bool {
		for _, s := range sinks {
			if !b.arrivals.polled(s, ids, since, n) {
				return false
			}
		}
		return true
	}, "%d polls of each of %d BMCs made after %s queryable in %v", n, len(ids), since.Format("15:04:05.000"), sinks)
}

// pollsIn is how many polls of each BMC a span of the scale's time holds.
func (b *bed) pollsIn(d time.Duration) int { return max(1, int(d/b.sc.Interval)) }

// gatewayMetric is a gateway metric's sum now (0 when the gateway does not
// answer).
func (b *bed) gatewayMetric(name string, match ...string) float64 {
	body, err := scrapeErr(b.gateway.Addr)
	if err != nil {
		return 0
	}
	return metricSum(body, name, match...)
}

// pollerMetric is a metric's sum over the running pollers now.
func (b *bed) pollerMetric(name string, match ...string) float64 {
	var sum float64
	for _, p := range b.pollers {
		if body, err := scrapeErr(p.Addr); err == nil {
			sum += metricSum(body, name, match...)
		}
	}
	return sum
}

// js connects to the bed's NATS.
func (b *bed) js() jetstream.JetStream {
	t := b.t
	nc, err := nats.Connect(b.nats.URL(), nats.MaxReconnects(-1))
	require.NoError(t, err)
	t.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	require.NoError(t, err)
	return js
}

// scrape returns a program's /metrics body.
func scrape(t *testing.T, p *testbed.Program) string {
	t.Helper()
	resp, err := http.Get("http://" + p.Addr + "/metrics")
	require.NoError(t, err)
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return string(body)
}

// metricSum adds up the samples of a metric in a /metrics body whose
// labels contain every pair in match ("name" or `name{a="b"}` lines).
func metricSum(body, name string, match ...string) float64 {
	var sum float64
	for _, line := range strings.Split(body, "\n") {
		if !strings.HasPrefix(line, name) {
			continue
		}
		rest := line[len(name):]
		if rest == "" || (rest[0] != ' ' && rest[0] != '{') {
			continue
		}
		ok := true
		for _, m := range match {
			if !strings.Contains(rest, m) {
				ok = false
			}
		}
		if !ok {
			continue
		}
		f := strings.Fields(rest[strings.LastIndexByte(rest, '}')+1:])
		if len(f) == 0 {
			continue
		}
		v, err := strconv.ParseFloat(f[0], 64)
		if err == nil {
			sum += v
		}
	}
	return sum
}

// natsNode is the NATS server of a bed: embedded in the test process, or
// the nats-server binary. Either keeps its port and JetStream store across
// a restart.
type natsNode struct {
	t          *testing.T
	standalone bool
	port       int
	store      string
	srv        *server.Server
	cmd        *exec.Cmd
	bin        string // the nats-server binary; found on the system when empty
}

func startNATS(t *testing.T, standalone bool) *natsNode {
	t.Helper()
	n := &natsNode{t: t, standalone: standalone, port: testbed.FreePort(t), store: t.TempDir()}
	n.start()
	t.Cleanup(n.stop)
	return n
}

func (n *natsNode) URL() string { return fmt.Sprintf("nats://127.0.0.1:%d", n.port) }

func (n *natsNode) start() {
	t := n.t
	if !n.standalone {
		srv, err := embedded.Start(bus.EmbeddedConfig{Listen: fmt.Sprintf("127.0.0.1:%d", n.port), StoreDir: n.store}, true)
		require.NoError(t, err)
		n.srv = srv
		return
	}
	bin := n.bin
	if bin == "" {
		bin = testbed.RequireBinary(t, "nats-server")
	}
	n.cmd = exec.Command(bin, "-a", "127.0.0.1", "-p", strconv.Itoa(n.port), "-js", "-sd", n.store)
	logf, err := os.Create(filepath.Join(t.TempDir(), "nats-server.log"))
	require.NoError(t, err)
	n.cmd.Stdout, n.cmd.Stderr = logf, logf
	require.NoError(t, n.cmd.Start())
	require.Eventually(t, func() bool {
		c, err := net.DialTimeout("tcp", fmt.Sprintf("127.0.0.1:%d", n.port), 200*time.Millisecond)
		if err != nil {
			return false
		}
		_ = c.Close()
		return true
	}, 20*time.Second, 50*time.Millisecond, "nats-server never listened")
}

// stop ends the server: a shutdown for the embedded one, SIGKILL for the
// binary (a crash).
func (n *natsNode) stop() {
	if n.srv != nil {
		n.srv.Shutdown()
		n.srv.WaitForShutdown()
		n.srv = nil
	}
	if n.cmd != nil && n.cmd.ProcessState == nil {
		_ = n.cmd.Process.Kill()
		_ = n.cmd.Wait()
		n.cmd = nil
	}
}

// memWatch samples the resident memory of the gateway every half second.
type memWatch struct {
	mu   sync.Mutex
	pid  int
	max  map[string]int64 // phase → highest RSS in bytes
	at   string
	done chan struct{}
	wg   sync.WaitGroup
}

func watchMemory(t *testing.T) *memWatch {
	m := &memWatch{max: map[string]int64{}, at: "steady", done: make(chan struct{})}
	m.wg.Add(1)
	go func() {
		defer m.wg.Done()
		tick := time.NewTicker(500 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-m.done:
				return
			case <-tick.C:
			}
			m.mu.Lock()
			if rss := residentBytes(m.pid); rss > m.max[m.at] {
				m.max[m.at] = rss
			}
			m.mu.Unlock()
		}
	}()
	t.Cleanup(m.stop)
	return m
}

func (m *memWatch) follow(pid int) {
	m.mu.Lock()
	m.pid = pid
	m.mu.Unlock()
}

// phase names the period the next samples belong to.
func (m *memWatch) phase(name string) {
	m.mu.Lock()
	m.at = name
	m.mu.Unlock()
}

func (m *memWatch) peak(phase string) int64 {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.max[phase]
}

func (m *memWatch) stop() {
	select {
	case <-m.done:
	default:
		close(m.done)
	}
	m.wg.Wait()
}

// residentBytes reads VmRSS of a process; 0 when it cannot.
func residentBytes(pid int) int64 {
	if pid == 0 {
		return 0
	}
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			f := strings.Fields(v)
			if len(f) > 0 {
				kb, _ := strconv.ParseInt(f[0], 10, 64)
				return kb << 10
			}
		}
	}
	return 0
}
