package service

import (
	"io"
	"log/slog"

	"github.com/alecthomas/kingpin/v2"

	"github.com/bmcstream/bmcstream/internal/logging"
)

// WebFlags are the flags of a program's HTTP endpoints, the same in every
// program but for the address.
type WebFlags struct {
	// Listen is --web.listen-address.
	Listen *string
	// ConfigFile is --web.config.file, checked with CheckWebConfig.
	ConfigFile *string
	// EnablePprof is --web.enable-pprof.
	EnablePprof *bool
}

// AddWebFlags declares --web.listen-address (with the program's default
// address and a help text naming its endpoints), --web.config.file and
// --web.enable-pprof on app.
func AddWebFlags(app *kingpin.Application, listenDefault, listenHelp string) WebFlags {
	return WebFlags{
		Listen:      app.Flag("web.listen-address", listenHelp).Default(listenDefault).String(),
		ConfigFile:  app.Flag("web.config.file", "Web configuration file (Prometheus exporter-toolkit format) enabling TLS, basic authentication and response headers on the HTTP endpoints; plain HTTP when empty.").Default("").String(),
		EnablePprof: app.Flag("web.enable-pprof", "Serve Go's runtime profiles under /debug/pprof/ on --web.listen-address (stacks, heap, CPU profiles): for debugging, behind --web.config.file or on a trusted address.").Bool(),
	}
}

// LogFlags are --log.level and --log.format.
type LogFlags struct {
	Level, Format *string
}

// AddLogFlags declares --log.level and --log.format on app.
func AddLogFlags(app *kingpin.Application) LogFlags {
	return LogFlags{
		Level:  app.Flag("log.level", "Log level: debug, info, warn, error.").Default("info").Enum("debug", "info", "warn", "error"),
		Format: app.Flag("log.format", "Log format: logfmt or json.").Default("logfmt").Enum("logfmt", "json"),
	}
}

// Logger is the program's root logger, writing to w as the flags say.
func (f LogFlags) Logger(w io.Writer) *slog.Logger {
	return logging.New(w, *f.Level, *f.Format)
}

// Parse parses a program's command line with app, writing help and
// usage to stdout and errors to stderr. --help and --version end the
// program with their own code, returned as exit with done true, rather than
// inside kingpin (Main returns; main exits). A parse error is printed as
// "<name>: <error>" with exit code 2. done false: carry on.
func Parse(app *kingpin.Application, name string, args []string, stdout, stderr io.Writer) (exit int, done bool) {
	app.UsageWriter(stdout)
	app.ErrorWriter(stderr)
	exit = -1
	app.Terminate(func(code int) {
		if exit < 0 {
			exit = code
		}
	})
	_, err := app.Parse(args)
	if exit >= 0 {
		return exit, true
	}
	if err != nil {
		Printf(stderr, "%s: %v\n", name, err)
		return 2, true
	}
	return 0, false
}
