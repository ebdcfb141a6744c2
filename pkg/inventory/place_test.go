package inventory

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
	"go.yaml.in/yaml/v2"

	"github.com/bmcstream/bmcstream/internal/yamlx"
	"github.com/bmcstream/bmcstream/internal/yamlx/yamlxtest"
)

var placeKey = regexp.MustCompile(`(^|\.)(url|address|[a-z_]*_file|credentials)$`)

// keysToPlace lists the duration, address, file and reference keys of t
// under prefix, from the struct, so a new one fails the coverage test.
func keysToPlace(t reflect.Type, prefix string) []string {
	var out []string
	for p, ft := range yamlx.FieldPaths(t) {
		if ft == reflect.TypeOf(model.Duration(0)) || placeKey.MatchString(p) {
			out = append(out, prefix+p)
		}
	}
	sort.Strings(out)
	return out
}

// invBad: a bad value per key; the decoy writes its text first, as a label
// of the defaults.
var invBad = map[string]string{
	"defaults.interval":    "1",
	"defaults.credentials": "[lab]",
	"bmcs[1].interval":     "1",
	"bmcs[1].address":      "[10.0.0.1]",
	"bmcs[1].ca_file":      "[ca.pem]",
	"bmcs[1].credentials":  "[lab]",
}

func invKeys() []string {
	return append(keysToPlace(reflect.TypeOf(Defaults{}), "defaults."), keysToPlace(reflect.TypeOf(BMC{}), "bmcs[1].")...)
}

var invBase = []yamlxtest.KV{
	{Path: "bmcs[0].id", Value: "a"},
	{Path: "bmcs[0].address", Value: "10.0.0.1"},
	{Path: "bmcs[1].id", Value: "b"},
	{Path: "bmcs[1].address", Value: "10.0.0.2"},
}

func TestInventoryPlacementCoversEveryKey(t *testing.T) {
	for _, k := range invKeys() {
		if _, ok := invBad[k]; !ok {
			t.Errorf("%s: no placement case", k)
		}
	}
}

// TestInventoryPlacementByNode: a bad value is reported at its own line
// and key though its text is written earlier.
func TestInventoryPlacementByNode(t *testing.T) {
	for _, k := range invKeys() {
		bad := invBad[k]
		t.Run(k, func(t *testing.T) {
			decoy := yamlxtest.KV{Path: "defaults.labels.note", Value: "'" + strings.Trim(bad, "[]") + "'"}
			doc, lines, err := yamlxtest.Doc(decoy, invBase, yamlxtest.KV{Path: k, Value: bad})
			require.NoError(t, err)
			_, err = Parse(doc)
			require.Error(t, err, "%s", doc)
			require.Contains(t, err.Error(), "line "+strconv.Itoa(lines[k])+": "+k+": ", "%s", doc)
			require.NotContains(t, err.Error(), "line "+strconv.Itoa(lines["defaults.labels.note"])+":")
		})
	}
}

// TestInventoryPlacementReportsAll: every bad value of a file, in every
// entry, is reported at its line.
func TestInventoryPlacementReportsAll(t *testing.T) {
	var kvs []yamlxtest.KV
	var keys []string
	for i := 1; i <= 3; i++ {
		for _, f := range []string{"interval", "address", "ca_file", "credentials"} {
			k := "bmcs[" + strconv.Itoa(i) + "]." + f
			kvs = append(kvs, yamlxtest.KV{Path: k, Value: invBad["bmcs[1]."+f]})
			keys = append(keys, k)
		}
		kvs = append(kvs, yamlxtest.KV{Path: "bmcs[" + strconv.Itoa(i) + "].id", Value: "b" + strconv.Itoa(i)})
	}
	doc, lines, err := yamlxtest.Doc(yamlxtest.KV{Path: "defaults.interval", Value: "1"}, invBase[:2], kvs...)
	require.NoError(t, err)
	_, err = Parse(doc)
	require.Error(t, err)
	for _, k := range append(keys, "defaults.interval") {
		require.Contains(t, err.Error(), "line "+strconv.Itoa(lines[k])+": "+k+": ", "%s", doc)
	}
	require.Len(t, strings.Split(err.Error(), "\n"), len(keys)+1, "%v", err)
}

// TestCredentialsPlacement: in the credentials file a bad value is placed
// at its node, every one is reported, and no value (a password) is shown.
func TestCredentialsPlacement(t *testing.T) {
	for _, k := range keysToPlace(reflect.TypeOf(Credential{}), "") {
		require.Equal(t, "password_file", k, "a new credentials key to place")
	}
	doc := []byte("lab:\n  username: u\n  password_file: hunter2-pw\nother:\n  username: v\n  password_file: [hunter2-pw]\nthird: hunter2-pw\nfourth:\n  username: [w]\n  password: {a: hunter2-pw}\n")
	path := filepath.Join(t.TempDir(), "credentials.yml")
	require.NoError(t, os.WriteFile(path, doc, 0o600))
	_, err := LoadCredentials(path)
	require.Error(t, err)
	for _, want := range []string{"line 6: other.password_file: ", "line 7: third: ", "line 9: fourth.username: ", "line 10: fourth.password: "} {
		require.Contains(t, err.Error(), want)
	}
	require.NotContains(t, err.Error(), "hunter2")
}

// TestDecodeAgreesWithYAMLv2: the inventory is decoded from one yaml v3
// parse; on every document that both accept it gives what yaml v2's
// strict decoding gives (booleans as yes/no, numbers as strings, empty
// entries kept), and it refuses what v2 refuses.
func TestDecodeAgreesWithYAMLv2(t *testing.T) {
	docs := []string{
		"bmcs:\n  - id: a\n    address: x\n    insecure_skip_verify: yes\n    labels: {position: 12, u: 1.50, n: null, t: true}\n",
		"bmcs:\n  -\n  - id: b\n    address: y\n    redfish_port: 0x1bb\n    interval: 1m30s\n",
		"defaults: &d\n  protocol: ipmi\n  labels: {site: s}\nbmcs:\n  - id: a\n    address: x\n    labels: {rack: '07'}\n",
		"bmcs:\n  - {id: a, address: x, insecure_skip_verify: on}\n  - {id: b, address: y, insecure_skip_verify: off}\n",
		"bmcs:\n  - id: a\n    address: x\n    ipmi_port: 1e3\n",
		"bmcs:\n  - id: a\n    address: x\n    ipmi_port: 1.5\n",
		"bmcs: ~\n",
		"",
	}
	if b, err := os.ReadFile("../../examples/inventory.yml"); err == nil {
		docs = append(docs, string(b))
	}
	for _, doc := range docs {
		var v2, v3 file
		err2 := yaml.UnmarshalStrict([]byte(doc), &v2)
		_, err3 := yamlx.Decode([]byte(doc), &v3)
		require.Equal(t, err2 == nil, err3 == nil, "%q: v2 %v, v3 %v", doc, err2, err3)
		if err2 == nil {
			require.Equal(t, v2, v3, "%q", doc)
		}
	}
}
