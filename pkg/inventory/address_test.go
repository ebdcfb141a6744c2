package inventory

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestCheckAddress(t *testing.T) {
	for _, tc := range []struct {
		address, want string // want: "" when valid, else a part of the error
	}{
		{"10.0.0.5", ""},
		{"10.0.0.5:8443", ""},
		{"bmc-r12-u04.example.net", ""},
		{"bmc_r12.example.net.", ""},
		{"bmc-1:623", ""},
		{"fe80::1", ""},
		{"fe80::1%eth0", ""},
		{"[fe80::1]", ""},
		{"[2001:db8::5]:8443", ""},
		{"127.0.0.1:99999", `port "99999" is not from 1 to 65535`},
		{"127.0.0.1:0", `port "0"`},
		{"127.0.0.1:https", `port "https"`},
		{"127.0.0.1:", "without a port"},
		{"not an address!", `' ' is not allowed in a host name`},
		{"bmc!", `'!' is not allowed`},
		{"-bmc.example.net", "starts or ends with '-'"},
		{"bmc..example.net", "empty label"},
		{strings.Repeat("a", 64) + ".net", "longer than 63"},
		{"[10.0.0.5]:443", "not an IPv6 address"},
		{"[fe80::1", "without closing it"},
		{"[fe80::1]443", "after ']'"},
		{"fe80::1::2", "not an IPv6 address"},
		{"https://10.0.0.5", "is a URL"},
		{"admin:hunter2@10.0.0.5", "credentials do not belong in an address"},
		{"", "must be set"},
	} {
		t.Run(tc.address, func(t *testing.T) {
			err := CheckAddress(tc.address)
			if tc.want == "" {
				require.NoError(t, err)
				return
			}
			require.Error(t, err)
			require.True(t, strings.HasPrefix(err.Error(), "address: "), err.Error())
			require.Contains(t, err.Error(), tc.want)
			require.NotContains(t, err.Error(), "hunter2")
		})
	}
}

// TestCheckFile: every entry's address and credentials reference is
// checked and each problem is placed on its line (YAML key, CSV row).
func TestCheckFile(t *testing.T) {
	dir := t.TempDir()
	credFile := filepath.Join(dir, "credentials.yml")
	require.NoError(t, os.WriteFile(credFile, []byte("lab:\n  username: u\n  password: lab-pw\n"), 0o600))
	creds, err := LoadCredentials(credFile)
	require.NoError(t, err)
	yml := filepath.Join(dir, "inv.yml")
	require.NoError(t, os.WriteFile(yml, []byte(`defaults:
  credentials: lab
bmcs:
  - id: good
    address: 10.0.0.1
  - id: port
    address: 127.0.0.1:99999
  - id: dangling
    address: 10.0.0.3
    credentials: nope
  - id: both
    credentials: nope
    address: not an address!
`), 0o600))
	err = CheckFile(yml, CheckOptions{Credentials: creds})
	require.Error(t, err)
	msg := err.Error()
	t.Log(msg)
	for _, want := range []string{
		"line 7: bmcs[1].address: ",
		"line 10: bmcs[2].credentials: ",
		`"nope" names no entry of the credentials file`,
		"line 12: bmcs[3].credentials: ",
		"line 13: bmcs[3].address: ",
	} {
		require.Contains(t, msg, want)
	}
	require.Equal(t, 4, strings.Count(msg, "\n")+1, "one line per problem")
	require.NotContains(t, msg, "lab-pw")
	// Without a credentials store only addresses are checked.
	err = CheckFile(yml, CheckOptions{})
	require.Error(t, err)
	require.NotContains(t, err.Error(), "nope")

	csv := filepath.Join(dir, "inv.csv")
	require.NoError(t, os.WriteFile(csv, []byte("id,address,credentials\ngood,10.0.0.1,lab\nport,10.0.0.2:99999,lab\ndangling,10.0.0.3,nope\n"), 0o600))
	err = CheckFile(csv, CheckOptions{Credentials: creds})
	require.Error(t, err)
	require.Contains(t, err.Error(), "line 3: address: ")
	require.Contains(t, err.Error(), "line 4: credentials: ")
}
