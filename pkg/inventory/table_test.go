package inventory

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/bmcstream/bmcstream/internal/yamlx"
	"github.com/stretchr/testify/require"
)

// requireLocated checks that every problem of err names a line, that the
// message holds want ("line N: path"), and that no secret leaked.
func requireLocated(t *testing.T, err error, want string, also ...string) {
	t.Helper()
	require.Error(t, err)
	t.Log(err)
	require.ErrorContains(t, err, want)
	for _, w := range also {
		require.ErrorContains(t, err, w)
	}
	for _, l := range strings.Split(err.Error(), "\n") {
		require.Regexp(t, `line \d+: `, l)
	}
	require.NotContains(t, err.Error(), "pw-value")
}

// TestInvalidInventoryTable has one case per kind of invalid YAML
// inventory; each error names the entry's key path and its line.
func TestInvalidInventoryTable(t *testing.T) {
	const one = "bmcs:\n  - id: a\n    address: 10.0.0.1\n" // lines 1 to 3
	for _, tc := range []struct {
		name, doc, want string
		also            []string
	}{
		{"unknown top-level key", "bmc:\n  - id: a\n", "line 1: bmc: unknown key", nil},
		{"unknown entry key", one + "    adress: x\n", "line 4: bmcs[0].adress: unknown key", nil},
		{"unknown key of a later entry", one + "  - id: b\n    address: y\n    proto: ipmi\n", "line 6: bmcs[1].proto: unknown key", nil},
		{"unknown defaults key", "defaults:\n  interval: 10s\n  labels: {a: b}\n  rack: x\n" + one, "line 4: defaults.rack: unknown key", nil},
		{"key given twice", one + "    address: 10.0.0.2\n", "line 4: bmcs[0].address", nil},
		{"wrong type: word for a port", one + "    ipmi_port: six\n", "line 4: bmcs[0].ipmi_port", []string{"cannot unmarshal"}},
		{"wrong type: list for labels", one + "    labels: [a, b]\n", "line 4: bmcs[0].labels", []string{"cannot unmarshal !!seq"}},
		{"wrong type: map for the list", "bmcs:\n  id: a\n", "line 2: bmcs", []string{"cannot unmarshal !!map"}},
		{"wrong type: word for a bool", one + "    insecure_skip_verify: maybe\n", "line 4: bmcs[0].insecure_skip_verify", nil},
		{"bad duration", one + "    interval: soon\n", "line 4: bmcs[0].interval", []string{`"soon"`}},
		{"interval below the minimum", one + "    interval: 100ms\n", "line 4: bmcs[0].interval: 100ms is below the minimum of 1s", nil},
		{"missing id", "bmcs:\n  - address: x\n", "line 2: bmcs[0].id: must be set", nil},
		{"missing address", "bmcs:\n  - id: a\n", "line 2: bmcs[0].address: must be set", nil},
		{"empty entry", "bmcs:\n  - {}\n", "line 2: bmcs[0].id: must be set", nil},
		{"null entry", "bmcs:\n  -\n", "line 2: bmcs[0]", []string{"must be set"}},
		{"bad protocol", one + "    protocol: snmp\n", "line 4: bmcs[0].protocol", []string{`"snmp"`}},
		{"bad prefer", one + "    protocol: both\n    prefer: snmp\n", `line 5: bmcs[0].prefer: "snmp" is not one of redfish, ipmi`, nil},
		{"prefer both", one + "    prefer: both\n", `line 4: bmcs[0].prefer: "both" is not one of redfish, ipmi`, nil},
		{"wrong type: list for prefer", one + "    prefer: [ipmi]\n", "line 4: bmcs[0].prefer", []string{"cannot unmarshal !!seq"}},
		{"port out of range", one + "    redfish_port: 70000\n", "line 4: bmcs[0].redfish_port: 70000 is not a port", nil},
		{"negative port", one + "    ipmi_port: -1\n", "line 4: bmcs[0].ipmi_port: -1 is not a port", nil},
		{"bad scheme", one + "    redfish_scheme: ftp\n", "line 4: bmcs[0].redfish_scheme", nil},
		{"bad schema", one + "    redfish_schema: newest\n", `line 4: bmcs[0].redfish_schema: "newest" is not one of auto, legacy, modern`, nil},
		{"schema in capitals", one + "    redfish_schema: Legacy\n", `line 4: bmcs[0].redfish_schema: "Legacy" is not one of auto, legacy, modern`, nil},
		{"wrong type: list for schema", one + "    redfish_schema: [legacy]\n", "line 4: bmcs[0].redfish_schema", []string{"cannot unmarshal !!seq"}},
		{"bad label name", one + "    labels: {\"1x\": y}\n", "line 4: bmcs[0].labels", []string{"not a valid label name"}},
		{"reserved label", one + "    labels: {bmc: y}\n", "line 4: bmcs[0].labels", []string{"reserved"}},
		{"duplicate id", one + "  - id: a\n    address: y\n", `line 4: bmcs[1].id: "a" already used at line 2`, nil},
		{"defaults: bad protocol", "defaults:\n  protocol: snmp\n" + one, "line 2: defaults.protocol", nil},
		{"defaults: bad prefer", "defaults:\n  prefer: xcc\n" + one, `line 2: defaults.prefer: "xcc"`, nil},
		{"defaults: bad schema", "defaults:\n  interval: 10s\n  redfish_schema: sensors\n" + one, `line 3: defaults.redfish_schema: "sensors" is not one of auto, legacy, modern`, nil},
		{"defaults: interval below the minimum", "defaults:\n  interval: 10ms\n" + one, "line 2: defaults.interval", nil},
		{"defaults: reserved label", "defaults:\n  labels: {__name__: x}\n" + one, "line 2: defaults.labels", nil},
		{"syntax error", "bmcs:\n  - id: a\n\taddress: x\n", "line 3: ", nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Parse([]byte(tc.doc))
			requireLocated(t, err, tc.want, tc.also...)
		})
	}
}

// TestInvalidCSVTable: a CSV inventory's key is its column.
func TestInvalidCSVTable(t *testing.T) {
	for _, tc := range []struct{ name, doc, want string }{
		{"no id column", "address\nx\n", `line 1: no "id" column`},
		{"no address column", "id\nx\n", `line 1: no "address" column`},
		{"nameless column", "id,address,\na,x,y\n", "line 1: column 3 has no name"},
		{"duplicate column", "id,address,ID\n", `line 1: column "id" appears twice`},
		{"bad port", "id,address,ipmi_port\na,x,six\n", `line 2: column ipmi_port: "six"`},
		{"port out of range", "id,address,redfish_port\na,x,70000\n", "line 2: redfish_port: 70000 is not a port"},
		{"bad interval", "id,address,interval\na,x,soon\n", `line 2: column interval: "soon"`},
		{"interval below the minimum", "id,address,interval\na,x,1ms\n", "line 2: interval: 1ms is below the minimum"},
		{"bad bool", "id,address,insecure_skip_verify\na,x,maybe\n", `line 2: column insecure_skip_verify: "maybe"`},
		{"bad protocol", "id,address,protocol\na,x,snmp\n", `line 2: protocol: "snmp"`},
		{"bad prefer", "id,address,protocol,prefer\na,x,both,snmp\n", `line 2: prefer: "snmp" is not one of redfish, ipmi`},
		{"bad schema", "id,address,redfish_schema\na,x,\na,y,thermal\n", `line 3: redfish_schema: "thermal" is not one of auto, legacy, modern`},
		{"missing id", "id,address\n,x\n", "line 2: id: must be set"},
		{"duplicate id", "id,address\na,x\na,y\n", `line 3: id "a" already used at line 2`},
		{"bad label", "id,address,1rack\na,x,3\n", `line 2: labels: "1rack" is not a valid label name`},
		{"short row", "id,address,site\na,x\n", "line 2"},
		{"bare quote", "id,address\na,\"x\"y\n", "line 2"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ParseCSV(strings.NewReader(tc.doc))
			require.Error(t, err)
			t.Log(err)
			require.ErrorContains(t, err, tc.want)
			for _, l := range strings.Split(err.Error(), "\n") {
				require.Regexp(t, `line \d+`, l)
			}
		})
	}
}

// TestInvalidCredentialsTable: a credentials file's problems name the
// credentials entry and the line, never the password.
func TestInvalidCredentialsTable(t *testing.T) {
	for _, tc := range []struct{ name, doc, want string }{
		{"unknown key", "lab:\n  username: u\n  password: pw-value\n  user: x\n", "line 4: lab.user: unknown key"},
		{"wrong type", "lab:\n  username: [u]\n  password: pw-value\n", "line 2: lab.username"},
		{"not a map", "- lab\n", "line 1"},
		{"missing username", "lab:\n  password: pw-value\n", "line 1: lab.username: must be set"},
		{"password and password file", "ok:\n  username: u\n  password: p\nlab:\n  username: u\n  password: pw-value\n  password_file: /p\n", "line 4: lab: set exactly one of password, password_file"},
		{"neither password nor file", "lab:\n  username: u\n", "line 1: lab: set exactly one of password, password_file"},
		{"name with a dot", "dc.east:\n  username: u\n", `line 1: "dc.east": set exactly one`},
		// A password in place of the entry: the type error must not
		// quote it.
		{"password for an entry", "lab: pw-value\n", "line 1: lab: cannot unmarshal !!str into inventory.Credential"},
		{"password for a user name", "lab:\n  username: {pw-value: x}\n  password: p\n", "line 2: lab.username"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := filepath.Join(t.TempDir(), "credentials.yml")
			require.NoError(t, os.WriteFile(p, []byte(tc.doc), 0o600))
			_, err := LoadCredentials(p)
			requireLocated(t, err, tc.want)
		})
	}
}

// TestInvalidEntryTable: an entry of the gateway's inventory KV bucket.
func TestInvalidEntryTable(t *testing.T) {
	for _, tc := range []struct{ name, doc, want string }{
		{"unknown key", "id: a\naddress: x\nport: 1\n", "line 3: port: unknown key"},
		{"missing address", "id: a\n", "line 1: address: must be set"},
		{"bad protocol", "id: a\naddress: x\nprotocol: snmp\n", "line 3: protocol"},
		{"bad prefer", "id: a\naddress: x\nprotocol: both\nprefer: both\n", `line 4: prefer: "both" is not one of redfish, ipmi`},
		{"bad schema", "id: a\naddress: x\nredfish_schema: both\n", `line 3: redfish_schema: "both" is not one of auto, legacy, modern`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ParseEntry([]byte(tc.doc))
			requireLocated(t, err, tc.want)
		})
	}
}

func TestLocateErrorsKeepsWhatItCannotPlace(t *testing.T) {
	err := yamlx.LocateErrors([]byte("a: 1\n"), os.ErrNotExist)
	require.ErrorIs(t, err, os.ErrNotExist)
	require.NoError(t, yamlx.LocateErrors([]byte("a: 1\n"), nil))
}

// TestLocateErrorsBoundsItsWork: a document with a problem in every one
// of thousands of entries reports the first 100 and how many more, fast.
func TestLocateErrorsBoundsItsWork(t *testing.T) {
	var b strings.Builder
	b.WriteString("bmcs:\n")
	for i := range 5000 {
		fmt.Fprintf(&b, "  - id: b%d\n    address: x\n    ipmi_port: p%d\n", i, i)
	}
	start := time.Now()
	_, err := Parse([]byte(b.String()))
	require.Error(t, err)
	lines := strings.Split(err.Error(), "\n")
	require.Len(t, lines, 101)
	require.Contains(t, lines[0], "line 4: bmcs[0].ipmi_port: cannot unmarshal")
	require.Contains(t, lines[100], "and 4900 more problems")
	require.Less(t, time.Since(start), 10*time.Second)
}
