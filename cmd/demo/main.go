// Command demo runs the docker compose stack of deploy/compose as processes
// on one machine, without Docker: a simulated fleet of BMCs (the compose
// file's bmcsim command), NATS with JetStream (embedded, from the compose
// stack's nats-server.conf), the gateway and two pollers with dynamic
// sharding (from deploy/compose/bmcstream/*.yml), the system's Prometheus
// (deploy/compose/prometheus: remote-write receiver, scrape of bmcstream's
// own metrics, alert rules) and, when installed, the system's Alertmanager.
// The configuration files are the compose stack's, embedded at build time,
// with only their addresses changed.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"os"
	"os/signal"
	"path"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/alecthomas/kingpin/v2"
	"github.com/nats-io/nats-server/v2/server"
	"github.com/prometheus/client_golang/prometheus"
	model2 "github.com/prometheus/common/model"

	"github.com/bmcstream/bmcstream/deploy/compose"
	"github.com/bmcstream/bmcstream/internal/logging"
	"github.com/bmcstream/bmcstream/internal/service"
	"github.com/bmcstream/bmcstream/internal/version"
	"github.com/bmcstream/bmcstream/pkg/bmcsim/fleet"
	"github.com/bmcstream/bmcstream/pkg/bmcsim/model"
	"github.com/bmcstream/bmcstream/pkg/bus"
	"github.com/bmcstream/bmcstream/pkg/gateway"
	"github.com/bmcstream/bmcstream/pkg/inventory"
	"github.com/bmcstream/bmcstream/pkg/poller"
)

func main() {
	if err := run(os.Args[1:]); err != nil {
		fmt.Fprintf(os.Stderr, "demo: %v\n", err)
		os.Exit(1)
	}
}

type options struct {
	bmcs         int
	interval     time.Duration
	duration     time.Duration
	receiver     string
	receiverURL  string
	receiverPort int
	amPort       int
	dataDir      string
	natsListen   string
	webListen    string
	pollerListen []string
	enablePprof  bool
	logLevel     string
	firstAddress string
	redfishPort  int
	ipmiPort     int
	adminListen  string
}

// Compose service addresses, as the compose stack's configuration files
// spell them; the demo replaces each with its own.
const (
	composeNATS        = "nats://nats:4222"
	composeRemoteWrite = "http://prometheus:9090/api/v1/write"
	composeGateway     = "gateway:9290"
	composePoller1     = "poller-1:9291"
	composePoller2     = "poller-2:9291"
	composeAM          = "alertmanager:9093"
	composePrometheus  = "localhost:9090"
)

func run(args []string) error {
	var o options
	app := kingpin.New("demo", "Runs the deploy/compose stack as processes on loopback, without Docker: a simulated BMC fleet, embedded NATS, two pollers with dynamic sharding, the gateway, and the system's Prometheus (and Alertmanager), from the compose stack's configuration files.")
	build := version.Get()
	app.Version(build.Print("demo"))
	app.HelpFlag.Short('h')
	app.Flag("bmcs", "Number of simulated BMCs (0: as many as the compose stack's bmcsim command says, 300).").Default("0").IntVar(&o.bmcs)
	app.Flag("interval", "Poll interval of every BMC.").Default("10s").DurationVar(&o.interval)
	app.Flag("fleet.first-address", "Loopback address of the first simulated BMC.").Default("127.20.0.1").StringVar(&o.firstAddress)
	app.Flag("fleet.redfish-port", "Redfish (HTTPS) port of the simulated BMCs.").Default("8443").IntVar(&o.redfishPort)
	app.Flag("fleet.ipmi-port", "IPMI (UDP) port of the simulated BMCs.").Default("6230").IntVar(&o.ipmiPort)
	app.Flag("fleet.admin-address", "Address of the simulated fleet's admin API (faults), as bmcsim's --admin.listen-address.").Default("127.0.0.1:9390").StringVar(&o.adminListen)
	app.Flag("duration", "Stop after this long (0: run until interrupted).").Default("0s").DurationVar(&o.duration)
	app.Flag("receiver", "Receiver to start: auto (prometheus, else victoria-metrics), prometheus, victoria-metrics, or none with --receiver.url.").Default("auto").EnumVar(&o.receiver, "auto", "prometheus", "victoria-metrics", "none")
	app.Flag("receiver.url", "Remote-write URL of a receiver you run yourself (implies --receiver=none).").StringVar(&o.receiverURL)
	app.Flag("receiver.port", "Port of the started receiver on 127.0.0.1 (0: 9090 for Prometheus, 8428 for VictoriaMetrics).").Default("0").IntVar(&o.receiverPort)
	app.Flag("alertmanager.port", "Port of Alertmanager on 127.0.0.1, started when Debian's prometheus-alertmanager is installed (0: do not start it).").Default("9093").IntVar(&o.amPort)
	app.Flag("data.dir", "Where NATS, the receiver and the simulated fleet keep their files.").Default("demo-data").StringVar(&o.dataDir)
	app.Flag("nats.listen", "Client address of the embedded NATS server.").Default("127.0.0.1:4222").StringVar(&o.natsListen)
	app.Flag("web.listen-address", "Address of the gateway's /metrics.").Default("127.0.0.1:9290").StringVar(&o.webListen)
	app.Flag("poller.web.listen-address", "Addresses of the two pollers' /metrics (repeat the flag for each).").Default("127.0.0.1:9291", "127.0.0.1:9292").StringsVar(&o.pollerListen)
	app.Flag("web.enable-pprof", "Serve Go's runtime profiles under /debug/pprof/ on the gateway's and the pollers' addresses.").BoolVar(&o.enablePprof)
	app.Flag("log.level", "Log level.").Default("info").EnumVar(&o.logLevel, "debug", "info", "warn", "error")
	if _, err := app.Parse(args); err != nil {
		return err
	}
	if len(o.pollerListen) != 2 {
		return fmt.Errorf("--poller.web.listen-address: give the two pollers' addresses, got %d", len(o.pollerListen))
	}
	if o.receiverURL != "" {
		o.receiver = "none"
	}
	if o.receiver == "none" && o.receiverURL == "" {
		return errors.New("--receiver=none needs --receiver.url")
	}
	logger := logging.New(os.Stderr, o.logLevel, "logfmt")
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	if o.duration > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, o.duration)
		defer cancel()
	}
	d := &demo{o: o, logger: logger}
	defer d.close()
	if err := d.start(ctx); err != nil {
		if ctx.Err() != nil {
			return nil
		}
		return err
	}
	return d.wait(ctx)
}

// demo is the running topology; close stops what start started, in reverse.
type demo struct {
	o      options
	logger *slog.Logger

	dataDir  string
	bmcsim   simFleet
	fleet    *fleet.Fleet
	faults   []string
	bmcCount int

	gatewayLn net.Listener
	pollerLns []net.Listener
	adminLn   net.Listener

	receiver     *process
	alertmanager *process
	writeURL     string
	queryURL     string
	amURL        string
	natsURL      string

	closers []func()
}

func (d *demo) onClose(f func()) { d.closers = append(d.closers, f) }

func (d *demo) close() {
	for i := len(d.closers) - 1; i >= 0; i-- {
		d.closers[i]()
	}
	d.closers = nil
}

func (d *demo) start(ctx context.Context) error {
	var err error
	if d.dataDir, err = filepath.Abs(d.o.dataDir); err != nil {
		return err
	}
	for _, dir := range []string{"bmcstream/sim", "nats"} {
		if err := os.MkdirAll(filepath.Join(d.dataDir, dir), 0o755); err != nil {
			return err
		}
	}
	if d.bmcsim, err = composeFleet(); err != nil {
		return err
	}
	if err := d.listen(); err != nil {
		return err
	}
	d.resolveReceiver()
	if err := d.startAlertmanager(ctx); err != nil {
		return err
	}
	if err := d.startReceiver(ctx); err != nil {
		return err
	}
	if err := d.startNATS(); err != nil {
		return err
	}
	if err := d.startFleet(); err != nil {
		return err
	}
	if err := d.startGateway(ctx); err != nil {
		return err
	}
	return d.startPollers()
}

// listen binds the bmcstream programs' web addresses first, so that the
// Prometheus configuration names the addresses really in use (a port 0 in a
// flag becomes a free port).
func (d *demo) listen() error {
	ln, err := net.Listen("tcp", d.o.webListen)
	if err != nil {
		return fmt.Errorf("gateway: listen %s: %w", d.o.webListen, err)
	}
	d.gatewayLn = ln
	// The server on ln closes it first unless the demo stopped before
	// serving; a second Close only reports that it is closed.
	d.onClose(func() { _ = ln.Close() })
	for i, addr := range d.o.pollerListen {
		ln, err := net.Listen("tcp", addr)
		if err != nil {
			return fmt.Errorf("poller-%d: listen %s: %w", i+1, addr, err)
		}
		d.pollerLns = append(d.pollerLns, ln)
		d.onClose(func() { _ = ln.Close() }) // as the gateway's above

	}
	if d.o.adminListen != "" {
		ln, err := net.Listen("tcp", d.o.adminListen)
		if err != nil {
			return fmt.Errorf("bmcsim admin: listen %s: %w", d.o.adminListen, err)
		}
		d.adminLn = ln
		d.onClose(func() { _ = ln.Close() }) // as the gateway's above
	}
	return nil
}

// writeConfig writes an embedded compose configuration file under the data
// directory with its addresses replaced, and returns its path.
func (d *demo) writeConfig(name, dest string, addrs map[string]string) (string, error) {
	b, err := compose.Render(name, addrs)
	if err != nil {
		return "", err
	}
	p := filepath.Join(d.dataDir, dest)
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		return "", err
	}
	if err := os.WriteFile(p, b, 0o644); err != nil {
		return "", err
	}
	return p, nil
}

// startAlertmanager runs the system's Alertmanager for the Prometheus the
// demo starts, when it is installed.
func (d *demo) startAlertmanager(ctx context.Context) error {
	if d.o.amPort == 0 || d.o.receiver != "prometheus" {
		return nil
	}
	bin, err := lookPath("prometheus-alertmanager", "alertmanager")
	if err != nil {
		d.logger.Info("alertmanager not installed, alerts are only evaluated (apt-get install prometheus-alertmanager)")
		return nil
	}
	dir := filepath.Join(d.dataDir, "alertmanager")
	cfg, err := d.writeConfig("alertmanager/alertmanager.yml", "alertmanager/alertmanager.yml", nil)
	if err != nil {
		return err
	}
	base := fmt.Sprintf("http://127.0.0.1:%d", d.o.amPort)
	p, err := startProcess(ctx, "alertmanager", bin, dir, base, "/-/ready",
		"--config.file="+cfg, "--storage.path="+filepath.Join(dir, "data"),
		fmt.Sprintf("--web.listen-address=127.0.0.1:%d", d.o.amPort), "--cluster.listen-address=")
	if err != nil {
		return err
	}
	d.alertmanager = p
	d.amURL = base
	d.onClose(p.stop)
	return nil
}

// resolveReceiver decides what auto means: Prometheus when installed, else
// VictoriaMetrics when it is.
func (d *demo) resolveReceiver() {
	if d.o.receiver != "auto" {
		return
	}
	d.o.receiver = "prometheus"
	if _, err := lookPath("prometheus"); err != nil {
		if _, err := lookPath("victoria-metrics"); err == nil {
			d.o.receiver = "victoria-metrics"
		}
	}
}

// startReceiver runs the system's Prometheus with the compose stack's
// configuration and rules (or VictoriaMetrics, which gets the data only).
func (d *demo) startReceiver(ctx context.Context) error {
	if d.o.receiver == "none" {
		d.writeURL = d.o.receiverURL
		return nil
	}
	kind := d.o.receiver
	bin, err := lookPath(kind)
	if err != nil {
		return fmt.Errorf("%s is not installed. On Debian or Ubuntu: sudo apt-get install %s (or run a receiver yourself and pass --receiver.url=http://host:port/api/v1/write)", kind, kind)
	}
	port := d.o.receiverPort
	var p *process
	switch kind {
	case "prometheus":
		if port == 0 {
			port = 9090
		}
		dir := filepath.Join(d.dataDir, "prometheus")
		cfg, err := d.prometheusConfig(port)
		if err != nil {
			return err
		}
		base := fmt.Sprintf("http://127.0.0.1:%d", port)
		p, err = startProcess(ctx, "prometheus", bin, dir, base, "/-/ready",
			"--config.file="+cfg, "--storage.tsdb.path="+filepath.Join(dir, "data"),
			fmt.Sprintf("--web.listen-address=127.0.0.1:%d", port), "--web.enable-remote-write-receiver")
		if err != nil {
			return err
		}
	case "victoria-metrics":
		if port == 0 {
			port = 8428
		}
		dir := filepath.Join(d.dataDir, "victoria-metrics")
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return err
		}
		base := fmt.Sprintf("http://127.0.0.1:%d", port)
		p, err = startProcess(ctx, "victoria-metrics", bin, dir, base, "/health",
			"-storageDataPath="+filepath.Join(dir, "data"), fmt.Sprintf("-httpListenAddr=127.0.0.1:%d", port), "-search.latencyOffset=0s")
		if err != nil {
			return err
		}
	}
	d.receiver = p
	d.writeURL, d.queryURL = p.base+"/api/v1/write", p.base
	d.onClose(p.stop)
	return nil
}

// prometheusConfig writes the compose stack's prometheus.yml and its rule
// files under the data directory, with the demo's addresses.
func (d *demo) prometheusConfig(port int) (string, error) {
	am := composeAM
	if d.amURL != "" {
		am = strings.TrimPrefix(d.amURL, "http://")
	} else {
		// Nothing listens there: Prometheus evaluates the alerts and
		// logs that it cannot send them.
		am = fmt.Sprintf("127.0.0.1:%d", max(d.o.amPort, 9093))
	}
	cfg, err := d.writeConfig("prometheus/prometheus.yml", "prometheus/prometheus.yml", map[string]string{
		composePrometheus: fmt.Sprintf("127.0.0.1:%d", port),
		composeAM:         am,
		composeGateway:    d.gatewayLn.Addr().String(),
		composePoller1:    d.pollerLns[0].Addr().String(),
		composePoller2:    d.pollerLns[1].Addr().String(),
	})
	if err != nil {
		return "", err
	}
	rules, err := fs.Glob(compose.Files(), "prometheus/rules/*.rules.yml")
	if err != nil {
		return "", err
	}
	for _, r := range rules {
		if _, err := d.writeConfig(r, path.Join("prometheus/rules", path.Base(r)), nil); err != nil {
			return "", err
		}
	}
	return cfg, nil
}

// startNATS runs the compose stack's NATS server configuration embedded, on
// the demo's address, with its store under the data directory and without
// its monitoring port.
func (d *demo) startNATS() error {
	conf, err := d.writeConfig("nats/nats-server.conf", "nats/nats-server.conf", nil)
	if err != nil {
		return err
	}
	opts, err := server.ProcessConfigFile(conf)
	if err != nil {
		return fmt.Errorf("nats: %w", err)
	}
	host, portStr, err := net.SplitHostPort(d.o.natsListen)
	if err != nil {
		return fmt.Errorf("--nats.listen %q: %w", d.o.natsListen, err)
	}
	port, err := strconv.Atoi(portStr)
	if err != nil {
		return fmt.Errorf("--nats.listen %q: %w", d.o.natsListen, err)
	}
	opts.Host, opts.Port = host, port
	opts.HTTPPort = 0
	opts.StoreDir = filepath.Join(d.dataDir, "nats", "jetstream")
	opts.NoSigs, opts.NoLog = true, true
	s, err := server.NewServer(opts)
	if err != nil {
		return fmt.Errorf("nats: %w", err)
	}
	s.Start()
	if !s.ReadyForConnections(10 * time.Second) {
		s.Shutdown()
		return fmt.Errorf("nats on %s: not ready after 10s", d.o.natsListen)
	}
	d.onClose(func() { s.Shutdown(); s.WaitForShutdown() })
	d.natsURL = s.ClientURL()
	return nil
}

// startFleet runs the compose stack's simulated fleet on loopback addresses
// and writes its inventory, credentials and CA where bmcsim writes them in
// the compose stack: sim/ beside the poller and gateway configurations.
func (d *demo) startFleet() error {
	ps, err := model.Builtin()
	if err != nil {
		return err
	}
	cfg := d.bmcsim.cfg
	if d.o.bmcs > 0 {
		cfg.Count = d.o.bmcs
	}
	cfg.Addressing = fleet.ByAddress
	if cfg.FirstAddress, err = netip.ParseAddr(d.o.firstAddress); err != nil {
		return fmt.Errorf("--fleet.first-address: %w", err)
	}
	cfg.RedfishPort, cfg.IPMIPort = d.o.redfishPort, d.o.ipmiPort
	fl, err := fleet.New(cfg, ps)
	if err != nil {
		return err
	}
	if d.faults, err = applyFaults(fl, d.bmcsim.faults); err != nil {
		return err
	}
	if err := fl.Start(fleet.StartOptions{Logger: d.logger.With("component", "bmcsim"), IgnoreSensorLatency: d.bmcsim.ignoreSensorLatency}); err != nil {
		return fmt.Errorf("start simulated fleet: %w", err)
	}
	d.onClose(func() {
		if err := fl.Close(); err != nil {
			d.logger.Warn("close simulated fleet", "err", err)
		}
	})
	d.fleet, d.bmcCount = fl, cfg.Count
	sim := filepath.Join(d.dataDir, "bmcstream", "sim")
	caFile := ""
	if cfg.TLS {
		caFile = filepath.Join(sim, "ca.pem")
		if err := fl.CA().WritePEM(caFile); err != nil {
			return err
		}
	}
	entries := fl.Inventory(caFile)
	for i := range entries {
		entries[i].Interval = model2.Duration(d.o.interval)
	}
	b, err := inventory.Marshal(entries)
	if err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(sim, "inventory.yml"), b, 0o644); err != nil {
		return err
	}
	if err := fl.WriteCredentials(filepath.Join(sim, "credentials.yml")); err != nil {
		return err
	}
	if d.adminLn != nil {
		d.serve(d.adminLn, fl.AdminHandler())
	}
	return nil
}

// serve serves h on ln until the demo closes.
func (d *demo) serve(ln net.Listener, h http.Handler) {
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 5 * time.Second}
	go func() {
		if err := srv.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
			d.logger.Error("serve", "listen", ln.Addr().String(), "err", err)
		}
	}()
	// Close's error is a listener's that could not be closed as the demo
	// stops: nothing is left to do about it.
	d.onClose(func() { _ = srv.Close() })
}

// mux is a program's endpoints, as its command serves them.
func (d *demo) mux(reg *prometheus.Registry, ready func() bool) *http.ServeMux {
	mux := service.NewMux(reg, ready)
	if d.o.enablePprof {
		service.HandleProfiles(mux)
	}
	return mux
}

func (d *demo) startGateway(ctx context.Context) error {
	p, err := d.writeConfig("bmcstream/gateway.yml", "bmcstream/gateway.yml", map[string]string{
		composeNATS:        d.natsURL,
		composeRemoteWrite: d.writeURL,
	})
	if err != nil {
		return err
	}
	cfg, err := gateway.LoadConfig(p)
	if err != nil {
		return err
	}
	logger := d.logger.With("component", "gateway")
	reg := service.NewRegistry()
	gw, err := gateway.New(cfg, gateway.Options{Logger: logger, Registerer: reg, Version: version.Get().Version, ShutdownTimeout: 10 * time.Second})
	if err != nil {
		return err
	}
	d.serve(d.gatewayLn, d.mux(reg, gw.Ready))
	runCtx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- gw.Run(runCtx) }()
	d.onClose(func() {
		cancel()
		if err := <-done; err != nil {
			logger.Error("gateway stopped", "err", err)
		}
	})
	for !gw.Ready() {
		select {
		case err := <-done:
			done <- err
			return fmt.Errorf("gateway: %v", err)
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
	}
	return nil
}

func (d *demo) startPollers() error {
	p, err := d.writeConfig("bmcstream/poller.yml", "bmcstream/poller.yml", map[string]string{
		composeNATS: d.natsURL,
	})
	if err != nil {
		return err
	}
	for i, ln := range d.pollerLns {
		id := fmt.Sprintf("poller-%d", i+1)
		cfg, err := poller.LoadConfig(p)
		if err != nil {
			return err
		}
		cfg.PollerID = id // the compose stack's --poller.id
		if err := cfg.Validate(); err != nil {
			return err
		}
		logger := d.logger.With("component", "poller")
		reg := service.NewRegistry()
		pl, err := poller.New(cfg, poller.Options{Logger: logger, Registerer: reg, NewSource: poller.DefaultSources(cfg, logger), ShutdownTimeout: 5 * time.Second})
		if err != nil {
			return err
		}
		d.serve(ln, d.mux(reg, pl.Ready))
		runCtx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() { done <- pl.Run(runCtx) }()
		d.onClose(func() {
			cancel()
			if err := <-done; err != nil {
				logger.Error("poller stopped", "err", err)
			}
		})
	}
	return nil
}

// wait prints where everything is, reports once the receiver answers for
// every BMC, and runs until ctx ends.
func (d *demo) wait(ctx context.Context) error {
	var b strings.Builder
	fmt.Fprintf(&b, "\nbmcstream demo is running: the deploy/compose stack as processes.\n")
	fmt.Fprintf(&b, "  simulated BMCs (bmcsim):   %d, Redfish %s … and IPMI udp/%d (CA %s)\n",
		d.bmcCount, d.fleet.Members[0].RedfishURL(d.bmcsim.cfg.TLS), d.o.ipmiPort, filepath.Join(d.dataDir, "bmcstream", "sim", "ca.pem"))
	if d.adminLn != nil {
		fmt.Fprintf(&b, "  bmcsim admin (faults):     http://%s/fleet\n", d.adminLn.Addr())
	}
	for _, f := range d.faults {
		fmt.Fprintf(&b, "    fault %s\n", f)
	}
	fmt.Fprintf(&b, "  NATS (embedded JetStream): %s   subjects %s\n", d.natsURL, bus.RawWildcard)
	fmt.Fprintf(&b, "  pollers (dynamic shards):  http://%s/metrics  http://%s/metrics\n", d.pollerLns[0].Addr(), d.pollerLns[1].Addr())
	fmt.Fprintf(&b, "  gateway:                   http://%s/metrics\n", d.gatewayLn.Addr())
	fmt.Fprintf(&b, "  remote write to:           %s\n", d.writeURL)
	if d.receiver != nil && d.receiver.name == "prometheus" {
		fmt.Fprintf(&b, "  Prometheus:                %s (rules and alerts: %s/alerts)\n", d.queryURL, d.queryURL)
	} else if d.queryURL != "" {
		fmt.Fprintf(&b, "  %s:          %s\n", d.receiver.name, d.queryURL)
	}
	if d.amURL != "" {
		fmt.Fprintf(&b, "  Alertmanager:              %s\n", d.amURL)
	}
	if d.queryURL != "" {
		fmt.Fprintf(&b, "  try: %s/graph?g0.expr=%s\n", d.queryURL, url.QueryEscape(`max by (rack) (bmc_temperature_celsius{context="intake"})`))
	}
	fmt.Fprintf(&b, "  dashboards: deploy/compose/grafana/dashboards/*.json (Grafana, with a Prometheus datasource of uid \"prometheus\")\n")
	fmt.Fprintf(&b, "Every BMC is polled every %s. Ctrl-C stops.\n\n", d.o.interval)
	fmt.Print(b.String())

	tick := time.NewTicker(min(d.o.interval, 5*time.Second))
	defer tick.Stop()
	checked := d.queryURL == ""
	for {
		if !checked {
			if n, err := countBMCs(ctx, d.queryURL); err == nil && n == d.bmcCount {
				fmt.Printf("pipeline OK: %s answers bmc_up for %d BMCs\n", d.queryURL, n)
				checked = true
			}
		}
		select {
		case <-ctx.Done():
			fmt.Println("stopping")
			return nil
		case <-tick.C:
		}
	}
}

// countBMCs asks the receiver how many BMCs it has bmc_up for.
func countBMCs(ctx context.Context, base string) (int, error) {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	q := url.Values{"query": {"count(count by (bmc) (bmc_up))"}}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, base+"/api/v1/query?"+q.Encode(), nil)
	if err != nil {
		return 0, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, err
	}
	defer func() { _ = resp.Body.Close() }() // read below; closing cannot change the answer
	b, err := io.ReadAll(io.LimitReader(resp.Body, 1<<16))
	if err != nil {
		return 0, err
	}
	var r struct {
		Status string `json:"status"`
		Data   struct {
			Result []struct {
				Value [2]any `json:"value"`
			} `json:"result"`
		} `json:"data"`
	}
	if err := json.Unmarshal(b, &r); err != nil {
		return 0, fmt.Errorf("decode answer: %w", err)
	}
	if r.Status != "success" || len(r.Data.Result) != 1 {
		return 0, nil
	}
	s, _ := r.Data.Result[0].Value[1].(string)
	return strconv.Atoi(s)
}
