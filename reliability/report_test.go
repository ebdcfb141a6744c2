package reliability

import (
	"fmt"
	"os"
	"os/exec"
	"strings"
	"sync"
	"testing"

	"github.com/stretchr/testify/require"
)

// row is one line of the results table.
type row struct {
	Scenario string
	Load     string
	Result   string // lost / duplicated / late, per sink
	Notes    string // the scenario's own figures
}

var reportMu sync.Mutex

// report logs a scenario's row and, when RELIABILITY_REPORT names a file,
// appends it there as a Markdown table row (make reliability collects them
// into docs/reliability.md's table).
func report(t *testing.T, r row) {
	t.Helper()
	t.Logf("| %s | %s | %s | %s |", r.Scenario, r.Load, r.Result, r.Notes)
	path := os.Getenv("RELIABILITY_REPORT")
	if path == "" {
		return
	}
	reportMu.Lock()
	defer reportMu.Unlock()
	f, err := os.OpenFile(path, os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o644)
	require.NoError(t, err)
	defer f.Close()
	_, err = fmt.Fprintf(f, "| %s | %s | %s | %s | %s |\n", r.Scenario, r.Load, r.Result, r.Notes, commit())
	require.NoError(t, err)
}

var commit = sync.OnceValue(func() string {
	out, err := exec.Command("git", "rev-parse", "--short=10", "HEAD").Output()
	if err != nil {
		return "unknown"
	}
	c := strings.TrimSpace(string(out))
	if st, err := exec.Command("git", "status", "--porcelain", "--untracked-files=no").Output(); err == nil && len(strings.TrimSpace(string(st))) > 0 {
		c += "+dirty"
	}
	return c
})

// loadOf describes a bed's load for the table.
func loadOf(b *bed, extra string) string {
	s := fmt.Sprintf("%d Redfish BMCs @ %s, %d poller(s)", b.sc.BMCs, b.sc.Interval, b.opts.Pollers)
	if extra != "" {
		s += ", " + extra
	}
	return s
}

// results renders tallies for the table's result column: lost /
// duplicated / late, with what they are out of.
func results(ts ...tally) string {
	parts := make([]string, len(ts))
	for i, tl := range ts {
		late := "—"
		if tl.Late >= 0 {
			late = fmt.Sprintf("%d of %d polls", tl.Late, tl.Polls)
		}
		parts[i] = fmt.Sprintf("%s: %d / %d / %s (%d samples)", tl.Sink, tl.Lost, tl.Duplicated, late, tl.Expected)
	}
	return strings.Join(parts, "; ")
}
