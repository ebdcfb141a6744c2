// Package inventory describes the BMC fleet: one entry per BMC with its
// address, protocol, credentials reference, polling interval and labels
// (site, room, row, rack, position and any user labels). The poller reads it
// to know what to poll; the gateway joins its labels onto every series.
package inventory

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"regexp"
	"sort"
	"strings"
	"time"

	"github.com/prometheus/common/model"
	"go.yaml.in/yaml/v2"

	"github.com/bmcstream/bmcstream/internal/yamlx"
)

// Protocol is how a BMC is read.
type Protocol string

// The protocols a BMC can be polled with.
const (
	Redfish Protocol = "redfish"
	IPMI    Protocol = "ipmi"
	Both    Protocol = "both"
)

// The Redfish schema choices of BMC.RedfishSchema; empty means SchemaAuto.
const (
	SchemaAuto   = "auto"
	SchemaLegacy = "legacy"
	SchemaModern = "modern"
)

// WellKnownLabels are the position labels every series may carry, in the
// order dashboards group by them.
var WellKnownLabels = []string{"site", "room", "row", "rack", "position"}

// BMC is one inventory entry.
type BMC struct {
	// ID names the BMC everywhere: in subjects, in the `bmc` label.
	ID string `yaml:"id"`
	// Address is the BMC's host name or IP address, optionally with a port
	// for a BMC polled over one protocol.
	Address  string   `yaml:"address"`
	Protocol Protocol `yaml:"protocol"`
	// Prefer is the protocol that feeds a BMC's series when it is polled
	// over both (redfish, the default, or ipmi): the other feeds only the
	// series the preferred one does not produce, and takes the preferred
	// one's over while it is down. A BMC polled over one protocol ignores it.
	Prefer Protocol `yaml:"prefer,omitempty"`
	// RedfishPort and IPMIPort override the protocols' standard ports (443
	// and 623), for BMCs behind port forwards and for simulated fleets.
	RedfishPort int `yaml:"redfish_port,omitempty"`
	IPMIPort    int `yaml:"ipmi_port,omitempty"`
	// RedfishScheme is "https" (default) or "http".
	RedfishScheme string `yaml:"redfish_scheme,omitempty"`
	// RedfishSchema chooses the Redfish sensor resources read where a
	// chassis offers both generations: auto (the default: every
	// generation, merged), legacy (Thermal and Power) or modern (the
	// Sensors collection and the subsystems). Set it for a group of BMCs
	// in a file's defaults when one generation of a firmware is wrong.
	RedfishSchema string `yaml:"redfish_schema,omitempty"`
	// CAFile verifies this BMC's Redfish certificate (a per-BMC or
	// per-group CA bundle); the system roots are used when empty.
	CAFile string `yaml:"ca_file,omitempty"`
	// Credentials names an entry of the credentials store (never the secret
	// itself).
	Credentials string         `yaml:"credentials,omitempty"`
	Interval    model.Duration `yaml:"interval,omitempty"`
	// InsecureSkipVerify turns off Redfish TLS verification for this BMC.
	InsecureSkipVerify bool              `yaml:"insecure_skip_verify,omitempty"`
	Labels             map[string]string `yaml:"labels,omitempty"`

	// Line is the 1-based line of the entry in its file, for messages.
	Line int `yaml:"-"`
}

// Defaults fill fields that entries leave empty.
type Defaults struct {
	Protocol    Protocol       `yaml:"protocol,omitempty"`
	Prefer      Protocol       `yaml:"prefer,omitempty"`
	Credentials string         `yaml:"credentials,omitempty"`
	Interval    model.Duration `yaml:"interval,omitempty"`
	// RedfishSchema is the schema choice of the file's entries that set
	// none (see BMC.RedfishSchema).
	RedfishSchema string            `yaml:"redfish_schema,omitempty"`
	Labels        map[string]string `yaml:"labels,omitempty"`
}

type file struct {
	Defaults Defaults `yaml:"defaults,omitempty"`
	BMCs     []BMC    `yaml:"bmcs"`
}

// DefaultInterval is the poll interval of an entry that sets none: 30 s is
// what BMCs answer comfortably and matches a common scrape interval.
const DefaultInterval = model.Duration(30 * time.Second)

// MinInterval is the shortest poll interval an entry may set. A BMC is a
// small embedded computer: one answering a poll takes a few hundred
// milliseconds, and polled faster than every second it spends its time
// answering, not managing the server.
const MinInterval = model.Duration(time.Second)

// Inventory is an immutable, validated set of BMCs. Safe for concurrent use.
type Inventory struct {
	bmcs []BMC
	byID map[string]int
}

var labelName = regexp.MustCompile(`^[a-zA-Z_][a-zA-Z0-9_]*$`)

// reserved labels are set by the pipeline itself.
var reserved = map[string]bool{"__name__": true, "bmc": true, "sensor": true, "context": true, "fan": true, "psu": true, "kind": true, "inventory": true}

// Load reads an inventory file: CSV when its name ends in .csv, YAML
// otherwise.
func Load(path string) (*Inventory, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read inventory: %w", err)
	}
	var inv *Inventory
	if strings.HasSuffix(strings.ToLower(path), ".csv") {
		inv, err = ParseCSV(bytes.NewReader(b))
	} else {
		inv, err = Parse(b)
	}
	if err != nil {
		return nil, fmt.Errorf("inventory %s: %w", path, err)
	}
	return inv, nil
}

// Parse decodes and validates an inventory document. Unknown keys are errors
// naming the line; every invalid entry is reported with its line.
func Parse(b []byte) (*Inventory, error) {
	var f file
	// One parse gives the values and the lines of their nodes: entries'
	// lines and every problem's come from it.
	d, err := yamlx.Decode(b, &f)
	if err != nil {
		return nil, err
	}
	if err := f.Defaults.validate(); err != nil {
		return nil, d.Locate(fmt.Errorf("defaults: %w", err))
	}
	lines := d.ItemLines("bmcs")
	inv := &Inventory{bmcs: make([]BMC, 0, len(f.BMCs)), byID: make(map[string]int, len(f.BMCs))}
	var errs []error
	for i, e := range f.BMCs {
		if i < len(lines) {
			e.Line = lines[i]
		}
		applyDefaults(&e, f.Defaults)
		if err := e.Validate(); err != nil {
			errs = append(errs, fmt.Errorf("bmcs[%d]: %w", i, err))
			continue
		}
		if j, dup := inv.byID[e.ID]; dup {
			errs = append(errs, fmt.Errorf("bmcs[%d]: id: %q already used at line %d", i, e.ID, inv.bmcs[j].Line))
			continue
		}
		inv.byID[e.ID] = len(inv.bmcs)
		inv.bmcs = append(inv.bmcs, e)
	}
	if err := errors.Join(errs...); err != nil {
		return nil, d.Locate(err)
	}
	return inv, nil
}

// validate checks what the defaults would give every entry.
func (d *Defaults) validate() error {
	e := BMC{ID: "-", Address: "-", Protocol: d.Protocol, Prefer: d.Prefer, Interval: d.Interval, RedfishSchema: d.RedfishSchema, Labels: d.Labels}
	if e.Protocol == "" {
		e.Protocol = Redfish
	}
	if e.Prefer == "" {
		e.Prefer = Redfish
	}
	if e.Interval == 0 {
		e.Interval = DefaultInterval
	}
	return e.Validate()
}

func applyDefaults(e *BMC, d Defaults) {
	if e.Protocol == "" {
		e.Protocol = d.Protocol
	}
	if e.Protocol == "" {
		e.Protocol = Redfish
	}
	if e.Prefer == "" {
		e.Prefer = d.Prefer
	}
	if e.Prefer == "" {
		e.Prefer = Redfish
	}
	if e.Credentials == "" {
		e.Credentials = d.Credentials
	}
	if e.RedfishSchema == "" {
		e.RedfishSchema = d.RedfishSchema
	}
	if e.Interval == 0 {
		e.Interval = d.Interval
	}
	if e.Interval == 0 {
		e.Interval = DefaultInterval
	}
	if len(d.Labels) > 0 {
		merged := make(map[string]string, len(d.Labels)+len(e.Labels))
		for k, v := range d.Labels {
			merged[k] = v
		}
		for k, v := range e.Labels {
			merged[k] = v
		}
		e.Labels = merged
	}
}

// Validate checks one entry.
func (e *BMC) Validate() error {
	var errs []error
	if e.ID == "" {
		errs = append(errs, errors.New("id: must be set"))
	}
	if e.Address == "" {
		errs = append(errs, errors.New("address: must be set"))
	}
	switch e.Protocol {
	case Redfish, IPMI, Both:
	default:
		errs = append(errs, fmt.Errorf("protocol: %q is not one of redfish, ipmi, both", e.Protocol))
	}
	switch e.Prefer {
	case Redfish, IPMI:
	default:
		errs = append(errs, fmt.Errorf("prefer: %q is not one of redfish, ipmi", e.Prefer))
	}
	if e.RedfishPort < 0 || e.RedfishPort > 65535 {
		errs = append(errs, fmt.Errorf("redfish_port: %d is not a port", e.RedfishPort))
	}
	if e.IPMIPort < 0 || e.IPMIPort > 65535 {
		errs = append(errs, fmt.Errorf("ipmi_port: %d is not a port", e.IPMIPort))
	}
	switch e.RedfishScheme {
	case "", "https", "http":
	default:
		errs = append(errs, fmt.Errorf("redfish_scheme: %q is not one of https, http", e.RedfishScheme))
	}
	switch e.RedfishSchema {
	case "", SchemaAuto, SchemaLegacy, SchemaModern:
	default:
		errs = append(errs, fmt.Errorf("redfish_schema: %q is not one of auto, legacy, modern", e.RedfishSchema))
	}
	if e.Interval < MinInterval {
		errs = append(errs, fmt.Errorf("interval: %s is below the minimum of %s", e.Interval, MinInterval))
	}
	for k := range e.Labels {
		if !labelName.MatchString(k) {
			errs = append(errs, fmt.Errorf("labels: %q is not a valid label name", k))
		} else if reserved[k] || len(k) > 1 && k[:2] == "__" {
			errs = append(errs, fmt.Errorf("labels: %q is reserved", k))
		}
	}
	return errors.Join(errs...)
}

// ParseEntry decodes and validates one inventory entry (YAML), as stored
// in the gateway's inventory KV bucket.
func ParseEntry(b []byte) (BMC, error) {
	var e BMC
	d, err := yamlx.Decode(b, &e)
	if err != nil {
		return e, err
	}
	applyDefaults(&e, Defaults{})
	return e, d.Locate(e.Validate())
}

// Len is the number of BMCs.
func (inv *Inventory) Len() int {
	if inv == nil {
		return 0
	}
	return len(inv.bmcs)
}

// Get returns the entry of a BMC id.
func (inv *Inventory) Get(id string) (*BMC, bool) {
	if inv == nil {
		return nil, false
	}
	i, ok := inv.byID[id]
	if !ok {
		return nil, false
	}
	return &inv.bmcs[i], true
}

// All returns the entries in file order. Callers must not modify them.
func (inv *Inventory) All() []BMC {
	if inv == nil {
		return nil
	}
	return inv.bmcs
}

// LabelNames returns the sorted union of label names used by any entry.
func (inv *Inventory) LabelNames() []string {
	seen := map[string]bool{}
	for _, b := range inv.All() {
		for k := range b.Labels {
			seen[k] = true
		}
	}
	out := make([]string, 0, len(seen))
	for k := range seen {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// Marshal renders an inventory in the file format Parse reads.
func Marshal(bmcs []BMC) ([]byte, error) {
	return yaml.Marshal(file{BMCs: bmcs})
}
