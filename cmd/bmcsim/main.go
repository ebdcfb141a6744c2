// Command bmcsim serves a fleet of simulated BMCs speaking real Redfish
// (HTTP/HTTPS) and real IPMI v2.0 RMCP+ (UDP), with vendor personalities,
// drifting values and faults on demand, and writes the inventory that
// describes the fleet to pollers.
package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/alecthomas/kingpin/v2"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/bmcstream/bmcstream/internal/logging"
	"github.com/bmcstream/bmcstream/internal/service"
	"github.com/bmcstream/bmcstream/internal/version"
	"github.com/bmcstream/bmcstream/pkg/bmcsim/fleet"
	"github.com/bmcstream/bmcstream/pkg/bmcsim/model"
	"github.com/bmcstream/bmcstream/pkg/secret"
)

const help = `Serves a fleet of simulated BMCs over real Redfish and real IPMI.

Run a mixed fleet of 200 BMCs on 127.20.0.1 … 127.20.0.200 (Redfish on port
8443 with HTTPS, IPMI on UDP port 6230 of each address), and write the
inventory, credentials and CA files a poller needs:

  bmcsim --bmcs=200 --out.dir=sim

Pick personalities and weights (default: all equally), or add your own files
with --personalities.dir:

  bmcsim --bmcs=1000 --mix=ilo=3,idrac=3,xcc=2,supermicro=1,openbmc=1,hgx=1

The built-in personalities serve the Redfish layouts real BMCs do:

  ilo         iLO 5: legacy Thermal/Power only, fans in Percent, absent sensors
  ilo4        iLO 4: pre-1.0 Thermal/Power ("#Thermal.1.1.0.Thermal", FanName,
              CurrentReading, Units "Percent", "@odata.id" ending in "/")
  idrac       iDRAC 9: both schemas, slow Thermal/Power, FanName, RelatedItem
  xcc         XClarity: both schemas, "CPU1 DTS" a negative thermal margin
  supermicro  legacy only, PhysicalContext Intake on every temperature
  ami         MegaRAC: both schemas with an incomplete Sensors collection (fans,
              VRM voltage, PSU output only in Thermal/Power), underscore names
              numbered from 0 (CPU0_DTS, VR_P0_TEMP, Amb_Temp, PSU0_PIN)
  openbmc     bmcweb: Sensors collection and subsystems only
  hgx         NVIDIA OpenBMC: subsystems and EnvironmentMetrics only, no Sensors
              collection; GPU, board and PSU inlets beside the room inlet, all
              marked PhysicalContext Intake

Replay a capture of your own hardware (a directory in DMTF mockup layout, as
Redfish-Mockup-Creator writes it, or DMTF's flat one where the directory is
/redfish/v1) as 50 BMCs; $expand of collections is honoured one level deep:

  bmcsim --mockup.dir=./my-r750-mockup --bmcs=50 --protocols=redfish

Inject faults at start (repeatable) or while running through the admin API
on --admin.listen-address:

  bmcsim --fault=fraction=0.1,black_hole --fault=ids=bmc-00007,fan_failed=2
  curl -X POST 127.0.0.1:9390/faults -d '{"fraction":0.05,"faults":{"malformed_json":true}}'
  curl -X PUT 127.0.0.1:9390/bmcs/bmc-00003/faults -d '{"down":true}'
  curl -X DELETE 127.0.0.1:9390/faults
  curl 127.0.0.1:9390/fleet

Fault keys: latency_median_ms, latency_p99_ms, black_hole, down, http_status,
retry_after_seconds, malformed_json, wrong_types, drop_ipmi_sessions,
fan_failed, psu_failed, psu_input_lost, fan_redundancy_lost, intake_offset,
power_off. fan_failed=N, psu_failed=N and psu_input_lost=N (1-based) show in
every Redfish schema a personality serves (the legacy Thermal/Power, the
Sensors, the subsystems and EnvironmentMetrics) and over IPMI;
fan_redundancy_lost shows over IPMI only.

With --addressing=address (the default) one TCP listener and one UDP socket,
bound to the wildcard address, serve the whole fleet and answer only the
fleet's 127.x addresses. --addressing=port puts every BMC on one address with
its own ports instead.`

func main() {
	if err := run(os.Args[1:]); err != nil {
		fmt.Fprintf(os.Stderr, "bmcsim: %v\n", err)
		os.Exit(1)
	}
}

func run(args []string) error {
	cfg := fleet.DefaultConfig
	var (
		mix, first, passwordFile, personalitiesDir, outDir, adminListen, logLevel string
		faults                                                                    []string
		ignoreSensorLatency, check                                                bool
		password                                                                  string
	)
	app := kingpin.New("bmcsim", help)
	build := version.Get()
	app.Version(build.Print("bmcsim"))
	app.HelpFlag.Short('h')
	app.Flag("bmcs", "Number of virtual BMCs.").Default("100").IntVar(&cfg.Count)
	app.Flag("mix", "Personalities and weights, e.g. ilo=2,idrac=1 (default: all equally).").StringVar(&mix)
	app.Flag("seed", "Seed of values, serials and personality assignment.").Default("1").Int64Var(&cfg.Seed)
	app.Flag("addressing", "address: one 127.x address per BMC; port: one address, ports per BMC.").Default("address").EnumVar((*string)(&cfg.Addressing), "address", "port")
	app.Flag("first-address", "Address of the first BMC (address mode) or of all (port mode).").Default("127.20.0.1").StringVar(&first)
	app.Flag("redfish.port", "Redfish port (address mode) or first Redfish port (port mode).").Default("8443").IntVar(&cfg.RedfishPort)
	app.Flag("ipmi.port", "IPMI UDP port (address mode) or first IPMI port (port mode).").Default("6230").IntVar(&cfg.IPMIPort)
	app.Flag("protocols", "Protocols served: redfish, ipmi or both.").Default("both").EnumVar(&cfg.Protocols, "redfish", "ipmi", "both")
	app.Flag("tls", "Serve Redfish over HTTPS with a generated CA (--no-tls for HTTP).").Default("true").BoolVar(&cfg.TLS)
	app.Flag("username", "User name every BMC accepts.").Default(cfg.Username).StringVar(&cfg.Username)
	app.Flag("password", "Password every BMC accepts (prefer --password-file).").StringVar(&password)
	app.Flag("password-file", "File holding the password.").StringVar(&passwordFile)
	app.Flag("session.timeout", "Redfish session idle timeout.").Default("30m").DurationVar(&cfg.SessionTimeout)
	app.Flag("ipmi.session-timeout", "IPMI session idle timeout.").Default("60s").DurationVar(&cfg.IPMITimeout)
	app.Flag("site", "Site label of the fleet.").Default(cfg.Site).StringVar(&cfg.Site)
	app.Flag("room", "Room label of the fleet.").Default(cfg.Room).StringVar(&cfg.Room)
	app.Flag("bmcs-per-rack", "BMCs per rack.").Default("20").IntVar(&cfg.BMCsPerRack)
	app.Flag("racks-per-row", "Racks per row.").Default("10").IntVar(&cfg.RacksPerRow)
	app.Flag("personalities.dir", "Directory of extra personality files (*.yml).").StringVar(&personalitiesDir)
	app.Flag("mockup.dir", "Replay this DMTF mockup directory (dir/redfish/v1, dir/v1 or flat) as every BMC (Redfish only).").StringVar(&cfg.MockupDir)
	app.Flag("fault", "Fault at start, e.g. fraction=0.1,black_hole (repeatable).").StringsVar(&faults)
	app.Flag("ignore-sensor-latency", "Answer slow personalities' sensor resources at once.").BoolVar(&ignoreSensorLatency)
	app.Flag("out.dir", "Where to write inventory.yml, credentials.yml and ca.pem.").Default("bmcsim-out").StringVar(&outDir)
	app.Flag("admin.listen-address", "Admin API (faults, fleet listing) and /metrics, /-/healthy, /-/ready; keep it on loopback.").Default("127.0.0.1:9390").StringVar(&adminListen)
	app.Flag("config.check", "Validate the flags and personalities, then exit.").BoolVar(&check)
	app.Flag("log.level", "Log level.").Default("info").EnumVar(&logLevel, "debug", "info", "warn", "error")
	if _, err := app.Parse(args); err != nil {
		return err
	}
	logger := logging.New(os.Stderr, logLevel, "logfmt").With("component", "bmcsim")

	var err error
	if cfg.Mix, err = fleet.ParseMix(mix); err != nil {
		return err
	}
	if cfg.FirstAddress, err = netip.ParseAddr(first); err != nil {
		return fmt.Errorf("--first-address: %w", err)
	}
	switch {
	case passwordFile != "":
		s, err := secret.FromFile(passwordFile)
		if err != nil {
			return err
		}
		cfg.Password = s.Reveal()
	case password != "":
		cfg.Password = password
	}
	ps, err := model.Builtin()
	if err != nil {
		return err
	}
	if personalitiesDir != "" {
		extra, err := model.LoadDir(personalitiesDir)
		if err != nil {
			return err
		}
		for k, v := range extra {
			ps[k] = v
		}
	}
	var requests []fleet.FaultRequest
	for _, spec := range faults {
		req, err := fleet.ParseFaultSpec(spec)
		if err != nil {
			return err
		}
		requests = append(requests, req)
	}
	f, err := fleet.New(cfg, ps)
	if err != nil {
		return err
	}
	if check {
		fmt.Printf("bmcsim configuration is valid: %d BMCs, personalities %s\n", cfg.Count, strings.Join(model.Names(ps), ", "))
		return nil
	}
	for _, req := range requests {
		ids, err := f.Apply(req)
		if err != nil {
			return err
		}
		logger.Info("fault applied", "bmcs", len(ids))
	}

	start := time.Now()
	if err := f.Start(fleet.StartOptions{Logger: logger, IgnoreSensorLatency: ignoreSensorLatency}); err != nil {
		return err
	}
	defer func() {
		if err := f.Close(); err != nil {
			logger.Warn("close fleet", "err", err)
		}
	}()
	if err := os.MkdirAll(outDir, 0o755); err != nil {
		return err
	}
	caFile := ""
	if cfg.TLS {
		caFile, err = filepath.Abs(filepath.Join(outDir, "ca.pem"))
		if err != nil {
			return err
		}
		if err := f.CA().WritePEM(caFile); err != nil {
			return err
		}
	}
	invFile := filepath.Join(outDir, "inventory.yml")
	if err := f.WriteInventory(invFile, caFile); err != nil {
		return err
	}
	if err := f.WriteCredentials(filepath.Join(outDir, "credentials.yml")); err != nil {
		return err
	}

	ln, err := net.Listen("tcp", adminListen)
	if err != nil {
		return fmt.Errorf("listen admin %s: %w", adminListen, err)
	}
	admin := &http.Server{Handler: adminHandler(f.AdminHandler(), service.NewRegistry()), ReadHeaderTimeout: 5 * time.Second}
	go func() {
		if err := admin.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
			logger.Error("serve admin API", "err", err)
		}
	}()
	defer func() {
		if err := admin.Close(); err != nil {
			logger.Warn("close admin API", "err", err)
		}
	}()

	m := f.Members[0]
	logger.Info("fleet serving", "bmcs", cfg.Count, "startup", time.Since(start).Round(time.Millisecond),
		"first_redfish", m.RedfishURL(cfg.TLS), "first_ipmi", m.IPMIAddr(), "inventory", invFile, "ca", caFile, "admin", ln.Addr().String())

	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	<-ctx.Done()
	logger.Info("shutting down")
	return nil
}

// adminHandler serves the fleet's admin API with the endpoints every
// bmcstream program has: /metrics of reg (the simulator's own runtime and
// build), /-/healthy and /-/ready, ready once the fleet serves (the
// admin address listens only then).
func adminHandler(api http.Handler, reg *prometheus.Registry) http.Handler {
	mux := service.NewMux(reg, func() bool { return true })
	mux.Handle("/", api)
	return mux
}
