// Command latency measures how long a BMC reading takes to become
// queryable in a real Prometheus: the delay from the reading's timestamp
// (the poll start the poller stamps on every sample) to the first instant
// Prometheus's query API answers it, at a realistic fleet rate.
//
// Everything runs on loopback: an embedded NATS JetStream server
// (embedded.Start), a bmcsim fleet of Redfish BMCs answering with
// log-normal latency, the real poller and the real gateway in this process,
// and the Debian prometheus binary with its remote-write receiver
// (internal/testbed) as the sink. The poller and the gateway run their
// default configuration: only URLs, the inventory and the sink URL are set,
// so the remote-write queue's batching is whatever the defaults are
// (--batch-send-deadline overrides the deadline to show its effect).
//
// A watcher asks Prometheus, every --watch-every, for the newest sample
// time of bmc_poll_duration_seconds of a fixed sample of the BMCs (one
// series per BMC, one sample per poll). A sample time newer than the last
// one seen for that BMC is a poll that became queryable at that query's
// evaluation time. After the run, one range query lists every stored poll
// of the watched BMCs with its duration (the sample's value), so each poll
// gets both "poll start → queryable" and "poll end → queryable".
//
//	go run ./benchmarks/latency --bmcs=2000 --interval=15s --measure=60s
package main

import (
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"math"
	"net"
	"net/http"
	"net/netip"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	pmodel "github.com/prometheus/common/model"

	"github.com/bmcstream/bmcstream/benchmarks/internal/figures"
	"github.com/bmcstream/bmcstream/internal/testbed"
	"github.com/bmcstream/bmcstream/pkg/bmcsim/fleet"
	bmodel "github.com/bmcstream/bmcstream/pkg/bmcsim/model"
	"github.com/bmcstream/bmcstream/pkg/bus"
	"github.com/bmcstream/bmcstream/pkg/bus/embedded"
	"github.com/bmcstream/bmcstream/pkg/gateway"
	"github.com/bmcstream/bmcstream/pkg/inventory"
	"github.com/bmcstream/bmcstream/pkg/poller"
	"github.com/bmcstream/bmcstream/pkg/sinks/remotewrite"
)

type options struct {
	BMCs       int
	Interval   time.Duration
	Warmup     time.Duration // 0: two intervals
	Measure    time.Duration
	Drain      time.Duration // 0: the batch deadline plus 30 s
	Watch      int           // BMCs watched; 0 or more than BMCs: all
	WatchEvery time.Duration
	Latency    string // bmcsim latency "median,p99" in ms; "" for none
	// Deadline overrides the remote-write batch_send_deadline; 0 keeps
	// the default.
	Deadline     time.Duration
	FirstAddress string
	// Quiet silences progress on stderr (tests).
	Quiet bool
}

func main() {
	var o options
	flag.IntVar(&o.BMCs, "bmcs", 2000, "fleet size (Redfish BMCs)")
	flag.DurationVar(&o.Interval, "interval", 15*time.Second, "poll interval of every BMC")
	flag.DurationVar(&o.Warmup, "warmup", 0, "time before measuring (0: two intervals)")
	flag.DurationVar(&o.Measure, "measure", 60*time.Second, "polls starting within this window are measured")
	flag.DurationVar(&o.Drain, "drain", 0, "how long to keep watching after the window for its last polls (0: batch deadline + 30s)")
	flag.IntVar(&o.Watch, "watch", 200, "BMCs watched, spread evenly over the fleet (0: all)")
	flag.DurationVar(&o.WatchEvery, "watch-every", 100*time.Millisecond, "pause between the watcher's queries")
	flag.StringVar(&o.Latency, "latency", "50,400", "bmcsim latency median,p99 in ms (\"\" for none)")
	flag.DurationVar(&o.Deadline, "batch-send-deadline", 0, "override the remote-write queue's batch_send_deadline (0: the default)")
	flag.StringVar(&o.FirstAddress, "first-address", "127.70.0.1", "loopback address of the first BMC")
	jsonFile := flag.String("json", "", "also write the results as JSON to this file")
	timeout := flag.Duration("timeout", 0, "bound on the whole run (0: warmup + measure + drain + 3m)")
	flag.Parse()
	if o.Warmup == 0 {
		o.Warmup = 2 * o.Interval
	}
	if o.Drain == 0 {
		o.Drain = o.deadline() + 30*time.Second
	}
	if *timeout == 0 {
		*timeout = o.Warmup + o.Measure + o.Drain + 3*time.Minute
	}

	r, err := runProgram(o, *timeout)
	if err != nil {
		fmt.Fprintln(os.Stderr, "latency:", err)
		os.Exit(1)
	}
	var out bytes.Buffer
	r.print(&out)
	if _, err := os.Stdout.Write(out.Bytes()); err != nil {
		fmt.Fprintln(os.Stderr, "latency: write the report:", err)
		os.Exit(1)
	}
	if *jsonFile != "" {
		b, err := json.MarshalIndent(r, "", "  ")
		if err == nil {
			err = os.WriteFile(*jsonFile, append(b, '\n'), 0o644)
		}
		if err != nil {
			fmt.Fprintln(os.Stderr, "latency: json:", err)
			os.Exit(1)
		}
	}
}

// runProgram runs the measurement outside a test. internal/testbed's
// starters take a testing.TB (temporary directories, cleanup, failure
// reports); testing.Benchmark provides a real one to a program. Its run
// lasts minutes, far beyond the 1 s benchmark time, so the function runs
// exactly once. Benchmark discards what a B logs, so reporter prints it.
func runProgram(o options, timeout time.Duration) (*Result, error) {
	var (
		res *Result
		err error
		rep reporter
	)
	testing.Benchmark(func(b *testing.B) {
		rep.B = b
		ctx, cancel := context.WithTimeout(b.Context(), timeout)
		defer cancel()
		res, err = run(ctx, &rep, o)
	})
	switch {
	case rep.skipped != "":
		return nil, errors.New(rep.skipped)
	case rep.failed && err == nil:
		return nil, errors.New("failed (see above)")
	}
	return res, err
}

// reporter is a testing.TB that prints what it logs and records a skip, so
// testbed's messages reach the terminal.
type reporter struct {
	*testing.B
	failed  bool
	skipped string
}

func (r *reporter) Logf(format string, a ...any) { fmt.Fprintf(os.Stderr, format+"\n", a...) }
func (r *reporter) Log(a ...any)                 { fmt.Fprintln(os.Stderr, a...) }
func (r *reporter) Errorf(format string, a ...any) {
	r.failed = true
	r.Logf(format, a...)
	r.B.Fail()
}

func (r *reporter) Fatalf(format string, a ...any) {
	r.failed = true
	r.Logf(format, a...)
	r.B.FailNow()
}

func (r *reporter) Skip(a ...any) {
	r.skipped = fmt.Sprint(a...)
	r.B.SkipNow()
}

func (o options) deadline() time.Duration {
	if o.Deadline > 0 {
		return o.Deadline
	}
	return time.Duration(remotewrite.DefaultQueueConfig.BatchSendDeadline)
}

func statsOf(d []float64) Stats {
	if len(d) == 0 {
		return Stats{}
	}
	s := slices.Clone(d)
	slices.Sort(s)
	q := func(p float64) float64 { return s[min(len(s)-1, int(math.Ceil(p*float64(len(s))))-1)] }
	return Stats{Count: len(s), P50: q(0.50), P99: q(0.99), Max: s[len(s)-1]}
}

// Result is one run's figures (JSON for benchmarks/benchall) and what
// computes them.
type Result struct{ figures.Latency }

// Stats summarises delays in seconds.
type Stats = figures.Stats

func (r *Result) print(w *bytes.Buffer) {
	dl := r.Deadline + " (the default)"
	if !r.DeadlineDefault {
		dl = r.Deadline + " (override; the default is " + r.DefaultDeadline + ")"
	}
	fmt.Fprintf(w, "fleet: %d Redfish BMCs every %s (%.0f polls/s, %.0f series per BMC, about %.0f samples/s), bmcsim latency %s ms (median,p99)\n",
		r.BMCs, r.Interval, r.PollsPerSecond, r.SeriesPerBMC, r.SamplesPerSec, r.BMCLatency)
	fmt.Fprintf(w, "gateway: default queue configuration, batch_send_deadline %s; receiver %s\n", dl, r.Receiver)
	fmt.Fprintf(w, "watched: %d BMCs, queried every %s (query p50 %.0f ms); window %s: %d polls, %d seen with a later poll of their BMC, %d never seen\n",
		r.Watched, r.WatchEvery, 1000*r.QueryP50, r.Measure, r.Polls, r.WithLater, r.Unseen)
	fmt.Fprintln(w, "| delay | polls | p50 | p99 | max |")
	fmt.Fprintln(w, "|---|---|---|---|---|")
	row := func(name string, s Stats) {
		fmt.Fprintf(w, "| %s | %d | %.3f s | %.3f s | %.3f s |\n", name, s.Count, s.P50, s.P99, s.Max)
	}
	row("poll start → queryable", r.FromStart)
	row("poll end → queryable", r.FromEnd)
	row("poll duration (bmcsim)", r.PollDuration)
}

func run(ctx context.Context, t testing.TB, o options) (*Result, error) {
	logf := func(format string, a ...any) {
		if !o.Quiet {
			fmt.Fprintf(os.Stderr, format+"\n", a...)
		}
	}
	dir := t.TempDir()
	prom := testbed.StartPrometheus(t)

	srv, err := embedded.Start(bus.EmbeddedConfig{Listen: "127.0.0.1:0", StoreDir: filepath.Join(dir, "nats")}, true)
	if err != nil {
		return nil, err
	}
	defer srv.Shutdown()

	fl, invFile, credFile, err := startFleet(o, dir)
	if err != nil {
		return nil, err
	}
	defer fl.Close() // the run is over; closing the fleet only releases its sockets
	logf("fleet: %d Redfish BMCs from %s, every %s", o.BMCs, o.FirstAddress, o.Interval)

	// The gateway first, so its durable consumer exists before the first
	// snapshot: both create the stream if it is missing.
	rw := fmt.Sprintf("remote_write:\n  - name: prometheus\n    url: %s\n", prom.WriteURL())
	if o.Deadline > 0 {
		rw += fmt.Sprintf("    queue_config:\n      batch_send_deadline: %s\n", pmodel.Duration(o.Deadline))
	}
	gcfg, err := gateway.ParseConfig(fmt.Appendf(nil, "nats:\n  url: %s\ninventory:\n  files: [%s]\n%s", srv.ClientURL(), invFile, rw))
	if err != nil {
		return nil, err
	}
	gw, err := gateway.New(gcfg, gateway.Options{Version: "latency", ShutdownTimeout: 10 * time.Second})
	if err != nil {
		return nil, err
	}
	stopGW, err := runUntil(ctx, "gateway", func(ctx context.Context) error { return gw.Run(ctx) })
	if err != nil {
		return nil, err
	}
	defer stopGW()
	for !gw.Ready() {
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("gateway not ready: %w", ctx.Err())
		case <-time.After(50 * time.Millisecond):
		}
	}

	pcfg, err := poller.ParseConfig(fmt.Appendf(nil, "poller_id: latency\nnats:\n  url: %s\ninventory:\n  files: [%s]\n  credentials_file: %s\n",
		srv.ClientURL(), invFile, credFile))
	if err != nil {
		return nil, err
	}
	logger := slog.New(slog.DiscardHandler)
	pl, err := poller.New(pcfg, poller.Options{Logger: logger, NewSource: poller.DefaultSources(pcfg, logger), ShutdownTimeout: 5 * time.Second})
	if err != nil {
		return nil, err
	}
	stopPL, err := runUntil(ctx, "poller", func(ctx context.Context) error { return pl.Run(ctx) })
	if err != nil {
		return nil, err
	}
	defer stopPL()

	ids := watched(fl, o.Watch)
	w := newWatcher(prom, ids, o.WatchEvery)
	wctx, stopWatch := context.WithCancel(ctx)
	defer stopWatch()
	watchErr := make(chan error, 1)
	go func() { watchErr <- w.run(wctx) }()

	logf("warming up for %s", o.Warmup)
	if err := sleep(ctx, o.Warmup); err != nil {
		return nil, err
	}
	from := time.Now()
	logf("measuring polls that start within %s, watching %d BMCs every %s", o.Measure, len(ids), o.WatchEvery)
	if err := sleep(ctx, o.Measure); err != nil {
		return nil, err
	}
	to := time.Now()
	// Every watched BMC has polled after the window once its newest sample
	// is past it; its series is in order, so its polls in the window are in.
	drainEnd := to.Add(o.Drain)
	for !w.allPast(to) && time.Now().Before(drainEnd) {
		if err := sleep(ctx, 200*time.Millisecond); err != nil {
			return nil, err
		}
	}
	stopWatch()
	if err := <-watchErr; err != nil && !errors.Is(err, context.Canceled) {
		return nil, err
	}
	if w.queries == 0 {
		return nil, errors.New("the watcher made no query")
	}

	r := &Result{figures.Latency{
		BMCs: o.BMCs, Interval: o.Interval.String(), PollsPerSecond: float64(o.BMCs) / o.Interval.Seconds(),
		BMCLatency: o.Latency, Deadline: o.deadline().String(), DeadlineDefault: o.Deadline == 0,
		DefaultDeadline: time.Duration(remotewrite.DefaultQueueConfig.BatchSendDeadline).String(),
		Receiver:        "prometheus " + promVersion(ctx, prom), Watched: len(ids), WatchEvery: o.WatchEvery.String(),
		QueryP50: statsOf(w.queryTimes).P50, Measure: to.Sub(from).Round(time.Second).String(),
	}}
	if err := r.account(ctx, prom, w, from, to); err != nil {
		return nil, err
	}
	return r, nil
}

// account lists every stored poll of the watched BMCs that started in
// [from, to) and matches it with the watcher's sightings.
func (r *Result) account(ctx context.Context, prom *testbed.Receiver, w *watcher, from, to time.Time) error {
	now := time.Now()
	stored, err := prom.RawSamples(ctx, "bmc_poll_duration_seconds"+w.selector, now.Sub(from)+time.Second, now)
	if err != nil {
		return err
	}
	var fromStart, fromEnd, dur []float64
	for _, s := range stored {
		sights := w.sightings(s.Labels["bmc"])
		for _, p := range s.Samples {
			if p.T < from.UnixMilli() || p.T >= to.UnixMilli() {
				continue
			}
			r.Polls++
			// The first sighting of this poll or a later one: the series
			// is stored in order, so a poll not yet queryable at one query
			// became queryable by the query that first showed it or a
			// later poll of the same BMC.
			i, exact := slices.BinarySearchFunc(sights, p.T, func(s sighting, t int64) int { return cmp.Compare(s.poll, t) })
			if i == len(sights) {
				r.Unseen++
				continue
			}
			if !exact {
				r.WithLater++
			}
			at := sights[i].at
			end := p.T + int64(math.Round(p.V*1000))
			fromStart = append(fromStart, float64(at-p.T)/1000)
			fromEnd = append(fromEnd, float64(at-end)/1000)
			dur = append(dur, p.V)
		}
	}
	r.FromStart, r.FromEnd, r.PollDuration = statsOf(fromStart), statsOf(fromEnd), statsOf(dur)
	// Series per BMC, for the fleet's sample rate.
	res, err := prom.Query(ctx, `count({__name__=~"bmc_.+",`+w.matcher+`}) / count(bmc_up{`+w.matcher+`})`, time.Time{})
	if err == nil && len(res) == 1 && len(res[0].Samples) == 1 {
		r.SeriesPerBMC = res[0].Samples[0].V
		r.SamplesPerSec = r.SeriesPerBMC * r.PollsPerSecond
	}
	return nil
}

// startFleet starts the simulated fleet in this process and writes its
// inventory (every BMC at o.Interval) and credentials.
func startFleet(o options, dir string) (*fleet.Fleet, string, string, error) {
	ps, err := bmodel.Builtin()
	if err != nil {
		return nil, "", "", err
	}
	cfg := fleet.DefaultConfig
	cfg.Count, cfg.Protocols = o.BMCs, "redfish"
	if cfg.FirstAddress, err = netip.ParseAddr(o.FirstAddress); err != nil {
		return nil, "", "", fmt.Errorf("--first-address: %w", err)
	}
	if cfg.RedfishPort, err = freePort("tcp"); err != nil {
		return nil, "", "", err
	}
	if cfg.IPMIPort, err = freePort("udp"); err != nil {
		return nil, "", "", err
	}
	fl, err := fleet.New(cfg, ps)
	if err != nil {
		return nil, "", "", err
	}
	// Sensor latency is the per-sensor read time of some personalities; the
	// fault's latency is what every request costs, as pollerload measures.
	if err := fl.Start(fleet.StartOptions{IgnoreSensorLatency: true}); err != nil {
		return nil, "", "", err
	}
	fail := func(err error) (*fleet.Fleet, string, string, error) {
		_ = fl.Close() // the setup error is the one to report
		return nil, "", "", err
	}
	if o.Latency != "" {
		med, p99, ok := strings.Cut(o.Latency, ",")
		if !ok {
			return fail(fmt.Errorf("--latency %q: want median,p99", o.Latency))
		}
		req, err := fleet.ParseFaultSpec("fraction=1,latency_median_ms=" + med + ",latency_p99_ms=" + p99)
		if err != nil {
			return fail(err)
		}
		if _, err := fl.Apply(req); err != nil {
			return fail(err)
		}
	}
	caFile := filepath.Join(dir, "ca.pem")
	if err := fl.CA().WritePEM(caFile); err != nil {
		return fail(err)
	}
	entries := fl.Inventory(caFile)
	for i := range entries {
		entries[i].Interval = pmodel.Duration(o.Interval)
	}
	b, err := inventory.Marshal(entries)
	if err != nil {
		return fail(err)
	}
	invFile, credFile := filepath.Join(dir, "inventory.yml"), filepath.Join(dir, "credentials.yml")
	if err := os.WriteFile(invFile, b, 0o600); err != nil {
		return fail(err)
	}
	if err := fl.WriteCredentials(credFile); err != nil {
		return fail(err)
	}
	return fl, invFile, credFile, nil
}

// watched picks n BMC ids spread evenly over the fleet (all when n is 0 or
// more than the fleet), so every personality and rack is represented.
func watched(fl *fleet.Fleet, n int) []string {
	m := len(fl.Members)
	if n <= 0 || n > m {
		n = m
	}
	ids := make([]string, n)
	for i := range ids {
		ids[i] = fl.Members[i*m/n].BMC.ID
	}
	return ids
}

// watcher records when each poll of the watched BMCs first became
// queryable.
type watcher struct {
	prom     *testbed.Receiver
	every    time.Duration
	matcher  string // bmc=~"…"
	selector string // {bmc=~"…"}
	ids      int
	// Only run writes these until it returns.
	last       map[string]int64           // newest sample time seen, per BMC
	seen       map[string]map[int64]int64 // BMC → poll start → evaluation time first seen (ms)
	queries    int
	queryTimes []float64
	past       chan int64 // the smallest newest-sample time over all BMCs, after each query
	minLast    int64
}

func newWatcher(prom *testbed.Receiver, ids []string, every time.Duration) *watcher {
	q := make([]string, len(ids))
	for i, id := range ids {
		q[i] = regexp.QuoteMeta(id)
	}
	m := fmt.Sprintf(`bmc=~%q`, strings.Join(q, "|"))
	return &watcher{prom: prom, every: every, matcher: m, selector: "{" + m + "}", ids: len(ids),
		last: map[string]int64{}, seen: map[string]map[int64]int64{}, past: make(chan int64, 1)}
}

// run queries until ctx ends. One query answers one number per BMC (the
// newest sample time; the evaluation time comes with it), so its cost is
// bounded by the watched BMCs however long the run.
func (w *watcher) run(ctx context.Context) error {
	q := "max by (bmc) (timestamp(bmc_poll_duration_seconds" + w.selector + "))"
	tick := time.NewTicker(w.every)
	defer tick.Stop()
	failures := 0
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-tick.C:
		}
		t0 := time.Now()
		res, err := w.prom.Query(ctx, q, time.Time{})
		if err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			// A few failed queries only lower the resolution; many mean
			// the receiver is gone.
			if failures++; failures > 50 {
				return err
			}
			continue
		}
		w.queries++
		w.queryTimes = append(w.queryTimes, time.Since(t0).Seconds())
		for _, s := range res {
			if len(s.Samples) != 1 {
				continue
			}
			bmc, p := s.Labels["bmc"], s.Samples[0]
			ts := int64(math.Round(p.V * 1000))
			if ts <= w.last[bmc] {
				continue
			}
			w.last[bmc] = ts
			m := w.seen[bmc]
			if m == nil {
				m = map[int64]int64{}
				w.seen[bmc] = m
			}
			m[ts] = p.T // the evaluation time: queryable then, not at the previous one
		}
		minLast := int64(0)
		if len(w.last) == w.ids {
			minLast = math.MaxInt64
			for _, v := range w.last {
				minLast = min(minLast, v)
			}
		}
		select {
		case <-w.past:
		default:
		}
		w.past <- minLast
	}
}

// sighting is one poll the watcher saw queryable as its BMC's newest.
type sighting struct {
	poll, at int64 // poll start, evaluation time (Unix ms)
}

// sightings returns a BMC's sightings in poll order; call after run.
func (w *watcher) sightings(bmc string) []sighting {
	var out []sighting
	for poll, at := range w.seen[bmc] {
		out = append(out, sighting{poll, at})
	}
	slices.SortFunc(out, func(a, b sighting) int { return cmp.Compare(a.poll, b.poll) })
	return out
}

// allPast reports whether, at the latest query, every watched BMC's
// newest queryable poll started at or after t.
func (w *watcher) allPast(t time.Time) bool {
	select {
	case v := <-w.past:
		w.minLast = v
	default:
	}
	return w.minLast >= t.UnixMilli()
}

// runUntil runs f in a goroutine and returns a stop function that cancels
// it and waits for it (bounded).
func runUntil(ctx context.Context, name string, f func(context.Context) error) (func(), error) {
	ctx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- f(ctx) }()
	// A start-up error (NATS unreachable, bad configuration) comes at once.
	select {
	case err := <-done:
		cancel()
		return nil, fmt.Errorf("%s stopped: %v", name, err)
	case <-time.After(200 * time.Millisecond):
	}
	return func() {
		cancel()
		select {
		case <-done:
		case <-time.After(30 * time.Second):
			fmt.Fprintf(os.Stderr, "latency: %s did not stop within 30s\n", name)
		}
	}, nil
}

func sleep(ctx context.Context, d time.Duration) error {
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-time.After(d):
		return nil
	}
}

func freePort(network string) (int, error) {
	if network == "udp" {
		pc, err := net.ListenPacket("udp4", "127.0.0.1:0")
		if err != nil {
			return 0, err
		}
		defer pc.Close() // the port was only reserved to be free; nothing was sent on it
		return pc.LocalAddr().(*net.UDPAddr).Port, nil
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer ln.Close() // the port was only reserved to be free; nothing was sent on it
	return ln.Addr().(*net.TCPAddr).Port, nil
}

// promVersion asks the receiver its version, for the record.
func promVersion(ctx context.Context, prom *testbed.Receiver) string {
	var out struct {
		Data struct {
			Version string `json:"version"`
		} `json:"data"`
	}
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, prom.URL()+"/api/v1/status/buildinfo", nil)
	if err != nil {
		return "(version unknown)"
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return "(version unknown)"
	}
	defer resp.Body.Close() // read to its end or abandoned; only the version is wanted
	if json.NewDecoder(io.LimitReader(resp.Body, 1<<20)).Decode(&out) != nil || out.Data.Version == "" {
		return "(version unknown)"
	}
	return out.Data.Version
}
