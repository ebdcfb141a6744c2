package bus

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"os"

	"github.com/nats-io/jwt/v2"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nkeys"

	"github.com/bmcstream/bmcstream/pkg/secret"
)

// checkContent reports, under key, why a readable credential or TLS file
// would fail the connection: it loads the file as Options and nats.go do
// at connect time, so a malformed seed or creds file is found at start
// (and by --config.check) instead of in an endless reconnect loop.
// Messages name the file, never its content. Files in unreadable are
// already reported and left alone.
func (c *Config) checkContent(unreadable map[string]bool) error {
	var errs []error
	readable := func(path string) bool { return path != "" && !unreadable[path] }
	if readable(c.PasswordFile) {
		if s, err := secret.FromFile(c.PasswordFile); err == nil && s.Reveal() == "" {
			errs = append(errs, fmt.Errorf("nats.password_file: %s is empty", c.PasswordFile))
		}
	}
	if readable(c.TokenFile) {
		if s, err := secret.FromFile(c.TokenFile); err == nil && s.Reveal() == "" {
			errs = append(errs, fmt.Errorf("nats.token_file: %s is empty", c.TokenFile))
		}
	}
	if readable(c.NKeySeedFile) {
		// What the connection does: nats.NkeyOptionFromSeed parses the
		// seed and insists on a user key.
		if _, err := nats.NkeyOptionFromSeed(c.NKeySeedFile); err != nil {
			errs = append(errs, fmt.Errorf("nats.nkey_seed_file: %s holds no user nkey seed (a line starting with SU): %s", c.NKeySeedFile, nkeyReason(err)))
		}
	}
	if readable(c.CredsFile) {
		if err := credsProblem(c.CredsFile); err != nil {
			errs = append(errs, fmt.Errorf("nats.creds_file: %s: %w", c.CredsFile, err))
		}
	}
	if readable(c.TLS.CAFile) {
		if b, err := os.ReadFile(c.TLS.CAFile); err == nil && !x509.NewCertPool().AppendCertsFromPEM(b) {
			errs = append(errs, fmt.Errorf("nats.tls.ca_file: %s holds no PEM certificate", c.TLS.CAFile))
		}
	}
	if readable(c.TLS.CertFile) && readable(c.TLS.KeyFile) {
		if _, err := tls.LoadX509KeyPair(c.TLS.CertFile, c.TLS.KeyFile); err != nil {
			errs = append(errs, fmt.Errorf("nats.tls.cert_file: %s and key_file %s are not a certificate and its key: %w", c.TLS.CertFile, c.TLS.KeyFile, err))
		}
	}
	return errors.Join(errs...)
}

// credsProblem says what a NATS credentials file lacks: a user JWT that
// decodes (nats.go sends it as is, and the server refuses the connection
// when it does not) and the user seed that signs the server's nonce.
func credsProblem(path string) error {
	b, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	defer clear(b)
	tok, err := nkeys.ParseDecoratedJWT(b)
	if err != nil {
		return errors.New("no user JWT in it")
	}
	if _, err := jwt.DecodeUserClaims(tok); err != nil {
		return errors.New("no user JWT in it (a -----BEGIN NATS USER JWT----- block)")
	}
	kp, err := nkeys.ParseDecoratedUserNKey(b)
	if err != nil {
		return errors.New("no user seed in it (a -----BEGIN USER NKEY SEED----- block)")
	}
	kp.Wipe()
	return nil
}

// nkeyReason is the part of an nkey error that can be shown: the nkeys
// and nats.go errors are fixed sentences, never the file's bytes.
func nkeyReason(err error) string {
	for _, known := range []error{nkeys.ErrNoSeedFound, nkeys.ErrInvalidNkeySeed, nkeys.ErrInvalidSeed,
		nkeys.ErrInvalidSeedLen, nkeys.ErrInvalidChecksum, nkeys.ErrInvalidEncoding, nkeys.ErrInvalidPrefixByte} {
		if errors.Is(err, known) {
			return known.Error()
		}
	}
	return "not a valid user seed"
}
