package poller

import (
	"crypto/x509"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"time"

	"github.com/prometheus/common/model"

	"github.com/bmcstream/bmcstream/internal/cfgfile"
	"github.com/bmcstream/bmcstream/internal/yamlx"
	"github.com/bmcstream/bmcstream/pkg/bus"
)

// Config is the poller's configuration file.
type Config struct {
	// PollerID names this poller in snapshots, message ids and the
	// membership bucket; the host name when empty.
	PollerID  string          `yaml:"poller_id"`
	NATS      bus.Config      `yaml:"nats"`
	Inventory InventoryConfig `yaml:"inventory"`
	Sharding  ShardingConfig  `yaml:"sharding"`
	Polling   PollingConfig   `yaml:"polling"`
	Redfish   RedfishConfig   `yaml:"redfish"`
	IPMI      IPMIConfig      `yaml:"ipmi"`
	// PublishBuffer bounds snapshots held while NATS is unreachable.
	PublishBuffer int `yaml:"publish_buffer"`
}

// InventoryConfig names the inventory files (YAML or CSV) and the
// credentials file. Files are re-read on SIGHUP and when they change.
type InventoryConfig struct {
	Files           []string       `yaml:"files"`
	CredentialsFile string         `yaml:"credentials_file"`
	WatchInterval   model.Duration `yaml:"watch_interval"`
}

// ShardingConfig decides which BMCs this poller owns.
type ShardingConfig struct {
	// Mode is "static" (shard i of n) or "dynamic" (membership in a NATS
	// KV bucket). A single poller is static shard 0 of 1, the default.
	Mode   string `yaml:"mode"`
	Shard  int    `yaml:"shard"`
	Shards int    `yaml:"shards"`
	// ReplicationFactor is how many pollers own each BMC (2 for HA pairs).
	ReplicationFactor int `yaml:"replication_factor"`
	// Bucket and TTL of dynamic membership: a poller that misses
	// heartbeats for TTL is gone, and its BMCs move. A crashed poller's
	// BMCs miss at most ⌈(TTL + poll duration)/interval⌉ polls each
	// (docs/scaling.md): the 5 s default keeps that to one poll for
	// intervals of 10 s and more.
	Bucket string         `yaml:"bucket"`
	TTL    model.Duration `yaml:"ttl"`
}

// PollingConfig shapes the schedule.
type PollingConfig struct {
	// MaxConcurrent bounds polls in flight across all BMCs.
	MaxConcurrent int `yaml:"max_concurrent"`
	// PollTimeout bounds one poll; 0 means 80 % of the BMC's interval.
	PollTimeout model.Duration `yaml:"poll_timeout"`
	// RequestTimeout bounds one request to a BMC.
	RequestTimeout model.Duration `yaml:"request_timeout"`
	// InfoInterval is the cadence of slow-changing data (model, firmware).
	InfoInterval model.Duration `yaml:"info_interval"`
	// MaxBackoff is the slowest probe cadence of a dead BMC.
	MaxBackoff model.Duration `yaml:"max_backoff"`
}

// RedfishConfig applies to every Redfish BMC.
type RedfishConfig struct {
	// BasicAuth sends credentials with every request instead of opening a
	// session (for BMCs whose session service misbehaves).
	BasicAuth bool `yaml:"basic_auth"`
	// CAFile verifies BMC certificates unless an inventory entry names its
	// own.
	CAFile string `yaml:"ca_file"`
}

// IPMIConfig applies to every IPMI BMC.
type IPMIConfig struct {
	CipherSuite int    `yaml:"cipher_suite"`
	Privilege   string `yaml:"privilege"`
	// Discrete reads discrete sensors (PSU status, fan redundancy,
	// processor and memory state), one request each per poll; on by
	// default.
	Discrete bool `yaml:"discrete"`
}

// Defaults. Polls are bound by BMC latency, not CPU: an IPMI poll is a
// dozen round trips, about 0.7 s at a 50 ms median, so 10 000 BMCs at 30 s
// keep about 230 polls in flight and a first poll (SDR download) several
// seconds; 1024 leaves room for slow BMCs and start-up while bounding the
// sockets and memory in use. 5 min is how often a dead BMC is still probed.
var (
	DefaultPollingConfig = PollingConfig{
		MaxConcurrent:  1024,
		RequestTimeout: model.Duration(10 * time.Second),
		InfoInterval:   model.Duration(10 * time.Minute),
		MaxBackoff:     model.Duration(5 * time.Minute),
	}
	DefaultShardingConfig = ShardingConfig{
		Mode:              "static",
		Shards:            1,
		ReplicationFactor: 1,
		Bucket:            "bmcstream_pollers",
		TTL:               model.Duration(5 * time.Second),
	}
	DefaultConfig = Config{
		NATS:          bus.DefaultConfig,
		Inventory:     InventoryConfig{WatchInterval: model.Duration(10 * time.Second)},
		Sharding:      DefaultShardingConfig,
		Polling:       DefaultPollingConfig,
		IPMI:          IPMIConfig{CipherSuite: 3, Privilege: "user", Discrete: true},
		PublishBuffer: DefaultPublishBuffer,
	}
)

// UnmarshalYAML applies defaults before decoding.
func (c *Config) UnmarshalYAML(unmarshal func(interface{}) error) error {
	*c = DefaultConfig
	type plain Config
	return unmarshal((*plain)(c))
}

// UnmarshalYAML applies defaults before decoding.
func (c *ShardingConfig) UnmarshalYAML(unmarshal func(interface{}) error) error {
	*c = DefaultShardingConfig
	type plain ShardingConfig
	return unmarshal((*plain)(c))
}

// UnmarshalYAML applies defaults before decoding.
func (c *PollingConfig) UnmarshalYAML(unmarshal func(interface{}) error) error {
	*c = DefaultPollingConfig
	type plain PollingConfig
	return unmarshal((*plain)(c))
}

var idRE = regexp.MustCompile(`^[A-Za-z0-9_-]+$`)

// Validate reports every problem at once, each naming its key.
func (c *Config) Validate() error {
	var errs []error
	if c.PollerID != "" && !idRE.MatchString(c.PollerID) {
		errs = append(errs, fmt.Errorf("poller_id: %q may hold only letters, digits, '-' and '_'", c.PollerID))
	}
	if err := c.NATS.Validate(); err != nil {
		errs = append(errs, err)
	}
	if c.NATS.URL != "" {
		if err := bus.CheckServerURLs(c.NATS.URL); err != nil {
			errs = append(errs, fmt.Errorf("nats.url: %w", err))
		}
	}
	if len(c.Inventory.Files) == 0 {
		errs = append(errs, errors.New("inventory.files: at least one file is required"))
	}
	for i, f := range c.Inventory.Files {
		if f == "" {
			errs = append(errs, fmt.Errorf("inventory.files[%d]: empty path", i))
		}
	}
	s := c.Sharding
	switch s.Mode {
	case "static":
		switch {
		case s.Shards < 1:
			errs = append(errs, fmt.Errorf("sharding.shards: must be at least 1, got %d", s.Shards))
		case s.Shard < 0 || s.Shard >= s.Shards:
			errs = append(errs, fmt.Errorf("sharding.shard: shard %d of %d: need 0 <= shard < shards", s.Shard, s.Shards))
		case s.ReplicationFactor > s.Shards:
			errs = append(errs, fmt.Errorf("sharding.replication_factor: %d is more than the %d shards", s.ReplicationFactor, s.Shards))
		}
	case "dynamic":
		if c.NATS.Mode != bus.ModeJetStream {
			errs = append(errs, errors.New("sharding.mode: dynamic needs nats.mode jetstream (the membership bucket is a KV store)"))
		}
		if s.TTL < model.Duration(time.Second) {
			errs = append(errs, fmt.Errorf("sharding.ttl: must be at least 1s, got %s", s.TTL))
		}
		if !idRE.MatchString(s.Bucket) {
			errs = append(errs, fmt.Errorf("sharding.bucket: %q is not a valid bucket name", s.Bucket))
		}
	default:
		errs = append(errs, fmt.Errorf("sharding.mode: %q is not one of static, dynamic", s.Mode))
	}
	if s.ReplicationFactor < 1 {
		errs = append(errs, fmt.Errorf("sharding.replication_factor: must be at least 1, got %d", s.ReplicationFactor))
	}
	p := c.Polling
	if p.MaxConcurrent < 1 {
		errs = append(errs, fmt.Errorf("polling.max_concurrent: must be at least 1, got %d", p.MaxConcurrent))
	}
	for _, d := range []struct {
		key  string
		v    model.Duration
		zero bool // 0 is allowed
	}{
		{"polling.request_timeout", p.RequestTimeout, false},
		{"polling.poll_timeout", p.PollTimeout, true},
		{"polling.info_interval", p.InfoInterval, false},
		{"polling.max_backoff", p.MaxBackoff, false},
	} {
		if d.v < 0 || d.v == 0 && !d.zero {
			errs = append(errs, fmt.Errorf("%s: must be positive, got %s", d.key, d.v))
		}
	}
	if c.IPMI.CipherSuite != 3 && c.IPMI.CipherSuite != 17 {
		errs = append(errs, fmt.Errorf("ipmi.cipher_suite: %d is not one of 3, 17", c.IPMI.CipherSuite))
	}
	switch c.IPMI.Privilege {
	case "user", "operator", "administrator":
	default:
		errs = append(errs, fmt.Errorf("ipmi.privilege: %q is not one of user, operator, administrator", c.IPMI.Privilege))
	}
	if c.PublishBuffer < 1 {
		errs = append(errs, fmt.Errorf("publish_buffer: must be at least 1, got %d", c.PublishBuffer))
	}
	return errors.Join(errs...)
}

// LoadConfig reads and validates a configuration file; relative paths are
// relative to its directory. The files it names (inventory, credentials,
// CA bundle) must be readable: a typo is reported here, with its line,
// rather than as every poll failing.
func LoadConfig(path string) (*Config, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read config: %w", err)
	}
	cfg, err := ParseConfig(b)
	if err != nil {
		return nil, fmt.Errorf("config %s: %w", path, err)
	}
	dir := filepath.Dir(path)
	for i, f := range cfg.Inventory.Files {
		cfg.Inventory.Files[i] = cfgfile.Join(dir, f)
	}
	cfg.Inventory.CredentialsFile = cfgfile.Join(dir, cfg.Inventory.CredentialsFile)
	cfg.Redfish.CAFile = cfgfile.Join(dir, cfg.Redfish.CAFile)
	cfg.NATS.SetDirectory(dir)
	if err := cfg.checkFiles(); err != nil {
		return nil, fmt.Errorf("config %s: %w", path, yamlx.LocateErrors(b, err))
	}
	return cfg, nil
}

// checkFiles makes sure every file the configuration names can be read.
func (c *Config) checkFiles() error {
	var errs []error
	for i, f := range c.Inventory.Files {
		errs = append(errs, cfgfile.Readable(fmt.Sprintf("inventory.files[%d]", i), f, false))
	}
	if c.Inventory.CredentialsFile != "" {
		errs = append(errs, cfgfile.Readable("inventory.credentials_file", c.Inventory.CredentialsFile, false))
	}
	if c.Redfish.CAFile != "" {
		if b, err := os.ReadFile(c.Redfish.CAFile); err != nil {
			errs = append(errs, fmt.Errorf("redfish.ca_file: %w", err))
		} else if !x509.NewCertPool().AppendCertsFromPEM(b) {
			errs = append(errs, fmt.Errorf("redfish.ca_file: %s holds no PEM certificate", c.Redfish.CAFile))
		}
	}
	errs = append(errs, c.NATS.CheckFiles())
	return errors.Join(errs...)
}

// ParseConfig decodes and validates a configuration document. Every error
// names its line and the YAML path of its key.
func ParseConfig(b []byte) (*Config, error) {
	cfg := DefaultConfig
	if err := yamlx.UnmarshalStrict(b, &cfg); err != nil {
		return nil, yamlx.LocateErrors(b, err)
	}
	if err := cfg.Validate(); err != nil {
		return nil, yamlx.LocateErrors(b, err)
	}
	return &cfg, nil
}
