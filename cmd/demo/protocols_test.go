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
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/bmcstream/bmcstream/internal/testbed"
)

// TestBothProtocolsOneSourcePerSeries runs the demo, whose fleet is polled
// over both Redfish and IPMI (the compose stack's --protocols=both), and
// checks over a steady-state window that every series got at most one
// sample per poll interval, so no series is fed by both protocols, and
// that the gateway dropped no sample as out of order.
func TestBothProtocolsOneSourcePerSeries(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the whole pipeline")
	}
	testbed.RequireBinary(t, "prometheus")
	bin := testbed.Build(t, ".")
	const (
		interval = 2 * time.Second
		window   = 24 * time.Second
	)
	args := append([]string{"--duration=3m", "--interval=" + interval.String(), "--bmcs=20",
		"--fleet.first-address=127.26.0.1", "--data.dir=" + t.TempDir()}, freePorts(t)...)
	var promURL, gatewayURL string
	for _, a := range args {
		if p, ok := strings.CutPrefix(a, "--receiver.port="); ok {
			promURL = "http://127.0.0.1:" + p
		}
		if p, ok := strings.CutPrefix(a, "--web.listen-address="); ok {
			gatewayURL = "http://" + p + "/metrics"
		}
	}
	cmd := exec.Command(bin, args...)
	stdout, err := cmd.StdoutPipe()
	require.NoError(t, err)
	var stderr lockedBuffer
	cmd.Stderr = &stderr
	require.NoError(t, cmd.Start())
	t.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		done := make(chan struct{})
		go func() { _ = cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(30 * time.Second):
			_ = cmd.Process.Kill()
			<-done
		}
	})
	ok := make(chan struct{})
	go func() {
		sc := bufio.NewScanner(stdout)
		closed := false
		for sc.Scan() {
			if !closed && strings.HasPrefix(sc.Text(), "pipeline OK") {
				close(ok)
				closed = true
			}
		}
	}()
	select {
	case <-ok:
	case <-time.After(2 * time.Minute):
		t.Fatalf("no data within 2 minutes; stderr:\n%s", tail(stderr.String(), 4000))
	}

	// Steady state: every BMC has been polled over both protocols a few
	// times, and every takeover (bmc-00016's Redfish is down) is done.
	// Measured: at least one bmc_up series per BMC, and no series of an
	// answering BMC still written (a sample in the last two intervals)
	// with fewer than three samples in the last four: a series a takeover
	// started counts once it has been polled a few times. BMCs that do
	// not answer are polled with backoff, and a series a takeover ended
	// lingers unwritten; neither is steady state to wait for.
	recent := fmt.Sprintf("(bmc_up == 1 and count_over_time(bmc_up[%ds])) unless count_over_time(bmc_up[%ds]) >= 3",
		int((2 * interval).Seconds()), int((4 * interval).Seconds()))
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	if testbed.Until(ctx, func() bool {
		return len(promVector(t, promURL, "bmc_up")) >= 20 && len(promVector(t, promURL, recent)) == 0
	}) != nil {
		t.Fatalf("after a minute, not every answering BMC polled a few times over each of its protocols: %d bmc_up series, these polled less:\n%s",
			len(promVector(t, promURL, "bmc_up")), strings.Join(promVector(t, promURL, recent), "\n"))
	}
	const dropped = "bmcstream_gateway_out_of_order_samples_dropped_total"
	before := gatewayCounter(t, gatewayURL, dropped)
	// The steady-state window: no sample dropped as out of order in it.
	testbed.Never(t, window, func() bool { return gatewayCounter(t, gatewayURL, dropped) != before },
		"samples dropped as out of order in the steady state")
	after := gatewayCounter(t, gatewayURL, dropped)
	t.Logf("samples dropped as out of order in %s of steady state: %g", window, after-before)

	// At most one sample per interval: window/interval, plus one for a
	// window that starts right on a sample and one for a late poll. Two
	// protocols interleaved give twice as many.
	limit := int(window/interval) + 2
	var over []string
	seen := 0
	for _, name := range metricNames(t, promURL) {
		if !strings.HasPrefix(name, "bmc_") || strings.HasPrefix(name, "bmc_rack_") {
			continue
		}
		seen += len(promVector(t, promURL, fmt.Sprintf("count_over_time(%s[%ds])", name, int(window.Seconds()))))
		for _, s := range promVector(t, promURL, fmt.Sprintf("count_over_time(%s[%ds]) > %d", name, int(window.Seconds()), limit)) {
			over = append(over, name+s)
		}
	}
	require.Positive(t, seen, "series in the window")
	t.Logf("%d series, each with at most %d samples in %s", seen, limit, window)
	var lines []string
	for i, s := range over {
		if i == 10 {
			lines = append(lines, fmt.Sprintf("… and %d more", len(over)-10))
			break
		}
		lines = append(lines, s)
	}
	require.Zero(t, len(over), "series with more than %d samples in %s (one per %s poll expected):\n%s", limit, window, interval, strings.Join(lines, "\n"))
	require.Equal(t, before, after, "samples dropped as out of order in the steady state")
	// Both protocols kept their own series.
	for _, proto := range []string{"redfish", "ipmi"} {
		require.NotEmpty(t, promVector(t, promURL, fmt.Sprintf(`bmc_up{protocol=%q} == 1`, proto)), "BMCs answering over %s", proto)
	}
}

// gatewayCounter sums a counter's series on the gateway's /metrics.
func gatewayCounter(t *testing.T, metricsURL, name string) float64 {
	t.Helper()
	resp, err := http.Get(metricsURL)
	require.NoError(t, err)
	defer func() { _ = resp.Body.Close() }()
	b, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	sum, found := 0.0, false
	for _, l := range strings.Split(string(b), "\n") {
		if !strings.HasPrefix(l, name+"{") && !strings.HasPrefix(l, name+" ") {
			continue
		}
		f := strings.Fields(l)
		v, err := strconv.ParseFloat(f[len(f)-1], 64)
		require.NoError(t, err, l)
		sum += v
		found = true
	}
	require.True(t, found, "%s on the gateway's /metrics", name)
	return sum
}

// metricNames returns the metric names Prometheus holds.
func metricNames(t *testing.T, base string) []string {
	t.Helper()
	resp, err := http.Get(base + "/api/v1/label/__name__/values")
	require.NoError(t, err)
	defer func() { _ = resp.Body.Close() }()
	var r struct {
		Data []string `json:"data"`
	}
	require.NoError(t, json.NewDecoder(resp.Body).Decode(&r))
	return r.Data
}

// promVector evaluates an instant query and renders each series of the
// answer as "labels value".
func promVector(t *testing.T, base, expr string) []string {
	t.Helper()
	resp, err := http.Get(base + "/api/v1/query?" + url.Values{"query": {expr}}.Encode())
	require.NoError(t, err)
	defer func() { _ = resp.Body.Close() }()
	var r struct {
		Status string `json:"status"`
		Error  string `json:"error"`
		Data   struct {
			Result []struct {
				Metric map[string]string `json:"metric"`
				Value  []any             `json:"value"`
			} `json:"result"`
		} `json:"data"`
	}
	require.NoError(t, json.NewDecoder(resp.Body).Decode(&r))
	require.Equal(t, "success", r.Status, "query %q: %s", expr, r.Error)
	var out []string
	for _, s := range r.Data.Result {
		out = append(out, fmt.Sprintf("%v %v", s.Metric, s.Value[1]))
	}
	return out
}
