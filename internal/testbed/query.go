package testbed

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

const (
	// DefaultWaitTimeout bounds WaitFor when its context has no deadline:
	// a remote-write pipeline under test delivers within seconds, and a
	// test should fail well inside its ~15 s budget.
	DefaultWaitTimeout = 10 * time.Second

	// waitInterval is the pause between WaitFor's queries.
	waitInterval = 50 * time.Millisecond
)

// Point is one sample as a receiver answers it.
type Point struct {
	// T is the sample's timestamp in Unix milliseconds.
	T int64
	// V is the sample's value.
	V float64
}

// Series is one series of a query result.
type Series struct {
	// Labels holds every label of the series, "__name__" included when the
	// result keeps it (functions such as rate drop it). Never nil.
	Labels map[string]string
	// Samples are in time order: one for an instant vector, stamped with
	// the evaluation time rather than the sample's own; every stored sample
	// in the window for a range vector.
	Samples []Point
}

// Query evaluates promql as an instant query at time at (the receiver's
// own now when at is zero) through /api/v1/query. An instant vector gives
// one sample per series, a range vector (a matrix) every stored sample in
// the range, a scalar one series without labels. Series are sorted by
// their labels so tests can compare whole results.
func (r *Receiver) Query(ctx context.Context, promql string, at time.Time) ([]Series, error) {
	v := url.Values{"query": {promql}}
	if !at.IsZero() {
		v.Set("time", formatTime(at))
	}
	res, err := r.api(ctx, "/api/v1/query", v)
	if err != nil {
		return nil, fmt.Errorf("query %s for %q: %w", r.kind.name, promql, err)
	}
	return res, nil
}

// RawSamples returns the samples stored for the series matching selector
// in the window ending at at (the receiver's now when at is zero), with
// their exact timestamps: it queries "selector[window]" as an instant
// query, which answers raw samples rather than evaluated steps. Prometheus
// 2.x includes a sample exactly at at-window; VictoriaMetrics excludes it,
// so keep samples off the window's start. The window is whole
// milliseconds. Staleness markers differ too: Prometheus leaves them out,
// VictoriaMetrics 1.79 answers them as NaN samples (and drops ordinary NaN
// samples when they are written).
func (r *Receiver) RawSamples(ctx context.Context, selector string, window time.Duration, at time.Time) ([]Series, error) {
	ms := window.Milliseconds()
	if ms <= 0 {
		return nil, fmt.Errorf("raw samples of %s: window %v is shorter than 1ms", selector, window)
	}
	return r.Query(ctx, selector+"["+strconv.FormatInt(ms, 10)+"ms]", at)
}

// QueryRange evaluates promql at every step from start to end through
// /api/v1/query_range. Note that the answers are evaluated points, not
// stored samples: use RawSamples to see what was stored.
func (r *Receiver) QueryRange(ctx context.Context, promql string, start, end time.Time, step time.Duration) ([]Series, error) {
	v := url.Values{
		"query": {promql},
		"start": {formatTime(start)},
		"end":   {formatTime(end)},
		"step":  {strconv.FormatFloat(step.Seconds(), 'f', -1, 64)},
	}
	res, err := r.api(ctx, "/api/v1/query_range", v)
	if err != nil {
		return nil, fmt.Errorf("query range %s for %q: %w", r.kind.name, promql, err)
	}
	return res, nil
}

// SeriesLabels returns the label sets of the series matching selector that
// have samples between start and end, through /api/v1/series, sorted. A
// zero start or end leaves the receiver's default, and they differ:
// Prometheus searches all time; VictoriaMetrics searches up to now at the
// granularity of its per-day index, so it also returns series idle for
// hours that day but not series whose samples all lie ahead. Pass both for
// a portable answer.
func (r *Receiver) SeriesLabels(ctx context.Context, selector string, start, end time.Time) ([]map[string]string, error) {
	v := url.Values{"match[]": {selector}}
	if !start.IsZero() {
		v.Set("start", formatTime(start))
	}
	if !end.IsZero() {
		v.Set("end", formatTime(end))
	}
	data, err := r.apiData(ctx, "/api/v1/series", v)
	if err != nil {
		return nil, fmt.Errorf("series %s for %q: %w", r.kind.name, selector, err)
	}
	var sets []map[string]string
	if err := json.Unmarshal(data, &sets); err != nil {
		return nil, fmt.Errorf("series %s for %q: decode: %w", r.kind.name, selector, err)
	}
	slices.SortFunc(sets, func(a, b map[string]string) int { return strings.Compare(labelKey(a), labelKey(b)) })
	return sets, nil
}

// Flush makes every sample the receiver has accepted searchable at once.
// VictoriaMetrics 1.79 shows a new sample of a known series after about a
// second, and a new series only after about ten (its index is flushed
// apart from the data); Flush calls its /internal/force_flush, after which
// both are searchable. It makes them searchable, not durable (see Kill).
// Prometheus answers queries from its head block at once, so for it Flush
// does nothing.
func (r *Receiver) Flush(ctx context.Context) error {
	if r.kind.flushPath == "" {
		return nil
	}
	if _, err := r.getBody(ctx, r.URL()+r.kind.flushPath); err != nil {
		return fmt.Errorf("flush %s: %w", r.kind.name, err)
	}
	return nil
}

// WaitFor evaluates promql as an instant query at the receiver's now,
// flushing first, until cond accepts the result, and returns that result.
// It fails the test when ctx ends first, or after DefaultWaitTimeout when
// ctx has no deadline. Query errors do not end the wait (the receiver may
// be restarting) but are reported on failure. Call it from the test's
// goroutine.
func (r *Receiver) WaitFor(ctx context.Context, t testing.TB, promql string, cond func([]Series) bool) []Series {
	t.Helper()
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, DefaultWaitTimeout)
		defer cancel()
	}
	tick := time.NewTicker(waitInterval)
	defer tick.Stop()
	var (
		last    []Series
		lastErr error
	)
	for {
		lastErr = r.Flush(ctx)
		if lastErr == nil {
			var res []Series
			res, lastErr = r.Query(ctx, promql, time.Time{})
			if lastErr == nil {
				last = res
				if cond(res) {
					return res
				}
			}
		}
		select {
		case <-ctx.Done():
			t.Fatalf("testbed: wait on %s for %q: %v; last result %v; last error: %v",
				r.kind.name, promql, context.Cause(ctx), last, lastErr)
			return nil
		case <-tick.C:
		}
	}
}

// api GETs a query endpoint and decodes its result into series.
func (r *Receiver) api(ctx context.Context, path string, v url.Values) ([]Series, error) {
	data, err := r.apiData(ctx, path, v)
	if err != nil {
		return nil, err
	}
	var qd struct {
		ResultType string          `json:"resultType"`
		Result     json.RawMessage `json:"result"`
	}
	if err := json.Unmarshal(data, &qd); err != nil {
		return nil, fmt.Errorf("decode data: %w", err)
	}
	res, err := decodeResult(qd.ResultType, qd.Result)
	if err != nil {
		return nil, fmt.Errorf("decode %s result: %w", qd.ResultType, err)
	}
	slices.SortFunc(res, func(a, b Series) int { return strings.Compare(labelKey(a.Labels), labelKey(b.Labels)) })
	return res, nil
}

// apiData GETs an HTTP API endpoint and returns the "data" of a successful
// answer, or the API's own error.
func (r *Receiver) apiData(ctx context.Context, path string, v url.Values) (json.RawMessage, error) {
	u := r.URL() + path + "?" + v.Encode()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return nil, fmt.Errorf("build request: %w", err)
	}
	resp, err := r.client.Do(req)
	if err != nil {
		return nil, fmt.Errorf("get %s: %w", path, err)
	}
	body, err := readAndClose(resp.Body, maxBodyBytes)
	if err != nil {
		return nil, fmt.Errorf("read %s answer: %w", path, err)
	}
	var ar struct {
		Status    string          `json:"status"`
		Data      json.RawMessage `json:"data"`
		ErrorType string          `json:"errorType"`
		Error     string          `json:"error"`
	}
	if err := json.Unmarshal(body, &ar); err != nil {
		return nil, fmt.Errorf("get %s: HTTP %d: undecodable answer %q: %w", path, resp.StatusCode, snippet(body), err)
	}
	if ar.Status != "success" || resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("get %s: HTTP %d: %s: %s", path, resp.StatusCode, ar.ErrorType, ar.Error)
	}
	return ar.Data, nil
}

// decodeResult turns a query API result of the given type into series.
func decodeResult(resultType string, raw json.RawMessage) ([]Series, error) {
	switch resultType {
	case "vector":
		var vs []struct {
			Metric map[string]string `json:"metric"`
			Value  jsonPoint         `json:"value"`
		}
		if err := json.Unmarshal(raw, &vs); err != nil {
			return nil, err
		}
		out := make([]Series, 0, len(vs))
		for _, s := range vs {
			out = append(out, Series{Labels: nonNil(s.Metric), Samples: []Point{Point(s.Value)}})
		}
		return out, nil
	case "matrix":
		var ms []struct {
			Metric map[string]string `json:"metric"`
			Values []jsonPoint       `json:"values"`
		}
		if err := json.Unmarshal(raw, &ms); err != nil {
			return nil, err
		}
		out := make([]Series, 0, len(ms))
		for _, s := range ms {
			pts := make([]Point, len(s.Values))
			for i, p := range s.Values {
				pts[i] = Point(p)
			}
			out = append(out, Series{Labels: nonNil(s.Metric), Samples: pts})
		}
		return out, nil
	case "scalar":
		var p jsonPoint
		if err := json.Unmarshal(raw, &p); err != nil {
			return nil, err
		}
		return []Series{{Labels: map[string]string{}, Samples: []Point{Point(p)}}}, nil
	default:
		return nil, fmt.Errorf("result type %q is not supported", resultType)
	}
}

func nonNil(m map[string]string) map[string]string {
	if m == nil {
		return map[string]string{}
	}
	return m
}

// jsonPoint decodes the API's [<unix seconds>, "<value>"] pair.
type jsonPoint Point

// UnmarshalJSON decodes [1700000000.123, "42.5"] exactly: the timestamp is
// parsed as decimal text, not through a float, so milliseconds survive.
func (p *jsonPoint) UnmarshalJSON(b []byte) error {
	var pair []json.RawMessage
	if err := json.Unmarshal(b, &pair); err != nil {
		return err
	}
	if len(pair) != 2 {
		return fmt.Errorf("sample %s: want [time, value]", b)
	}
	t, err := parseMillis(string(pair[0]))
	if err != nil {
		return fmt.Errorf("sample %s: %w", b, err)
	}
	var vs string
	if err := json.Unmarshal(pair[1], &vs); err != nil {
		return fmt.Errorf("sample %s: value: %w", b, err)
	}
	v, err := strconv.ParseFloat(vs, 64)
	if err != nil {
		return fmt.Errorf("sample %s: value: %w", b, err)
	}
	*p = jsonPoint{T: t, V: v}
	return nil
}

// parseMillis parses Unix seconds with up to three decimals, such as
// "1700000000.123", into milliseconds without float rounding. Other forms
// (an exponent, more decimals) go through a float and are rounded.
func parseMillis(s string) (int64, error) {
	if sec, frac, _ := strings.Cut(s, "."); len(frac) <= 3 && allDigits(frac) {
		secs, err := strconv.ParseInt(sec, 10, 64)
		if err == nil {
			f := int64(0)
			for i := range 3 {
				f *= 10
				if i < len(frac) {
					f += int64(frac[i] - '0')
				}
			}
			if strings.HasPrefix(sec, "-") {
				return secs*1000 - f, nil
			}
			return secs*1000 + f, nil
		}
	}
	f, err := strconv.ParseFloat(s, 64)
	if err != nil {
		return 0, fmt.Errorf("timestamp %q: %w", s, err)
	}
	return int64(math.Round(f * 1000)), nil
}

func allDigits(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

// formatTime formats t as Unix seconds with millisecond decimals, the
// precision both receivers store.
func formatTime(t time.Time) string {
	ms := t.UnixMilli()
	sign := ""
	if ms < 0 {
		sign, ms = "-", -ms
	}
	return fmt.Sprintf("%s%d.%03d", sign, ms/1000, ms%1000)
}

// labelKey is a canonical text of a label set, for sorting.
func labelKey(ls map[string]string) string {
	names := make([]string, 0, len(ls))
	for n := range ls {
		names = append(names, n)
	}
	slices.Sort(names)
	var b strings.Builder
	for _, n := range names {
		b.WriteString(n)
		b.WriteByte(0xff)
		b.WriteString(ls[n])
		b.WriteByte(0xff)
	}
	return b.String()
}
