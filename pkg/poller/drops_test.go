package poller

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/stretchr/testify/require"

	"github.com/bmcstream/bmcstream/internal/ratelog"
	"github.com/bmcstream/bmcstream/pkg/inventory"
	"github.com/bmcstream/bmcstream/pkg/secret"
	"github.com/bmcstream/bmcstream/pkg/sources"
	v1 "github.com/bmcstream/bmcstream/proto/bmcstream/v1"
)

// countingSource is a test source, not a BMC's: it implements
// sources.Source and sources.DropCounter the way the Redfish and IPMI
// sources do (counts that only grow over the source's life), leaving out
// one null and two absent readings per poll, or failing every poll with
// err. The poller's code path is the generic one: any source that is a
// DropCounter.
type countingSource struct {
	err error

	mu      sync.Mutex
	dropped map[string]uint64
	closed  bool
}

func (s *countingSource) Collect(_ context.Context, dst *v1.Snapshot) error {
	if s.err != nil {
		return sources.Fail(dst, s.err)
	}
	dst.Up = true
	dst.Readings = append(dst.Readings, v1.Reading{Name: "Inlet Temp", Kind: v1.Kind_KIND_TEMPERATURE, Value: 21})
	s.mu.Lock()
	s.dropped[sources.DropNull]++
	s.dropped[sources.DropAbsent] += 2
	s.mu.Unlock()
	return nil
}

func (s *countingSource) Close(context.Context) error {
	s.mu.Lock()
	s.closed = true
	s.mu.Unlock()
	return nil
}

func (s *countingSource) Dropped() map[string]uint64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make(map[string]uint64, len(s.dropped))
	for k, v := range s.dropped {
		out[k] = v
	}
	return out
}

// TestReadingsDroppedAndStateLog runs a poller over test sources: the
// readings its sources leave out are counted by reason, the counter keeps
// what a removed BMC's sources counted, and ends equal to the sum over
// every source the poller ever opened; a BMC that never answers is logged
// once, with its error's class and text, however many polls fail.
func TestReadingsDroppedAndStateLog(t *testing.T) {
	t.Parallel()
	srv := startJetStream(t)
	dir := t.TempDir()
	invFile, credFile := filepath.Join(dir, "inventory.yml"), filepath.Join(dir, "credentials.yml")
	require.NoError(t, os.WriteFile(credFile, []byte("lab:\n  username: u\n  password: pw-value\n"), 0o600))
	writeInv := func(ids ...string) {
		var bmcs []inventory.BMC
		for _, id := range ids {
			bmcs = append(bmcs, inventory.BMC{ID: id, Address: "127.0.0.1", Protocol: inventory.Both, Credentials: "lab", Interval: inventory.MinInterval})
		}
		b, err := inventory.Marshal(bmcs)
		require.NoError(t, err)
		require.NoError(t, os.WriteFile(invFile, b, 0o600))
	}
	writeInv("a", "b", "dead")
	cfg, err := ParseConfig([]byte(fmt.Sprintf("poller_id: p1\nnats:\n  url: %s\ninventory:\n  files: [%s]\n  credentials_file: %s\n",
		srv.ClientURL(), invFile, credFile)))
	require.NoError(t, err)

	var (
		mu     sync.Mutex
		opened []*countingSource
	)
	factory := func(b inventory.BMC, _ v1.Protocol, _ string, _ secret.Secret) (sources.Source, error) {
		s := &countingSource{dropped: map[string]uint64{}}
		if b.ID == "dead" {
			s.err = sources.Errorf(sources.ClassTimeout, "no answer from %s in 800ms", b.Address)
		}
		mu.Lock()
		opened = append(opened, s)
		mu.Unlock()
		return s, nil
	}
	var logs lockedLog
	reg := prometheus.NewRegistry()
	p, err := New(cfg, Options{ShutdownTimeout: 5 * time.Second, Registerer: reg, NewSource: factory, Logger: slog.New(slog.NewJSONHandler(&logs, nil))})
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- p.Run(ctx) }()
	stop := sync.OnceValue(func() error { cancel(); return <-done })
	t.Cleanup(func() { _ = stop() })

	dropped := func(reason string) float64 {
		return testutil.ToFloat64(p.metrics.readingsDropped.WithLabelValues(reason))
	}
	require.Zero(t, dropped(sources.DropMerged), "every reason's series exists from the start")
	require.Eventually(t, func() bool { return dropped(sources.DropNull) >= 8 }, 20*time.Second, 50*time.Millisecond)

	// BMC b leaves: its sources close; what they counted stays counted.
	before := dropped(sources.DropNull)
	writeInv("a", "dead")
	require.NoError(t, p.Reload())
	require.GreaterOrEqual(t, dropped(sources.DropNull), before)
	require.Eventually(t, func() bool { return dropped(sources.DropNull) >= before+4 }, 20*time.Second, 50*time.Millisecond)
	require.Eventually(t, func() bool {
		return testutil.ToFloat64(p.metrics.polls.WithLabelValues("redfish", "error", "timeout")) >= 3
	}, 20*time.Second, 50*time.Millisecond, "the dead BMC failed three polls")
	require.NoError(t, stop())

	// Every source is closed now: the counter is the sum of their totals.
	var null, absent uint64
	mu.Lock()
	for _, s := range opened {
		require.True(t, s.closed)
		d := s.Dropped()
		null += d[sources.DropNull]
		absent += d[sources.DropAbsent]
	}
	mu.Unlock()
	require.Positive(t, null)
	require.Equal(t, float64(null), dropped(sources.DropNull))
	require.Equal(t, float64(absent), dropped(sources.DropAbsent))
	require.Equal(t, 2*dropped(sources.DropNull), dropped(sources.DropAbsent))

	// The dead BMC: one line per protocol, however many polls failed.
	lines := logs.matching(t, "BMC not answering")
	require.Len(t, lines, 2, "one per protocol:\n%s", logs.String())
	for _, l := range lines {
		require.Equal(t, "dead", l["bmc"])
		require.Equal(t, "timeout", l["class"])
		require.Equal(t, "timeout: no answer from 127.0.0.1 in 800ms", l["err"])
	}
	require.NotContains(t, logs.String(), "pw-value")
	require.Empty(t, logs.matching(t, "BMC answering again"), "a BMC answering from the start is no change")
}

// TestStateChangeLog: each change of a BMC's state is logged once, and a
// burst of changes across the fleet is cut to the rate limit, then one
// summary line with the count, which a counter keeps too.
func TestStateChangeLog(t *testing.T) {
	t.Parallel()
	var logs lockedLog
	now := time.Unix(1_800_000_000, 0)
	p := &Poller{logger: slog.New(slog.NewJSONHandler(&logs, nil)), stateLog: &ratelog.Burst{Max: 3, Per: time.Second, Now: func() time.Time { return now }}}
	m, err := newMetrics(prometheus.NewRegistry(), p)
	require.NoError(t, err)
	p.metrics = m
	ps := &protoSource{proto: v1.Protocol_PROTOCOL_IPMI}

	for _, step := range []struct {
		failed     bool
		class, err string
		want       string // the message logged, "" for none
	}{
		{false, "", "", ""},
		{false, "", "", ""},
		{true, "timeout", "timeout: no answer", "BMC not answering"},
		{true, "timeout", "timeout: no answer", ""},
		{true, "auth", "auth: rejected", "BMC still not answering, failing differently"},
		{true, "auth", "auth: rejected", ""},
		{false, "", "", "BMC answering again"},
		{false, "", "", ""},
	} {
		n := len(logs.lines(t))
		now = now.Add(time.Minute) // no rate limit here
		p.logChange("srv-1", ps, step.failed, step.class, step.err)
		got := logs.lines(t)[n:]
		if step.want == "" {
			require.Empty(t, got)
			continue
		}
		require.Len(t, got, 1)
		require.Equal(t, step.want, got[0]["msg"])
		require.Equal(t, "srv-1", got[0]["bmc"])
		require.Equal(t, "ipmi", got[0]["protocol"])
		if step.failed {
			require.Equal(t, step.class, got[0]["class"])
			require.Equal(t, step.err, got[0]["err"])
		}
	}

	// A thousand BMCs stop answering within a second.
	n := len(logs.lines(t))
	now = now.Add(time.Minute)
	for i := range 1000 {
		p.logChange(fmt.Sprintf("bmc-%d", i), &protoSource{proto: v1.Protocol_PROTOCOL_REDFISH}, true, "unreachable", "unreachable: connection refused")
	}
	require.Len(t, logs.lines(t)[n:], 3)
	require.Equal(t, 997.0, testutil.ToFloat64(m.stateLogsSuppressed))
	p.flushStateLog()
	require.Len(t, logs.lines(t)[n:], 3, "the summary waits for the window's end")
	now = now.Add(time.Second)
	p.flushStateLog()
	got := logs.lines(t)[n:]
	require.Len(t, got, 4)
	require.Contains(t, got[3]["msg"], "not logged")
	require.Equal(t, 997.0, got[3]["not_logged"])
	p.flushStateLog()
	require.Len(t, logs.lines(t)[n:], 4, "one summary")
}

// lockedLog is a log buffer written by the poller's goroutines.
type lockedLog struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedLog) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedLog) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// lines decodes the JSON log lines.
func (l *lockedLog) lines(t *testing.T) []map[string]any {
	t.Helper()
	var out []map[string]any
	for _, s := range strings.Split(strings.TrimSpace(l.String()), "\n") {
		if s == "" {
			continue
		}
		var m map[string]any
		require.NoError(t, json.Unmarshal([]byte(s), &m), s)
		out = append(out, m)
	}
	return out
}

func (l *lockedLog) matching(t *testing.T, msg string) []map[string]any {
	var out []map[string]any
	for _, m := range l.lines(t) {
		if m["msg"] == msg {
			out = append(out, m)
		}
	}
	return out
}

// docSource counts malformed documents as the Redfish source does.
type docSource struct {
	countingSource
	malformed uint64
}

func (s *docSource) MalformedDocuments() uint64 { return s.malformed }

// TestMalformedDocumentsCounted: a source's count of documents it could
// not decode reaches bmcstream_poller_malformed_documents_total as
// differences, and a source that starts counting afresh (a new session's
// source) adds all it has.
func TestMalformedDocumentsCounted(t *testing.T) {
	reg := prometheus.NewRegistry()
	m, err := newMetrics(reg, &Poller{})
	require.NoError(t, err)
	src := &docSource{countingSource: countingSource{dropped: map[string]uint64{}}}
	ps := &protoSource{src: src}
	ps.countDrops(m)
	require.Zero(t, testutil.ToFloat64(m.malformedDocuments))
	src.malformed = 2
	ps.countDrops(m)
	ps.countDrops(m)
	require.Equal(t, 2.0, testutil.ToFloat64(m.malformedDocuments), "counted once, as a difference")
	src.malformed = 1
	ps.countDrops(m)
	require.Equal(t, 3.0, testutil.ToFloat64(m.malformedDocuments), "a fresh count adds all it has")
}
