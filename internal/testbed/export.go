package testbed

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"math"
	"net/http"
	"net/url"
	"strings"
	"time"
)

// Stored returns every sample stored for the series matching selector with
// timestamps in [start, end], exactly as the receiver holds them.
//
// For VictoriaMetrics it reads /api/v1/export, which answers the raw
// samples without query-time deduplication, so two samples at one
// timestamp (a resent batch) both appear; staleness markers appear as NaN.
// Prometheus keeps at most one sample per series and timestamp and never
// answers staleness markers in a range, so for it Stored is RawSamples over
// the window.
func (r *Receiver) Stored(ctx context.Context, selector string, start, end time.Time) ([]Series, error) {
	if r.kind.name != "victoria-metrics" {
		// RawSamples includes a sample exactly at at-window on Prometheus.
		return r.RawSamples(ctx, selector, end.Sub(start), end)
	}
	v := url.Values{
		"match[]": {selector},
		"start":   {formatTime(start)},
		"end":     {formatTime(end)},
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, r.URL()+"/api/v1/export?"+v.Encode(), nil)
	if err != nil {
		return nil, fmt.Errorf("build export request: %w", err)
	}
	resp, err := r.client.Do(req)
	if err != nil {
		return nil, fmt.Errorf("export %s: %w", selector, err)
	}
	defer resp.Body.Close() // the body is read (or its error reported); a close error changes nothing
	if resp.StatusCode != http.StatusOK {
		// the status is the error; the body only adds detail when it reads
		body, _ := readAndClose(resp.Body, 4096)
		return nil, fmt.Errorf("export %s: HTTP %d: %s", selector, resp.StatusCode, snippet(body))
	}
	var out []Series
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 0, 1<<20), maxBodyBytes)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" {
			continue
		}
		var row struct {
			Metric     map[string]string `json:"metric"`
			Values     []*float64        `json:"values"`
			Timestamps []int64           `json:"timestamps"`
		}
		if err := json.Unmarshal([]byte(line), &row); err != nil {
			return nil, fmt.Errorf("export %s: decode %q: %w", selector, snippet([]byte(line)), err)
		}
		if len(row.Values) != len(row.Timestamps) {
			return nil, fmt.Errorf("export %s: %d values for %d timestamps", selector, len(row.Values), len(row.Timestamps))
		}
		s := Series{Labels: nonNil(row.Metric), Samples: make([]Point, len(row.Values))}
		for i, val := range row.Values {
			f := math.NaN() // VictoriaMetrics exports a staleness marker as null
			if val != nil {
				f = *val
			}
			s.Samples[i] = Point{T: row.Timestamps[i], V: f}
		}
		out = append(out, s)
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("export %s: read: %w", selector, err)
	}
	return out, nil
}
