package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os/exec"
	"regexp"
	"sort"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/bmcstream/bmcstream/deploy/compose"
	"github.com/bmcstream/bmcstream/internal/testbed"
)

// TestDashboardQueriesReturnData runs the README's run command (the compose
// stack as processes) with a 24-BMC fleet, waits for data, and evaluates
// every query of every dashboard against the Prometheus it writes to: each
// must return data. Template variables take their "All" value (.*); a
// query on the single-BMC dashboard must return data for at least one BMC
// of the fleet (a BMC lacks the sensors its vendor does not have).
func TestDashboardQueriesReturnData(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the whole topology")
	}
	testbed.RequireBinary(t, "prometheus")
	bin := testbed.Build(t, ".")
	dir := t.TempDir()
	args := append([]string{"--duration=3m", "--interval=5s", "--bmcs=24", "--fleet.first-address=127.24.0.1", "--data.dir=" + dir}, freePorts(t)...)
	var promURL string
	for _, a := range args {
		if p, ok := strings.CutPrefix(a, "--receiver.port="); ok {
			promURL = "http://127.0.0.1:" + p
		}
	}

	cmd := exec.Command(bin, args...)
	stdout, err := cmd.StdoutPipe()
	require.NoError(t, err)
	var stderr lockedBuffer
	cmd.Stderr = &stderr
	require.NoError(t, cmd.Start())
	var out lockedBuffer
	ok := make(chan struct{})
	go func() {
		sc := bufio.NewScanner(stdout)
		once := sync.Once{}
		for sc.Scan() {
			out.WriteString(sc.Text() + "\n")
			if strings.HasPrefix(sc.Text(), "pipeline OK") {
				once.Do(func() { close(ok) })
			}
		}
	}()
	stopped := false
	stop := func() {
		if stopped {
			return
		}
		stopped = true
		_ = cmd.Process.Signal(syscall.SIGTERM)
		done := make(chan error, 1)
		go func() { done <- cmd.Wait() }()
		select {
		case err := <-done:
			require.NoError(t, err, "the demo stops cleanly")
		case <-time.After(30 * time.Second):
			_ = cmd.Process.Kill()
			t.Errorf("the demo did not stop within 30 s of SIGTERM")
		}
	}
	t.Cleanup(func() {
		if !stopped {
			_ = cmd.Process.Kill()
			_ = cmd.Wait()
		}
		if t.Failed() {
			t.Logf("demo stdout:\n%s\ndemo stderr (end):\n%s", out.String(), tail(stderr.String(), 8000))
		}
	})

	start := time.Now()
	select {
	case <-ok:
		t.Logf("pipeline OK after %s", time.Since(start).Round(time.Second))
	case <-time.After(60 * time.Second):
		t.Fatalf("no \"pipeline OK\" within 60 s")
	}
	require.Contains(t, out.String(), "answers bmc_up for 24 BMCs")
	require.Contains(t, out.String(), "pollers (dynamic shards)")

	ctx := t.Context()
	bmcs := labelValues(t, promURL, "bmc_up", "bmc")
	require.Len(t, bmcs, 24)

	dashboards, err := compose.Dashboards()
	require.NoError(t, err)
	type check struct {
		q      compose.Query
		exprs  []string // one per value of $bmc, or just one
		hits   int      // exprs that returned data
		lastOK string
		err    error
	}
	var checks []*check
	for _, d := range dashboards {
		for _, q := range d.Queries() {
			c := &check{q: q}
			vars := map[string]string{"__rate_interval": "1m", "__interval": "15s", "__range": "1h"}
			for _, v := range compose.TemplateVars(q.Expr) {
				if _, set := vars[v]; !set && v != "bmc" {
					vars[v] = ".*"
				}
			}
			values := []string{""}
			if containsVar(q.Expr, "bmc") {
				values = bmcs
			}
			for _, b := range values {
				vars["bmc"] = b
				e, err := compose.Expand(q.Expr, vars)
				require.NoError(t, err)
				c.exprs = append(c.exprs, e)
			}
			checks = append(checks, c)
		}
	}

	// Rates need two scrapes of the self-metrics (15 s apart) and the
	// budget recording rule one evaluation: wait for them, within bounds.
	deadline := time.Now().Add(75 * time.Second)
	// Every 5 s: each round runs every check's queries.
	tick := time.NewTicker(5 * time.Second)
	defer tick.Stop()
	for {
		pending := 0
		for _, c := range checks {
			if c.hits > 0 && !containsVar(c.q.Expr, "bmc") {
				continue
			}
			c.hits = 0
			for _, e := range c.exprs {
				n, err := resultSize(ctx, promURL, e)
				c.err = err
				if err == nil && n > 0 {
					c.hits++
					c.lastOK = e
				}
			}
			if c.hits == 0 {
				pending++
			}
		}
		if pending == 0 || time.Now().After(deadline) {
			break
		}
		<-tick.C
	}

	var missing []string
	perDashboard := map[string][2]int{}
	bmcCoverage := []string{}
	for _, c := range checks {
		pd := perDashboard[c.q.Dashboard]
		pd[0]++
		if c.hits > 0 {
			pd[1]++
		} else {
			missing = append(missing, fmt.Sprintf("%s (last error: %v)", c.q, c.err))
		}
		perDashboard[c.q.Dashboard] = pd
		if len(c.exprs) > 1 {
			bmcCoverage = append(bmcCoverage, fmt.Sprintf("%s/%s %d", c.q.Panel, c.q.RefID, c.hits))
		}
	}
	var summary []string
	total, withData := 0, 0
	for d, n := range perDashboard {
		summary = append(summary, fmt.Sprintf("%s %d/%d", d, n[1], n[0]))
		total += n[0]
		withData += n[1]
	}
	sort.Strings(summary)
	t.Logf("%d of %d dashboard queries returned data after %s: %s", withData, total, time.Since(start).Round(time.Second), strings.Join(summary, ", "))
	t.Logf("single-BMC dashboard, BMCs (of %d) with data per query: %s", len(bmcs), strings.Join(bmcCoverage, "; "))
	require.Empty(t, missing, "dashboard queries without data:\n%s", strings.Join(missing, "\n"))

	// What the alert rules make of the simulated faults so far (they need
	// minutes to fire; this test does not wait for them).
	t.Logf("alerts pending or firing: %s", strings.Join(activeAlerts(t, promURL), ", "))
	stop()
	require.Contains(t, out.String(), "stopping")
}

func containsVar(expr, name string) bool {
	for _, v := range compose.TemplateVars(expr) {
		if v == name {
			return true
		}
	}
	return false
}

// promResult is an answer of Prometheus' query API.
type promResult struct {
	Status string `json:"status"`
	Error  string `json:"error"`
	Data   struct {
		ResultType string          `json:"resultType"`
		Result     json.RawMessage `json:"result"`
	} `json:"data"`
}

// resultSize evaluates an instant query and returns how many series (or 1
// for a scalar) it answered.
func resultSize(ctx context.Context, base, expr string) (int, error) {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, base+"/api/v1/query?"+url.Values{"query": {expr}}.Encode(), nil)
	if err != nil {
		return 0, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, err
	}
	defer func() { _ = resp.Body.Close() }()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 8<<20))
	if err != nil {
		return 0, err
	}
	var r promResult
	if err := json.Unmarshal(b, &r); err != nil {
		return 0, fmt.Errorf("decode %s: %w", b, err)
	}
	if r.Status != "success" {
		return 0, fmt.Errorf("query %q: %s", expr, r.Error)
	}
	switch r.Data.ResultType {
	case "scalar", "string":
		return 1, nil
	}
	var series []json.RawMessage
	if err := json.Unmarshal(r.Data.Result, &series); err != nil {
		return 0, err
	}
	return len(series), nil
}

// labelValues returns the sorted values of label among the series of expr.
func labelValues(t *testing.T, base, expr, label string) []string {
	t.Helper()
	resp, err := http.Get(base + "/api/v1/query?" + url.Values{"query": {fmt.Sprintf("count by (%s) (%s)", label, expr)}}.Encode())
	require.NoError(t, err)
	defer func() { _ = resp.Body.Close() }()
	var r struct {
		Data struct {
			Result []struct {
				Metric map[string]string `json:"metric"`
			} `json:"result"`
		} `json:"data"`
	}
	require.NoError(t, json.NewDecoder(resp.Body).Decode(&r))
	var out []string
	for _, s := range r.Data.Result {
		out = append(out, s.Metric[label])
	}
	sort.Strings(out)
	return out
}

// activeAlerts lists Prometheus' pending and firing alerts as
// "name{severity} state ×count".
func activeAlerts(t *testing.T, base string) []string {
	t.Helper()
	resp, err := http.Get(base + "/api/v1/alerts")
	require.NoError(t, err)
	defer func() { _ = resp.Body.Close() }()
	var r struct {
		Data struct {
			Alerts []struct {
				Labels map[string]string `json:"labels"`
				State  string            `json:"state"`
			} `json:"alerts"`
		} `json:"data"`
	}
	require.NoError(t, json.NewDecoder(resp.Body).Decode(&r))
	count := map[string]int{}
	for _, a := range r.Data.Alerts {
		count[fmt.Sprintf("%s{%s} %s", a.Labels["alertname"], a.Labels["severity"], a.State)]++
	}
	var out []string
	for k, n := range count {
		out = append(out, fmt.Sprintf("%s ×%d", k, n))
	}
	sort.Strings(out)
	return out
}

// lockedBuffer is a strings.Builder safe for the writer and a reader.
type lockedBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) WriteString(s string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.b.WriteString(s)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

var lineStart = regexp.MustCompile(`(?m)^`)

// tail returns the last n bytes of s, from a line's start.
func tail(s string, n int) string {
	if len(s) <= n {
		return s
	}
	s = s[len(s)-n:]
	if loc := lineStart.FindAllStringIndex(s, 2); len(loc) == 2 {
		s = s[loc[1][0]:]
	}
	return s
}
