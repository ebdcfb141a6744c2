package remotewrite

import (
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/prometheus/common/config"
	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/model/relabel"
)

// Tenant headers set from Config.OrgID and Config.ThanosTenant.
const (
	// OrgIDHeader carries the tenant for Grafana Mimir and Cortex.
	OrgIDHeader = "X-Scope-OrgID"
	// ThanosTenantHeader carries the tenant for Thanos Receive (its default
	// --receive.tenant-header).
	ThanosTenantHeader = "THANOS-TENANT"
)

// DefaultQueueConfig is the queue configuration used for every key that
// queue_config leaves out.
//
// The queue is deliberately small: the durable buffer of bmcstream is the
// JetStream stream, not the gateway's memory. A full queue blocks Append, the
// gateway's consumer stops fetching, and the data waits in the stream. The
// in-memory queue only has to keep the shards busy while one request is in
// flight and the next batch is being built.
var DefaultQueueConfig = QueueConfig{
	// 10000 samples per shard is five full batches: enough to build the next
	// batches while one request is in flight, and small enough (about 0.6 MB of
	// queue entries per shard, plus the label sets they retain) that a stalled
	// receiver holds back seconds of data in memory, not minutes. 40000
	// samples over the default 4 shards is about 2.5 s of a 10000-BMC fleet
	// polled every 30 s with 50 series per BMC (about 17000 samples/s).
	Capacity: 10000,
	// 4 shards with one request in flight each, at 2000 samples and a typical
	// 50-100 ms receiver latency, move 80000-160000 samples/s: several times the
	// fleet above, so one slow request does not stall the whole sink. More
	// shards only add concurrent requests the receiver must absorb.
	Shards: 4,
	// 2000 is Prometheus' default since v2.23; Mimir, Thanos and
	// VictoriaMetrics are tuned for requests of this size (about 150-250 KB
	// of protobuf, 20-40 KB after snappy for BMC series).
	MaxSamplesPerSend: 2000,
	// 1 s, not Prometheus' 5 s: a reading should be queryable within 2 s
	// of its poll, and a batch that fills slowly (a small fleet, or a shard
	// whose BMCs are few) waits out the whole deadline. A large fleet fills
	// batches long before it, so it costs nothing in request count there.
	BatchSendDeadline: model.Duration(1 * time.Second),
	// 30 ms and 5 s are Prometheus' defaults: the first retry comes quickly
	// after a transient error, and a recovered receiver is used again within
	// at most 5 s.
	MinBackoff: model.Duration(30 * time.Millisecond),
	MaxBackoff: model.Duration(5 * time.Second),
	// Retrying on 429 is the only choice that keeps delivery at least once: a
	// rate-limited sample that is dropped is lost although the stream still
	// holds it. Waiting (honouring Retry-After) turns the limit into
	// back-pressure on the stream instead.
	RetryOnRateLimit: true,
}

// DefaultConfig is the sink configuration used for every key that a
// remote_write entry leaves out. Name and URL have no default.
var DefaultConfig = Config{
	// 30 s is Prometheus' default: long enough for a loaded receiver to
	// answer a 2000-sample request, short enough that a hung connection is
	// replaced well within a poll interval or two.
	RemoteTimeout: model.Duration(30 * time.Second),
	QueueConfig:   DefaultQueueConfig,
	// Follow redirects and allow HTTP/2, as prometheus/common does.
	HTTPClientConfig: config.DefaultHTTPClientConfig,
}

// Config is one remote-write sink: one entry of the gateway's remote_write
// list. Decode it with yaml.UnmarshalStrict (go.yaml.in/yaml/v2) so unknown
// keys are errors, then call Validate.
type Config struct {
	// Name identifies the sink. It is the remote_name label of the sink's
	// self-metrics, so it must be unique within one process.
	Name string `yaml:"name"`
	// URL is the receiver's remote-write endpoint, http or https.
	URL config.URL `yaml:"url"`
	// RemoteTimeout bounds one HTTP request, including reading the response.
	RemoteTimeout model.Duration `yaml:"remote_timeout,omitempty"`
	// Headers are added to every request. Headers that remote write or
	// HTTP itself sets (config.ReservedHeaders) are rejected by Validate.
	Headers map[string]string `yaml:"headers,omitempty"`
	// OrgID, when set, is sent as the X-Scope-OrgID header (Mimir, Cortex).
	OrgID string `yaml:"org_id,omitempty"`
	// ThanosTenant, when set, is sent as the THANOS-TENANT header.
	ThanosTenant string `yaml:"thanos_tenant,omitempty"`
	// QueueConfig tunes sharding, batching and retries.
	QueueConfig QueueConfig `yaml:"queue_config,omitempty"`
	// WriteRelabelConfigs rewrite or drop series for this sink only, with
	// Prometheus relabel_configs semantics.
	WriteRelabelConfigs []*relabel.Config `yaml:"write_relabel_configs,omitempty"`
	// HTTPClientConfig holds authentication (basic_auth, authorization,
	// oauth2), tls_config, proxy and redirect settings, inlined so the keys
	// sit beside url as in Prometheus' remote_write.
	HTTPClientConfig config.HTTPClientConfig `yaml:",inline"`
}

// QueueConfig tunes one sink's queue. See DefaultQueueConfig for the
// reasoning behind each default.
type QueueConfig struct {
	// Capacity is the number of samples each shard's queue holds before
	// Append blocks.
	Capacity int `yaml:"capacity,omitempty"`
	// Shards is the fixed number of shards. A series always goes to the
	// same shard: the shard of its source's key (AppendKey), or shard
	// Hash % Shards (Append).
	Shards int `yaml:"shards,omitempty"`
	// MaxSamplesPerSend is the largest number of samples in one request.
	MaxSamplesPerSend int `yaml:"max_samples_per_send,omitempty"`
	// BatchSendDeadline is how long a batch may wait, from its first sample,
	// before it is sent although not full.
	BatchSendDeadline model.Duration `yaml:"batch_send_deadline,omitempty"`
	// MinBackoff is the first retry delay; it doubles on every retry.
	MinBackoff model.Duration `yaml:"min_backoff,omitempty"`
	// MaxBackoff caps the retry delay (a larger Retry-After still wins).
	MaxBackoff model.Duration `yaml:"max_backoff,omitempty"`
	// RetryOnRateLimit retries requests answered with 429 Too Many Requests
	// instead of dropping their samples.
	RetryOnRateLimit bool `yaml:"retry_on_http_429"`
}

// UnmarshalYAML applies DefaultConfig, then the keys present.
func (c *Config) UnmarshalYAML(unmarshal func(any) error) error {
	*c = DefaultConfig
	type plain Config
	return unmarshal((*plain)(c))
}

// UnmarshalYAML applies DefaultQueueConfig, then the keys present.
func (c *QueueConfig) UnmarshalYAML(unmarshal func(any) error) error {
	*c = DefaultQueueConfig
	type plain QueueConfig
	return unmarshal((*plain)(c))
}

// Validate reports every problem of the configuration at once, each naming
// its key. It may normalise the HTTP client settings (a bearer_token becomes
// an authorization), as prometheus/common does.
func (c *Config) Validate() error {
	var errs []error
	if c.Name == "" {
		errs = append(errs, errors.New("name: must be set"))
	}
	switch u := c.URL.URL; {
	case u == nil || u.String() == "":
		errs = append(errs, errors.New("url: must be set"))
	case u.Scheme != "http" && u.Scheme != "https":
		errs = append(errs, fmt.Errorf("url: scheme %q is not http or https", u.Scheme))
	case u.Host == "":
		errs = append(errs, fmt.Errorf("url: %q has no host", c.URL.Redacted()))
	case u.User != nil:
		// The rule of nats.url too: a URL is printed in logs and errors,
		// so it carries no credentials; the auth keys hold them.
		errs = append(errs, fmt.Errorf("url: credentials in the URL of %s would be logged; use basic_auth (password_file) or authorization (credentials_file)", u.Host))
	}
	if c.RemoteTimeout <= 0 {
		errs = append(errs, fmt.Errorf("remote_timeout: must be positive, got %s", c.RemoteTimeout))
	}
	errs = append(errs, c.validateHeaders()...)
	if err := c.QueueConfig.Validate(); err != nil {
		errs = append(errs, fmt.Errorf("queue_config: %w", err))
	}
	if err := c.HTTPClientConfig.Validate(); err != nil {
		errs = append(errs, fmt.Errorf("http client settings: %w", err))
	}
	return errors.Join(errs...)
}

func (c *Config) validateHeaders() []error {
	var errs []error
	names := make([]string, 0, len(c.Headers))
	for name := range c.Headers {
		names = append(names, name)
	}
	slices.Sort(names) // Deterministic error order.
	for _, name := range names {
		canonical := http.CanonicalHeaderKey(name)
		if _, ok := config.ReservedHeaders[canonical]; ok {
			errs = append(errs, fmt.Errorf("headers: %q is reserved and cannot be set", name))
			continue
		}
		if name == "" || strings.ContainsAny(name, " \t\r\n:") {
			errs = append(errs, fmt.Errorf("headers: %q is not a valid header name", name))
			continue
		}
		if strings.ContainsAny(c.Headers[name], "\r\n\x00") {
			errs = append(errs, fmt.Errorf("headers: value of %q contains a line break or NUL", name))
		}
		if canonical == http.CanonicalHeaderKey(OrgIDHeader) && c.OrgID != "" {
			errs = append(errs, fmt.Errorf("headers: %q conflicts with org_id", name))
		}
		if canonical == http.CanonicalHeaderKey(ThanosTenantHeader) && c.ThanosTenant != "" {
			errs = append(errs, fmt.Errorf("headers: %q conflicts with thanos_tenant", name))
		}
	}
	if strings.ContainsAny(c.OrgID, "\r\n\x00") {
		errs = append(errs, errors.New("org_id: contains a line break or NUL"))
	}
	if strings.ContainsAny(c.ThanosTenant, "\r\n\x00") {
		errs = append(errs, errors.New("thanos_tenant: contains a line break or NUL"))
	}
	return errs
}

// Validate reports every problem of the queue configuration at once, each
// naming its key.
func (c *QueueConfig) Validate() error {
	var errs []error
	if c.Capacity <= 0 {
		errs = append(errs, fmt.Errorf("capacity: must be positive, got %d", c.Capacity))
	}
	if c.Shards <= 0 {
		errs = append(errs, fmt.Errorf("shards: must be positive, got %d", c.Shards))
	}
	if c.MaxSamplesPerSend <= 0 {
		errs = append(errs, fmt.Errorf("max_samples_per_send: must be positive, got %d", c.MaxSamplesPerSend))
	}
	if c.BatchSendDeadline <= 0 {
		errs = append(errs, fmt.Errorf("batch_send_deadline: must be positive, got %s", c.BatchSendDeadline))
	}
	if c.MinBackoff <= 0 {
		errs = append(errs, fmt.Errorf("min_backoff: must be positive, got %s", c.MinBackoff))
	}
	if c.MaxBackoff < c.MinBackoff {
		errs = append(errs, fmt.Errorf("max_backoff: %s is less than min_backoff %s", c.MaxBackoff, c.MinBackoff))
	}
	return errors.Join(errs...)
}
