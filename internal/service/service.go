// Package service runs a long-lived program's parts together, the way the
// poller and the gateway both need: the work itself, the HTTP endpoints
// (/metrics, /-/healthy, /-/ready, and profiles when enabled), and signals
// (SIGHUP reloads, SIGTERM and SIGINT stop). When any part ends, the others
// are stopped.
//
// The endpoints can be served over TLS with basic authentication, as every
// Prometheus exporter can: see CheckWebConfig.
package service

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/oklog/run"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// NewMux serves the endpoints every bmcstream program has: /metrics from
// reg, /-/healthy and /-/ready (200 while ready returns true). Profiles are
// not served unless HandleProfiles adds them. Bind it to a trusted network,
// or protect it with a web configuration file (Run).
func NewMux(reg *prometheus.Registry, ready func() bool) *http.ServeMux {
	mux := http.NewServeMux()
	mux.Handle("/metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{Registry: reg}))
	mux.HandleFunc("/-/healthy", func(w http.ResponseWriter, _ *http.Request) { fmt.Fprintln(w, "Healthy.") })
	mux.HandleFunc("/-/ready", func(w http.ResponseWriter, _ *http.Request) {
		if !ready() {
			http.Error(w, "Not ready.", http.StatusServiceUnavailable)
			return
		}
		fmt.Fprintln(w, "Ready.")
	})
	return mux
}

// HandleProfiles adds Go's runtime profiles under /debug/pprof/ to mux: the
// index, the named profiles it lists (heap, goroutine with every stack,
// allocs, block, mutex, threadcreate) and a CPU profile of ?seconds=N.
// Programs call it only with --web.enable-pprof: a profile shows the
// program's internals (stacks, allocation sites), a CPU profile costs CPU
// for as long as the client asks, and the endpoint is commonly probed, so
// it is off unless wanted. The command line (/debug/pprof/cmdline) and
// execution traces are not served.
func HandleProfiles(mux *http.ServeMux) {
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
}

// Run serves handler on ln and runs work until a SIGTERM or SIGINT (or
// until work or the server ends), calling reload on SIGHUP. work must
// return soon after its context is cancelled. The error is the first part's
// failure, nil after a signal.
//
// webConfigFile is an exporter-toolkit web configuration file (TLS, basic
// authentication, response headers; check it first with CheckWebConfig),
// or "" for plain HTTP. An invalid file stops Run with its error rather
// than serve the endpoints unprotected.
func Run(logger *slog.Logger, ln net.Listener, webConfigFile string, handler http.Handler, work func(context.Context) error, reload func() error) error {
	srv := &http.Server{Handler: handler, ReadHeaderTimeout: 10 * time.Second}
	var g run.Group
	ctx, cancel := context.WithCancel(context.Background())
	g.Add(func() error { return work(ctx) }, func(error) { cancel() })
	g.Add(func() error {
		if err := serve(logger, ln, srv, webConfigFile); !errors.Is(err, http.ErrServerClosed) {
			return err
		}
		return nil
	}, func(error) {
		sctx, c := context.WithTimeout(context.Background(), 5*time.Second)
		defer c()
		if err := srv.Shutdown(sctx); err != nil {
			logger.Warn("stop serving the endpoints", "err", err)
		}
	})
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, syscall.SIGTERM, syscall.SIGINT, syscall.SIGHUP)
	defer signal.Stop(sigs)
	stop := make(chan struct{})
	g.Add(func() error {
		for {
			select {
			case s := <-sigs:
				if s == syscall.SIGHUP {
					if err := reload(); err != nil {
						logger.Error("reload; keeping the previous inventory", "err", err)
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
	return g.Run()
}
