// Package fleet lays out and runs a fleet of virtual BMCs: addresses and
// ports, personalities, rack positions, the Redfish and IPMI servers of
// every member, the inventory file that describes the fleet to pollers, and
// the admin endpoint that injects faults while it runs.
package fleet

import (
	"errors"
	"fmt"
	"net/netip"
	"sort"
	"strconv"
	"strings"
	"time"
)

// Addressing says how members are told apart.
type Addressing string

const (
	// ByAddress gives each member its own 127.x.y.z address; all share one
	// Redfish port and one IPMI port. One TCP listener and one UDP socket
	// serve the whole fleet, so 10 000 members fit in the default open-file
	// limit. Linux routes all of 127.0.0.0/8 to the loopback interface.
	ByAddress Addressing = "address"
	// ByPort puts every member on one address with its own ports: two
	// sockets per member, for small fleets or systems that only route
	// 127.0.0.1.
	ByPort Addressing = "port"
)

// Config describes a fleet.
type Config struct {
	// Count is the number of virtual BMCs.
	Count int
	// Mix weights personalities by name ("ilo=2,idrac=1"); empty means
	// every personality equally.
	Mix map[string]int
	// Seed makes values, serials and the personality assignment
	// reproducible.
	Seed int64

	Addressing Addressing
	// FirstAddress is the first member's address (ByAddress) or the only
	// address (ByPort).
	FirstAddress netip.Addr
	// RedfishPort and IPMIPort are the shared ports (ByAddress) or the
	// first member's ports (ByPort, then consecutive).
	RedfishPort int
	IPMIPort    int
	// Protocols served: redfish, ipmi or both.
	Protocols string
	// TLS serves Redfish over HTTPS with a generated CA.
	TLS bool

	Username string
	Password string
	// SessionTimeout is the Redfish session idle timeout; IPMITimeout the
	// RMCP+ session idle timeout.
	SessionTimeout time.Duration
	IPMITimeout    time.Duration

	// MockupDir, when set, makes every member replay this directory in
	// DMTF mockup layout over Redfish (a capture of real hardware) instead
	// of simulating a personality. Mockups speak Redfish only.
	MockupDir string

	// Site, Room and layout name the members' positions.
	Site        string
	Room        string
	BMCsPerRack int
	RacksPerRow int
}

// DefaultConfig is a small mixed fleet on loopback addresses.
var DefaultConfig = Config{
	Count:          100,
	Seed:           1,
	Addressing:     ByAddress,
	FirstAddress:   netip.MustParseAddr("127.20.0.1"),
	RedfishPort:    8443,
	IPMIPort:       6230,
	Protocols:      "both",
	TLS:            true,
	Username:       "admin",
	Password:       "bmcsim-password",
	SessionTimeout: 30 * time.Minute,
	IPMITimeout:    60 * time.Second,
	Site:           "sim",
	Room:           "hall1",
	BMCsPerRack:    20,
	RacksPerRow:    10,
}

// ParseMix reads "ilo=2,idrac=1,xcc" (weight 1 when omitted).
func ParseMix(s string) (map[string]int, error) {
	out := map[string]int{}
	if strings.TrimSpace(s) == "" {
		return out, nil
	}
	for _, part := range strings.Split(s, ",") {
		name, w, found := strings.Cut(strings.TrimSpace(part), "=")
		weight := 1
		if found {
			n, err := strconv.Atoi(w)
			if err != nil || n < 0 {
				return nil, fmt.Errorf("mix %q: weight of %s must be a non-negative integer", s, name)
			}
			weight = n
		}
		if name == "" {
			return nil, fmt.Errorf("mix %q: empty personality name", s)
		}
		out[name] = weight
	}
	return out, nil
}

// Validate checks the configuration against the known personalities.
func (c *Config) Validate(personalities []string) error {
	var errs []error
	if c.Count < 1 {
		errs = append(errs, errors.New("count must be at least 1"))
	}
	known := map[string]bool{}
	for _, p := range personalities {
		known[p] = true
	}
	total := 0
	for name, w := range c.Mix {
		if !known[name] {
			errs = append(errs, fmt.Errorf("mix: unknown personality %q (known: %s)", name, strings.Join(personalities, ", ")))
		}
		total += w
	}
	if len(c.Mix) > 0 && total == 0 {
		errs = append(errs, errors.New("mix: weights add up to 0"))
	}
	switch c.Addressing {
	case ByAddress:
		if !c.FirstAddress.Is4() || !netip.MustParsePrefix("127.0.0.0/8").Contains(c.FirstAddress) {
			errs = append(errs, fmt.Errorf("first address %s: must be in 127.0.0.0/8", c.FirstAddress))
		} else if last := addrAt(c.FirstAddress, c.Count-1); !netip.MustParsePrefix("127.0.0.0/8").Contains(last) {
			errs = append(errs, fmt.Errorf("%d members from %s run past 127.255.255.255", c.Count, c.FirstAddress))
		}
	case ByPort:
		if c.RedfishPort+c.Count > 65536 || c.IPMIPort+c.Count > 65536 {
			errs = append(errs, fmt.Errorf("%d members do not fit in the port range from %d/%d", c.Count, c.RedfishPort, c.IPMIPort))
		}
	default:
		errs = append(errs, fmt.Errorf("addressing %q is not one of address, port", c.Addressing))
	}
	switch c.Protocols {
	case "redfish", "ipmi", "both":
	default:
		errs = append(errs, fmt.Errorf("protocols %q is not one of redfish, ipmi, both", c.Protocols))
	}
	if c.MockupDir != "" && c.Protocols != "redfish" {
		errs = append(errs, errors.New("mockup: replays Redfish only; set protocols to redfish"))
	}
	if c.Username == "" || c.Password == "" {
		errs = append(errs, errors.New("username and password must be set"))
	}
	if c.BMCsPerRack < 1 || c.RacksPerRow < 1 {
		errs = append(errs, errors.New("bmcs per rack and racks per row must be at least 1"))
	}
	return errors.Join(errs...)
}

// addrAt is the i-th address after first, skipping x.y.z.0 and x.y.z.255
// so no member sits on what looks like a network or broadcast address.
func addrAt(first netip.Addr, i int) netip.Addr {
	a := first
	for n := 0; n < i; {
		a = a.Next()
		if b := a.As4(); b[3] != 0 && b[3] != 255 {
			n++
		}
	}
	return a
}

// pick chooses personalities for count members by weight, deterministically:
// members get personalities in proportion to the weights, shuffled by seed.
func pick(mix map[string]int, names []string, count int, seed int64) []string {
	if len(mix) == 0 {
		mix = map[string]int{}
		for _, n := range names {
			mix[n] = 1
		}
	}
	keys := make([]string, 0, len(mix))
	total := 0
	for k, w := range mix {
		if w > 0 {
			keys = append(keys, k)
			total += w
		}
	}
	sort.Strings(keys)
	out := make([]string, 0, count)
	for i := 0; i < count; i++ {
		// Weighted round robin by position: stable and proportional.
		slot := int((uint64(i)*2654435761 + uint64(seed)) % uint64(total))
		for _, k := range keys {
			if slot < mix[k] {
				out = append(out, k)
				break
			}
			slot -= mix[k]
		}
	}
	return out
}
