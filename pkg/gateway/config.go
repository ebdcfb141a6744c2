// Package gateway consumes raw BMC snapshots from NATS, turns them into
// samples with the pipeline stages, and delivers them to every configured
// remote-write sink with at-least-once semantics.
package gateway

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"time"

	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/model/relabel"

	"github.com/bmcstream/bmcstream/internal/cfgfile"
	"github.com/bmcstream/bmcstream/internal/yamlx"
	"github.com/bmcstream/bmcstream/pkg/bus"
	"github.com/bmcstream/bmcstream/pkg/pipeline"
	"github.com/bmcstream/bmcstream/pkg/sinks/remotewrite"
)

// Config is the gateway's configuration file.
type Config struct {
	NATS        bus.Config           `yaml:"nats"`
	Consumer    ConsumerConfig       `yaml:"consumer"`
	Inventory   InventoryConfig      `yaml:"inventory"`
	HATracker   HATrackerConfig      `yaml:"ha_tracker"`
	Automation  AutomationConfig     `yaml:"automation"`
	Normalise   NormaliseConfig      `yaml:"normalise"`
	Rollup      RollupConfig         `yaml:"rollup"`
	Replicas    ReplicasConfig       `yaml:"replicas"`
	RemoteWrite []remotewrite.Config `yaml:"remote_write"`
}

// ReplicasConfig is how gateway replicas share a partitioned stream
// (nats.stream.partitions above 0): each replica announces itself in a
// JetStream key-value bucket, each partition goes to one live replica by
// rendezvous hashing, and a replica consumes a partition only while it
// holds the partition's lease in the same bucket. Without partitions it is
// unused. See docs/scaling.md.
type ReplicasConfig struct {
	// ID names this replica; empty means the host name and process id.
	ID string `yaml:"id,omitempty"`
	// Bucket holds the membership and the leases.
	Bucket string `yaml:"bucket"`
	// TTL is how long a replica that stopped renewing (it died or lost
	// NATS) keeps its membership and leases. Renewals run every TTL/3.
	TTL model.Duration `yaml:"ttl"`
}

// DefaultReplicasConfig: 10 s, as for pollers, moves a dead replica's
// partitions within about 10 s plus the consumer's ack wait.
var DefaultReplicasConfig = ReplicasConfig{
	Bucket: "bmcstream_gateways",
	TTL:    model.Duration(10 * time.Second),
}

// RollupConfig controls the rack roll-ups computed in stream:
// bmc_rack_power_watts, bmc_rack_intake_temperature_max_celsius and
// bmc_rack_bmcs_reporting, grouped by GroupBy (site, room, row, rack).
type RollupConfig struct {
	Enabled bool     `yaml:"enabled"`
	GroupBy []string `yaml:"group_by,omitempty"`
}

// NormaliseConfig extends the built-in mapping rules (docs/metrics.md)
// with the user's: files or directories of rule files, read before the
// built-in ones so that what they define wins.
type NormaliseConfig struct {
	RuleFiles []string `yaml:"rule_files,omitempty"`
}

// AutomationConfig controls the automation stream: normalised readings on
// bmc.v1.norm.<site>.<rack>.<bmc> and events on bmc.v1.events.<...>.
type AutomationConfig struct {
	Enabled bool `yaml:"enabled"`
}

// HATrackerConfig deduplicates HA poller pairs: per BMC one poller leads;
// another takes over when the leader's snapshots stop for FailoverTimeout
// (measured on poll times).
type HATrackerConfig struct {
	FailoverTimeout model.Duration `yaml:"failover_timeout"`
}

// InventoryConfig names the inventory files whose labels enrich every
// series. Missing files are an error at start and reload.
type InventoryConfig struct {
	Files []string `yaml:"files"`
	// KVBucket, when set, is a NATS KV bucket of inventory entries (key: the
	// BMC id escaped as a subject token; value: one entry in YAML) that
	// override and extend the files, applied as they change.
	KVBucket string `yaml:"kv_bucket,omitempty"`

	// RejectUnknownBMCs refuses every snapshot of a BMC missing from the
	// inventory: it is terminated, counted (result unknown_bmc) and never
	// written, and no state is kept for it.
	RejectUnknownBMCs bool `yaml:"reject_unknown_bmcs"`
	// MaxUnknownBMCs bounds the BMCs missing from the inventory that each
	// consumer keeps state for; a snapshot of one more is refused
	// (unknown_bmc_limit) until others are forgotten. See docs/security.md.
	MaxUnknownBMCs int `yaml:"max_unknown_bmcs"`
	// ForgetAfter releases the state of a BMC, in the inventory or not,
	// whose snapshots stopped for this long: its series end with
	// staleness markers, as when it leaves the inventory.
	ForgetAfter model.Duration `yaml:"forget_after"`
}

// DefaultInventoryConfig: 1000 unknown BMCs hold what 1000 listed ones do
// (from about 85 KiB each for a few dozen sensors to 370 KB for a large
// server, see docs/scaling.md), room for racks polled before the
// inventory lists them; 10 minutes is twenty 30 s polls, well past a
// poller handover or an HA failover, short enough that ids that stop are
// released within minutes.
var DefaultInventoryConfig = InventoryConfig{
	MaxUnknownBMCs: 1000,
	ForgetAfter:    model.Duration(10 * time.Minute),
}

// ConsumerConfig shapes the gateway's JetStream consumers: one durable pull
// consumer per sink, named <name_prefix>-<sink name>, so each sink reads the
// stream at its own pace and one sink's outage never holds back another.
type ConsumerConfig struct {
	NamePrefix string `yaml:"name_prefix"`
	// MaxAckPending bounds snapshots handed to a sink and not yet acked.
	MaxAckPending int `yaml:"max_ack_pending"`
	// AckWait is the server's redelivery timeout. The gateway extends it
	// (in-progress acks) for snapshots waiting on a slow sink, so it only
	// fires when a gateway dies.
	AckWait model.Duration `yaml:"ack_wait"`
	// FetchBatch is how many snapshots one pull requests.
	FetchBatch int `yaml:"fetch_batch"`
	// DeliverNew makes a newly created consumer skip what the stream
	// already holds. Off by default: nothing retained is ever skipped.
	DeliverNew bool `yaml:"deliver_new"`
	// WatchdogInterval is how often each consumer's figures are checked
	// for a pull subscription that stopped receiving (see watchdog.go); 0
	// turns the watchdog off.
	WatchdogInterval model.Duration `yaml:"watchdog_interval"`
}

// DefaultConsumerConfig: 4096 snapshots in flight is about 12 s of a
// 10 000-BMC fleet at 30 s — enough to fill sink batches, small enough to
// bound memory; 30 s ack wait lets a dead gateway's snapshots come back
// quickly; 256 per fetch amortises the pull round trip.
var DefaultConsumerConfig = ConsumerConfig{
	NamePrefix:    "bmcstream-gateway",
	MaxAckPending: 4096,
	AckWait:       model.Duration(30 * time.Second),
	FetchBatch:    256,
	// 10 s: a stalled consumer is reopened within two checks (20 s), less
	// than one 30 s poll interval, for one ConsumerInfo request per
	// consumer every 10 s.
	WatchdogInterval: model.Duration(10 * time.Second),
}

// DefaultConfig is a gateway with no sinks on a local NATS.
// Its 30 s failover matches Mimir's HA tracker: long enough to ride out a
// poller's slow poll, short enough to lose at most one 30 s interval.
var DefaultConfig = Config{
	NATS:       bus.DefaultConfig,
	Consumer:   DefaultConsumerConfig,
	Inventory:  DefaultInventoryConfig,
	HATracker:  HATrackerConfig{FailoverTimeout: model.Duration(30 * time.Second)},
	Automation: AutomationConfig{Enabled: true},
	Rollup:     RollupConfig{Enabled: true},
	Replicas:   DefaultReplicasConfig,
}

// UnmarshalYAML applies defaults before decoding.
func (c *Config) UnmarshalYAML(unmarshal func(interface{}) error) error {
	*c = DefaultConfig
	type plain Config
	return unmarshal((*plain)(c))
}

// UnmarshalYAML applies defaults before decoding.
func (c *ConsumerConfig) UnmarshalYAML(unmarshal func(interface{}) error) error {
	*c = DefaultConsumerConfig
	type plain ConsumerConfig
	return unmarshal((*plain)(c))
}

// UnmarshalYAML applies defaults before decoding.
func (c *InventoryConfig) UnmarshalYAML(unmarshal func(interface{}) error) error {
	*c = DefaultInventoryConfig
	type plain InventoryConfig
	return unmarshal((*plain)(c))
}

// UnmarshalYAML applies defaults before decoding.
func (c *ReplicasConfig) UnmarshalYAML(unmarshal func(interface{}) error) error {
	*c = DefaultReplicasConfig
	type plain ReplicasConfig
	return unmarshal((*plain)(c))
}

var consumerName = regexp.MustCompile(`^[A-Za-z0-9_-]+$`)

// Validate reports every problem at once, each naming its key.
func (c *Config) Validate() error {
	var errs []error
	if err := c.NATS.Validate(); err != nil {
		errs = append(errs, err)
	}
	if c.NATS.URL != "" {
		if err := bus.CheckServerURLs(c.NATS.URL); err != nil {
			errs = append(errs, fmt.Errorf("nats.url: %w", err))
		}
	}
	if !consumerName.MatchString(c.Consumer.NamePrefix) {
		errs = append(errs, fmt.Errorf("consumer.name_prefix: %q may hold only letters, digits, '-' and '_'", c.Consumer.NamePrefix))
	}
	if c.Consumer.MaxAckPending < 1 {
		errs = append(errs, fmt.Errorf("consumer.max_ack_pending: must be at least 1, got %d", c.Consumer.MaxAckPending))
	}
	if c.Consumer.AckWait < model.Duration(time.Second) {
		errs = append(errs, fmt.Errorf("consumer.ack_wait: must be at least 1s, got %s", c.Consumer.AckWait))
	}
	if c.Consumer.WatchdogInterval != 0 && c.Consumer.WatchdogInterval < model.Duration(time.Second) {
		errs = append(errs, fmt.Errorf("consumer.watchdog_interval: must be 0 (off) or at least 1s, got %s", c.Consumer.WatchdogInterval))
	}
	if c.Consumer.FetchBatch < 1 {
		errs = append(errs, fmt.Errorf("consumer.fetch_batch: must be at least 1, got %d", c.Consumer.FetchBatch))
	}
	for i, f := range c.Inventory.Files {
		if f == "" {
			errs = append(errs, fmt.Errorf("inventory.files[%d]: empty path", i))
		}
	}
	if c.Inventory.KVBucket != "" && (c.NATS.Mode != bus.ModeJetStream || !consumerName.MatchString(c.Inventory.KVBucket)) {
		errs = append(errs, fmt.Errorf("inventory.kv_bucket: %q needs nats.mode jetstream and a name of letters, digits, '-' and '_'", c.Inventory.KVBucket))
	}
	if c.Inventory.MaxUnknownBMCs < 0 {
		errs = append(errs, fmt.Errorf("inventory.max_unknown_bmcs: must not be negative, got %d", c.Inventory.MaxUnknownBMCs))
	}
	if c.Inventory.ForgetAfter < model.Duration(time.Second) {
		errs = append(errs, fmt.Errorf("inventory.forget_after: must be at least 1s, got %s", c.Inventory.ForgetAfter))
	}
	for i, f := range c.Normalise.RuleFiles {
		if f == "" {
			errs = append(errs, fmt.Errorf("normalise.rule_files[%d]: empty path", i))
		}
	}
	if err := (pipeline.RollupOptions{GroupBy: c.Rollup.GroupBy}).Validate(); err != nil {
		errs = append(errs, fmt.Errorf("rollup.group_by: %w", err))
	}
	if c.NATS.Stream.Partitions > 0 && c.NATS.Mode != bus.ModeJetStream {
		errs = append(errs, errors.New("nats.stream.partitions: partitions need nats.mode jetstream"))
	}
	if c.Replicas.ID != "" && !consumerName.MatchString(c.Replicas.ID) {
		errs = append(errs, fmt.Errorf("replicas.id: %q may hold only letters, digits, '-' and '_'", c.Replicas.ID))
	}
	if !consumerName.MatchString(c.Replicas.Bucket) {
		errs = append(errs, fmt.Errorf("replicas.bucket: %q is not a valid bucket name", c.Replicas.Bucket))
	}
	if c.Replicas.TTL < model.Duration(time.Second) {
		errs = append(errs, fmt.Errorf("replicas.ttl: must be at least 1s, got %s", c.Replicas.TTL))
	}
	if c.NATS.Stream.Partitions > 0 && c.Rollup.Enabled && slices.Contains(c.Rollup.GroupBy, partitionLabel) {
		errs = append(errs, fmt.Errorf("rollup.group_by: %q labels the partial roll-ups of a partitioned stream", partitionLabel))
	}
	if c.HATracker.FailoverTimeout < 0 {
		errs = append(errs, errors.New("ha_tracker.failover_timeout: must not be negative"))
	}
	if len(c.RemoteWrite) == 0 {
		errs = append(errs, errors.New("remote_write: at least one sink is required"))
	}
	seen := map[string]bool{}
	for i := range c.RemoteWrite {
		rw := &c.RemoteWrite[i]
		if err := rw.Validate(); err != nil {
			errs = append(errs, fmt.Errorf("remote_write[%d]: %w", i, err))
		}
		for j, rc := range rw.WriteRelabelConfigs {
			if _, err := pipeline.NewRelabeler([]*relabel.Config{rc}); err != nil {
				errs = append(errs, fmt.Errorf("remote_write[%d].write_relabel_configs[%d]: %w", i, j, err))
			}
		}
		if seen[rw.Name] {
			errs = append(errs, fmt.Errorf("remote_write[%d].name: %q is used twice", i, rw.Name))
		}
		seen[rw.Name] = true
		if rw.Name == automationName {
			errs = append(errs, fmt.Errorf("remote_write[%d].name: %q is reserved for the automation stream", i, rw.Name))
		}
		if rw.Name != "" && !consumerName.MatchString(rw.Name) {
			errs = append(errs, fmt.Errorf("remote_write[%d].name: %q may hold only letters, digits, '-' and '_' (it names a NATS consumer)", i, rw.Name))
		}
	}
	return errors.Join(errs...)
}

// LoadConfig reads and validates a configuration file. Every error names
// its line and the YAML path of its key. The files the gateway reads at
// start (inventory, mapping rules, NATS credentials and TLS files) must be
// readable; the remote-write client's files are read by the client, as in
// Prometheus.
func LoadConfig(path string) (*Config, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read config: %w", err)
	}
	cfg, err := ParseConfig(b)
	if err != nil {
		return nil, fmt.Errorf("config %s: %w", path, err)
	}
	cfg.SetDirectory(filepath.Dir(path))
	if err := cfg.checkFiles(); err != nil {
		return nil, fmt.Errorf("config %s: %w", path, yamlx.LocateErrors(b, err))
	}
	return cfg, nil
}

// checkFiles makes sure the files read at start can be read.
func (c *Config) checkFiles() error {
	var errs []error
	for i, f := range c.Inventory.Files {
		errs = append(errs, cfgfile.Readable(fmt.Sprintf("inventory.files[%d]", i), f, false))
	}
	for i, f := range c.Normalise.RuleFiles {
		errs = append(errs, cfgfile.Readable(fmt.Sprintf("normalise.rule_files[%d]", i), f, true))
	}
	errs = append(errs, c.NATS.CheckFiles())
	return errors.Join(errs...)
}

// SetDirectory resolves the relative file paths of the configuration
// against dir, the configuration file's directory, as Prometheus does.
func (c *Config) SetDirectory(dir string) {
	for i, f := range c.Inventory.Files {
		c.Inventory.Files[i] = cfgfile.Join(dir, f)
	}
	for i, f := range c.Normalise.RuleFiles {
		c.Normalise.RuleFiles[i] = cfgfile.Join(dir, f)
	}
	c.NATS.SetDirectory(dir)
	for i := range c.RemoteWrite {
		c.RemoteWrite[i].HTTPClientConfig.SetDirectory(dir)
	}
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
