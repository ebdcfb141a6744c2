// Command demo runs the whole bmcstream pipeline on one machine: a
// simulated fleet of BMCs speaking real Redfish, a poller, an embedded NATS
// server with JetStream, the gateway, and a real Prometheus (or
// VictoriaMetrics) receiving remote writes, so a person can query the result.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/alecthomas/kingpin/v2"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	model2 "github.com/prometheus/common/model"

	"github.com/bmcstream/bmcstream/internal/logging"
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
	dataDir      string
	natsListen   string
	webListen    string
	logLevel     string
	firstAddress string
	redfishPort  int
}

func run(args []string) error {
	var o options
	app := kingpin.New("demo", "Runs a simulated BMC fleet, a poller, embedded NATS, the gateway and a real Prometheus or VictoriaMetrics, all on loopback.")
	app.Version(version.Version)
	app.HelpFlag.Short('h')
	app.Flag("bmcs", "Number of simulated BMCs.").Default("60").IntVar(&o.bmcs)
	app.Flag("interval", "Poll interval.").Default("10s").DurationVar(&o.interval)
	app.Flag("fleet.first-address", "Loopback address of the first simulated BMC.").Default("127.20.0.1").StringVar(&o.firstAddress)
	app.Flag("fleet.redfish-port", "Redfish (HTTPS) port of the simulated BMCs.").Default("8443").IntVar(&o.redfishPort)
	app.Flag("duration", "Stop after this long (0: run until interrupted).").Default("0s").DurationVar(&o.duration)
	app.Flag("receiver", "Receiver to start: auto (prometheus, else victoria-metrics), prometheus, victoria-metrics, or none with --receiver.url.").Default("auto").EnumVar(&o.receiver, "auto", "prometheus", "victoria-metrics", "none")
	app.Flag("receiver.url", "Remote-write URL of a receiver you run yourself (implies --receiver=none).").StringVar(&o.receiverURL)
	app.Flag("receiver.port", "Port of the started receiver on 127.0.0.1 (0: 9090 for Prometheus, 8428 for VictoriaMetrics).").Default("0").IntVar(&o.receiverPort)
	app.Flag("data.dir", "Where NATS and the receiver keep their data.").Default("demo-data").StringVar(&o.dataDir)
	app.Flag("nats.listen", "Client address of the embedded NATS server.").Default("127.0.0.1:4222").StringVar(&o.natsListen)
	app.Flag("web.listen-address", "Address of the gateway's /metrics.").Default("127.0.0.1:9290").StringVar(&o.webListen)
	app.Flag("log.level", "Log level.").Default("info").EnumVar(&o.logLevel, "debug", "info", "warn", "error")
	if _, err := app.Parse(args); err != nil {
		return err
	}
	logger := logging.New(os.Stderr, o.logLevel, "logfmt")
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	if o.duration > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, o.duration)
		defer cancel()
	}
	if err := os.MkdirAll(o.dataDir, 0o755); err != nil {
		return err
	}

	// 1. The receiver.
	writeURL, queryURL := o.receiverURL, ""
	if writeURL == "" && o.receiver != "none" {
		r, err := startReceiver(ctx, o)
		if err != nil {
			return err
		}
		defer r.stop()
		writeURL, queryURL = r.writeURL, r.queryURL
	}
	if writeURL == "" {
		return errors.New("--receiver=none needs --receiver.url")
	}

	// 2. A simulated fleet: real Redfish over HTTPS on its own loopback
	// addresses, mixed vendor personalities, drifting values.
	ps, err := model.Builtin()
	if err != nil {
		return err
	}
	fcfg := fleet.DefaultConfig
	fcfg.Count = o.bmcs
	fcfg.Protocols = "redfish"
	fcfg.RedfishPort = o.redfishPort
	if fcfg.FirstAddress, err = netip.ParseAddr(o.firstAddress); err != nil {
		return fmt.Errorf("--fleet.first-address: %w", err)
	}
	fl, err := fleet.New(fcfg, ps)
	if err != nil {
		return err
	}
	if err := fl.Start(fleet.StartOptions{Logger: logger.With("component", "bmcsim"), IgnoreSensorLatency: true}); err != nil {
		return fmt.Errorf("start simulated fleet: %w", err)
	}
	defer func() { _ = fl.Close() }()
	dataDir, err := filepath.Abs(o.dataDir)
	if err != nil {
		return err
	}
	caFile := filepath.Join(dataDir, "ca.pem")
	invFile := filepath.Join(dataDir, "inventory.yml")
	credFile := filepath.Join(dataDir, "credentials.yml")
	if err := fl.CA().WritePEM(caFile); err != nil {
		return err
	}
	entries := fl.Inventory(caFile)
	for i := range entries {
		entries[i].Interval = model2.Duration(o.interval)
	}
	b, err := inventory.Marshal(entries)
	if err != nil {
		return err
	}
	if err := os.WriteFile(invFile, b, 0o644); err != nil {
		return err
	}
	if err := fl.WriteCredentials(credFile); err != nil {
		return err
	}

	// 3. The gateway with its embedded NATS server.
	cfg, err := gateway.ParseConfig([]byte(fmt.Sprintf(`
nats:
  embedded:
    enabled: true
    listen: %q
    store_dir: %q
inventory:
  files: [%q]
remote_write:
  - name: demo
    url: %q
    queue_config:
      batch_send_deadline: 1s
`, o.natsListen, filepath.Join(o.dataDir, "nats"), invFile, writeURL)))
	if err != nil {
		return err
	}
	reg := prometheus.NewRegistry()
	gw, err := gateway.New(cfg, gateway.Options{Logger: logger.With("component", "gateway"), Registerer: reg, Version: version.Version, ShutdownTimeout: 10 * time.Second})
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", o.webListen)
	if err != nil {
		return fmt.Errorf("listen %s: %w", o.webListen, err)
	}
	srv := &http.Server{Handler: promhttp.HandlerFor(reg, promhttp.HandlerOpts{}), ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = srv.Serve(ln) }()
	defer func() { _ = srv.Close() }()

	gwCtx, stopGW := context.WithCancel(context.Background())
	gwDone := make(chan error, 1)
	go func() { gwDone <- gw.Run(gwCtx) }()
	defer func() {
		stopGW()
		if err := <-gwDone; err != nil {
			logger.Error("gateway", "err", err)
		}
	}()
	for !gw.Ready() {
		select {
		case err := <-gwDone:
			gwDone <- err
			return fmt.Errorf("gateway: %v", err)
		case <-ctx.Done():
			return nil
		case <-time.After(50 * time.Millisecond):
		}
	}

	// 4. A poller owning the whole fleet.
	pcfg, err := poller.ParseConfig([]byte(fmt.Sprintf("poller_id: demo-poller\nnats:\n  url: %s\ninventory:\n  files: [%q]\n  credentials_file: %q\n",
		gw.EmbeddedURL(), invFile, credFile)))
	if err != nil {
		return err
	}
	pl, err := poller.New(pcfg, poller.Options{Logger: logger.With("component", "poller"), Registerer: reg, NewSource: poller.DefaultSources(pcfg, logger)})
	if err != nil {
		return err
	}
	plCtx, stopPoller := context.WithCancel(context.Background())
	plDone := make(chan error, 1)
	go func() { plDone <- pl.Run(plCtx, 5*time.Second) }()
	defer func() {
		stopPoller()
		if err := <-plDone; err != nil {
			logger.Error("poller", "err", err)
		}
	}()

	fmt.Printf(`
bmcstream demo is running.
  simulated BMCs (Redfish/HTTPS): %s … (%d BMCs, CA %s)
  NATS (embedded, JetStream):     nats://%s   subjects %s
  bmcstream metrics:              http://%s/metrics
  remote write to:                %s
`, fl.Members[0].RedfishURL(true), o.bmcs, caFile, o.natsListen, bus.RawWildcard, o.webListen, writeURL)
	if queryURL != "" {
		fmt.Printf(`  query the receiver:             %s/graph?g0.expr=%s
  or: curl -s '%s/api/v1/query?query=max%%20by%%20(rack)(bmc_temperature_celsius%%7Bcontext%%3D%%22intake%%22%%7D)'
`, queryURL, url.QueryEscape("bmc_temperature_celsius"), queryURL)
	}
	fmt.Printf("The poller reads every BMC every %s. Ctrl-C stops.\n\n", o.interval)

	tick := time.NewTicker(o.interval)
	defer tick.Stop()
	checked := false
	for {
		if !checked && queryURL != "" {
			if n, err := countSeries(ctx, queryURL); err == nil && n == o.bmcs {
				fmt.Printf("pipeline OK: %s answers bmc_up for %d BMCs\n", queryURL, n)
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
func countSeries(ctx context.Context, base string) (int, error) {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, base+"/api/v1/query?query=count(bmc_up)", nil)
	if err != nil {
		return 0, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 1<<16))
	if err != nil {
		return 0, err
	}
	// {"status":"success","data":{"resultType":"vector","result":[{"metric":{},"value":[t,"60"]}]}}
	s := string(b)
	i := strings.LastIndex(s, `,"`)
	j := strings.LastIndex(s, `"]`)
	if i < 0 || j <= i+2 {
		return 0, nil
	}
	var n int
	_, err = fmt.Sscanf(s[i+2:j], "%d", &n)
	return n, err
}

type receiver struct {
	cmd                *exec.Cmd
	writeURL, queryURL string
}

func (r *receiver) stop() {
	_ = r.cmd.Process.Signal(syscall.SIGTERM)
	done := make(chan struct{})
	go func() { _ = r.cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		_ = r.cmd.Process.Kill()
		<-done
	}
}

func startReceiver(ctx context.Context, o options) (*receiver, error) {
	kind := o.receiver
	if kind == "auto" {
		kind = "prometheus"
		if _, err := lookPath("prometheus"); err != nil {
			if _, err := lookPath("victoria-metrics"); err == nil {
				kind = "victoria-metrics"
			}
		}
	}
	bin, err := lookPath(kind)
	if err != nil {
		return nil, fmt.Errorf("%s is not installed. On Debian or Ubuntu: sudo apt-get install %s (or run a receiver yourself and pass --receiver.url=http://host:port/api/v1/write)", kind, kind)
	}
	port := o.receiverPort
	dir, err := filepath.Abs(filepath.Join(o.dataDir, kind))
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	var args []string
	var ready string
	switch kind {
	case "prometheus":
		if port == 0 {
			port = 9090
		}
		cfg := filepath.Join(dir, "prometheus.yml")
		conf := fmt.Sprintf("global:\n  scrape_interval: 15s\nscrape_configs:\n  - job_name: bmcstream-gateway\n    static_configs:\n      - targets: [%q]\n", o.webListen)
		if err := os.WriteFile(cfg, []byte(conf), 0o644); err != nil {
			return nil, err
		}
		args = []string{"--config.file=" + cfg, "--storage.tsdb.path=" + filepath.Join(dir, "data"),
			fmt.Sprintf("--web.listen-address=127.0.0.1:%d", port), "--web.enable-remote-write-receiver"}
		ready = "/-/ready"
	case "victoria-metrics":
		if port == 0 {
			port = 8428
		}
		args = []string{"-storageDataPath=" + filepath.Join(dir, "data"), fmt.Sprintf("-httpListenAddr=127.0.0.1:%d", port), "-search.latencyOffset=0s"}
		ready = "/health"
	}
	logf, err := os.Create(filepath.Join(dir, kind+".log"))
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(bin, args...)
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s: %w", bin, err)
	}
	base := fmt.Sprintf("http://127.0.0.1:%d", port)
	r := &receiver{cmd: cmd, writeURL: base + "/api/v1/write", queryURL: base}
	deadline := time.Now().Add(30 * time.Second)
	for {
		resp, err := http.Get(base + ready)
		if err == nil {
			_ = resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return r, nil
			}
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			r.stop()
			return nil, fmt.Errorf("%s did not become ready on %s (log: %s)", kind, base, logf.Name())
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func lookPath(name string) (string, error) {
	if p, err := exec.LookPath(name); err == nil {
		return p, nil
	}
	for _, d := range []string{"/usr/bin", "/usr/sbin", "/usr/local/bin"} {
		p := filepath.Join(d, name)
		if st, err := os.Stat(p); err == nil && !st.IsDir() {
			return p, nil
		}
	}
	return "", fmt.Errorf("%s not found", name)
}
