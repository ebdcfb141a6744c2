package poller

import (
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

// placeKey: the duration, URL, address, file and reference keys, derived
// from the Config struct so a new one fails TestPlacementCoversEveryKey.
var placeKey = regexp.MustCompile(`(^|\.)(url|address|listen|[a-z_]*_file|files\[0\]|store_dir|[a-z_]*_ref|bucket|credentials)$`)

func keysToPlace() []string {
	var out []string
	for p, ft := range yamlx.FieldPaths(reflect.TypeOf(Config{})) {
		if ft == reflect.TypeOf(model.Duration(0)) || placeKey.MatchString(p) {
			out = append(out, p)
		}
	}
	sort.Strings(out)
	return out
}

// The decoy, nats.tls.server_name, takes any text; inv.yml exists.
var plPlaceBase = []yamlxtest.KV{{Path: "inventory.files[0]", Value: "inv.yml"}}

var plBad = map[string]string{
	"inventory.watch_interval":     "1",
	"polling.info_interval":        "1",
	"polling.max_backoff":          "1",
	"polling.poll_timeout":         "1",
	"polling.request_timeout":      "1",
	"sharding.ttl":                 "1",
	"nats.stream.duplicate_window": "1",
	"nats.stream.max_age":          "1",
	"nats.url":                     "http://h:4222",
	"nats.embedded.listen":         "[h]",
	"sharding.bucket":              "a.b",
	"inventory.files[0]":           "nosuch.yml",
	"inventory.credentials_file":   "nosuch.yml",
	"redfish.ca_file":              "nosuch.yml",
	"nats.creds_file":              "nosuch.yml",
	"nats.nkey_seed_file":          "nosuch.yml",
	"nats.password_file":           "nosuch.yml",
	"nats.token_file":              "nosuch.yml",
	"nats.tls.ca_file":             "nosuch.yml",
	"nats.tls.cert_file":           "nosuch.yml",
	"nats.tls.key_file":            "nosuch.yml",
	"nats.embedded.store_dir":      "[x]",
}

var plWith = map[string][]yamlxtest.KV{
	"nats.password_file": {{Path: "nats.user", Value: "u"}},
	"nats.tls.cert_file": {{Path: "nats.tls.key_file", Value: "nosuch.yml"}},
	"nats.tls.key_file":  {{Path: "nats.tls.cert_file", Value: "nosuch.yml"}},
	"sharding.bucket":    {{Path: "sharding.mode", Value: "dynamic"}},
}

func plLoad(t *testing.T, doc []byte) error {
	t.Helper()
	dir := t.TempDir()
	require.NoError(t, os.WriteFile(filepath.Join(dir, "inv.yml"), []byte("bmcs: []\n"), 0o600))
	path := filepath.Join(dir, "poller.yml")
	require.NoError(t, os.WriteFile(path, doc, 0o600))
	_, err := LoadConfig(path)
	return err
}

func TestPlacementCoversEveryKey(t *testing.T) {
	for _, k := range keysToPlace() {
		if _, ok := plBad[k]; !ok {
			t.Errorf("%s: no placement case", k)
		}
	}
}

// TestPlacementByNode: a bad value is reported at its own line and key,
// though its text is written earlier under another key (the issue's
// sharding.ttl, polling.request_timeout, inventory.watch_interval).
func TestPlacementByNode(t *testing.T) {
	t.Parallel()
	for _, k := range keysToPlace() {
		bad := plBad[k]
		t.Run(k, func(t *testing.T) {
			decoy := yamlxtest.KV{Path: "nats.tls.server_name", Value: "'" + strings.Trim(bad, "[]") + "'"}
			doc, lines, err := yamlxtest.Doc(decoy, append(plPlaceBase, plWith[k]...), yamlxtest.KV{Path: k, Value: bad})
			require.NoError(t, err)
			err = plLoad(t, doc)
			require.Error(t, err, "%s", doc)
			require.Contains(t, err.Error(), "line "+strconv.Itoa(lines[k])+": "+k+": ", "%s", doc)
			require.NotContains(t, err.Error(), "line "+strconv.Itoa(lines["nats.tls.server_name"])+":", "placed at the decoy")
		})
	}
}

// TestPlacementReportsAll: every bad duration of one file is reported.
func TestPlacementReportsAll(t *testing.T) {
	var kvs []yamlxtest.KV
	var keys []string
	for _, k := range keysToPlace() {
		if plBad[k] == "1" || strings.HasPrefix(plBad[k], "[") {
			kvs = append(kvs, yamlxtest.KV{Path: k, Value: plBad[k]})
			keys = append(keys, k)
		}
	}
	require.GreaterOrEqual(t, len(keys), 3)
	doc, lines, err := yamlxtest.Doc(yamlxtest.KV{Path: "nats.tls.server_name", Value: "'1'"}, plPlaceBase, kvs...)
	require.NoError(t, err)
	_, err = ParseConfig(doc)
	require.Error(t, err)
	for _, k := range keys {
		require.Contains(t, err.Error(), "line "+strconv.Itoa(lines[k])+": "+k+": ", "%s", doc)
	}
	require.Len(t, strings.Split(err.Error(), "\n"), len(keys), "one line per problem: %v", err)
}

// TestURLCredentialsRefused: nats.url carries no credentials.
func TestURLCredentialsRefused(t *testing.T) {
	_, err := ParseConfig([]byte("inventory:\n  files: [inv.yml]\nnats:\n  url: nats://u:pw-secret@h:4222\n"))
	require.ErrorContains(t, err, "line 4: nats.url: ")
	require.ErrorContains(t, err, "credentials in the URL")
	require.NotContains(t, err.Error(), "pw-secret")
}
