package fleet

import (
	"fmt"
	"net"
	"net/netip"
	"os"
	"strconv"

	"go.yaml.in/yaml/v2"

	"github.com/bmcstream/bmcstream/pkg/bmcsim/model"
	"github.com/bmcstream/bmcstream/pkg/inventory"
)

// Member is one virtual BMC of the fleet and where it listens.
type Member struct {
	BMC         *model.BMC
	Addr        netip.Addr
	RedfishPort int
	IPMIPort    int
	Labels      map[string]string
}

// RedfishURL is the member's Redfish base URL.
func (m *Member) RedfishURL(tls bool) string {
	scheme := "http"
	if tls {
		scheme = "https"
	}
	return scheme + "://" + net.JoinHostPort(m.Addr.String(), strconv.Itoa(m.RedfishPort))
}

// IPMIAddr is the member's RMCP+ host:port.
func (m *Member) IPMIAddr() string {
	return net.JoinHostPort(m.Addr.String(), strconv.Itoa(m.IPMIPort))
}

// Fleet is a laid-out set of members. Start serves them.
type Fleet struct {
	cfg     Config
	Members []*Member
	byID    map[string]*Member

	running *running // set by Start
}

// New lays out a fleet: ids bmc-00001…, personalities by the mix, racks of
// BMCsPerRack members, rows of RacksPerRow racks, addresses or ports.
func New(cfg Config, personalities map[string]*model.Personality) (*Fleet, error) {
	if err := cfg.Validate(model.Names(personalities)); err != nil {
		return nil, err
	}
	names := pick(cfg.Mix, model.Names(personalities), cfg.Count, cfg.Seed)
	room := model.Room{Seed: cfg.Seed}
	f := &Fleet{cfg: cfg, Members: make([]*Member, cfg.Count), byID: make(map[string]*Member, cfg.Count)}
	addr := cfg.FirstAddress
	for i := range cfg.Count {
		rack := i / cfg.BMCsPerRack
		rackName := fmt.Sprintf("r%03d", rack)
		id := fmt.Sprintf("bmc-%05d", i+1)
		m := &Member{
			BMC:         model.NewBMC(id, rackName, personalities[names[i]], room, cfg.Username, cfg.Password),
			Addr:        addr,
			RedfishPort: cfg.RedfishPort,
			IPMIPort:    cfg.IPMIPort,
			Labels: map[string]string{
				"site":     cfg.Site,
				"room":     cfg.Room,
				"row":      fmt.Sprintf("row%02d", rack/cfg.RacksPerRow),
				"rack":     rackName,
				"position": strconv.Itoa(i%cfg.BMCsPerRack + 1),
			},
		}
		if cfg.Addressing == ByPort {
			m.Addr = cfg.FirstAddress
			m.RedfishPort = cfg.RedfishPort + i
			m.IPMIPort = cfg.IPMIPort + i
		} else {
			addr = addrAt(addr, 1)
		}
		f.Members[i] = m
		f.byID[id] = m
	}
	return f, nil
}

// Get returns a member by id.
func (f *Fleet) Get(id string) (*Member, bool) {
	m, ok := f.byID[id]
	return m, ok
}

// CredentialsRef is the credentials name the fleet's inventory uses.
const CredentialsRef = "bmcsim"

// Inventory describes the fleet in the inventory format pollers and the
// gateway read. caFile is the Redfish CA bundle path ("" for plain HTTP).
func (f *Fleet) Inventory(caFile string) []inventory.BMC {
	proto := inventory.Both
	switch f.cfg.Protocols {
	case "redfish":
		proto = inventory.Redfish
	case "ipmi":
		proto = inventory.IPMI
	}
	out := make([]inventory.BMC, len(f.Members))
	for i, m := range f.Members {
		e := inventory.BMC{
			ID:          m.BMC.ID,
			Address:     m.Addr.String(),
			Protocol:    proto,
			Credentials: CredentialsRef,
			Interval:    inventory.DefaultInterval,
			Labels:      m.Labels,
		}
		if proto != inventory.IPMI {
			e.RedfishPort = m.RedfishPort
			e.RedfishScheme = "http"
			if f.cfg.TLS {
				e.RedfishScheme = "https"
				e.CAFile = caFile
			}
		}
		if proto != inventory.Redfish {
			e.IPMIPort = m.IPMIPort
		}
		out[i] = e
	}
	return out
}

// WriteInventory writes the fleet's inventory file.
func (f *Fleet) WriteInventory(path, caFile string) error {
	b, err := inventory.Marshal(f.Inventory(caFile))
	if err != nil {
		return fmt.Errorf("render inventory: %w", err)
	}
	header := []byte("# Written by bmcsim: the fleet it serves. Credentials name \"" + CredentialsRef + "\" is in the credentials file beside it.\n")
	if err := os.WriteFile(path, append(header, b...), 0o644); err != nil {
		return fmt.Errorf("write inventory: %w", err)
	}
	return nil
}

// WriteCredentials writes the fleet's (simulated, not secret) credentials
// as a credentials file: `<name>: {username: ..., password: ...}`, mode 0600.
func (f *Fleet) WriteCredentials(path string) error {
	b, err := yaml.Marshal(map[string]map[string]string{
		CredentialsRef: {"username": f.cfg.Username, "password": f.cfg.Password},
	})
	if err != nil {
		return err
	}
	if err := os.WriteFile(path, b, 0o600); err != nil {
		return fmt.Errorf("write credentials: %w", err)
	}
	return nil
}
