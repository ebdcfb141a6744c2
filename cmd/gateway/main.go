// Command gateway consumes raw BMC snapshots from NATS, normalises them into
// bmcstream's metric schema, enriches them with inventory labels, and
// remote-writes them to every configured sink.
package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/pprof"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/alecthomas/kingpin/v2"
	"github.com/oklog/run"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/bmcstream/bmcstream/internal/logging"
	"github.com/bmcstream/bmcstream/internal/version"
	"github.com/bmcstream/bmcstream/pkg/gateway"
)

func main() {
	os.Exit(Main(os.Args[1:], os.Stdout, os.Stderr))
}

// Main is the whole program, returning the exit code; main only exits.
func Main(args []string, stdout, stderr *os.File) int {
	app := kingpin.New("gateway", "Consumes BMC snapshots from NATS and remote-writes normalised metrics.")
	app.Version(version.Version)
	app.HelpFlag.Short('h')
	configFile := app.Flag("config.file", "Gateway configuration file.").Default("gateway.yml").String()
	configCheck := app.Flag("config.check", "Validate the configuration and inventory, then exit.").Bool()
	listen := app.Flag("web.listen-address", "Address for /metrics, /-/healthy and /-/ready.").Default(":9290").String()
	shutdown := app.Flag("shutdown.timeout", "How long to flush queued samples on shutdown.").Default("30s").Duration()
	embedded := app.Flag("nats.embedded", "Run an embedded NATS server with JetStream (overrides nats.embedded.enabled).").Bool()
	embeddedDir := app.Flag("nats.embedded.store-dir", "JetStream store directory of the embedded server (overrides the config).").String()
	embeddedListen := app.Flag("nats.embedded.listen", "Client address of the embedded server (overrides the config).").String()
	logLevel := app.Flag("log.level", "Log level: debug, info, warn, error.").Default("info").Enum("debug", "info", "warn", "error")
	logFormat := app.Flag("log.format", "Log format: logfmt or json.").Default("logfmt").Enum("logfmt", "json")
	app.UsageWriter(stdout)
	app.ErrorWriter(stderr)
	app.Terminate(nil)
	if _, err := app.Parse(args); err != nil {
		fmt.Fprintf(stderr, "gateway: %v\n", err)
		return 2
	}
	logger := logging.New(stderr, *logLevel, *logFormat).With("component", "gateway")

	cfg, err := gateway.LoadConfig(*configFile)
	if err == nil {
		if *embedded {
			cfg.NATS.Embedded.Enabled = true
		}
		if *embeddedDir != "" {
			cfg.NATS.Embedded.StoreDir = *embeddedDir
		}
		if *embeddedListen != "" {
			cfg.NATS.Embedded.Listen = *embeddedListen
		}
		if cfg.NATS.Embedded.Enabled && cfg.NATS.Embedded.StoreDir == "" {
			cfg.NATS.Embedded.StoreDir = "data/nats"
		}
		err = cfg.Validate()
	}
	if err != nil {
		fmt.Fprintf(stderr, "gateway: %v\n", err)
		return 1
	}
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	gw, err := gateway.New(cfg, gateway.Options{Logger: logger, Registerer: reg, Version: version.Version, ShutdownTimeout: *shutdown})
	if err != nil {
		fmt.Fprintf(stderr, "gateway: %v\n", err)
		return 1
	}
	if *configCheck {
		fmt.Fprintf(stdout, "config %s is valid: %d sink(s)\n", *configFile, len(cfg.RemoteWrite))
		return 0
	}

	ln, err := net.Listen("tcp", *listen)
	if err != nil {
		fmt.Fprintf(stderr, "gateway: listen %s: %v\n", *listen, err)
		return 1
	}
	mux := http.NewServeMux()
	mux.Handle("/metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{Registry: reg}))
	// Profiles, as Prometheus serves them: bind --web.listen-address to a
	// trusted network.
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/-/healthy", func(w http.ResponseWriter, _ *http.Request) { fmt.Fprintln(w, "Healthy.") })
	mux.HandleFunc("/-/ready", func(w http.ResponseWriter, _ *http.Request) {
		if !gw.Ready() {
			http.Error(w, "Not ready.", http.StatusServiceUnavailable)
			return
		}
		fmt.Fprintln(w, "Ready.")
	})
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}

	var g run.Group
	ctx, cancel := context.WithCancel(context.Background())
	g.Add(func() error { return gw.Run(ctx) }, func(error) { cancel() })
	g.Add(func() error {
		if err := srv.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
			return err
		}
		return nil
	}, func(error) {
		sctx, c := context.WithTimeout(context.Background(), 5*time.Second)
		defer c()
		_ = srv.Shutdown(sctx)
	})
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, syscall.SIGTERM, syscall.SIGINT, syscall.SIGHUP)
	stop := make(chan struct{})
	g.Add(func() error {
		for {
			select {
			case s := <-sigs:
				if s == syscall.SIGHUP {
					if err := gw.ReloadInventory(); err != nil {
						logger.Error("reload inventory; keeping the previous one", "err", err)
					} else {
						logger.Info("inventory reloaded")
					}
					continue
				}
				logger.Info("received signal, shutting down", "signal", s.String())
				return nil
			case <-stop:
				return nil
			}
		}
	}, func(error) { close(stop) })
	logger.Info("starting", "version", version.Version, "listen", ln.Addr().String(), "config", *configFile)
	if err := g.Run(); err != nil {
		logger.Error("gateway stopped", "err", err)
		return 1
	}
	return 0
}
