package corpus

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"unicode"

	"github.com/stretchr/testify/require"

	"github.com/bmcstream/bmcstream/pkg/series"
)

const promtoolPath = "/usr/bin/promtool"

var escaper = strings.NewReplacer(`\`, `\\`, `"`, `\"`, "\n", `\n`)

// expoLine renders a sample as a line of the Prometheus text format,
// without a timestamp.
func expoLine(s series.Sample) string {
	var b strings.Builder
	b.WriteString(s.Series.Labels.Get("__name__"))
	b.WriteByte('{')
	first := true
	for _, l := range s.Series.Labels.Prom() {
		if l.Name == "__name__" {
			continue
		}
		if !first {
			b.WriteByte(',')
		}
		first = false
		b.WriteString(l.Name)
		b.WriteString(`="`)
		b.WriteString(escaper.Replace(l.Value))
		b.WriteByte('"')
	}
	b.WriteString("} ")
	b.WriteString(strconv.FormatFloat(s.V, 'g', -1, 64))
	return b.String()
}

// expoLines renders samples as sorted exposition lines.
func expoLines(ss []series.Sample) []string {
	out := make([]string, 0, len(ss))
	for _, s := range ss {
		out = append(out, expoLine(s))
	}
	slices.Sort(out)
	return out
}

// checkGolden compares lines with testdata/golden/<name>.prom, rewriting
// it under -update.
func checkGolden(t *testing.T, name string, lines []string) {
	t.Helper()
	got := strings.Join(lines, "\n") + "\n"
	file := filepath.Join("testdata", "golden", name+".prom")
	if *update {
		require.NoError(t, os.MkdirAll(filepath.Dir(file), 0o755))
		require.NoError(t, os.WriteFile(file, []byte(got), 0o644))
	}
	want, err := os.ReadFile(file)
	require.NoError(t, err, "go test ./internal/corpus -update creates it")
	require.Equal(t, string(want), got, "series differ from %s (go test ./internal/corpus -update rewrites it)", file)
}

// promtoolCheck lints samples with `promtool check metrics`. Each family
// gets a TYPE from its name (counter when it ends in _total) and a HELP
// line, which the lint requires.
func promtoolCheck(t *testing.T, ss []series.Sample) {
	t.Helper()
	if _, err := os.Stat(promtoolPath); err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("%s is required in CI (Debian package prometheus): %v", promtoolPath, err)
		}
		t.Skipf("%s not installed (apt-get install prometheus); CI runs this test", promtoolPath)
	}
	byFamily := map[string][]string{}
	for _, s := range ss {
		name := s.Series.Labels.Get("__name__")
		byFamily[name] = append(byFamily[name], expoLine(s))
	}
	var b bytes.Buffer
	for _, name := range sortedKeys(byFamily) {
		typ := "gauge"
		if strings.HasSuffix(name, "_total") {
			typ = "counter"
		}
		b.WriteString("# HELP " + name + " " + strings.ReplaceAll(name, "_", " ") + ".\n")
		b.WriteString("# TYPE " + name + " " + typ + "\n")
		lines := byFamily[name]
		slices.Sort(lines)
		for _, l := range lines {
			b.WriteString(l + "\n")
		}
	}
	cmd := exec.Command(promtoolPath, "check", "metrics")
	cmd.Stdin = bytes.NewReader(b.Bytes())
	out, err := cmd.CombinedOutput()
	require.NoError(t, err, "promtool check metrics:\n%s", out)
	require.Empty(t, strings.TrimSpace(string(out)), "promtool check metrics has complaints")
}

func sortedKeys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}

// tokens splits a vendor name into lower-case words at spaces, punctuation,
// underscores, dashes, camelCase and letter-digit boundaries:
// "CPU1_DTSMargin" is cpu, 1, dts, margin. Written here rather than taken
// from the normaliser or the source, so that the invariants do not share
// their mistakes.
func tokens(s string) []string {
	var out []string
	rs := []rune(s)
	start := -1
	flush := func(end int) {
		if start >= 0 && end > start {
			out = append(out, strings.ToLower(string(rs[start:end])))
		}
		start = -1
	}
	for i, r := range rs {
		if !unicode.IsLetter(r) && !unicode.IsDigit(r) {
			flush(i)
			continue
		}
		if start >= 0 {
			p := rs[i-1]
			switch {
			case unicode.IsDigit(r) != unicode.IsDigit(p):
				flush(i)
			case unicode.IsUpper(r) && unicode.IsLower(p):
				flush(i)
			case unicode.IsUpper(r) && unicode.IsUpper(p) && i+1 < len(rs) && unicode.IsLower(rs[i+1]):
				flush(i) // "DTSMargin": DTS, Margin
			}
		}
		if start < 0 {
			start = i
		}
	}
	flush(len(rs))
	return out
}
