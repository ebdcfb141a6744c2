package gateway

import (
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"testing"

	"github.com/prometheus/common/model"
	"github.com/stretchr/testify/require"

	"github.com/bmcstream/bmcstream/internal/yamlx"
	"github.com/bmcstream/bmcstream/internal/yamlx/yamlxtest"
)

// placeKey is a key a placement test must cover: a duration, URL,
// address, file or reference. Derived from the Config struct, so a new key
// of those kinds fails TestPlacementCoversEveryKey until it has a case.
var placeKey = regexp.MustCompile(`(^|\.)(url|proxy_url|token_url|address|listen|[a-z_]*_file|files\[0\]|rule_files\[0\]|store_dir|[a-z_]*_ref|bucket|kv_bucket|credentials)$`)

func keysToPlace(t reflect.Type) []string {
	var out []string
	for p, ft := range yamlx.FieldPaths(t) {
		if ft == reflect.TypeOf(model.Duration(0)) || placeKey.MatchString(p) {
			out = append(out, p)
		}
	}
	sort.Strings(out)
	return out
}

// gwPlaceBase is a valid configuration; the decoy writes a case's bad text
// first, under remote_write[0].org_id, which takes any text.
var gwPlaceBase = []yamlxtest.KV{
	{Path: "remote_write[0].name", Value: "prom"},
	{Path: "remote_write[0].url", Value: "http://127.0.0.1:9090/api/v1/write"},
}

// gwBad is a bad value per key. Durations take "1" (a number without a
// unit), URLs a scheme or a text that does not parse, buckets a name with
// a dot; keys checked only for their type take a list. Files read at load
// take a path that does not exist (loadOnly).
var gwBad = map[string]string{
	"consumer.ack_wait":                                  "1",
	"consumer.watchdog_interval":                         "1",
	"inventory.forget_after":                             "1",
	"ha_tracker.failover_timeout":                        "1",
	"nats.stream.duplicate_window":                       "1",
	"nats.stream.max_age":                                "1",
	"replicas.ttl":                                       "1",
	"remote_write[0].queue_config.batch_send_deadline":   "1",
	"remote_write[0].queue_config.max_backoff":           "1",
	"remote_write[0].queue_config.min_backoff":           "1",
	"remote_write[0].remote_timeout":                     "1",
	"nats.url":                                           "http://h:4222",
	"remote_write[0].url":                                "ftp://h/w",
	"remote_write[0].proxy_url":                          "'%zz'",
	"remote_write[0].oauth2.proxy_url":                   "'%zz'",
	"remote_write[0].oauth2.token_url":                   "[h]",
	"nats.embedded.listen":                               "[h]",
	"inventory.kv_bucket":                                "a.b",
	"replicas.bucket":                                    "a.b",
	"inventory.files[0]":                                 "nosuch.yml",
	"normalise.rule_files[0]":                            "nosuch.yml",
	"nats.creds_file":                                    "nosuch.yml",
	"nats.nkey_seed_file":                                "nosuch.yml",
	"nats.password_file":                                 "nosuch.yml",
	"nats.token_file":                                    "nosuch.yml",
	"nats.tls.ca_file":                                   "nosuch.yml",
	"nats.tls.cert_file":                                 "nosuch.yml",
	"nats.tls.key_file":                                  "nosuch.yml",
	"nats.embedded.store_dir":                            "[x]",
	"remote_write[0].authorization.credentials":          "[x]",
	"remote_write[0].authorization.credentials_file":     "[x]",
	"remote_write[0].authorization.credentials_ref":      "[x]",
	"remote_write[0].basic_auth.password_file":           "[x]",
	"remote_write[0].basic_auth.password_ref":            "[x]",
	"remote_write[0].basic_auth.username_file":           "[x]",
	"remote_write[0].basic_auth.username_ref":            "[x]",
	"remote_write[0].bearer_token_file":                  "[x]",
	"remote_write[0].oauth2.client_certificate_key_file": "[x]",
	"remote_write[0].oauth2.client_certificate_key_ref":  "[x]",
	"remote_write[0].oauth2.client_secret_file":          "[x]",
	"remote_write[0].oauth2.client_secret_ref":           "[x]",
	"remote_write[0].oauth2.tls_config.ca_file":          "[x]",
	"remote_write[0].oauth2.tls_config.ca_ref":           "[x]",
	"remote_write[0].oauth2.tls_config.cert_file":        "[x]",
	"remote_write[0].oauth2.tls_config.cert_ref":         "[x]",
	"remote_write[0].oauth2.tls_config.key_file":         "[x]",
	"remote_write[0].oauth2.tls_config.key_ref":          "[x]",
	"remote_write[0].tls_config.ca_file":                 "[x]",
	"remote_write[0].tls_config.ca_ref":                  "[x]",
	"remote_write[0].tls_config.cert_file":               "[x]",
	"remote_write[0].tls_config.cert_ref":                "[x]",
	"remote_write[0].tls_config.key_file":                "[x]",
	"remote_write[0].tls_config.key_ref":                 "[x]",
}

// gwWith are keys a case's key needs beside it to be valid otherwise.
var gwWith = map[string][]yamlxtest.KV{
	"nats.password_file": {{Path: "nats.user", Value: "u"}},
	"nats.tls.cert_file": {{Path: "nats.tls.key_file", Value: "nosuch.yml"}},
	"nats.tls.key_file":  {{Path: "nats.tls.cert_file", Value: "nosuch.yml"}},
}

// decoyText is the text of a bad value, written as a string.
func decoyText(bad string) string {
	return strings.Trim(bad, "[]'")
}

func gwLoad(t *testing.T, doc []byte) error {
	t.Helper()
	path := filepath.Join(t.TempDir(), "gateway.yml")
	require.NoError(t, os.WriteFile(path, doc, 0o600))
	_, err := LoadConfig(path)
	return err
}

func TestPlacementCoversEveryKey(t *testing.T) {
	t.Parallel()
	for _, k := range keysToPlace(reflect.TypeOf(Config{})) {
		if _, ok := gwBad[k]; !ok {
			t.Errorf("%s: no placement case", k)
		}
	}
	require.NotEmpty(t, gwBad)
}

// TestPlacementByNode: each bad value is reported at its own line and key,
// though its text is written earlier under another key.
func TestPlacementByNode(t *testing.T) {
	t.Parallel()
	for _, k := range keysToPlace(reflect.TypeOf(Config{})) {
		bad, ok := gwBad[k]
		if !ok {
			continue
		}
		t.Run(k, func(t *testing.T) {
			decoy := yamlxtest.KV{Path: "remote_write[0].org_id", Value: "'" + decoyText(bad) + "'"}
			doc, lines, err := yamlxtest.Doc(decoy, append(gwPlaceBase, gwWith[k]...), yamlxtest.KV{Path: k, Value: bad})
			require.NoError(t, err)
			err = gwLoad(t, doc)
			require.Error(t, err, "%s", doc)
			want := "line " + itoa(lines[k]) + ": " + k + ": "
			require.Contains(t, err.Error(), want, "%s", doc)
			require.NotContains(t, err.Error(), "line "+itoa(lines["remote_write[0].org_id"])+":", "placed at the decoy")
		})
	}
}

// TestPlacementReportsAll: a file with several bad values reports each.
func TestPlacementReportsAll(t *testing.T) {
	t.Parallel()
	// Grouped by when they are found: decoding, Validate, reading files.
	groups := map[string][]string{}
	for k, bad := range gwBad {
		switch {
		case bad == "nosuch.yml":
			// One NATS credential kind at a time.
			if k != "nats.nkey_seed_file" && k != "nats.password_file" && k != "nats.token_file" {
				groups["files"] = append(groups["files"], k)
			}
		case bad == "http://h:4222" || bad == "ftp://h/w" || bad == "a.b":
			groups["validate"] = append(groups["validate"], k)
		default:
			groups["decode"] = append(groups["decode"], k)
		}
	}
	for name, keys := range groups {
		t.Run(name, func(t *testing.T) {
			sort.Strings(keys)
			var kvs []yamlxtest.KV
			for _, k := range keys {
				kvs = append(kvs, yamlxtest.KV{Path: k, Value: gwBad[k]})
			}
			decoy := yamlxtest.KV{Path: "remote_write[0].org_id", Value: "decoy"}
			doc, lines, err := yamlxtest.Doc(decoy, gwPlaceBase, kvs...)
			require.NoError(t, err)
			err = gwLoad(t, doc)
			require.Error(t, err)
			var j interface{ Unwrap() []error }
			if len(keys) > 1 {
				require.True(t, errors.As(err, &j), "%v", err)
			}
			for _, k := range keys {
				require.Contains(t, err.Error(), "line "+itoa(lines[k])+": "+k+": ", "%s", doc)
			}
		})
	}
}

// TestURLCredentialsRefused: one rule for both URLs: no user or password
// in them; the error names the key and line, never the password.
func TestURLCredentialsRefused(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct{ key, url string }{
		{"nats.url", "nats://u:pw-secret@h:4222"},
		{"nats.url", "nats://h1:4222,nats://u:pw-secret@h2:4222"},
		{"nats.url", "nats://u@h:4222"},
		{"remote_write[0].url", "http://u:pw-secret@h:9090/api/v1/write"},
		{"remote_write[0].url", "https://u@h/api/v1/write"},
	} {
		t.Run(tc.url, func(t *testing.T) {
			doc, lines, err := yamlxtest.Doc(yamlxtest.KV{Path: "consumer.name_prefix", Value: "gw"}, gwPlaceBase, yamlxtest.KV{Path: tc.key, Value: "'" + tc.url + "'"})
			require.NoError(t, err)
			_, err = ParseConfig(doc)
			require.Error(t, err)
			require.Contains(t, err.Error(), "line "+itoa(lines[tc.key])+": "+tc.key+": ")
			require.Contains(t, err.Error(), "credentials in the URL")
			require.NotContains(t, err.Error(), "pw-secret")
		})
	}
	_, err := ParseConfig([]byte("remote_write:\n  - name: a\n    url: http://h:9090/w\n    basic_auth: {username: u, password: p}\n"))
	require.NoError(t, err, "credentials belong in basic_auth")
}

func itoa(i int) string { return strconv.Itoa(i) }
