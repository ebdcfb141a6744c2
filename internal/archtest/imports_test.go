package archtest

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

const module = "github.com/bmcstream/bmcstream"

// pkg is what `go list -json` says of one package, the fields used here.
type pkg struct {
	ImportPath string
	Imports    []string // non-test imports
	Deps       []string // non-test transitive dependencies
}

// listPackages runs `go list -json` over the module; tests only.
func listPackages(t *testing.T, args ...string) map[string]pkg {
	t.Helper()
	gobin := goBinary(t)
	cmd := exec.Command(gobin, append([]string{"list", "-json"}, args...)...)
	cmd.Dir = repoRoot(t)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	require.NoError(t, err, "go list: %s", stderr.String())
	pkgs := map[string]pkg{}
	dec := json.NewDecoder(bytes.NewReader(out))
	for {
		var p pkg
		if err := dec.Decode(&p); err == io.EOF {
			break
		} else {
			require.NoError(t, err)
		}
		pkgs[strings.TrimPrefix(p.ImportPath, module+"/")] = p
	}
	require.NotEmpty(t, pkgs)
	return pkgs
}

// goBinary is the go command running these tests (go test puts its
// GOROOT's bin first on PATH).
func goBinary(t *testing.T) string {
	t.Helper()
	gobin, err := exec.LookPath("go")
	require.NoError(t, err, "the go command")
	return gobin
}

func repoRoot(t *testing.T) string {
	t.Helper()
	root, err := filepath.Abs("../..")
	require.NoError(t, err)
	return root
}

// rule says what the packages under a prefix must not import (directly):
// project packages by prefix, and outside modules by prefix.
type rule struct {
	pkgs   string   // a package, or a prefix ending in "/" for a tree
	forbid []string // project paths (relative) or module paths
	why    string
}

// The rules docs/architecture.md states under "Packages". A prefix
// "pkg/sinks/" covers the tree below; "pkg/sinks" the package alone.
var rules = []rule{
	{"proto/", []string{"pkg/", "internal/", "cmd/"}, "the wire schema depends on nothing of ours"},
	{"pkg/series", []string{"pkg/", "internal/"}, "a leaf: labels only"},
	{"pkg/rendezvous", []string{"pkg/", "internal/"}, "a leaf: hashing only"},
	{"pkg/secret", []string{"pkg/", "internal/"}, "a leaf"},
	{"pkg/sources", []string{"pkg/pipeline", "pkg/sinks", "pkg/bus", "pkg/gateway", "pkg/poller", "pkg/inventory", "pkg/bmcsim", "github.com/nats-io/"}, "a source reads one BMC and knows nothing of what happens to its snapshot"},
	{"pkg/sources/", []string{"pkg/pipeline", "pkg/sinks", "pkg/bus", "pkg/gateway", "pkg/poller", "pkg/inventory", "pkg/bmcsim", "github.com/nats-io/"}, "a source reads one BMC and knows nothing of what happens to its snapshot"},
	{"pkg/pipeline", []string{"pkg/bus", "pkg/sinks", "pkg/gateway", "pkg/poller", "pkg/sources", "github.com/nats-io/", "net", "net/http"}, "the stages are pure: no I/O, no transport"},
	{"pkg/sinks/remotewrite", []string{"pkg/pipeline", "pkg/bus", "pkg/gateway", "pkg/inventory", "proto/", "github.com/nats-io/"}, "the remote-write client takes series and samples, nothing else"},
	{"pkg/sinks", []string{"pkg/gateway", "pkg/poller", "pkg/sources"}, "a sink is handed batches; it does not consume"},
	{"pkg/sinks/automation", []string{"pkg/gateway", "pkg/poller", "pkg/sources"}, "a sink is handed batches; it does not consume"},
	{"pkg/bus", []string{"pkg/gateway", "pkg/poller", "pkg/pipeline", "pkg/sinks", "pkg/sources", "github.com/nats-io/nats-server"}, "shared NATS plumbing; the server lives in pkg/bus/embedded"},
	{"pkg/inventory", []string{"pkg/bus", "pkg/gateway", "pkg/poller", "pkg/pipeline", "pkg/sinks", "pkg/sources"}, "the inventory is data; its KV source is the gateway's"},
	{"pkg/poller", []string{"pkg/gateway", "pkg/sinks", "pkg/bus/embedded", "github.com/nats-io/nats-server"}, "the poller publishes; it never embeds a server or writes to sinks"},
	{"pkg/gateway", []string{"pkg/poller", "pkg/sources"}, "the gateway consumes snapshots; it never polls"},
	{"pkg/bmcsim/", []string{"pkg/sources", "pkg/pipeline", "pkg/bus", "pkg/sinks", "pkg/gateway", "pkg/poller"}, "the simulator is independent of what it is used to test"},
	{"pkg/", []string{"cmd/", "internal/testbed", "internal/synth", "internal/corpus", "github.com/stretchr/testify"}, "libraries never import programs or test support"},
	{"internal/service", []string{"pkg/"}, "the programs' shared tail knows no data path"},
	{"internal/testbed", []string{"pkg/poller", "pkg/gateway", "pkg/pipeline", "pkg/sinks", "pkg/sources"}, "every package's own tests can use the test bed, so it imports none of the packages they test"},
}

// thirdParty says which packages may import a library whose types must not
// leak: gofish and go-ipmi stay behind pkg/sources (and the simulator's own
// BMC server).
var thirdParty = map[string][]string{
	"github.com/stmcginnis/gofish": {"pkg/sources/redfish"},
	"github.com/bougou/go-ipmi":    {"pkg/sources/ipmi", "pkg/bmcsim/ipmi"},
}

func covers(prefix, path string) bool {
	if strings.HasSuffix(prefix, "/") {
		return strings.HasPrefix(path, prefix)
	}
	return path == prefix
}

// importMatches: a project path or module path matches the import
// (relative for ours) and the tree below it; a standard-library path (no
// dot in its first element, not ours) matches itself only.
func importMatches(forbid, imp string) bool {
	if strings.HasSuffix(forbid, "/") {
		return strings.HasPrefix(imp, forbid)
	}
	first, _, _ := strings.Cut(forbid, "/")
	ours := slices.Contains([]string{"pkg", "internal", "cmd", "proto"}, first)
	if !ours && !strings.Contains(first, ".") {
		return imp == forbid
	}
	return imp == forbid || strings.HasPrefix(imp, forbid+"/")
}

func TestImportRules(t *testing.T) {
	pkgs := listPackages(t, "./...")
	checked := map[string]bool{}
	var bad []string
	for path, p := range pkgs {
		for _, imp := range p.Imports {
			rel := strings.TrimPrefix(imp, module+"/")
			for _, r := range rules {
				if !covers(r.pkgs, path) {
					continue
				}
				checked[r.pkgs] = true
				for _, f := range r.forbid {
					if importMatches(f, rel) && !covers(r.pkgs, rel) {
						bad = append(bad, fmt.Sprintf("%s imports %s: %s", path, rel, r.why))
					}
				}
			}
			for lib, allowed := range thirdParty {
				if importMatches(lib, imp) && !slices.Contains(allowed, path) && !strings.HasPrefix(path, "benchmarks/") {
					bad = append(bad, fmt.Sprintf("%s imports %s: only %v may", path, imp, allowed))
				}
			}
		}
		if strings.HasPrefix(path, "cmd/") {
			continue
		}
		for _, imp := range p.Imports {
			if rel := strings.TrimPrefix(imp, module+"/"); strings.HasPrefix(rel, "cmd/") {
				bad = append(bad, fmt.Sprintf("%s imports the program %s", path, rel))
			}
		}
	}
	slices.Sort(bad)
	require.Empty(t, bad, "imports that break docs/architecture.md's rules")
	for _, r := range rules {
		require.True(t, checked[r.pkgs], "rule for %s matched no package that imports anything: stale rule?", r.pkgs)
	}
}

// TestRuleMatching checks the matcher on the cases the rules rely on, so a
// rule cannot pass by matching nothing.
func TestRuleMatching(t *testing.T) {
	require.True(t, covers("pkg/sources/", "pkg/sources/redfish"))
	require.False(t, covers("pkg/sources/", "pkg/sources"))
	require.True(t, covers("pkg/sinks", "pkg/sinks"))
	require.False(t, covers("pkg/sinks", "pkg/sinks/remotewrite"))
	require.True(t, importMatches("pkg/sinks", "pkg/sinks/remotewrite"))
	require.False(t, importMatches("pkg/sinks", "pkg/sinksx"))
	require.True(t, importMatches("net", "net"))
	require.False(t, importMatches("net", "net/netip"), "net/netip parses addresses; it does no I/O")
	require.True(t, importMatches("github.com/nats-io/", "github.com/nats-io/nats.go"))
}

// TestPollerLinksNoNATSServer: the poller only connects to NATS; the server
// (about 9 MB of binary) belongs to the programs that embed it.
func TestPollerLinksNoNATSServer(t *testing.T) {
	pkgs := listPackages(t, "-deps=false", "./cmd/poller")
	for _, p := range listDeps(t, "./cmd/poller") {
		require.False(t, strings.HasPrefix(p, "github.com/nats-io/nats-server/") || p == module+"/pkg/bus/embedded", "cmd/poller links %s", p)
	}
	require.Len(t, pkgs, 1)
}

func listDeps(t *testing.T, pattern string) []string {
	t.Helper()
	gobin := goBinary(t)
	cmd := exec.Command(gobin, "list", "-deps", pattern)
	cmd.Dir = repoRoot(t)
	out, err := cmd.Output()
	require.NoError(t, err)
	deps := strings.Fields(string(out))
	require.Contains(t, deps, "github.com/nats-io/nats.go", "the poller's dependencies as listed")
	return deps
}
