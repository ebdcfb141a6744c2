package main

import (
	"fmt"
	"net/netip"
	"strings"

	"github.com/alecthomas/kingpin/v2"

	"github.com/bmcstream/bmcstream/deploy/compose"
	"github.com/bmcstream/bmcstream/pkg/bmcsim/fleet"
)

// simFleet is the compose stack's simulated fleet: what its bmcsim service's
// command line says.
type simFleet struct {
	cfg                 fleet.Config
	faults              []fleet.FaultRequest
	ignoreSensorLatency bool
}

// composeFleet reads the bmcsim service's command from the compose file and
// turns it into a fleet configuration, as cmd/bmcsim would. The flags that
// place the fleet on the network (addressing, addresses, ports, output and
// admin addresses) are read and then left to the demo; any flag this
// function does not know is an error, so that the compose file and the demo
// cannot drift apart silently.
func composeFleet() (simFleet, error) {
	p, err := compose.LoadProject(nil)
	if err != nil {
		return simFleet{}, err
	}
	svc, ok := p.Services["bmcsim"]
	if !ok || len(svc.Command) == 0 {
		return simFleet{}, fmt.Errorf("%s: no bmcsim service with a command", compose.FileName)
	}
	return parseBMCSimArgs(svc.Command[1:])
}

// parseBMCSimArgs parses bmcsim's flags (cmd/bmcsim) into a fleet
// configuration and its start-up faults.
func parseBMCSimArgs(args []string) (simFleet, error) {
	var (
		f                         = simFleet{cfg: fleet.DefaultConfig}
		mix, first, unused, level string
		specs                     []string
		unusedPort                int
	)
	app := kingpin.New("bmcsim", "the compose stack's bmcsim command")
	app.Terminate(nil)
	app.Flag("bmcs", "").IntVar(&f.cfg.Count)
	app.Flag("mix", "").StringVar(&mix)
	app.Flag("seed", "").Int64Var(&f.cfg.Seed)
	app.Flag("protocols", "").EnumVar(&f.cfg.Protocols, "redfish", "ipmi", "both")
	app.Flag("tls", "").BoolVar(&f.cfg.TLS)
	app.Flag("site", "").StringVar(&f.cfg.Site)
	app.Flag("room", "").StringVar(&f.cfg.Room)
	app.Flag("bmcs-per-rack", "").IntVar(&f.cfg.BMCsPerRack)
	app.Flag("racks-per-row", "").IntVar(&f.cfg.RacksPerRow)
	app.Flag("fault", "").StringsVar(&specs)
	app.Flag("ignore-sensor-latency", "").BoolVar(&f.ignoreSensorLatency)
	// Where the fleet sits: the demo decides.
	app.Flag("addressing", "").EnumVar(&unused, "address", "port")
	app.Flag("first-address", "").StringVar(&first)
	app.Flag("redfish.port", "").IntVar(&unusedPort)
	app.Flag("ipmi.port", "").IntVar(&unusedPort)
	app.Flag("out.dir", "").StringVar(&unused)
	app.Flag("admin.listen-address", "").StringVar(&unused)
	app.Flag("log.level", "").StringVar(&level)
	if _, err := app.Parse(args); err != nil {
		return simFleet{}, fmt.Errorf("bmcsim command of %s: %w", compose.FileName, err)
	}
	var err error
	if f.cfg.Mix, err = fleet.ParseMix(mix); err != nil {
		return simFleet{}, err
	}
	if first != "" {
		if _, err := netip.ParseAddr(first); err != nil {
			return simFleet{}, fmt.Errorf("bmcsim --first-address: %w", err)
		}
	}
	for _, s := range specs {
		req, err := fleet.ParseFaultSpec(s)
		if err != nil {
			return simFleet{}, err
		}
		f.faults = append(f.faults, req)
	}
	return f, nil
}

// applyFaults applies the start-up faults to fl. A fault naming BMCs the
// (smaller) demo fleet lacks applies to those it has, or is skipped; the
// returned notes say what was applied.
func applyFaults(fl *fleet.Fleet, faults []fleet.FaultRequest) ([]string, error) {
	var notes []string
	for _, req := range faults {
		if len(req.IDs) > 0 {
			var have []string
			for _, id := range req.IDs {
				if _, ok := fl.Get(id); ok {
					have = append(have, id)
				}
			}
			if len(have) == 0 {
				continue
			}
			req.IDs = have
		}
		ids, err := fl.Apply(req)
		if err != nil {
			return notes, err
		}
		if len(ids) > 0 {
			notes = append(notes, fmt.Sprintf("%s: %s", strings.Join(ids, " "), describeFaults(req)))
		}
	}
	return notes, nil
}

// describeFaults names a request's faults for the start-up summary.
func describeFaults(req fleet.FaultRequest) string {
	f := req.Faults
	var parts []string
	if f.Down {
		parts = append(parts, "down")
	}
	if f.BlackHole {
		parts = append(parts, "black hole")
	}
	if f.FanFailed > 0 {
		parts = append(parts, fmt.Sprintf("fan %d failed", f.FanFailed))
	}
	if f.PowerOff {
		parts = append(parts, "powered off")
	}
	if f.IntakeOffset != 0 {
		parts = append(parts, fmt.Sprintf("intake %+g °C", f.IntakeOffset))
	}
	if f.HTTPStatus != 0 {
		parts = append(parts, fmt.Sprintf("answers HTTP %d", f.HTTPStatus))
	}
	if f.LatencyMedianMs > 0 {
		parts = append(parts, fmt.Sprintf("slow (median %g ms)", f.LatencyMedianMs))
	}
	if f.MalformedJSON || f.WrongTypes || f.DropIPMISessions {
		parts = append(parts, "misbehaving")
	}
	if len(parts) == 0 {
		return "faults"
	}
	return strings.Join(parts, ", ")
}
