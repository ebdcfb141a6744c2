// Command gateway consumes raw BMC snapshots from NATS, normalises them into
// bmcstream's metric schema, enriches them with inventory labels, and
// remote-writes them to every configured sink.
package main

import (
	"errors"
	"io"
	"os"

	"github.com/alecthomas/kingpin/v2"

	"github.com/bmcstream/bmcstream/internal/service"
	"github.com/bmcstream/bmcstream/internal/version"
	"github.com/bmcstream/bmcstream/pkg/gateway"
)

func main() {
	os.Exit(Main(os.Args[1:], os.Stdout, os.Stderr))
}

// Main is the whole program, returning the exit code; main only exits.
// It is wiring only: flags and configuration in, gateway.New, then
// service.Program serves the endpoints and runs the gateway until a
// signal.
func Main(args []string, stdout, stderr io.Writer) int {
	app := kingpin.New("gateway", "Consumes BMC snapshots from NATS and remote-writes normalised metrics.")
	build := version.Get()
	app.Version(build.Print("gateway"))
	app.HelpFlag.Short('h')
	configFile := app.Flag("config.file", "Gateway configuration file.").Default("gateway.yml").String()
	configCheck := app.Flag("config.check", "Load everything a run loads (configuration, NATS credential and TLS files, web configuration, inventory and every BMC's address, mapping rules, remote-write clients), report every problem with its file and line, and exit: 0 when valid, 1 otherwise. Touches no network.").Bool()
	webFlags := service.AddWebFlags(app, ":9290", "Address for /metrics, /-/healthy, /-/ready (and /debug/pprof/ with --web.enable-pprof).")
	shutdown := app.Flag("shutdown.timeout", "How long shutdown may take to write and ack everything taken from the stream.").Default("30s").Duration()
	embedded := app.Flag("nats.embedded", "Run an embedded NATS server with JetStream (overrides nats.embedded.enabled).").Bool()
	embeddedDir := app.Flag("nats.embedded.store-dir", "JetStream store directory of the embedded server (overrides the config).").String()
	embeddedListen := app.Flag("nats.embedded.listen", "Client address of the embedded server (overrides the config).").String()
	logFlags := service.AddLogFlags(app)
	if code, done := service.Parse(app, "gateway", args, stdout, stderr); done {
		return code
	}
	logger := logFlags.Logger(stderr).With("component", "gateway")
	gogc := service.DefaultGCPercent(service.GatewayGCPercent)

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
	} else if *configCheck {
		// Report the inventory's problems with the configuration's.
		err = errors.Join(err, gateway.CheckInventories(*configFile))
	}
	if err != nil {
		service.Printf(stderr, "gateway: %v\n", err)
		return 1
	}
	web, err := service.CheckWebConfig(*webFlags.ConfigFile)
	if err != nil {
		service.Printf(stderr, "gateway: %v\n", err)
		return 1
	}
	reg := service.NewRegistry()
	gw, err := gateway.New(cfg, gateway.Options{Logger: logger, Registerer: reg, Version: build.Version, ShutdownTimeout: *shutdown})
	if err != nil {
		service.Printf(stderr, "gateway: %v\n", err)
		return 1
	}
	if *configCheck {
		if err := gateway.Check(*configFile, cfg); err != nil {
			service.Printf(stderr, "gateway: %v\n", err)
			return 1
		}
		service.Printf(stdout, "config %s is valid: %d sink(s)\n", *configFile, len(cfg.RemoteWrite))
		if web.File != "" {
			service.Printf(stdout, "web config %s is valid\n", web.File)
		}
		return 0
	}

	return service.Program{
		Name:        "gateway",
		Version:     build.Version,
		Logger:      logger,
		Registry:    reg,
		Listen:      *webFlags.Listen,
		Web:         web,
		EnablePprof: *webFlags.EnablePprof,
		Ready:       gw.Ready,
		StartAttrs:  []any{"config", *configFile, "gogc", gogc},
		Run:         gw.Run,
		Reload:      gw.ReloadInventory,
	}.Serve(stderr)
}
