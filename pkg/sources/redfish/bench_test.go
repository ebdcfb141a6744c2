package redfish

import (
	"encoding/json"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// goldenDocs returns bmcsim's documents of one personality.
func goldenDocs(tb testing.TB, personality string) map[string]json.RawMessage {
	tb.Helper()
	b, err := os.ReadFile(filepath.Join(simGolden, personality+".json"))
	require.NoError(tb, err)
	var docs map[string]json.RawMessage
	require.NoError(tb, json.Unmarshal(b, &docs))
	return docs
}

// expandedSensors builds the Sensors collection as $expand serves it from
// a personality's Sensor documents.
func expandedSensors(tb testing.TB, personality string) []byte {
	tb.Helper()
	docs := goldenDocs(tb, personality)
	var uris []string
	for uri := range docs {
		if strings.Contains(uri, "/Sensors/") {
			uris = append(uris, uri)
		}
	}
	sort.Strings(uris)
	members := make([]json.RawMessage, len(uris))
	for i, u := range uris {
		members[i] = docs[u]
	}
	b, err := json.Marshal(map[string]any{"Members": members})
	require.NoError(tb, err)
	return b
}

func BenchmarkDecodeThermal(b *testing.B) {
	doc := goldenDocs(b, "idrac")["/redfish/v1/Chassis/System.Embedded.1/Thermal"]
	require.NotEmpty(b, doc)
	b.ReportAllocs()
	b.SetBytes(int64(len(doc)))
	for b.Loop() {
		if _, err := decodeThermal(doc, thermalURI); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkDecodeSensors(b *testing.B) {
	doc := expandedSensors(b, "idrac")
	b.ReportAllocs()
	b.SetBytes(int64(len(doc)))
	for b.Loop() {
		if _, err := decodeSensors(doc, "/redfish/v1/Chassis/System.Embedded.1/Sensors", nil); err != nil {
			b.Fatal(err)
		}
	}
}
