package inventory

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/common/model"
	"github.com/stretchr/testify/require"
)

func TestParse(t *testing.T) {
	inv, err := Parse([]byte(`
defaults:
  credentials: lab
  labels: {site: ctc}
bmcs:
  - id: srv-1
    address: 10.0.0.1
    labels: {rack: i5, position: "12"}
  - id: srv-2
    address: 10.0.0.2:623
    protocol: ipmi
    interval: 10s
    labels: {site: ams}
`))
	require.NoError(t, err)
	require.Equal(t, 2, inv.Len())
	b, ok := inv.Get("srv-1")
	require.True(t, ok)
	require.Equal(t, Redfish, b.Protocol)
	require.Equal(t, "lab", b.Credentials)
	require.Equal(t, DefaultInterval, b.Interval)
	require.Equal(t, map[string]string{"site": "ctc", "rack": "i5", "position": "12"}, b.Labels)
	require.Equal(t, 6, b.Line)
	b, _ = inv.Get("srv-2")
	require.Equal(t, model.Duration(10*time.Second), b.Interval)
	require.Equal(t, "ams", b.Labels["site"])
	require.Equal(t, []string{"position", "rack", "site"}, inv.LabelNames())
	_, ok = inv.Get("nope")
	require.False(t, ok)

	out, err := Marshal(inv.All())
	require.NoError(t, err)
	again, err := Parse(out)
	require.NoError(t, err)
	require.Equal(t, inv.All()[1].Labels, again.All()[1].Labels)
}

func TestParseErrors(t *testing.T) {
	for _, tc := range []struct{ name, doc, want string }{
		{"unknown key", "bmcs:\n  - id: a\n    adress: x\n", "line 3"},
		{"unknown top key", "bmc:\n  - id: a\n", "line 1"},
		{"missing address", "bmcs:\n  - id: a\n", "line 2: bmcs[0].address: must be set"},
		{"bad protocol", "bmcs:\n  - id: a\n    address: x\n    protocol: snmp\n", `line 4: bmcs[0].protocol: "snmp"`},
		{"duplicate id", "bmcs:\n  - id: a\n    address: x\n  - id: a\n    address: y\n", `line 4: bmcs[1].id: "a" already used at line 2`},
		{"bad label", "bmcs:\n  - id: a\n    address: x\n    labels: {\"1x\": y}\n", "not a valid label name"},
		{"reserved label", "bmcs:\n  - id: a\n    address: x\n    labels: {bmc: y}\n", "reserved"},
		{"bad port", "bmcs:\n  - id: a\n    address: x\n    ipmi_port: 70000\n", "ipmi_port: 70000 is not a port"},
		{"bad scheme", "bmcs:\n  - id: a\n    address: x\n    redfish_scheme: ftp\n", `redfish_scheme: "ftp"`},
		{"wrong type", "bmcs:\n  - id: a\n    address: x\n    interval: soon\n", "line 4"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Parse([]byte(tc.doc))
			require.ErrorContains(t, err, tc.want)
		})
	}
}

func TestLoad(t *testing.T) {
	p := filepath.Join(t.TempDir(), "inv.yml")
	require.NoError(t, os.WriteFile(p, []byte("bmcs:\n  - id: a\n    address: x\n"), 0o600))
	inv, err := Load(p)
	require.NoError(t, err)
	require.Equal(t, 1, inv.Len())
	_, err = Load(p + "x")
	require.Error(t, err)
}

func FuzzParse(f *testing.F) {
	if b, err := os.ReadFile("../../examples/inventory.yml"); err == nil {
		f.Add(b)
	}
	f.Add([]byte("bmcs:\n  - id: a\n    address: x\n"))
	f.Add([]byte("defaults: {labels: {site: s}}\nbmcs: []\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		inv, err := Parse(b)
		if err != nil {
			requireLines(t, err)
			return
		}
		for _, e := range inv.All() {
			if e.ID == "" || e.Address == "" {
				t.Fatalf("accepted entry without id or address: %+v", e)
			}
		}
	})
}

// TestPrefer: an entry's preferred protocol is its own, else the defaults',
// else redfish, in YAML, CSV and a bucket entry alike.
func TestPrefer(t *testing.T) {
	for _, tc := range []struct {
		name, doc string
		csv       bool
		want      Protocol
	}{
		{"unset", "bmcs:\n  - id: a\n    address: x\n    protocol: both\n", false, Redfish},
		{"entry", "bmcs:\n  - id: a\n    address: x\n    protocol: both\n    prefer: ipmi\n", false, IPMI},
		{"defaults", "defaults:\n  prefer: ipmi\nbmcs:\n  - id: a\n    address: x\n    protocol: both\n", false, IPMI},
		{"entry over defaults", "defaults:\n  prefer: ipmi\nbmcs:\n  - id: a\n    address: x\n    prefer: redfish\n", false, Redfish},
		{"csv", "id,address,protocol,prefer\na,x,both,IPMI\n", true, IPMI},
		{"csv empty cell", "id,address,protocol,prefer\na,x,both,\n", true, Redfish},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var inv *Inventory
			var err error
			if tc.csv {
				inv, err = ParseCSV(strings.NewReader(tc.doc))
			} else {
				inv, err = Parse([]byte(tc.doc))
			}
			require.NoError(t, err)
			b, ok := inv.Get("a")
			require.True(t, ok)
			require.Equal(t, tc.want, b.Prefer)
			// It survives the gateway's merge (Marshal, then Parse).
			out, err := Marshal(inv.All())
			require.NoError(t, err)
			again, err := Parse(out)
			require.NoError(t, err)
			require.Equal(t, tc.want, again.All()[0].Prefer)
		})
	}
	e, err := ParseEntry([]byte("id: a\naddress: x\nprotocol: both\nprefer: ipmi\n"))
	require.NoError(t, err)
	require.Equal(t, IPMI, e.Prefer)
}

// TestRedfishSchema: an entry's Redfish schema choice is its own, else
// its file's defaults' (a file of BMCs is a group), else empty (auto), in
// YAML, CSV and a bucket entry alike, and it survives the poller's merge.
func TestRedfishSchema(t *testing.T) {
	for _, tc := range []struct {
		name, doc string
		csv       bool
		want      map[string]string
	}{
		{"unset", "bmcs:\n  - id: a\n    address: x\n", false, map[string]string{"a": ""}},
		{"entry", "bmcs:\n  - id: a\n    address: x\n    redfish_schema: legacy\n  - id: b\n    address: y\n", false,
			map[string]string{"a": "legacy", "b": ""}},
		{"group", "defaults:\n  redfish_schema: modern\nbmcs:\n  - id: a\n    address: x\n  - id: b\n    address: y\n    redfish_schema: auto\n", false,
			map[string]string{"a": "modern", "b": "auto"}},
		{"csv", "id,address,redfish_schema\na,x,LEGACY\nb,y,\n", true, map[string]string{"a": "legacy", "b": ""}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var inv *Inventory
			var err error
			if tc.csv {
				inv, err = ParseCSV(strings.NewReader(tc.doc))
			} else {
				inv, err = Parse([]byte(tc.doc))
			}
			require.NoError(t, err)
			out, err := Marshal(inv.All())
			require.NoError(t, err)
			again, err := Parse(out)
			require.NoError(t, err)
			for id, want := range tc.want {
				b, ok := inv.Get(id)
				require.True(t, ok)
				require.Equal(t, want, b.RedfishSchema, id)
				b, ok = again.Get(id)
				require.True(t, ok)
				require.Equal(t, want, b.RedfishSchema, "%s after Marshal and Parse", id)
			}
		})
	}
	e, err := ParseEntry([]byte("id: a\naddress: x\nredfish_schema: modern\n"))
	require.NoError(t, err)
	require.Equal(t, SchemaModern, e.RedfishSchema)
}
