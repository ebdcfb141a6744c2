package archtest

import (
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"unicode"

	"github.com/stretchr/testify/require"
)

// markdownFiles returns the repository's Markdown files, relative to root,
// leaving out test data (captures and fixtures quote other projects).
func markdownFiles(t *testing.T, root string) []string {
	t.Helper()
	var files []string
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			switch d.Name() {
			case ".git", "testdata", "dist", "node_modules":
				return filepath.SkipDir
			}
			return nil
		}
		if strings.HasSuffix(path, ".md") {
			rel, err := filepath.Rel(root, path)
			if err != nil {
				return err
			}
			files = append(files, rel)
		}
		return nil
	})
	require.NoError(t, err)
	require.NotEmpty(t, files)
	return files
}

var (
	linkRe    = regexp.MustCompile(`\]\(([^)\s]+)\)`)
	headingRe = regexp.MustCompile("(?m)^#{1,6} +(.+?) *$")
	fenceRe   = regexp.MustCompile("(?ms)^```.*?^```")
)

// slug is the anchor GitHub gives a heading: lower case, punctuation other
// than '-' and '_' removed, spaces to '-'.
func slug(heading string) string {
	var b strings.Builder
	for _, r := range strings.ToLower(heading) {
		switch {
		case unicode.IsLetter(r), unicode.IsDigit(r), r == '-', r == '_':
			b.WriteRune(r)
		case r == ' ':
			b.WriteByte('-')
		}
	}
	return b.String()
}

func anchors(doc string) map[string]bool {
	out := map[string]bool{}
	for _, m := range headingRe.FindAllStringSubmatch(fenceRe.ReplaceAllString(doc, ""), -1) {
		s := slug(m[1])
		for i := 1; out[s]; i++ { // repeated headings get -1, -2…
			if !out[s+"-"+strconv.Itoa(i)] {
				s = s + "-" + strconv.Itoa(i)
				break
			}
		}
		out[s] = true
	}
	return out
}

// TestDocLinksResolve: every relative link in the repository's Markdown
// points at a file (and heading) that exists, so the docs form one
// self-contained set a newcomer can follow.
func TestDocLinksResolve(t *testing.T) {
	root := repoRoot(t)
	var bad []string
	for _, f := range markdownFiles(t, root) {
		b, err := os.ReadFile(filepath.Join(root, f))
		require.NoError(t, err)
		doc := fenceRe.ReplaceAllString(string(b), "")
		for _, m := range linkRe.FindAllStringSubmatch(doc, -1) {
			target := m[1]
			if strings.Contains(target, "://") || strings.HasPrefix(target, "mailto:") {
				continue
			}
			file, frag, _ := strings.Cut(target, "#")
			path := filepath.Join(root, f)
			if file != "" {
				path = filepath.Join(filepath.Dir(path), file)
				if _, err := os.Stat(path); err != nil {
					bad = append(bad, f+": "+target+": no such file")
					continue
				}
			}
			if frag == "" || !strings.HasSuffix(path, ".md") {
				continue
			}
			tb, err := os.ReadFile(path)
			require.NoError(t, err)
			if !anchors(string(tb))[frag] {
				bad = append(bad, f+": "+target+": no such heading")
			}
		}
	}
	require.Empty(t, bad, "broken links in the docs")
}

// TestDocsSelfContained: the docs cite nothing outside the repository as
// their authority; docs/architecture.md is the contract.
func TestDocsSelfContained(t *testing.T) {
	root := repoRoot(t)
	outside := regexp.MustCompile(`\bDESIGN\b|\.\./shared|DESIGN\.md`)
	var bad []string
	for _, f := range markdownFiles(t, root) {
		b, err := os.ReadFile(filepath.Join(root, f))
		require.NoError(t, err)
		for i, line := range strings.Split(string(b), "\n") {
			if outside.MatchString(line) {
				bad = append(bad, f+":"+strconv.Itoa(i+1)+": "+strings.TrimSpace(line))
			}
		}
	}
	require.Empty(t, bad, "docs that point at a design outside the repository")
	_, err := os.Stat(filepath.Join(root, "docs", "architecture.md"))
	require.NoError(t, err)
}

func TestSlug(t *testing.T) {
	require.Equal(t, "a-poller-credential-cannot-exhaust-the-gateway", slug("A poller credential cannot exhaust the gateway"))
	require.Equal(t, "reading-redfish-layouts-merging-and-cost", slug("Reading Redfish layouts, merging and cost"))
	require.Equal(t, "bmc_up-and-bmc_poll", slug("`bmc_up` and `bmc_poll`"))
	a := anchors("# X\n## X\n```\n# not a heading\n```\n")
	require.True(t, a["x"] && a["x-1"] && !a["not-a-heading"])
}
