// Command poller owns a shard of the BMC inventory, polls each owned BMC
// over Redfish and/or IPMI with one gentle session per BMC, and publishes
// one snapshot per poll on NATS.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"net/http"
	"os"
	"os/signal"
	"runtime/debug"
	"strconv"
	"strings"
	"syscall"

	"github.com/alecthomas/kingpin/v2"

	"github.com/bmcstream/bmcstream/internal/service"
	"github.com/bmcstream/bmcstream/internal/version"
	"github.com/bmcstream/bmcstream/pkg/poller"
)

func main() {
	os.Exit(Main(os.Args[1:], os.Stdout, os.Stderr))
}

// Main is the whole program, returning the exit code; main only exits.
func Main(args []string, stdout, stderr io.Writer) int {
	app := kingpin.New("poller", "Polls a shard of the BMC inventory and publishes snapshots on NATS.")
	build := version.Get()
	app.Version(build.Print("poller"))
	app.HelpFlag.Short('h')
	configFile := app.Flag("config.file", "Poller configuration file.").Default("poller.yml").String()
	configCheck := app.Flag("config.check", "Load everything a run loads (configuration, NATS credential and TLS files, web configuration, inventory, credentials, every BMC's address and credentials reference), report every problem with its file and line, and exit: 0 when valid, 1 otherwise. Touches no network.").Bool()
	webFlags := service.AddWebFlags(app, ":9291", "Address for /metrics, /status, /-/healthy, /-/ready (and /debug/pprof/ with --web.enable-pprof).")
	shutdown := app.Flag("shutdown.timeout", "How long to flush buffered snapshots on shutdown.").Default("15s").Duration()
	pollerID := app.Flag("poller.id", "Poller id (overrides poller_id).").String()
	logFlags := service.AddLogFlags(app)
	memLimit := app.Flag("memory.limit", "Soft memory limit of the Go runtime: auto (64 MiB plus 48 KiB per owned Redfish BMC and 26 KiB per owned IPMI BMC, updated as ownership changes), off (Go's default: the heap grows to twice its live size between collections), or a size such as 512MiB. The GOMEMLIMIT environment variable, when set, wins.").Default("auto").String()
	explain := app.Flag("explain", "Poll this BMC of the inventory once per protocol, print each reading and the series the gateway makes of it (or why none, and what the source left out), log out and exit: 0 when it answered, 1 otherwise. Publishes nothing.").PlaceHolder("<bmc id>").String()
	explainRules := app.Flag("explain.rules", "With --explain: the gateway's mapping file or directory (normalise.rule_files), read before the built-in rules; repeatable.").PlaceHolder("<file or dir>").Strings()
	explainFormat := app.Flag("explain.format", "With --explain: text or json.").Default("text").Enum("text", "json")
	if code, done := service.Parse(app, "poller", args, stdout, stderr); done {
		return code
	}
	logger := logFlags.Logger(stderr).With("component", "poller")
	memoryLimit, err := parseMemoryLimit(*memLimit)
	if err != nil {
		service.Printf(stderr, "poller: --memory.limit: %v\n", err)
		return 2
	}
	cfg, err := poller.LoadConfig(*configFile)
	if err == nil && *pollerID != "" {
		cfg.PollerID = *pollerID
		err = cfg.Validate()
	}
	if err != nil {
		if *configCheck {
			// Report the inventory's problems with the configuration's.
			err = errors.Join(err, poller.CheckInventories(*configFile))
		}
		service.Printf(stderr, "poller: %v\n", err)
		return 1
	}
	if *explain != "" {
		ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
		defer stop()
		err := poller.Explain(ctx, cfg, *explain, stdout, poller.ExplainOptions{RuleFiles: *explainRules, Format: *explainFormat, Logger: logger})
		if err != nil {
			service.Printf(stderr, "poller: explain: %v\n", err)
			return 1
		}
		return 0
	}
	web, err := service.CheckWebConfig(*webFlags.ConfigFile)
	if err != nil {
		service.Printf(stderr, "poller: %v\n", err)
		return 1
	}
	switch {
	case poller.GOMEMLIMITSet():
		logger.Info("memory limit from GOMEMLIMIT", "GOMEMLIMIT", os.Getenv("GOMEMLIMIT"))
	case memoryLimit > 0:
		debug.SetMemoryLimit(memoryLimit)
	}
	reg := service.NewRegistry()
	p, err := poller.New(cfg, poller.Options{
		Logger:          logger,
		Registerer:      reg,
		NewSource:       poller.DefaultSources(cfg, logger),
		ShutdownTimeout: *shutdown,
		// The automatic limit follows the owned BMCs; a fixed one is set
		// above.
		MemoryLimit: memoryLimit,
	})
	if err != nil {
		service.Printf(stderr, "poller: %v\n", err)
		return 1
	}
	if *configCheck {
		if err := poller.Check(cfg); err != nil {
			service.Printf(stderr, "poller: %v\n", err)
			return 1
		}
		service.Printf(stdout, "config %s is valid\n", *configFile)
		if web.File != "" {
			service.Printf(stdout, "web config %s is valid\n", web.File)
		}
		return 0
	}

	return service.Program{
		Name:        "poller",
		Version:     build.Version,
		Logger:      logger,
		Registry:    reg,
		Listen:      *webFlags.Listen,
		Web:         web,
		EnablePprof: *webFlags.EnablePprof,
		Ready:       p.Ready,
		Handle: func(mux *http.ServeMux) {
			mux.Handle("/status", poller.NewStatusHandler(p.StatusView))
		},
		StartAttrs: []any{"poller_id", p.ID()},
		Run:        p.Run,
		Reload:     p.Reload,
	}.Serve(stderr)
}

// parseMemoryLimit reads --memory.limit: poller.AutoMemoryLimit for auto,
// 0 for off, else the size in bytes.
func parseMemoryLimit(v string) (int64, error) {
	switch strings.ToLower(strings.TrimSpace(v)) {
	case "auto":
		return poller.AutoMemoryLimit, nil
	case "off", "0", "none":
		return 0, nil
	}
	num, unit := strings.TrimSpace(v), int64(1)
	for _, u := range []struct {
		suffix string
		n      int64
	}{{"KiB", 1 << 10}, {"MiB", 1 << 20}, {"GiB", 1 << 30}, {"TiB", 1 << 40}, {"B", 1}} {
		if strings.HasSuffix(num, u.suffix) {
			num, unit = strings.TrimSpace(strings.TrimSuffix(num, u.suffix)), u.n
			break
		}
	}
	n, err := strconv.ParseFloat(num, 64)
	if err != nil || n <= 0 || n*float64(unit) >= math.MaxInt64 {
		return 0, fmt.Errorf("want auto, off or a size such as 512MiB, got %q", v)
	}
	return int64(n * float64(unit)), nil
}
