package remotewrite

import (
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/common/config"
	"github.com/prometheus/common/model"
	"github.com/stretchr/testify/require"
	"go.yaml.in/yaml/v2"
)

// gatewayConfig mimics the gateway's config file, which holds a list of sinks.
type gatewayConfig struct {
	RemoteWrite []Config `yaml:"remote_write"`
}

func TestConfigUnmarshal(t *testing.T) {
	const full = `
remote_write:
  - name: mimir
    url: https://mimir.example:9009/api/v1/push
    remote_timeout: 10s
    org_id: team-a
    headers:
      X-Custom: yes
    basic_auth:
      username: bmc
      password: hunter2
    tls_config:
      ca_file: /etc/ssl/mimir-ca.pem
      insecure_skip_verify: false
    queue_config:
      shards: 8
      retry_on_http_429: false
  - name: prom
    url: http://prometheus:9090/api/v1/write
    thanos_tenant: t1
    authorization:
      credentials_file: /run/secrets/token
`
	var got gatewayConfig
	require.NoError(t, yaml.UnmarshalStrict([]byte(full), &got))
	require.Len(t, got.RemoteWrite, 2)

	mimir := got.RemoteWrite[0]
	require.Equal(t, "mimir", mimir.Name)
	require.Equal(t, "https://mimir.example:9009/api/v1/push", mimir.URL.String())
	require.Equal(t, model.Duration(10*time.Second), mimir.RemoteTimeout)
	require.Equal(t, "team-a", mimir.OrgID)
	require.Equal(t, map[string]string{"X-Custom": "yes"}, mimir.Headers)
	require.Equal(t, "bmc", mimir.HTTPClientConfig.BasicAuth.Username)
	require.Equal(t, config.Secret("hunter2"), mimir.HTTPClientConfig.BasicAuth.Password)
	require.Equal(t, "/etc/ssl/mimir-ca.pem", mimir.HTTPClientConfig.TLSConfig.CAFile)
	wantQueue := DefaultQueueConfig
	wantQueue.Shards = 8
	wantQueue.RetryOnRateLimit = false
	require.Equal(t, wantQueue, mimir.QueueConfig, "keys left out of queue_config keep their defaults")
	require.NoError(t, mimir.Validate())

	prom := got.RemoteWrite[1]
	require.Equal(t, "t1", prom.ThanosTenant)
	require.Equal(t, DefaultQueueConfig, prom.QueueConfig)
	require.Equal(t, DefaultConfig.RemoteTimeout, prom.RemoteTimeout)
	require.True(t, prom.HTTPClientConfig.FollowRedirects)
	require.True(t, prom.HTTPClientConfig.EnableHTTP2)
	require.NoError(t, prom.Validate())
	require.Equal(t, "Bearer", prom.HTTPClientConfig.Authorization.Type, "Validate defaults the authorization type")
}

func TestConfigDefaults(t *testing.T) {
	var got Config
	require.NoError(t, yaml.UnmarshalStrict([]byte("name: a\nurl: http://localhost/api/v1/write\n"), &got))
	want := DefaultConfig
	want.Name = "a"
	want.URL = got.URL
	require.Equal(t, want, got)
	require.NoError(t, got.Validate())

	// The numbers the documentation promises.
	require.Equal(t, QueueConfig{
		Capacity:          10000,
		Shards:            4,
		MaxSamplesPerSend: 2000,
		BatchSendDeadline: model.Duration(1 * time.Second),
		MinBackoff:        model.Duration(30 * time.Millisecond),
		MaxBackoff:        model.Duration(5 * time.Second),
		RetryOnRateLimit:  true,
	}, got.QueueConfig)
	require.Equal(t, model.Duration(30*time.Second), got.RemoteTimeout)
}

func TestConfigStrict(t *testing.T) {
	tests := []struct {
		name string
		yaml string
		want []string
	}{
		{
			name: "unknown top-level key",
			yaml: "remote_write:\n  - name: a\n    urll: http://x\n",
			want: []string{"urll", "line 3"},
		},
		{
			name: "unknown queue_config key",
			yaml: "remote_write:\n  - name: a\n    url: http://x\n    queue_config:\n      max_shards: 3\n",
			want: []string{"max_shards", "line 5"},
		},
		{
			name: "unknown tls_config key",
			yaml: "remote_write:\n  - name: a\n    url: http://x\n    tls_config:\n      ca_fil: x\n",
			want: []string{"ca_fil", "line 5"},
		},
		{
			name: "bad duration",
			yaml: "remote_write:\n  - name: a\n    url: http://x\n    remote_timeout: soon\n",
			want: []string{"soon"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var got gatewayConfig
			err := yaml.UnmarshalStrict([]byte(tt.yaml), &got)
			require.Error(t, err)
			for _, w := range tt.want {
				require.Contains(t, err.Error(), w)
			}
		})
	}
}

func TestConfigValidate(t *testing.T) {
	valid := func() Config {
		u, _ := url.Parse("https://receiver.example/api/v1/write")
		c := DefaultConfig
		c.Name = "r"
		c.URL = config.URL{URL: u}
		return c
	}
	mustURL := func(s string) config.URL {
		u, err := url.Parse(s)
		require.NoError(t, err)
		return config.URL{URL: u}
	}
	tests := []struct {
		name   string
		modify func(*Config)
		want   []string // Substrings of the error; none means valid.
	}{
		{name: "valid", modify: func(*Config) {}},
		{name: "missing name", modify: func(c *Config) { c.Name = "" }, want: []string{"name: must be set"}},
		{name: "missing url", modify: func(c *Config) { c.URL = config.URL{} }, want: []string{"url: must be set"}},
		{name: "bad scheme", modify: func(c *Config) { c.URL = mustURL("ftp://x/y") }, want: []string{"url:", `"ftp"`}},
		{name: "no host", modify: func(c *Config) { c.URL = mustURL("http:///api") }, want: []string{"url:", "no host"}},
		{name: "zero timeout", modify: func(c *Config) { c.RemoteTimeout = 0 }, want: []string{"remote_timeout"}},
		{
			name: "reserved headers",
			modify: func(c *Config) {
				c.Headers = map[string]string{"content-type": "x", "User-Agent": "y", "Authorization": "z"}
			},
			want: []string{`headers: "content-type" is reserved`, `"User-Agent" is reserved`, `"Authorization" is reserved`},
		},
		{
			name:   "remote write version header",
			modify: func(c *Config) { c.Headers = map[string]string{"X-Prometheus-Remote-Write-Version": "2"} },
			want:   []string{"X-Prometheus-Remote-Write-Version"},
		},
		{
			name:   "content encoding header",
			modify: func(c *Config) { c.Headers = map[string]string{"Content-Encoding": "gzip"} },
			want:   []string{"Content-Encoding"},
		},
		{
			name:   "tenant conflict",
			modify: func(c *Config) { c.OrgID = "a"; c.Headers = map[string]string{"x-scope-orgid": "b"} },
			want:   []string{"conflicts with org_id"},
		},
		{
			name:   "tenant header without org_id is fine",
			modify: func(c *Config) { c.Headers = map[string]string{"X-Scope-OrgID": "b"} },
		},
		{
			name:   "header injection",
			modify: func(c *Config) { c.Headers = map[string]string{"X-A": "a\r\nX-B: b"} },
			want:   []string{"line break"},
		},
		{
			name: "queue values",
			modify: func(c *Config) {
				c.QueueConfig.Capacity = 0
				c.QueueConfig.Shards = -1
				c.QueueConfig.MaxSamplesPerSend = 0
				c.QueueConfig.BatchSendDeadline = 0
				c.QueueConfig.MinBackoff = model.Duration(time.Second)
				c.QueueConfig.MaxBackoff = model.Duration(time.Millisecond)
			},
			want: []string{
				"queue_config: capacity", "shards", "max_samples_per_send",
				"batch_send_deadline", "max_backoff: 1ms is less than min_backoff 1s",
			},
		},
		{
			name: "http client settings",
			modify: func(c *Config) {
				c.HTTPClientConfig.BasicAuth = &config.BasicAuth{Username: "u"}
				c.HTTPClientConfig.BearerToken = "t"
			},
			want: []string{"http client settings", "at most one of basic_auth"},
		},
		{
			name:   "every error at once",
			modify: func(c *Config) { c.Name = ""; c.URL = config.URL{}; c.Headers = map[string]string{"Content-Type": "x"} },
			want:   []string{"name:", "url:", "headers:"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := valid()
			tt.modify(&c)
			err := c.Validate()
			if len(tt.want) == 0 {
				require.NoError(t, err)
				return
			}
			require.Error(t, err)
			for _, w := range tt.want {
				require.Contains(t, err.Error(), w)
			}
		})
	}
}

func TestConfigSecretsRedacted(t *testing.T) {
	const in = `
name: a
url: https://user:urlpass@receiver.example/api/v1/write
basic_auth:
  username: bmc
  password: hunter2
`
	var c Config
	require.NoError(t, yaml.UnmarshalStrict([]byte(in), &c))
	out, err := yaml.Marshal(c)
	require.NoError(t, err)
	require.NotContains(t, string(out), "hunter2")
	require.NotContains(t, string(out), "urlpass")
	require.Contains(t, string(out), "<secret>")
	require.True(t, strings.Contains(string(out), "url: https://user:xxxxx@receiver.example/api/v1/write"), string(out))
}
