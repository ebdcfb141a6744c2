package pipeline

import (
	"flag"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/prometheus/prometheus/prompb"
	"github.com/stretchr/testify/require"

	"github.com/bmcstream/bmcstream/pkg/series"
	v1 "github.com/bmcstream/bmcstream/proto/bmcstream/v1"
)

// update rewrites golden files under testdata/ (go test -run Golden -update).
var update = flag.Bool("update", false, "rewrite the golden files under testdata/")

// expoLines renders samples as sorted exposition-like lines,
// `name{label="value",...} value`, checking on the way that every label
// set is sorted, carries its own hash and no empty value.
func expoLines(t testing.TB, ss []series.Sample) []string {
	t.Helper()
	out := make([]string, 0, len(ss))
	for _, s := range ss {
		require.True(t, slices.IsSortedFunc(s.Series.Labels.Prom(), func(a, b prompb.Label) int { return strings.Compare(a.Name, b.Name) }), "labels sorted: %v", s.Series.Labels)
		require.Equal(t, series.Hash(s.Series.Labels.Prom()), s.Series.Hash, "hash of %v", s.Series.Labels)
		out = append(out, expoLine(t, s))
	}
	slices.Sort(out)
	return out
}

func expoLine(t testing.TB, s series.Sample) string {
	t.Helper()
	var b strings.Builder
	b.WriteString(s.Series.Labels.Get("__name__"))
	b.WriteByte('{')
	first := true
	for _, l := range s.Series.Labels.Prom() {
		require.NotEmpty(t, l.Value, "label %s of %v", l.Name, s.Series.Labels)
		require.True(t, utf8.ValidString(l.Value), "label %s of %v is valid UTF-8", l.Name, s.Series.Labels)
		if l.Name == "__name__" {
			continue
		}
		if !first {
			b.WriteByte(',')
		}
		first = false
		b.WriteString(l.Name)
		b.WriteString(`="`)
		b.WriteString(strings.NewReplacer(`\`, `\\`, `"`, `\"`, "\n", `\n`).Replace(l.Value))
		b.WriteByte('"')
	}
	b.WriteString("} ")
	b.WriteString(strconv.FormatFloat(s.V, 'g', -1, 64))
	return b.String()
}

// checkGolden compares lines with testdata/normalise/<name>.txt, or writes
// the file with -update.
func checkGolden(t *testing.T, name string, lines []string) {
	t.Helper()
	got := strings.Join(lines, "\n") + "\n"
	path := filepath.Join("testdata", "normalise", name+".txt")
	if *update {
		require.NoError(t, os.MkdirAll(filepath.Dir(path), 0o755))
		require.NoError(t, os.WriteFile(path, []byte(got), 0o644))
		return
	}
	want, err := os.ReadFile(path)
	require.NoError(t, err, "golden file missing: go test -run Golden ./pkg/pipeline -update writes it")
	require.Equal(t, string(want), got, "output differs from %s (go test -run Golden ./pkg/pipeline -update rewrites it)", path)
}

// TestNormaliseGolden polls every bmcsim personality over Redfish and IPMI
// with the real sources at a frozen instant, normalises both snapshots and
// compares them with testdata/normalise/<personality>-<protocol>.txt.
func TestNormaliseGolden(t *testing.T) {
	n, err := NewNormaliser(NormaliserOptions{})
	require.NoError(t, err)
	for _, name := range sortedKeys(simPersonalities(t)) {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			sp := pollSim(t, name)
			for _, s := range []*v1.Snapshot{sp.redfish, sp.ipmi} {
				var st Stats
				out := n.Normalise(nil, s, simBase(s.BmcId), &st)
				require.Zero(t, st.Invalid)
				require.Zero(t, st.Unmapped, "every simulated sensor maps")
				checkGolden(t, name+"-"+protoName(s.Protocol), expoLines(t, out))
			}
		})
	}
}

func sortedKeys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}
