package service

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/bmcstream/bmcstream/internal/version"
)

// Program is the part every bmcstream program's Main ends with, once its
// configuration is checked and its work built: listen, serve the
// endpoints, run the work until a signal, exit code out. The programs'
// shape is the same:
//
//	func Main(args []string, stdout, stderr io.Writer) int  // flags, config, --config.check
//	x, err := pkg.New(cfg, pkg.Options{Logger, Registerer, ShutdownTimeout, ...})
//	return service.Program{..., Run: x.Run, Reload: x.Reload...}.Serve(stderr)
type Program struct {
	// Name prefixes error lines ("gateway: ...") and names the stop line.
	Name    string
	Version string
	Logger  *slog.Logger
	// Registry is served on /metrics (see NewRegistry).
	Registry *prometheus.Registry
	// Listen is the endpoints' address, Web their checked web
	// configuration (CheckWebConfig).
	Listen      string
	Web         WebConfig
	EnablePprof bool
	// Ready answers /-/ready.
	Ready func() bool
	// Handle, when set, adds the program's own endpoints.
	Handle func(*http.ServeMux)
	// StartAttrs go on the "starting" line between the listen address
	// and the web configuration.
	StartAttrs []any
	// Run is the work: it returns soon after its context is cancelled.
	// Reload is called on SIGHUP.
	Run    func(context.Context) error
	Reload func() error
}

// NewRegistry is a registry with the Go runtime's and the process's
// collectors and bmcstream_build_info (version.NewCollector) of the
// running build, for a program's own metrics. Every program serving
// /metrics starts from it.
func NewRegistry() *prometheus.Registry {
	reg := prometheus.NewRegistry()
	reg.MustRegister(
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		version.NewCollector(version.Get()),
	)
	return reg
}

// Serve listens, serves the endpoints and runs the work until a SIGTERM
// or SIGINT (see Run), and returns the exit code: 0 after a signal, 1 when
// the address cannot be listened on or a part failed.
func (p Program) Serve(stderr io.Writer) int {
	ln, err := net.Listen("tcp", p.Listen)
	if err != nil {
		Printf(stderr, "%s: listen %s: %v\n", p.Name, p.Listen, err)
		return 1
	}
	mux := NewMux(p.Registry, p.Ready)
	if p.EnablePprof {
		HandleProfiles(mux)
	}
	if p.Handle != nil {
		p.Handle(mux)
	}
	attrs := append([]any{"version", p.Version, "listen", ln.Addr().String()}, p.StartAttrs...)
	p.Logger.Info("starting", append(attrs, "web", p.Web, "pprof", p.EnablePprof)...)
	if p.EnablePprof && Exposed(ln.Addr(), p.Web) {
		p.Logger.Warn("profiles served without authentication on a non-loopback address: anyone who reaches it can read stacks and heap and spend CPU on profiles", "listen", ln.Addr().String())
	}
	if p.Web.BasicAuthUsers > 0 && !p.Web.TLS {
		p.Logger.Warn("basic authentication without TLS: passwords cross the network in clear text", "web_config", p.Web.File)
	}
	if err := Run(p.Logger, ln, p.Web.File, mux, p.Run, p.Reload); err != nil {
		p.Logger.Error(p.Name+" stopped", "err", err)
		return 1
	}
	return 0
}

// Printf writes a program's own message (an error before it exits, the
// result of --config.check) to its stdout or stderr. A failed write is
// dropped: there is nowhere left to report it, and the exit code carries
// the outcome.
func Printf(w io.Writer, format string, args ...any) {
	_, _ = fmt.Fprintf(w, format, args...) // see above: nowhere to report it
}
