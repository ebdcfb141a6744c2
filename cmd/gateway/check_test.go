package main

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/nats-io/jwt/v2"
	"github.com/nats-io/nkeys"
	"github.com/stretchr/testify/require"

	"github.com/bmcstream/bmcstream/internal/testbed"
)

// natsUser returns a user nkey seed and a creds file content (a user JWT
// signed by a fresh account, and the user's seed).
func natsUser(t *testing.T) (seed, creds string) {
	t.Helper()
	akp, err := nkeys.CreateAccount()
	require.NoError(t, err)
	ukp, err := nkeys.CreateUser()
	require.NoError(t, err)
	pub, err := ukp.PublicKey()
	require.NoError(t, err)
	s, err := ukp.Seed()
	require.NoError(t, err)
	tok, err := jwt.NewUserClaims(pub).Encode(akp)
	require.NoError(t, err)
	b, err := jwt.FormatUserConfig(tok, s)
	require.NoError(t, err)
	return string(s), string(b)
}

// TestConfigCheck runs `gateway --config.check` on one case per kind of
// problem a run would meet and the check used to pass: a malformed NATS
// nkey seed file or creds file, an inventory address with a port out of
// range or that is no address (the gateway polls nothing, but the
// inventory it checks is the fleet's); a sink whose TLS files do not load.
// Each exits 1 naming the key and its line, without a secret; the valid
// configuration exits 0. (The gateway reads no credentials file: the
// pollers' check covers credentials references.)
func TestConfigCheck(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the gateway binary")
	}
	bin := testbed.Build(t, "github.com/bmcstream/bmcstream/cmd/gateway")
	seed, creds := natsUser(t)
	const invOK = "bmcs:\n  - id: bmc-1\n    address: 10.0.0.1\n  - id: bmc-2\n    address: \"[2001:db8::2]:8443\"\n"
	for _, tc := range []struct {
		name string
		// nats is the auth part of the nats: block; SEED, CREDS and JUNK
		// stand for files holding a user seed, a creds file, junk.
		nats, inv, sink string
		want            []string // nil: valid
	}{
		{name: "valid", nats: "  nkey_seed_file: SEED\n", inv: invOK},
		{name: "valid creds file", nats: "  creds_file: CREDS\n", inv: invOK},
		{name: "malformed nkey_seed_file", nats: "  nkey_seed_file: JUNK\n", inv: invOK,
			want: []string{"line 2: nats.nkey_seed_file: ", "holds no user nkey seed"}},
		{name: "malformed creds_file", nats: "  creds_file: JUNK\n", inv: invOK,
			want: []string{"line 2: nats.creds_file: ", "no user JWT"}},
		{name: "port out of range", inv: strings.Replace(invOK, "10.0.0.1", "127.0.0.1:99999", 1),
			want: []string{"line 3: bmcs[0].address: ", `port "99999" is not from 1 to 65535`}},
		{name: "not an address", inv: strings.Replace(invOK, "10.0.0.1", "not an address!", 1),
			want: []string{"line 3: bmcs[0].address: ", `' ' is not allowed in a host name`}},
		{name: "sink CA file that holds no certificate", inv: invOK, sink: "    tls_config:\n      ca_file: JUNK\n",
			want: []string{"line 6: remote_write[0]"}},
		{name: "both addresses at once", inv: strings.Replace(strings.Replace(invOK, "10.0.0.1", "127.0.0.1:99999", 1), `"[2001:db8::2]:8443"`, "not an address!", 1),
			want: []string{"line 3: bmcs[0].address: ", "line 5: bmcs[1].address: "}},
		{name: "configuration and inventory problems at once", nats: "  creds_file: JUNK\n", inv: strings.Replace(invOK, "10.0.0.1", "not an address!", 1),
			want: []string{"line 2: nats.creds_file: ", "line 3: bmcs[0].address: "}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			write := func(name, content string) string {
				p := filepath.Join(dir, name)
				require.NoError(t, os.WriteFile(p, []byte(content), 0o600))
				return p
			}
			files := strings.NewReplacer("SEED", write("user.nk", seed), "CREDS", write("user.creds", creds), "JUNK", write("junk", "SUjunk-that-is-no-seed\n"))
			cfg := fmt.Sprintf("nats:\n%s  url: nats://127.0.0.1:4222\ninventory:\n  files: [%s]\nremote_write:\n  - name: prom\n    url: http://127.0.0.1:9090/api/v1/write\n%s",
				files.Replace(tc.nats), write("inventory.yml", tc.inv), files.Replace(tc.sink))
			cmd := exec.Command(bin, "--config.check", "--config.file="+write("gateway.yml", cfg))
			out, err := cmd.CombinedOutput()
			t.Logf("%s", out)
			require.NotContains(t, string(out), seed)
			if tc.want == nil {
				require.NoError(t, err)
				require.Contains(t, string(out), "is valid")
				return
			}
			require.Error(t, err)
			require.Equal(t, 1, cmd.ProcessState.ExitCode())
			for _, w := range tc.want {
				require.Contains(t, string(out), w)
			}
		})
	}
}
