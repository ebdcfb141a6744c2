package bus_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"log/slog"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/jwt/v2"
	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/nats-io/nkeys"
	"github.com/stretchr/testify/require"
	"go.yaml.in/yaml/v2"

	"github.com/bmcstream/bmcstream/internal/testbed"
	"github.com/bmcstream/bmcstream/pkg/bus"
)

// startServer starts an in-process NATS server with JetStream on a random
// loopback port, configured further by configure.
func startServer(t *testing.T, configure func(*server.Options)) *server.Server {
	t.Helper()
	opts := &server.Options{
		ServerName: "auth-test",
		Host:       "127.0.0.1",
		Port:       server.RANDOM_PORT,
		JetStream:  true,
		StoreDir:   t.TempDir(),
		NoSigs:     true,
		NoLog:      true,
	}
	if configure != nil {
		configure(opts)
	}
	srv, err := server.NewServer(opts)
	require.NoError(t, err)
	srv.Start()
	require.True(t, srv.ReadyForConnections(10*time.Second), "nats server not ready")
	t.Cleanup(func() { srv.Shutdown(); srv.WaitForShutdown() })
	return srv
}

// natsURL is the server's client address with the plain nats:// scheme,
// so that TLS is negotiated because the configuration or the server asks
// for it, never because of the URL.
func natsURL(srv *server.Server) string {
	return "nats://" + srv.Addr().String()
}

// parseConfig decodes a nats: block the way the programs do: strictly,
// with defaults, then validated.
func parseConfig(t *testing.T, url, auth string) *bus.Config {
	t.Helper()
	var c bus.Config
	require.NoError(t, yaml.UnmarshalStrict([]byte("url: "+url+"\nstream:\n  storage: memory\n"+auth), &c))
	require.NoError(t, c.Validate())
	return &c
}

// connect dials with the configuration's options. RetryOnFailedConnect
// is turned off so that a refused connection returns its error here
// instead of retrying in the background as the programs do.
func connect(c *bus.Config, logger *slog.Logger) (*nats.Conn, error) {
	opts, err := c.Options("auth-test", logger)
	if err != nil {
		return nil, err
	}
	return nats.Connect(c.URL, append(opts, nats.RetryOnFailedConnect(false), nats.Timeout(5*time.Second))...)
}

// roundTrip publishes a snapshot-sized message into the raw stream and
// consumes it back through a durable consumer, as a poller and a gateway
// do.
func roundTrip(t *testing.T, nc *nats.Conn, c *bus.Config) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	js, err := jetstream.New(nc)
	require.NoError(t, err)
	stream, err := bus.EnsureStream(ctx, js, c.Stream)
	require.NoError(t, err)
	payload := []byte("snapshot " + t.Name())
	_, err = js.PublishMsg(ctx, &nats.Msg{
		Subject: bus.RawSubject("10.0.0.5"),
		Data:    payload,
		Header:  nats.Header{nats.MsgIdHdr: []string{t.Name()}}, // unique: the duplicate window would drop a repeat
	})
	require.NoError(t, err)
	cons, err := bus.EnsureConsumer(ctx, stream, bus.ConsumerConfig{Durable: "auth-test", AckWait: 5 * time.Second, MaxAckPending: 10})
	require.NoError(t, err)
	msgs, err := cons.Fetch(1, jetstream.FetchMaxWait(5*time.Second))
	require.NoError(t, err)
	var got [][]byte
	for m := range msgs.Messages() {
		got = append(got, m.Data())
		require.NoError(t, m.Ack())
	}
	require.NoError(t, msgs.Error())
	require.Equal(t, [][]byte{payload}, got)
}

// requireNoSecret fails when any secret appears in s.
func requireNoSecret(t *testing.T, where, s string, secrets []string) {
	t.Helper()
	for _, sec := range secrets {
		require.NotContains(t, s, sec, "a credential leaked into %s", where)
	}
}

// refusedAsTheProgramsSeeIt connects with the programs' own options
// (retrying in the background): the connection never comes up, and the
// log says why without the credential.
func refusedAsTheProgramsSeeIt(t *testing.T, c *bus.Config, want string, secrets []string) {
	t.Helper()
	logs := &testbed.SyncBuffer{}
	opts, err := c.Options("auth-test", slog.New(slog.NewTextHandler(logs, nil)))
	require.NoError(t, err)
	nc, err := nats.Connect(c.URL, opts...)
	require.NoError(t, err, "the programs' options retry in the background")
	defer nc.Close()
	require.Eventually(t, func() bool { return strings.Contains(logs.String(), "nats connection failed") }, 10*time.Second, 10*time.Millisecond)
	require.NotEqual(t, nats.CONNECTED, nc.Status())
	require.Contains(t, strings.ToLower(logs.String()), want)
	requireNoSecret(t, "the log", logs.String(), secrets)
}

func writeFile(t *testing.T, dir, name, content string) string {
	t.Helper()
	p := filepath.Join(dir, name)
	require.NoError(t, os.WriteFile(p, []byte(content), 0o600))
	return p
}

// operator is a decentralised-auth (JWT) setup: an operator, a system
// account and an application account with JetStream, held by a memory
// resolver.
type operator struct {
	claims   *jwt.OperatorClaims
	resolver *server.MemAccResolver
	sysPub   string
	account  nkeys.KeyPair
}

func newOperator(t *testing.T) *operator {
	t.Helper()
	okp, err := nkeys.CreateOperator()
	require.NoError(t, err)
	opub, err := okp.PublicKey()
	require.NoError(t, err)
	newAccount := func(name string, js bool) (nkeys.KeyPair, string, string) {
		kp, err := nkeys.CreateAccount()
		require.NoError(t, err)
		pub, err := kp.PublicKey()
		require.NoError(t, err)
		ac := jwt.NewAccountClaims(pub)
		ac.Name = name
		if js {
			ac.Limits.JetStreamLimits = jwt.JetStreamLimits{MemoryStorage: -1, DiskStorage: -1, Streams: -1, Consumer: -1}
		}
		tok, err := ac.Encode(okp)
		require.NoError(t, err)
		return kp, pub, tok
	}
	_, sysPub, sysJWT := newAccount("SYS", false)
	akp, apub, aJWT := newAccount("BMCSTREAM", true)
	oc := jwt.NewOperatorClaims(opub)
	oc.Name = "bmcstream-test"
	oc.SystemAccount = sysPub
	otok, err := oc.Encode(okp)
	require.NoError(t, err)
	claims, err := jwt.DecodeOperatorClaims(otok)
	require.NoError(t, err)
	res := &server.MemAccResolver{}
	require.NoError(t, res.Store(sysPub, sysJWT))
	require.NoError(t, res.Store(apub, aJWT))
	return &operator{claims: claims, resolver: res, sysPub: sysPub, account: akp}
}

func (o *operator) configure(opts *server.Options) {
	opts.TrustedOperators = []*jwt.OperatorClaims{o.claims}
	opts.AccountResolver = o.resolver
	opts.SystemAccount = o.sysPub
}

// user issues a user of signer and returns its creds file content and seed.
func newUser(t *testing.T, signer nkeys.KeyPair) (creds, seed string, kp nkeys.KeyPair) {
	t.Helper()
	kp, err := nkeys.CreateUser()
	require.NoError(t, err)
	pub, err := kp.PublicKey()
	require.NoError(t, err)
	s, err := kp.Seed()
	require.NoError(t, err)
	uc := jwt.NewUserClaims(pub)
	uc.Name = "poller"
	tok, err := uc.Encode(signer)
	require.NoError(t, err)
	b, err := jwt.FormatUserConfig(tok, s)
	require.NoError(t, err)
	return string(b), string(s), kp
}

// TestAuthentication starts a server requiring each kind of credential
// the nats: block supports: the right credential connects and a snapshot
// travels through JetStream; a wrong or missing one is refused with an
// error, and neither the error nor the log contains the credential.
func TestAuthentication(t *testing.T) {
	type attempt struct {
		name string
		auth string // YAML keys of the nats: block
	}
	type authCase struct {
		name      string
		configure func(*server.Options)
		good      []attempt
		bad       []attempt
		secrets   []string
		// want is what the refusal says, lower-cased.
		want string
	}
	dir := t.TempDir()

	const password, wrongPassword = "nats-pw-8c2e91", "nats-pw-wrong-55aa"
	const token, wrongToken = "nats-token-3d7f02", "nats-token-wrong-77bb"

	userSeed, wrongSeed := func() (string, string) {
		a, err := nkeys.CreateUser()
		require.NoError(t, err)
		b, err := nkeys.CreateUser()
		require.NoError(t, err)
		as, err := a.Seed()
		require.NoError(t, err)
		bs, err := b.Seed()
		require.NoError(t, err)
		return string(as), string(bs)
	}()
	seedKP, err := nkeys.FromSeed([]byte(userSeed))
	require.NoError(t, err)
	userPub, err := seedKP.PublicKey()
	require.NoError(t, err)

	op := newOperator(t)
	creds, credsSeed, _ := newUser(t, op.account)
	strangerAccount, err := nkeys.CreateAccount()
	require.NoError(t, err)
	strangerCreds, strangerSeed, _ := newUser(t, strangerAccount)
	// A creds file whose seed is not the JWT's user: it cannot sign the
	// server's nonce.
	otherCreds, otherSeed, _ := newUser(t, op.account)
	mismatched := strings.Split(creds, "------END NATS USER JWT------")[0] + "------END NATS USER JWT------" +
		strings.SplitN(otherCreds, "------END NATS USER JWT------", 2)[1]

	cases := []authCase{
		{
			name: "user and password",
			configure: func(o *server.Options) {
				o.Users = []*server.User{{Username: "poller", Password: password}}
			},
			good: []attempt{
				{"password", "user: poller\npassword: " + password + "\n"},
				{"password_file", "user: poller\npassword_file: " + writeFile(t, dir, "pw", password+"\n") + "\n"},
			},
			bad: []attempt{
				{"wrong password", "user: poller\npassword: " + wrongPassword + "\n"},
				{"wrong password_file", "user: poller\npassword_file: " + writeFile(t, dir, "wrong-pw", wrongPassword) + "\n"},
				{"wrong user", "user: gateway\npassword: " + password + "\n"},
				{"no credentials", ""},
			},
			secrets: []string{password, wrongPassword},
			want:    "authorization violation",
		},
		{
			name:      "token",
			configure: func(o *server.Options) { o.Authorization = token },
			good: []attempt{
				{"token", "token: " + token + "\n"},
				{"token_file", "token_file: " + writeFile(t, dir, "token", token+"\n") + "\n"},
			},
			bad: []attempt{
				{"wrong token", "token: " + wrongToken + "\n"},
				{"wrong token_file", "token_file: " + writeFile(t, dir, "wrong-token", wrongToken) + "\n"},
				{"no credentials", ""},
			},
			secrets: []string{token, wrongToken},
			want:    "authorization violation",
		},
		{
			name:      "nkey",
			configure: func(o *server.Options) { o.Nkeys = []*server.NkeyUser{{Nkey: userPub}} },
			good:      []attempt{{"seed file", "nkey_seed_file: " + writeFile(t, dir, "user.nk", userSeed+"\n") + "\n"}},
			bad: []attempt{
				{"another user's seed", "nkey_seed_file: " + writeFile(t, dir, "wrong.nk", wrongSeed+"\n") + "\n"},
				{"no credentials", ""},
			},
			secrets: []string{userSeed, wrongSeed},
			want:    "authorization violation",
		},
		{
			name:      "creds file",
			configure: op.configure,
			good:      []attempt{{"creds", "creds_file: " + writeFile(t, dir, "user.creds", creds) + "\n"}},
			bad: []attempt{
				{"user of an account the server does not know", "creds_file: " + writeFile(t, dir, "stranger.creds", strangerCreds) + "\n"},
				{"seed that is not the JWT's", "creds_file: " + writeFile(t, dir, "mismatched.creds", mismatched) + "\n"},
				{"no credentials", ""},
			},
			secrets: []string{credsSeed, strangerSeed, otherSeed},
			want:    "authorization violation",
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			srv := startServer(t, tc.configure)
			for _, a := range tc.good {
				t.Run(a.name, func(t *testing.T) {
					logs := &testbed.SyncBuffer{}
					c := parseConfig(t, natsURL(srv), a.auth)
					nc, err := connect(c, slog.New(slog.NewTextHandler(logs, nil)))
					require.NoError(t, err)
					defer nc.Close()
					roundTrip(t, nc, c)
					requireNoSecret(t, "the log", logs.String(), tc.secrets)
				})
			}
			for _, a := range tc.bad {
				t.Run(a.name, func(t *testing.T) {
					c := parseConfig(t, natsURL(srv), a.auth)
					nc, err := connect(c, slog.New(slog.DiscardHandler))
					if err == nil {
						nc.Close()
					}
					require.Error(t, err)
					require.True(t, errors.Is(err, nats.ErrAuthorization), "refused for the credential, not something else: %v", err)
					requireNoSecret(t, "the error", err.Error(), tc.secrets)
					refusedAsTheProgramsSeeIt(t, c, tc.want, tc.secrets)
				})
			}
		})
	}
}

// TestCredentialFilesCheckedAtStart: a missing or malformed credential
// file fails when the options are built, naming the file and not its
// content.
func TestCredentialFilesCheckedAtStart(t *testing.T) {
	dir := t.TempDir()
	const junk = "not-a-credential-1f0c"
	junkFile := writeFile(t, dir, "junk", junk)
	missing := filepath.Join(dir, "missing")
	for _, tc := range []struct {
		auth, want string
	}{
		{"user: u\npassword_file: " + missing, "password_file"},
		{"token_file: " + missing, "token_file"},
		{"nkey_seed_file: " + missing, missing},
		{"nkey_seed_file: " + junkFile, junkFile},
		{"creds_file: " + missing, missing},
		{"creds_file: " + junkFile, junkFile},
	} {
		t.Run(tc.auth, func(t *testing.T) {
			c := parseConfig(t, "nats://127.0.0.1:4222", tc.auth+"\n")
			_, err := c.Options("t", slog.New(slog.DiscardHandler))
			require.Error(t, err)
			require.Contains(t, err.Error(), tc.want)
			require.NotContains(t, err.Error(), junk)
		})
	}
}

func TestAuthConfigValidate(t *testing.T) {
	for _, tc := range []struct {
		name, yaml string
		want       string // "" for valid
	}{
		{"user and password", "user: u\npassword: p\n", ""},
		{"password without user", "password: p\n", "nats.user: required"},
		{"password_file without user", "password_file: /x\n", "nats.user: required"},
		{"user with a token", "user: u\ntoken: t\n", "nats.user: goes with password"},
		{"two kinds", "user: u\npassword: p\ntoken: t\n", "at most one"},
		{"password in the URL", "url: nats://u:url-pw-41@127.0.0.1:4222\n", "credentials in the URL"},
		{"token in the second URL", "url: nats://a:4222,nats://url-tok-42@b:4222\n", "credentials in the URL"},
		{"URL without a scheme", "url: 127.0.0.1:4222\n", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var c bus.Config
			require.NoError(t, yaml.UnmarshalStrict([]byte(tc.yaml), &c))
			err := c.Validate()
			if tc.want == "" {
				require.NoError(t, err)
				return
			}
			require.ErrorContains(t, err, tc.want)
			require.NotContains(t, err.Error(), "url-pw-41")
			require.NotContains(t, err.Error(), "url-tok-42")
		})
	}
}

// pki is a test certificate authority with a server and a client
// certificate, all as files.
type pki struct {
	dir                string
	caFile             string
	serverCert, server string // server certificate and key files
	clientCert, client string // client certificate and key files
}

func newPKI(t *testing.T, name string) *pki {
	t.Helper()
	dir := t.TempDir()
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)
	caTmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: name + " CA"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(time.Hour),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature,
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	require.NoError(t, err)
	ca, err := x509.ParseCertificate(caDER)
	require.NoError(t, err)
	p := &pki{dir: dir, caFile: filepath.Join(dir, "ca.pem")}
	require.NoError(t, os.WriteFile(p.caFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: caDER}), 0o600))
	issue := func(serial int64, cn string, usage x509.ExtKeyUsage) (string, string) {
		key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		require.NoError(t, err)
		tmpl := &x509.Certificate{
			SerialNumber: big.NewInt(serial),
			Subject:      pkix.Name{CommonName: cn},
			NotBefore:    time.Now().Add(-time.Hour),
			NotAfter:     time.Now().Add(time.Hour),
			KeyUsage:     x509.KeyUsageDigitalSignature,
			ExtKeyUsage:  []x509.ExtKeyUsage{usage},
		}
		if usage == x509.ExtKeyUsageServerAuth {
			tmpl.DNSNames = []string{"nats.bmcstream.test"}
			tmpl.IPAddresses = []net.IP{net.ParseIP("127.0.0.1")}
		}
		der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &key.PublicKey, caKey)
		require.NoError(t, err)
		kder, err := x509.MarshalECPrivateKey(key)
		require.NoError(t, err)
		cf, kf := filepath.Join(dir, cn+".pem"), filepath.Join(dir, cn+"-key.pem")
		require.NoError(t, os.WriteFile(cf, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600))
		require.NoError(t, os.WriteFile(kf, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kder}), 0o600))
		return cf, kf
	}
	p.serverCert, p.server = issue(2, "server", x509.ExtKeyUsageServerAuth)
	p.clientCert, p.client = issue(3, "client", x509.ExtKeyUsageClientAuth)
	return p
}

// tlsServer configures a server requiring TLS with p's server
// certificate; with verify it also requires a client certificate of p's
// CA (mutual TLS).
func tlsServer(t *testing.T, p *pki, verify bool) func(*server.Options) {
	t.Helper()
	tc, err := server.GenTLSConfig(&server.TLSConfigOpts{CertFile: p.serverCert, KeyFile: p.server, CaFile: p.caFile, Verify: verify})
	require.NoError(t, err)
	return func(o *server.Options) {
		o.TLSConfig = tc
		o.TLS = true
		o.TLSVerify = verify
		o.TLSTimeout = 5
	}
}

// TestTLS: verification is on unless configured off, the CA bundle and
// server name are honoured, mutual TLS works with a client certificate
// and refuses a client without one, and a TLS client never falls back to
// plain text.
func TestTLS(t *testing.T) {
	p := newPKI(t, "nats")
	other := newPKI(t, "other")
	tlsBlock := func(kv ...string) string {
		var b strings.Builder
		b.WriteString("tls:\n")
		for i := 0; i < len(kv); i += 2 {
			fmt.Fprintf(&b, "  %s: %s\n", kv[i], kv[i+1])
		}
		return b.String()
	}
	type attempt struct {
		name string
		auth string
		// want is a substring of the lower-cased error, or several
		// separated by "|"; "" means the connection works.
		want string
	}
	cases := []struct {
		name      string
		configure func(*server.Options)
		attempts  []attempt
	}{
		{
			name:      "server requires TLS",
			configure: tlsServer(t, p, false),
			attempts: []attempt{
				{"the CA bundle verifies the server", tlsBlock("ca_file", p.caFile), ""},
				{"the server name is checked against the certificate", tlsBlock("ca_file", p.caFile, "server_name", "nats.bmcstream.test"), ""},
				{"no TLS settings: verified against the system roots, which do not know this CA", "", "certificate signed by unknown authority"},
				{"another CA", tlsBlock("ca_file", other.caFile), "certificate signed by unknown authority"},
				{"a server name the certificate does not carry", tlsBlock("ca_file", p.caFile, "server_name", "wrong.bmcstream.test"), "wrong.bmcstream.test"},
				{"verification skipped by explicit opt-in", tlsBlock("insecure_skip_verify", "true"), ""},
			},
		},
		{
			name:      "mutual TLS",
			configure: tlsServer(t, p, true),
			attempts: []attempt{
				{"client certificate of the CA", tlsBlock("ca_file", p.caFile, "cert_file", p.clientCert, "key_file", p.client), ""},
				// With TLS 1.3 the client may finish its side of the
				// handshake before the server checks the certificate:
				// then it sees the connection closed instead of the alert.
				{"no client certificate", tlsBlock("ca_file", p.caFile), "certificate required|closed by remote"},
				{"client certificate of another CA", tlsBlock("ca_file", p.caFile, "cert_file", other.clientCert, "key_file", other.client), "certificate required|unknown certificate authority|bad certificate|closed by remote"},
			},
		},
		{
			name: "server without TLS",
			attempts: []attempt{
				{"a client configured for TLS does not fall back to plain text", tlsBlock("ca_file", p.caFile), "secure connection"},
			},
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			srv := startServer(t, tc.configure)
			for _, a := range tc.attempts {
				t.Run(a.name, func(t *testing.T) {
					logs := &testbed.SyncBuffer{}
					c := parseConfig(t, natsURL(srv), a.auth)
					nc, err := connect(c, slog.New(slog.NewTextHandler(logs, nil)))
					if a.want == "" {
						require.NoError(t, err)
						defer nc.Close()
						st, err := nc.TLSConnectionState()
						require.NoError(t, err)
						require.True(t, st.HandshakeComplete)
						roundTrip(t, nc, c)
						warned := strings.Count(logs.String(), "verification is disabled")
						if c.TLS.InsecureSkipVerify {
							require.Equal(t, 1, warned, "skipping verification is warned about once")
						} else {
							require.Zero(t, warned)
						}
						return
					}
					if err == nil {
						nc.Close()
					}
					require.Error(t, err)
					msg := strings.ToLower(err.Error())
					found := false
					for _, w := range strings.Split(a.want, "|") {
						found = found || strings.Contains(msg, w)
					}
					require.True(t, found, "error %q says none of %q", msg, a.want)
				})
			}
		})
	}
}

// TestTLSFailureLogged: with the programs' own options a TLS failure is
// retried in the background and logged with its reason.
func TestTLSFailureLogged(t *testing.T) {
	p := newPKI(t, "nats")
	srv := startServer(t, tlsServer(t, p, false))
	c := parseConfig(t, natsURL(srv), "")
	refusedAsTheProgramsSeeIt(t, c, "certificate signed by unknown authority", nil)
}

// TestRecoversWhenCredentialsAreFixed: a program whose credentials the
// server refuses keeps retrying (instead of closing the connection for good
// after the second refusal, nats.go's default) and connects once the
// server accepts them, without a restart.
func TestRecoversWhenCredentialsAreFixed(t *testing.T) {
	const password = "nats-pw-rotated-6e1d"
	opts := &server.Options{Host: "127.0.0.1", Port: server.RANDOM_PORT, NoSigs: true, NoLog: true,
		Users: []*server.User{{Username: "poller", Password: "the-old-password"}}}
	srv, err := server.NewServer(opts)
	require.NoError(t, err)
	srv.Start()
	t.Cleanup(func() { srv.Shutdown(); srv.WaitForShutdown() })
	require.True(t, srv.ReadyForConnections(10*time.Second))

	c := parseConfig(t, natsURL(srv), "user: poller\npassword: "+password+"\nmode: core\n")
	logs := &testbed.SyncBuffer{}
	nopts, err := c.Options("auth-test", slog.New(slog.NewTextHandler(logs, nil)))
	require.NoError(t, err)
	nc, err := nats.Connect(c.URL, nopts...)
	require.NoError(t, err)
	defer nc.Close()
	// Several refusals: more than the two after which nats.go gives up by
	// default. The server counts every connection it accepted, refused
	// ones too; a fourth attempt means the third was refused and retried.
	testbed.Eventually(t, 10*time.Second, func() bool {
		v, err := srv.Varz(nil)
		return err == nil && v.TotalConnections > 3
	}, "refused more than twice")
	require.Equal(t, nats.RECONNECTING, nc.Status())

	fixed := opts.Clone()
	fixed.Port = srv.Addr().(*net.TCPAddr).Port
	fixed.Users = []*server.User{{Username: "poller", Password: password}}
	require.NoError(t, srv.ReloadOptions(fixed))
	require.Eventually(t, func() bool { return nc.Status() == nats.CONNECTED }, 10*time.Second, 20*time.Millisecond)
	require.NoError(t, nc.Publish("bmc.v1.raw.x", []byte("x")))
	require.NoError(t, nc.Flush())
	require.Contains(t, strings.ToLower(logs.String()), "authorization violation")
	requireNoSecret(t, "the log", logs.String(), []string{password})
}
