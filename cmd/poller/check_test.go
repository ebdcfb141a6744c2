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

// TestConfigCheck runs `poller --config.check` on one case per kind of
// problem a run would meet and the check used to pass: a malformed NATS
// nkey seed file or creds file, an inventory credentials reference that
// names nothing, a port out of range, an address that is no address. Each
// exits 1 naming the key and its line, without a secret; several problems
// are all reported at once; the valid configuration exits 0.
func TestConfigCheck(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the poller binary")
	}
	bin := testbed.Build(t, "github.com/bmcstream/bmcstream/cmd/poller")
	seed, creds := natsUser(t)
	const invOK = "bmcs:\n  - id: bmc-1\n    address: 10.0.0.1\n    credentials: lab\n  - id: bmc-2\n    address: \"[2001:db8::2]:8443\"\n    credentials: lab\n"
	for _, tc := range []struct {
		name string
		// nats is the auth part of the nats: block; SEED, CREDS and JUNK
		// stand for files holding a user seed, a creds file, junk.
		nats, inv string
		want      []string // "" : valid
	}{
		{name: "valid", nats: "  nkey_seed_file: SEED\n", inv: invOK},
		{name: "valid creds file", nats: "  creds_file: CREDS\n", inv: invOK},
		{name: "malformed nkey_seed_file", nats: "  nkey_seed_file: JUNK\n", inv: invOK,
			want: []string{"line 3: nats.nkey_seed_file: ", "holds no user nkey seed"}},
		{name: "malformed creds_file", nats: "  creds_file: JUNK\n", inv: invOK,
			want: []string{"line 3: nats.creds_file: ", "no user JWT"}},
		{name: "dangling credentials reference", inv: strings.Replace(invOK, "credentials: lab\n  - id: bmc-2", "credentials: lba\n  - id: bmc-2", 1),
			want: []string{"line 4: bmcs[0].credentials: ", `"lba" names no entry`}},
		{name: "port out of range", inv: strings.Replace(invOK, "10.0.0.1", "127.0.0.1:99999", 1),
			want: []string{"line 3: bmcs[0].address: ", `port "99999" is not from 1 to 65535`}},
		{name: "not an address", inv: strings.Replace(invOK, "10.0.0.1", "not an address!", 1),
			want: []string{"line 3: bmcs[0].address: ", `"not an address!": ' ' is not allowed in a host name`}},
		{name: "every problem at once", inv: strings.Replace(strings.Replace(invOK, "10.0.0.1", "127.0.0.1:99999", 1), "lab\n", "nope\n", 2),
			want: []string{"line 3: bmcs[0].address: ", "line 4: bmcs[0].credentials: ", "line 7: bmcs[1].credentials: "}},
		{name: "configuration and inventory problems at once", nats: "  creds_file: JUNK\n", inv: strings.Replace(strings.Replace(invOK, "10.0.0.1", "not an address!", 1), "lab\n", "nope\n", 1),
			want: []string{"line 3: nats.creds_file: ", "line 3: bmcs[0].address: ", "line 4: bmcs[0].credentials: "}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			write := func(name, content string) string {
				p := filepath.Join(dir, name)
				require.NoError(t, os.WriteFile(p, []byte(content), 0o600))
				return p
			}
			files := strings.NewReplacer("SEED", write("user.nk", seed), "CREDS", write("user.creds", creds), "JUNK", write("junk", "SUjunk-that-is-no-seed\n"))
			cfg := fmt.Sprintf("poller_id: check\nnats:\n%s  url: nats://127.0.0.1:4222\ninventory:\n  files: [%s]\n  credentials_file: %s\n",
				files.Replace(tc.nats), write("inventory.yml", tc.inv), write("credentials.yml", "lab:\n  username: monitor\n  password: lab-pw\n"))
			cmd := exec.Command(bin, "--config.check", "--config.file="+write("poller.yml", cfg))
			out, err := cmd.CombinedOutput()
			t.Logf("%s", out)
			require.NotContains(t, string(out), "lab-pw")
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
