package bus_test

import (
	"log/slog"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// TestCheckFilesLoadsCredentials: CheckFiles (what LoadConfig and
// --config.check run) loads each NATS credential and TLS file as the
// connection would, so a malformed one fails at start under its key,
// naming the file and never its content; well-formed ones pass.
func TestCheckFilesLoadsCredentials(t *testing.T) {
	dir := t.TempDir()
	op := newOperator(t)
	creds, credsSeed, userKP := newUser(t, op.account)
	userSeed, err := userKP.Seed()
	require.NoError(t, err)
	accountSeed, err := op.account.Seed()
	require.NoError(t, err)
	jwtBlock := strings.Split(creds, "------END NATS USER JWT------")[0] + "------END NATS USER JWT------\n"
	seedBlock := creds[len(jwtBlock):]
	p := newPKI(t, "check")
	other := newPKI(t, "other")

	secrets := []string{credsSeed, string(userSeed), string(accountSeed)}
	for _, tc := range []struct {
		name, auth string
		want       string // "" when the files are good
	}{
		{"user nkey seed", "nkey_seed_file: " + writeFile(t, dir, "user.nk", string(userSeed)+"\n"), ""},
		{"creds file", "creds_file: " + writeFile(t, dir, "user.creds", creds), ""},
		{"tls files", "tls:\n  ca_file: " + p.caFile + "\n  cert_file: " + p.clientCert + "\n  key_file: " + p.client, ""},
		{"nkey seed file of junk", "nkey_seed_file: " + writeFile(t, dir, "junk.nk", "not a seed at all\n"), "nats.nkey_seed_file: "},
		{"nkey seed cut short", "nkey_seed_file: " + writeFile(t, dir, "short.nk", string(userSeed[:30])+"\n"), "nats.nkey_seed_file: "},
		{"account seed as nkey seed", "nkey_seed_file: " + writeFile(t, dir, "account.nk", string(accountSeed)+"\n"), "nats.nkey_seed_file: "},
		{"creds file of junk", "creds_file: " + writeFile(t, dir, "junk.creds", "not a creds file\n"), "nats.creds_file: "},
		{"creds file without seed", "creds_file: " + writeFile(t, dir, "noseed.creds", jwtBlock), "no user seed"},
		{"creds file with a broken JWT", "creds_file: " + writeFile(t, dir, "badjwt.creds", strings.Replace(jwtBlock, "eyJ", "eyX", 1)+seedBlock), "no user JWT"},
		{"creds file without JWT", "creds_file: " + writeFile(t, dir, "nojwt.creds", seedBlock), "no user JWT"},
		{"tls ca file not PEM", "tls:\n  ca_file: " + writeFile(t, dir, "ca.txt", "no certificate\n"), "nats.tls.ca_file: "},
		{"tls key of another certificate", "tls:\n  cert_file: " + p.clientCert + "\n  key_file: " + other.client, "nats.tls.cert_file: "},
		{"empty token file", "token_file: " + writeFile(t, dir, "empty.token", "\n"), "nats.token_file: "},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := parseConfig(t, "nats://127.0.0.1:4222", tc.auth+"\n")
			err := c.CheckFiles()
			if tc.want == "" {
				require.NoError(t, err)
				return
			}
			require.Error(t, err)
			require.Contains(t, err.Error(), tc.want)
			requireNoSecret(t, "error", err.Error(), secrets)
			require.NotContains(t, err.Error(), "not a seed at all")
			if strings.HasPrefix(tc.auth, "nkey_seed_file") {
				// What the check refuses, the connection refuses.
				_, oerr := c.Options("t", slog.New(slog.DiscardHandler))
				require.Error(t, oerr)
			}
		})
	}
}
