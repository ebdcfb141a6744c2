package redfish_test

import (
	"bytes"
	"encoding/json"
	"flag"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/bmcstream/bmcstream/pkg/bmcsim/model"
	"github.com/bmcstream/bmcstream/pkg/bmcsim/redfish"
)

var update = flag.Bool("update", false, "rewrite the golden files under testdata/golden")

// links collects every "@odata.id" below the top level of a document
// (the document's own id aside), without fragments.
func links(v any, top bool, out map[string]bool) {
	switch v := v.(type) {
	case map[string]any:
		for k, e := range v {
			if k == "@odata.id" && !top {
				if s, ok := e.(string); ok {
					s, _, _ = strings.Cut(s, "#")
					out[s] = true
				}
				continue
			}
			if k == "DataSourceUri" {
				out[e.(string)] = true
				continue
			}
			links(e, false, out)
		}
	case []any:
		for _, e := range v {
			links(e, false, out)
		}
	}
}

// TestCrawlEveryResource walks each personality's service from the root,
// following every link, and checks what the Redfish Specification requires
// of every resource: it answers, its @odata.id is where it was found, and it
// has an @odata.type and a Name (and an Id, unless it is a collection).
// The documents, at a frozen instant, are the golden files under
// testdata/golden (go test -run Crawl -update rewrites them), for review
// against DMTF's schemas.
func TestCrawlEveryResource(t *testing.T) {
	ps, err := model.Builtin()
	require.NoError(t, err)
	for _, name := range model.Names(ps) {
		t.Run(name, func(t *testing.T) {
			_, _, srv, _ := newService(t, name, redfish.Options{IgnoreSensorLatency: true})
			docs := map[string][]byte{}
			queue := []string{"/redfish/v1/"}
			seen := map[string]bool{"/redfish/v1/": true, "/redfish/v1": true}
			for len(queue) > 0 {
				path := queue[0]
				queue = queue[1:]
				resp, body := do(t, srv, request{path: path})
				require.Equal(t, http.StatusOK, resp.StatusCode, "%s: %s", path, body)
				var doc map[string]any
				require.NoError(t, json.Unmarshal(body, &doc), path)
				require.Equal(t, path, doc["@odata.id"], "@odata.id of %s", path)
				typ, _ := doc["@odata.type"].(string)
				// Versioned types are "#Thermal.v1_7_0.Thermal"; iLO 4
				// predates that form ("#Thermal.1.1.0.Thermal").
				require.Regexp(t, `^#[A-Za-z]+(\.v\d+_\d+_\d+|\.\d+\.\d+\.\d+)?\.[A-Za-z]+$`, typ, path)
				require.NotEmpty(t, doc["Name"], path)
				if strings.HasSuffix(typ, "Collection") {
					require.Contains(t, doc, "Members", path)
					require.EqualValues(t, len(doc["Members"].([]any)), doc["Members@odata.count"], path)
				} else {
					require.NotEmpty(t, doc["Id"], path)
				}
				docs[path] = body
				out := map[string]bool{}
				links(doc, true, out)
				for l := range out {
					if !seen[l] {
						seen[l] = true
						queue = append(queue, l)
					}
				}
			}
			require.GreaterOrEqual(t, len(docs), 10)

			var golden bytes.Buffer
			golden.WriteString("{\n")
			paths := make([]string, 0, len(docs))
			for p := range docs {
				paths = append(paths, p)
			}
			slices.Sort(paths)
			for i, p := range paths {
				key, err := json.Marshal(p)
				require.NoError(t, err)
				golden.WriteString("  " + string(key) + ": ")
				require.NoError(t, json.Indent(&golden, docs[p], "  ", "  "))
				if i < len(paths)-1 {
					golden.WriteString(",")
				}
				golden.WriteString("\n")
			}
			golden.WriteString("}\n")
			file := filepath.Join("testdata", "golden", name+".json")
			if *update {
				require.NoError(t, os.MkdirAll(filepath.Dir(file), 0o755))
				require.NoError(t, os.WriteFile(file, golden.Bytes(), 0o644))
			}
			want, err := os.ReadFile(file)
			require.NoError(t, err, "run go test -run Crawl -update to create it")
			require.Equal(t, string(want), golden.String(), "documents differ from %s (go test -run Crawl -update rewrites it)", file)
		})
	}
}
