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

func TestParseCSV(t *testing.T) {
	inv, err := ParseCSV(strings.NewReader(`id,address,protocol,credentials,interval,ipmi_port,site,Rack,position,owner
# exported from DCIM
srv-1,10.0.0.1,redfish,lab,,,ctc,i5,12,
srv-2, 10.0.0.2 ,IPMI,lab,10s,6230,ctc,i5,14,hpc
`))
	require.NoError(t, err)
	require.Equal(t, 2, inv.Len())
	b, _ := inv.Get("srv-2")
	require.Equal(t, "10.0.0.2", b.Address)
	require.Equal(t, IPMI, b.Protocol)
	require.Equal(t, 6230, b.IPMIPort)
	require.Equal(t, model.Duration(10*time.Second), b.Interval)
	require.Equal(t, map[string]string{"site": "ctc", "rack": "i5", "position": "14", "owner": "hpc"}, b.Labels)
	require.Equal(t, 4, b.Line)
	b, _ = inv.Get("srv-1")
	require.Equal(t, DefaultInterval, b.Interval)
	require.NotContains(t, b.Labels, "owner")
}

func TestParseCSVErrors(t *testing.T) {
	for _, tc := range []struct{ name, doc, want string }{
		{"no id column", "address\nx\n", `line 1: no "id" column`},
		{"duplicate column", "id,address,id\n", `column "id" appears twice`},
		{"bad port", "id,address,ipmi_port\na,x,six\n", `line 2: column ipmi_port: "six"`},
		{"bad interval", "id,address,interval\na,x,soon\n", `line 2: column interval: "soon"`},
		{"bad protocol", "id,address,protocol\na,x,snmp\n", `line 2: protocol: "snmp"`},
		{"duplicate id", "id,address\na,x\na,y\n", `line 3: id "a" already used at line 2`},
		{"bad label", "id,address,1rack\na,x,3\n", "not a valid label name"},
		{"short row", "id,address,site\na,x\n", "line 2"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ParseCSV(strings.NewReader(tc.doc))
			require.ErrorContains(t, err, tc.want)
		})
	}
}

func TestLoadCSV(t *testing.T) {
	p := filepath.Join(t.TempDir(), "fleet.CSV")
	require.NoError(t, os.WriteFile(p, []byte("id,address\na,x\n"), 0o600))
	inv, err := Load(p)
	require.NoError(t, err)
	require.Equal(t, 1, inv.Len())
}

func TestCredentials(t *testing.T) {
	dir := t.TempDir()
	pw := filepath.Join(dir, "pw")
	require.NoError(t, os.WriteFile(pw, []byte("from-file\n"), 0o600))
	p := filepath.Join(dir, "creds.yml")
	require.NoError(t, os.WriteFile(p, []byte("lab:\n  username: admin\n  password: s3cr3t-distinctive\nrot:\n  username: ops\n  password_file: "+pw+"\n"), 0o600))
	c, err := LoadCredentials(p)
	require.NoError(t, err)
	u, s, err := c.Lookup("lab")
	require.NoError(t, err)
	require.Equal(t, "admin", u)
	require.Equal(t, "s3cr3t-distinctive", s.Reveal())
	_, s, err = c.Lookup("rot")
	require.NoError(t, err)
	require.Equal(t, "from-file", s.Reveal())
	_, _, err = c.Lookup("nope")
	require.ErrorContains(t, err, "BMCSTREAM_CREDENTIALS_NOPE_USERNAME")

	c.getenv = func(k string) string {
		return map[string]string{"BMCSTREAM_CREDENTIALS_DC_EAST_USERNAME": "envuser", "BMCSTREAM_CREDENTIALS_DC_EAST_PASSWORD": "envpw"}[k]
	}
	u, s, err = c.Lookup("dc-east")
	require.NoError(t, err)
	require.Equal(t, "envuser", u)
	require.Equal(t, "envpw", s.Reveal())

	require.NoError(t, os.WriteFile(p, []byte("lab:\n  username: admin\n  password: a\n  password_file: b\nx:\n  user: y\n"), 0o600))
	_, err = LoadCredentials(p)
	require.ErrorContains(t, err, "line 6")
	require.NoError(t, os.WriteFile(p, []byte("lab:\n  username: admin\n  password: a\n  password_file: b\n"), 0o600))
	_, err = LoadCredentials(p)
	require.ErrorContains(t, err, "exactly one of password, password_file")
	require.NotContains(t, err.Error(), "admin\n")
}

func FuzzParseCSV(f *testing.F) {
	f.Add("id,address,site\na,10.0.0.1,x\n")
	f.Add("id,address,protocol,ipmi_port\na,b,ipmi,623\n")
	f.Fuzz(func(t *testing.T, doc string) {
		inv, err := ParseCSV(strings.NewReader(doc))
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
