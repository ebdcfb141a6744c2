package corpus

import (
	"context"
	"flag"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/prometheus/prompb"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	simredfish "github.com/bmcstream/bmcstream/pkg/bmcsim/redfish"
	"github.com/bmcstream/bmcstream/pkg/pipeline"
	"github.com/bmcstream/bmcstream/pkg/secret"
	"github.com/bmcstream/bmcstream/pkg/sources"
	"github.com/bmcstream/bmcstream/pkg/sources/redfish"
	v1 "github.com/bmcstream/bmcstream/proto/bmcstream/v1"
)

var update = flag.Bool("update", false, "rewrite the golden files under testdata/golden")

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

const (
	user     = "admin"
	password = "corpus-Qx7-password"
	// pollStart is the fixed poll time of every snapshot, so goldens do
	// not change from run to run; polls "take" one second.
	pollStart = 1796558400000 // 2026-12-07T00:00:00Z
)

// captures lists the directories under testdata/<kind>, read at run time.
func captures(t *testing.T, kind string) []string {
	t.Helper()
	ents, err := os.ReadDir(filepath.Join("testdata", kind))
	require.NoError(t, err)
	var out []string
	for _, e := range ents {
		if e.IsDir() {
			out = append(out, e.Name())
		}
	}
	require.NotEmpty(t, out, "captures under testdata/%s", kind)
	return out
}

// baseLabels are the inventory labels every corpus series carries.
func baseLabels(bmc string) []prompb.Label {
	return []prompb.Label{{Name: "bmc", Value: bmc}, {Name: "rack", Value: "r01"}, {Name: "site", Value: "lab"}}
}

// polled is what a capture's two polls gave.
type polled struct {
	first, steady       *v1.Snapshot
	firstErr, steadyErr error
	drops               []sources.Drop
	stats               redfish.Stats
	malformed           int
	// expanded counts the requests that asked for $expand.
	expanded int
}

// poll serves a capture through bmcsim's mockup handler on loopback HTTP
// and reads it twice with the Redfish source, logging in with a session as
// a poller does: the first poll discovers, the second is the steady state
// (conditional GETs answered 304 Not Modified).
//
// With noExpand, the server ignores $expand (as BMCs that announce it and
// do not honour it do), so the source reads collection members one by one.
func poll(t *testing.T, dir string, noExpand bool) polled {
	t.Helper()
	var out polled
	var malformed, expanded atomic.Int64
	h, err := simredfish.NewMockupHandler(dir, simredfish.MockupOptions{
		Username: user, Password: password,
		OnMalformed: func(string) { malformed.Add(1) },
	})
	require.NoError(t, err)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if q := r.URL.Query(); q.Has("$expand") {
			expanded.Add(1)
			if noExpand {
				q.Del("$expand")
				r.URL.RawQuery = q.Encode()
			}
		}
		h.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	t.Cleanup(func() { require.NoError(t, h.Close()) })
	u, err := url.Parse(srv.URL)
	require.NoError(t, err)
	port, err := strconv.Atoi(u.Port())
	require.NoError(t, err)

	var drops dropLog
	src := redfish.New(sources.Target{Host: u.Hostname(), Port: port, Scheme: "http", Username: user, Password: secret.Secret(password)}, sourceOptions(&drops))
	collect := func() (*v1.Snapshot, error) {
		ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
		defer cancel()
		s := &v1.Snapshot{BmcId: filepath.Base(dir), PollerId: "corpus", PollStartMs: pollStart, PollEndMs: pollStart + 1000}
		err := src.Collect(ctx, s)
		return s, err
	}
	out.first, out.firstErr = collect()
	out.drops = drops.take()
	out.steady, out.steadyErr = collect()
	drops.take()
	out.stats = src.Stats()
	require.NoError(t, src.Close(t.Context()))
	require.Zero(t, h.SessionCount(), "the source logged out")
	out.malformed = int(malformed.Load())
	out.expanded = int(expanded.Load())
	return out
}

// TestRedfishCorpus replays every capture under testdata/redfish through
// the Redfish source and the normaliser, compares the series with the
// capture's golden file and checks the invariants every BMC's series keep.
func TestRedfishCorpus(t *testing.T) {
	norm, err := pipeline.NewNormaliser(pipeline.NormaliserOptions{})
	require.NoError(t, err)
	for _, name := range captures(t, "redfish") {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			dir := filepath.Join("testdata", "redfish", name)
			p := poll(t, dir, false)
			var st pipeline.Stats
			ss := norm.Normalise(nil, p.first, baseLabels(name), &st)
			docs, err := captureDocs(dir)
			require.NoError(t, err)
			raw := rawReadings(docs)
			t.Logf("%s: %d readings, %d series, drops %s, normaliser %+v, %d requests (%d not modified, %d with $expand), %d malformed documents",
				name, len(p.first.Readings), len(ss), dropSummary(p.drops), st, p.stats.Requests, p.stats.NotModified, p.expanded, p.malformed)

			t.Run("polls", func(t *testing.T) {
				require.NoError(t, p.firstErr, "first poll")
				require.NoError(t, p.steadyErr, "steady poll")
				require.True(t, p.first.Up)
				require.Equal(t, readingLines(p.first), readingLines(p.steady), "the steady poll reads what the first did")
				require.Positive(t, p.stats.NotModified, "the steady poll is answered 304 Not Modified")
			})
			t.Run("golden", func(t *testing.T) { checkGolden(t, name, expoLines(ss)) })
			t.Run("expanded_equals_one_by_one", func(t *testing.T) {
				if p.expanded == 0 {
					t.Skip("the source did not ask this capture for $expand")
				}
				one := poll(t, dir, true)
				require.Equal(t, sortedLines(p.first), sortedLines(one.first),
					"readings through $expand (%d requests) and member by member (%d requests) are the same",
					p.stats.Requests, one.stats.Requests)
			})
			t.Run("every_reading_accounted", func(t *testing.T) { report(t, coverage(raw, p.first, p.drops, false)) })
			t.Run("every_listed_reading_counted", func(t *testing.T) { report(t, coverage(raw, p.first, p.drops, true)) })
			t.Run("normaliser_accounts", func(t *testing.T) { report(t, normaliserAccounts(t, p.first, name)) })
			for _, inv := range seriesInvariants {
				t.Run(inv.name, func(t *testing.T) { report(t, inv.check(ss)) })
			}
			t.Run("promtool", func(t *testing.T) { promtoolCheck(t, ss) })
		})
	}
}

// report fails the test with its violations, at most 40 of them shown.
func report(t *testing.T, violations []string) {
	t.Helper()
	if len(violations) == 0 {
		return
	}
	shown := violations
	if len(shown) > 40 {
		shown = shown[:40]
	}
	t.Errorf("%d violations:\n  %s", len(violations), strings.Join(shown, "\n  "))
}

// readingLines renders readings for comparison.
func readingLines(s *v1.Snapshot) []string {
	out := make([]string, len(s.Readings))
	for i := range s.Readings {
		out[i] = s.Readings[i].String()
	}
	return out
}

func sortedLines(s *v1.Snapshot) []string {
	out := readingLines(s)
	slices.Sort(out)
	return out
}

func dropSummary(ds []sources.Drop) string {
	by := map[string]int{}
	for _, d := range ds {
		by[d.Reason]++
	}
	if len(by) == 0 {
		return "none"
	}
	var parts []string
	for _, r := range sortedKeys(by) {
		parts = append(parts, fmt.Sprintf("%s=%d", r, by[r]))
	}
	return strings.Join(parts, ",")
}

// coverage: every numeric reading of an enabled sensor in the capture's
// JSON is in the snapshot or reported as a drop, by its id or one of its
// other ids (docs/metrics.md: every reading is a series or a counted
// drop), and a drop's reason does not contradict the capture: an enabled
// sensor with a number is not absent, disabled, null or not a number. With
// listed, it checks the other readings the capture lists instead (null,
// not a number, or of a sensor that is not enabled): each must be a drop
// (or a reading), whatever its reason.
func coverage(raw map[string]rawReading, s *v1.Snapshot, drops []sources.Drop, listed bool) []string {
	read := map[string]bool{}
	for i := range s.Readings {
		read[canonicalID(s.Readings[i].Id)] = true
	}
	dropped := map[string][]string{}
	for _, d := range drops {
		id := canonicalID(d.ID)
		dropped[id] = append(dropped[id], d.Reason)
	}
	var out []string
	for _, id := range sortedKeys(raw) {
		r := raw[id]
		working := r.Numeric && r.enabled()
		if working == listed {
			continue
		}
		ids := append([]string{id}, r.Alt...)
		if slices.ContainsFunc(ids, func(a string) bool { return read[a] }) {
			continue
		}
		var reasons []string
		for _, a := range ids {
			reasons = append(reasons, dropped[a]...)
		}
		if len(reasons) == 0 {
			out = append(out, fmt.Sprintf("%s (%q = %s, state %q, at %s) is neither a reading nor a drop", id, r.Name, r.value(), r.State, r.Where))
			continue
		}
		if working && !slices.ContainsFunc(reasons, func(reason string) bool {
			return reason == sources.DropMerged || reason == sources.DropUnsupportedLayout || reason == sources.DropMalformed
		}) {
			out = append(out, fmt.Sprintf("%s (%q = %s, state %q, at %s) is dropped as %v", id, r.Name, r.value(), r.State, r.Where, reasons))
		}
	}
	return out
}

// canonicalID is a reading id with its URI part canonical (no trailing
// slash), the JSON pointer kept.
func canonicalID(id string) string {
	u, ptr, ok := strings.Cut(id, "#")
	u = canonicalURI(u)
	if ok {
		return u + "#" + ptr
	}
	return u
}

// normaliserAccounts: the normaliser turns each reading into at least one
// series, or counts it by reason (pipeline.Normaliser.Explain says which,
// reading by reading, with the whole snapshot's context).
func normaliserAccounts(t *testing.T, s *v1.Snapshot, bmc string) []string {
	t.Helper()
	n, err := pipeline.NewNormaliser(pipeline.NormaliserOptions{})
	require.NoError(t, err)
	var out []string
	for _, f := range n.Explain(s, baseLabels(bmc)) {
		if len(f.Series) == 0 && f.Dropped == "" {
			r := &s.Readings[f.Reading]
			out = append(out, fmt.Sprintf("%s (%q, %s %q = %g) made no series and no count", r.Id, r.Name, r.Kind, r.Unit, r.Value))
		}
	}
	return out
}
