package bus

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nkeys"
	"github.com/prometheus/common/model"

	"github.com/bmcstream/bmcstream/internal/cfgfile"
	"github.com/bmcstream/bmcstream/internal/ratelog"
	"github.com/bmcstream/bmcstream/pkg/secret"
)

// Mode selects how snapshots travel.
type Mode string

const (
	// ModeJetStream persists snapshots in the BMC_RAW stream: at-least-once
	// delivery, survives gateway restarts and sink outages. The default.
	ModeJetStream Mode = "jetstream"
	// ModeCore uses plain NATS publish/subscribe: lowest latency, no
	// persistence; a gateway that is down or slow loses snapshots.
	ModeCore Mode = "core"
)

// Config is how a program reaches NATS. It is the `nats:` block of the poller
// and gateway configuration files.
type Config struct {
	// URL is one or more comma-separated server URLs.
	URL  string `yaml:"url"`
	Mode Mode   `yaml:"mode"`

	User         string        `yaml:"user,omitempty"`
	Password     secret.Secret `yaml:"password,omitempty"`
	PasswordFile string        `yaml:"password_file,omitempty"`
	Token        secret.Secret `yaml:"token,omitempty"`
	TokenFile    string        `yaml:"token_file,omitempty"`
	NKeySeedFile string        `yaml:"nkey_seed_file,omitempty"`
	CredsFile    string        `yaml:"creds_file,omitempty"`
	TLS          TLSConfig     `yaml:"tls,omitempty"`
	// InboxPrefix replaces "_INBOX" in the subjects this program receives
	// replies on (JetStream acknowledgements and API answers, pulled
	// messages), so NATS permissions can give each program its own reply
	// subjects instead of every user subscribing to "_INBOX.>", which
	// would let it read the replies meant for the others (docs/security.md).
	InboxPrefix string `yaml:"inbox_prefix,omitempty"`

	Stream   StreamConfig   `yaml:"stream"`
	Embedded EmbeddedConfig `yaml:"embedded,omitempty"`
}

// TLSConfig configures TLS to the NATS server.
type TLSConfig struct {
	CAFile             string `yaml:"ca_file,omitempty"`
	CertFile           string `yaml:"cert_file,omitempty"`
	KeyFile            string `yaml:"key_file,omitempty"`
	ServerName         string `yaml:"server_name,omitempty"`
	InsecureSkipVerify bool   `yaml:"insecure_skip_verify,omitempty"`
}

// StreamConfig shapes the JetStream stream that holds raw snapshots.
type StreamConfig struct {
	Name string `yaml:"name"`
	// MaxAge bounds how long an undelivered snapshot survives an outage.
	MaxAge model.Duration `yaml:"max_age"`
	// MaxBytes bounds the stream's size; 0 means no bound but MaxAge. The
	// oldest snapshots are discarded first.
	MaxBytes int64 `yaml:"max_bytes,omitempty"`
	// MaxMsgSize rejects oversized snapshots at the server.
	MaxMsgSize int32 `yaml:"max_msg_size"`
	// DuplicateWindow is how long the server remembers Nats-Msg-Id values to
	// drop a poller's republished snapshots.
	DuplicateWindow model.Duration `yaml:"duplicate_window"`
	Replicas        int            `yaml:"replicas"`
	// Storage is "file" (default) or "memory".
	Storage string `yaml:"storage"`
	// Partitions, when above 0, makes the server store each snapshot
	// under bmc.v1.raw.<partition>.<bmc>, the partition a hash of the BMC
	// token (a stream subject transform, nats-server 2.10 or later), so
	// gateway replicas can share the stream one partition each: every
	// snapshot of a BMC lands in the same partition, in order. 0 (the
	// default) leaves subjects as published. See docs/scaling.md.
	Partitions int `yaml:"partitions,omitempty"`
}

// MaxPartitions bounds nats.stream.partitions: each partition costs every
// sink a durable consumer.
const MaxPartitions = 1024

// DefaultStreamConfig is the BMC_RAW stream of a default install. 24 h of
// retention rides out a weekend-night sink outage; the 2 min duplicate window
// covers a poller's reconnect-and-republish; 1 MiB is ten times the largest
// snapshot seen from a real BMC (a few hundred sensors).
var DefaultStreamConfig = StreamConfig{
	Name:            "BMC_RAW",
	MaxAge:          model.Duration(24 * time.Hour),
	MaxMsgSize:      1 << 20,
	DuplicateWindow: model.Duration(2 * time.Minute),
	Replicas:        1,
	Storage:         "file",
}

// DefaultConfig reaches a NATS server on the local host with JetStream.
var DefaultConfig = Config{
	URL:    nats.DefaultURL,
	Mode:   ModeJetStream,
	Stream: DefaultStreamConfig,
}

// UnmarshalYAML applies defaults before decoding.
func (c *Config) UnmarshalYAML(unmarshal func(interface{}) error) error {
	*c = DefaultConfig
	type plain Config
	return unmarshal((*plain)(c))
}

// UnmarshalYAML applies defaults before decoding.
func (c *StreamConfig) UnmarshalYAML(unmarshal func(interface{}) error) error {
	*c = DefaultStreamConfig
	type plain StreamConfig
	return unmarshal((*plain)(c))
}

// Validate reports every problem of the configuration at once.
func (c *Config) Validate() error {
	var errs []error
	if c.URL == "" && !c.Embedded.Enabled {
		errs = append(errs, errors.New("nats.url: must be set unless nats.embedded.enabled"))
	}
	switch c.Mode {
	case ModeJetStream, ModeCore:
	default:
		errs = append(errs, fmt.Errorf("nats.mode: %q is not one of jetstream, core", c.Mode))
	}
	n := 0
	for _, set := range []bool{c.Password != "" || c.PasswordFile != "", c.Token != "" || c.TokenFile != "", c.NKeySeedFile != "", c.CredsFile != ""} {
		if set {
			n++
		}
	}
	if n > 1 {
		errs = append(errs, errors.New("nats: set at most one of password, token, nkey_seed_file, creds_file"))
	}
	if c.Password != "" && c.PasswordFile != "" {
		errs = append(errs, errors.New("nats: password and password_file are mutually exclusive"))
	}
	hasPassword := c.Password != "" || c.PasswordFile != ""
	if hasPassword && c.User == "" {
		errs = append(errs, errors.New("nats.user: required with password or password_file"))
	}
	if c.User != "" && !hasPassword && n > 0 {
		// The server would see the token, nkey or JWT and ignore the
		// user, which is never what the operator meant.
		errs = append(errs, errors.New("nats.user: goes with password or password_file, not with token, nkey_seed_file or creds_file"))
	}
	if err := checkURLs(c.URL); err != nil {
		errs = append(errs, err)
	}
	if p := c.InboxPrefix; p != "" && (strings.ContainsAny(p, "*> \t\r\n") || strings.HasPrefix(p, ".") || strings.HasSuffix(p, ".") || strings.Contains(p, "..")) {
		errs = append(errs, fmt.Errorf("nats.inbox_prefix: %q must be subject tokens without wildcards, such as _INBOX_poller", p))
	}
	if c.Token != "" && c.TokenFile != "" {
		errs = append(errs, errors.New("nats: token and token_file are mutually exclusive"))
	}
	if (c.TLS.CertFile == "") != (c.TLS.KeyFile == "") {
		errs = append(errs, errors.New("nats.tls: cert_file and key_file go together"))
	}
	if c.Stream.Name == "" {
		errs = append(errs, errors.New("nats.stream.name: must be set"))
	}
	if c.Stream.MaxAge <= 0 {
		errs = append(errs, errors.New("nats.stream.max_age: must be positive"))
	}
	if c.Stream.DuplicateWindow <= 0 || c.Stream.DuplicateWindow > c.Stream.MaxAge {
		errs = append(errs, errors.New("nats.stream.duplicate_window: must be positive and at most max_age"))
	}
	if c.Stream.Storage != "file" && c.Stream.Storage != "memory" {
		errs = append(errs, fmt.Errorf("nats.stream.storage: %q is not one of file, memory", c.Stream.Storage))
	}
	if c.Stream.Replicas < 1 || c.Stream.Replicas > 5 {
		errs = append(errs, errors.New("nats.stream.replicas: must be 1 to 5"))
	}
	if c.Stream.Partitions < 0 || c.Stream.Partitions > MaxPartitions {
		errs = append(errs, fmt.Errorf("nats.stream.partitions: must be 0 to %d, got %d", MaxPartitions, c.Stream.Partitions))
	}
	if c.Stream.MaxMsgSize <= 0 {
		errs = append(errs, errors.New("nats.stream.max_msg_size: must be positive"))
	}
	if c.Embedded.Enabled && c.Embedded.StoreDir == "" && c.Mode == ModeJetStream {
		errs = append(errs, errors.New("nats.embedded.store_dir: required with JetStream"))
	}
	return errors.Join(errs...)
}

// SetDirectory resolves the configuration's relative file paths
// (credential files, TLS files, the embedded server's store) against dir,
// the directory of the configuration file, as Prometheus does.
func (c *Config) SetDirectory(dir string) {
	for _, p := range []*string{&c.PasswordFile, &c.TokenFile, &c.NKeySeedFile, &c.CredsFile,
		&c.TLS.CAFile, &c.TLS.CertFile, &c.TLS.KeyFile, &c.Embedded.StoreDir} {
		*p = cfgfile.Join(dir, *p)
	}
}

// CheckFiles reports, each under its key (nats.creds_file…), the
// credential and TLS files that cannot be read, then those that would fail
// the connection once read (checkContent).
func (c *Config) CheckFiles() error {
	var errs []error
	unreadable := map[string]bool{}
	for _, f := range []struct{ key, path string }{
		{"nats.password_file", c.PasswordFile},
		{"nats.token_file", c.TokenFile},
		{"nats.nkey_seed_file", c.NKeySeedFile},
		{"nats.creds_file", c.CredsFile},
		{"nats.tls.ca_file", c.TLS.CAFile},
		{"nats.tls.cert_file", c.TLS.CertFile},
		{"nats.tls.key_file", c.TLS.KeyFile},
	} {
		if f.path != "" {
			if err := cfgfile.Readable(f.key, f.path, false); err != nil {
				errs = append(errs, err)
				unreadable[f.path] = true
			}
		}
	}
	errs = append(errs, c.checkContent(unreadable))
	return errors.Join(errs...)
}

// checkURLs rejects credentials inside the server URLs: URLs are printed
// in logs and errors, so a password there would leak. The auth keys hold
// secrets instead.
func checkURLs(urls string) error {
	for _, raw := range strings.Split(urls, ",") {
		raw = strings.TrimSpace(raw)
		if raw == "" {
			continue
		}
		if !strings.Contains(raw, "://") {
			raw = "nats://" + raw
		}
		u, err := url.Parse(raw)
		if err != nil {
			// url.Parse quotes the URL in its error; say only where.
			return errors.New("nats.url: a server URL does not parse")
		}
		if u.User != nil {
			return fmt.Errorf("nats.url: credentials in the URL of %s would be logged; use user with password_file, token_file, nkey_seed_file or creds_file", u.Host)
		}
	}
	return nil
}

// connLogEvery bounds how often a connection that keeps failing, or a
// client that keeps hitting the same server error, is logged.
const connLogEvery = 30 * time.Second

// Options turns the configuration into nats.go options: authentication,
// TLS, and reconnecting forever with a bounded reconnect buffer.
//
// Connecting never gives up: not when the server is unreachable at start,
// and not when it refuses the credentials (by default nats.go closes the
// connection for good after the same authorization error twice, which
// would leave a long-running program with a dead connection; retrying
// lets it recover once the server's accounts are fixed). Failures are
// logged at most every 30 s with the server's reason, which never
// contains the credential.
func (c *Config) Options(name string, logger *slog.Logger) ([]nats.Option, error) {
	connLog, asyncLog := &ratelog.Limiter{Every: connLogEvery}, &ratelog.Limiter{Every: connLogEvery}
	opts := []nats.Option{
		nats.Name(name),
		nats.MaxReconnects(-1),
		nats.ReconnectWait(500 * time.Millisecond),
		nats.RetryOnFailedConnect(true),
		nats.IgnoreAuthErrorAbort(),
		nats.DisconnectErrHandler(func(_ *nats.Conn, err error) {
			if err != nil {
				logger.Warn("nats disconnected", "err", err)
			}
		}),
		nats.ReconnectHandler(func(nc *nats.Conn) {
			logger.Info("nats reconnected", "url", nc.ConnectedUrlRedacted())
		}),
		// Called with the first failure of a connection that never came
		// up (an authorization or TLS error included) and with every
		// failed dial after that.
		nats.ReconnectErrHandler(func(_ *nats.Conn, err error) {
			connLog.Do(func() { logger.Warn("nats connection failed; retrying", "err", err) })
		}),
		// Asynchronous server errors: a permissions violation names the
		// subject this user may not use; an authorization error on
		// reconnect means the credentials were revoked.
		nats.ErrorHandler(func(_ *nats.Conn, sub *nats.Subscription, err error) {
			asyncLog.Do(func() {
				if sub != nil {
					logger.Warn("nats error", "subject", sub.Subject, "err", err)
					return
				}
				logger.Warn("nats error", "err", err)
			})
		}),
	}
	if c.InboxPrefix != "" {
		opts = append(opts, nats.CustomInboxPrefix(c.InboxPrefix))
	}
	switch {
	case c.Password != "":
		opts = append(opts, nats.UserInfo(c.User, c.Password.Reveal()))
	case c.PasswordFile != "":
		pw, err := secret.FromFile(c.PasswordFile)
		if err != nil {
			return nil, fmt.Errorf("nats.password_file: %w", err)
		}
		opts = append(opts, nats.UserInfo(c.User, pw.Reveal()))
	case c.Token != "":
		opts = append(opts, nats.Token(c.Token.Reveal()))
	case c.TokenFile != "":
		tok, err := secret.FromFile(c.TokenFile)
		if err != nil {
			return nil, fmt.Errorf("nats.token_file: %w", err)
		}
		opts = append(opts, nats.Token(tok.Reveal()))
	case c.NKeySeedFile != "":
		o, err := nats.NkeyOptionFromSeed(c.NKeySeedFile)
		if err != nil {
			return nil, fmt.Errorf("nats.nkey_seed_file %s: %w", c.NKeySeedFile, err)
		}
		opts = append(opts, o)
	case c.CredsFile != "":
		// nats.go reads the file at each connect; read it once here so a
		// missing or malformed file fails at start, not in a retry loop.
		if err := checkCredsFile(c.CredsFile); err != nil {
			return nil, err
		}
		opts = append(opts, nats.UserCredentials(c.CredsFile))
	case c.User != "":
		opts = append(opts, nats.UserInfo(c.User, ""))
	}
	if c.TLS != (TLSConfig{}) {
		tc := &tls.Config{
			MinVersion:         tls.VersionTLS12,
			ServerName:         c.TLS.ServerName,
			InsecureSkipVerify: c.TLS.InsecureSkipVerify, //nolint:gosec // explicit opt-in, warned about at start
		}
		if c.TLS.CAFile != "" {
			pem, err := os.ReadFile(c.TLS.CAFile)
			if err != nil {
				return nil, fmt.Errorf("nats.tls.ca_file: %w", err)
			}
			pool := x509.NewCertPool()
			if !pool.AppendCertsFromPEM(pem) {
				return nil, fmt.Errorf("nats.tls.ca_file %s: no PEM certificates", c.TLS.CAFile)
			}
			tc.RootCAs = pool
		}
		if c.TLS.CertFile != "" {
			cert, err := tls.LoadX509KeyPair(c.TLS.CertFile, c.TLS.KeyFile)
			if err != nil {
				return nil, fmt.Errorf("nats.tls: load client certificate: %w", err)
			}
			tc.Certificates = []tls.Certificate{cert}
		}
		if c.TLS.InsecureSkipVerify {
			logger.Warn("nats TLS certificate verification is disabled by nats.tls.insecure_skip_verify")
		}
		opts = append(opts, nats.Secure(tc))
	}
	return opts, nil
}

// checkCredsFile reads a NATS credentials file and checks that it holds a
// user JWT and a user seed. The error names the file, never its content.
func checkCredsFile(path string) error {
	b, err := os.ReadFile(path)
	if err != nil {
		return fmt.Errorf("nats.creds_file: %w", err)
	}
	defer clear(b)
	if _, err := nkeys.ParseDecoratedJWT(b); err != nil {
		return fmt.Errorf("nats.creds_file %s: no user JWT in it", path)
	}
	kp, err := nkeys.ParseDecoratedUserNKey(b)
	if err != nil {
		return fmt.Errorf("nats.creds_file %s: no user seed in it", path)
	}
	kp.Wipe()
	return nil
}

// EmbeddedConfig runs a NATS server inside the process, so a single-node
// install needs no separate NATS.
type EmbeddedConfig struct {
	Enabled bool `yaml:"enabled"`
	// Listen is the client address; other programs (pollers, automation)
	// connect here. Loopback by default.
	Listen string `yaml:"listen,omitempty"`
	// StoreDir holds JetStream's files; required with JetStream.
	StoreDir string `yaml:"store_dir,omitempty"`
	// MaxPayload bounds one message in bytes (default 1 MiB).
	MaxPayload int32 `yaml:"max_payload,omitempty"`
}
