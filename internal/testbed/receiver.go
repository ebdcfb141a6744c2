package testbed

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

const (
	// DefaultStartTimeout bounds how long Start waits for a receiver to
	// answer its readiness endpoint. Both receivers are ready in a fraction
	// of a second on an idle machine; the margin covers a loaded 2-core CI
	// runner and a Prometheus replaying a WAL after Kill.
	DefaultStartTimeout = 20 * time.Second

	// DefaultStopTimeout is how long Stop waits after SIGTERM before it
	// kills the receiver. Both shut down in well under a second with test
	// data; a receiver still running after this is hung.
	DefaultStopTimeout = 5 * time.Second

	// maxStartAttempts bounds the retries on a new port when the chosen
	// port was taken between FreePort and the receiver's bind.
	maxStartAttempts = 5

	// maxLogBytes is how much of a receiver's output is kept for the test
	// log: enough for every line of a test's run, bounded for a runaway one.
	maxLogBytes = 1 << 20

	// probeInterval is the pause between readiness probes.
	probeInterval = 25 * time.Millisecond
)

// Option configures a receiver started by StartPrometheus,
// StartVictoriaMetrics, NewPrometheus or NewVictoriaMetrics.
type Option func(*settings)

type settings struct {
	port         int
	args         []string
	promConfig   string
	startTimeout time.Duration
	stopTimeout  time.Duration
}

// WithPort makes the receiver listen on 127.0.0.1:port instead of a port
// of its own choosing. A test uses it to hand a URL to the code under test
// first and start the receiver later ("the sink is down, then comes up").
// With a fixed port Start does not retry elsewhere when the port is taken.
func WithPort(port int) Option {
	return func(s *settings) { s.port = port }
}

// WithArgs appends command-line arguments to the receiver's own, for
// example "--query.lookback-delta=1m" for Prometheus or
// "-dedup.minScrapeInterval=1ms" for VictoriaMetrics. When a flag is given
// twice both binaries take the last value.
func WithArgs(args ...string) Option {
	return func(s *settings) { s.args = append(s.args, args...) }
}

// WithPrometheusConfig replaces the Prometheus configuration file, which
// by default has no scrape jobs so the only series are those the test
// writes. Use it for settings that only the file holds, such as
// storage.tsdb.out_of_order_time_window. It applies to Prometheus only.
func WithPrometheusConfig(yaml string) Option {
	return func(s *settings) { s.promConfig = yaml }
}

// WithStartTimeout changes DefaultStartTimeout for this receiver.
func WithStartTimeout(d time.Duration) Option {
	return func(s *settings) { s.startTimeout = d }
}

// WithStopTimeout changes DefaultStopTimeout for this receiver.
func WithStopTimeout(d time.Duration) Option {
	return func(s *settings) { s.stopTimeout = d }
}

// kind holds what differs between receiver programs.
type kind struct {
	name      string // program and Debian package name
	readyPath string // answers 200 once the receiver accepts writes
	flushPath string // makes ingested samples searchable at once; "" if they already are
	args      func(r *Receiver, addr string) []string
	// owns reports whether the server answering on base is this receiver's
	// own process, by the data path it reports: after a port race another
	// process may answer the readiness probe.
	owns func(ctx context.Context, r *Receiver, base string) bool
}

// defaultPrometheusConfig has no scrape jobs: Prometheus does not even
// scrape itself, so the TSDB holds only what tests write.
const defaultPrometheusConfig = `# Written by internal/testbed: no scrape jobs, so the only series are the
# ones a test remote-writes.
global:
  evaluation_interval: 1m
`

func prometheusKind() kind {
	return kind{
		name:      "prometheus",
		readyPath: "/-/ready",
		args: func(r *Receiver, addr string) []string {
			return []string{
				"--config.file=" + r.configFile,
				"--storage.tsdb.path=" + r.dataDir,
				"--web.listen-address=" + addr,
				"--web.enable-remote-write-receiver",
			}
		},
		owns: func(ctx context.Context, r *Receiver, base string) bool {
			var resp struct {
				Data map[string]string `json:"data"`
			}
			if err := r.getJSON(ctx, base+"/api/v1/status/flags", &resp); err != nil {
				return false
			}
			return resp.Data["storage.tsdb.path"] == r.dataDir
		},
	}
}

func victoriaMetricsKind() kind {
	return kind{
		name:      "victoria-metrics",
		readyPath: "/health",
		flushPath: "/internal/force_flush",
		args: func(r *Receiver, addr string) []string {
			return []string{
				"-httpListenAddr=" + addr,
				"-storageDataPath=" + r.dataDir,
				// Queries hide the newest 30 s by default.
				"-search.latencyOffset=0s",
				// Tests backfill and re-query the same ranges; a cached
				// answer would hide what they just wrote.
				"-search.disableCache",
			}
		},
		owns: func(ctx context.Context, r *Receiver, base string) bool {
			// /flags lists the flags set on the command line, one per line:
			// -storageDataPath="/tmp/..."
			body, err := r.getBody(ctx, base+"/flags")
			if err != nil {
				return false
			}
			sc := bufio.NewScanner(strings.NewReader(body))
			for sc.Scan() {
				v, ok := strings.CutPrefix(sc.Text(), "-storageDataPath=")
				if !ok {
					continue
				}
				path, err := strconv.Unquote(v)
				return err == nil && path == r.dataDir
			}
			return false
		},
	}
}

// Receiver is one remote-write receiver program run as a subprocess on
// 127.0.0.1. Its data directory lives as long as the test, so it keeps its
// data across Stop and Start. All methods are safe for concurrent use.
type Receiver struct {
	kind       kind
	binary     string
	dir        string // working directory; holds the config file
	dataDir    string
	configFile string // Prometheus only
	set        settings
	client     *http.Client
	log        *logBuffer

	mu     sync.Mutex // guards port and pinned
	port   int
	pinned bool // the port was given or handed out: never move it

	life sync.Mutex // serialises Start, Stop and Kill
	proc *process
}

// process is one run of the receiver's binary.
type process struct {
	cmd  *exec.Cmd
	done chan struct{} // closed when cmd.Wait has returned
	err  error         // cmd.Wait's result; read only after done is closed
}

// portInUseError reports that another process holds the receiver's port.
type portInUseError struct{ addr string }

func (e *portInUseError) Error() string {
	return e.addr + ": address already in use by another process"
}

// StartPrometheus starts /usr/bin/prometheus (or the one on PATH) with the
// remote-write receiver enabled, a configuration without scrape jobs and a
// TSDB in a temporary directory, and waits until /-/ready answers. It skips
// or fails the test as RequireBinary does when Prometheus is not installed,
// and stops it in t.Cleanup.
func StartPrometheus(t testing.TB, opts ...Option) *Receiver {
	t.Helper()
	r := newReceiver(t, prometheusKind(), opts)
	r.startOrFatal(t)
	return r
}

// NewPrometheus prepares a Prometheus receiver like StartPrometheus but
// does not start it: its URLs are fixed and valid, and nothing listens on
// them until Start.
func NewPrometheus(t testing.TB, opts ...Option) *Receiver {
	t.Helper()
	r := newReceiver(t, prometheusKind(), opts)
	r.pinned = true
	return r
}

// StartVictoriaMetrics starts /usr/bin/victoria-metrics with storage in a
// temporary directory, -search.latencyOffset=0s (so queries see the newest
// samples) and -search.disableCache, and waits until /health answers. It
// skips or fails the test as RequireBinary does when VictoriaMetrics is not
// installed, and stops it in t.Cleanup. Call Flush before reading samples
// just written.
func StartVictoriaMetrics(t testing.TB, opts ...Option) *Receiver {
	t.Helper()
	r := newReceiver(t, victoriaMetricsKind(), opts)
	r.startOrFatal(t)
	return r
}

// NewVictoriaMetrics prepares a VictoriaMetrics receiver like
// StartVictoriaMetrics but does not start it: its URLs are fixed and
// valid, and nothing listens on them until Start.
func NewVictoriaMetrics(t testing.TB, opts ...Option) *Receiver {
	t.Helper()
	r := newReceiver(t, victoriaMetricsKind(), opts)
	r.pinned = true
	return r
}

func newReceiver(t testing.TB, k kind, opts []Option) *Receiver {
	t.Helper()
	bin := RequireBinary(t, k.name)
	s := settings{startTimeout: DefaultStartTimeout, stopTimeout: DefaultStopTimeout}
	for _, o := range opts {
		o(&s)
	}
	if s.promConfig != "" && k.name != "prometheus" {
		t.Fatalf("testbed: WithPrometheusConfig does not apply to %s", k.name)
	}
	port := s.port
	if port == 0 {
		port = FreePort(t)
	}
	dir := t.TempDir()
	r := &Receiver{
		kind:    k,
		binary:  bin,
		dir:     dir,
		dataDir: filepath.Join(dir, "data"),
		set:     s,
		// A transport of its own: no proxy from the environment, and idle
		// connections closed when the receiver stops.
		client: &http.Client{Transport: &http.Transport{
			Proxy:               nil,
			DialContext:         (&net.Dialer{Timeout: 2 * time.Second}).DialContext,
			MaxIdleConnsPerHost: 8,
			IdleConnTimeout:     30 * time.Second,
		}},
		log:    newLogBuffer(maxLogBytes),
		port:   port,
		pinned: s.port != 0,
	}
	if k.name == "prometheus" {
		cfg := s.promConfig
		if cfg == "" {
			cfg = defaultPrometheusConfig
		}
		r.configFile = filepath.Join(dir, "prometheus.yml")
		if err := os.WriteFile(r.configFile, []byte(cfg), 0o644); err != nil {
			t.Fatalf("testbed: write prometheus config: %v", err)
		}
	}
	// Registered after t.TempDir, so it runs before the directory is removed.
	t.Cleanup(func() {
		if err := r.Stop(); err != nil {
			t.Errorf("testbed: %v", err)
		}
		if t.Failed() {
			t.Logf("testbed: output of %s (data in %s):\n%s", k.name, r.dataDir, r.log.String())
		}
		r.client.CloseIdleConnections()
	})
	return r
}

func (r *Receiver) startOrFatal(t testing.TB) {
	t.Helper()
	started := time.Now()
	if err := r.Start(t.Context()); err != nil {
		t.Fatalf("testbed: %v", err)
	}
	t.Logf("testbed: %s ready at %s in %v", r.kind.name, r.URL(), time.Since(started).Round(time.Millisecond))
}

// Name returns the receiver program's name: "prometheus" or
// "victoria-metrics".
func (r *Receiver) Name() string { return r.kind.name }

// Port returns the TCP port the receiver listens on, on 127.0.0.1.
func (r *Receiver) Port() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.port
}

// URL returns the receiver's base URL, such as "http://127.0.0.1:9090".
func (r *Receiver) URL() string {
	return "http://" + r.addr()
}

// WriteURL returns the receiver's remote-write endpoint.
func (r *Receiver) WriteURL() string {
	return r.URL() + "/api/v1/write"
}

// DataDir returns the receiver's storage directory, kept across restarts
// and removed when the test ends.
func (r *Receiver) DataDir() string { return r.dataDir }

// Output returns the receiver's stdout and stderr so far, across all its
// runs, for a test that asserts on what the receiver logged.
func (r *Receiver) Output() string { return r.log.String() }

func (r *Receiver) addr() string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return net.JoinHostPort("127.0.0.1", strconv.Itoa(r.port))
}

// Running reports whether the receiver's process is running.
func (r *Receiver) Running() bool {
	r.life.Lock()
	defer r.life.Unlock()
	return r.proc != nil && !r.proc.exited()
}

// Start starts the receiver on its port with its data directory and waits
// until it is ready, within the start timeout. A receiver started before
// starts again on the same port, so a test can take the sink down with
// Stop or Kill and bring it back. Only the first start of a receiver whose
// port the test did not choose moves to a new port when another process
// took it.
func (r *Receiver) Start(ctx context.Context) error {
	r.life.Lock()
	defer r.life.Unlock()
	if p := r.proc; p != nil {
		if !p.exited() {
			return fmt.Errorf("start %s on %s: already running", r.kind.name, r.addr())
		}
		// a note in the peer's log file for the reader of a failed test; losing it fails nothing
		fmt.Fprintf(r.log, "=== testbed: previous %s had exited on its own: %s\n", r.kind.name, describeExit(p.err))
		r.proc = nil
	}
	ctx, cancel := context.WithTimeout(ctx, r.set.startTimeout)
	defer cancel()
	for attempt := 1; ; attempt++ {
		err := r.startOnce(ctx, attempt)
		if err == nil {
			r.mu.Lock()
			r.pinned = true
			r.mu.Unlock()
			return nil
		}
		var inUse *portInUseError
		if !errors.As(err, &inUse) || r.isPinned() || attempt >= maxStartAttempts {
			return err
		}
		port, perr := freePort()
		if perr != nil {
			return errors.Join(err, perr)
		}
		r.mu.Lock()
		r.port = port
		r.mu.Unlock()
	}
}

func (r *Receiver) isPinned() bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.pinned
}

func (r *Receiver) startOnce(ctx context.Context, attempt int) error {
	addr := r.addr()
	args := append(r.kind.args(r, addr), r.set.args...)
	cmd := exec.Command(r.binary, args...)
	cmd.Dir = r.dir
	// One writer for both streams: exec then copies them through one pipe,
	// keeping their lines in order.
	cmd.Stdout = r.log
	cmd.Stderr = r.log
	cmd.SysProcAttr = sysProcAttr()
	// Bounds Wait if something inherited the pipe and keeps it open.
	cmd.WaitDelay = time.Second
	// a note in the peer's log file, as above
	fmt.Fprintf(r.log, "=== testbed: start %s (attempt %d): %s %s\n", r.kind.name, attempt, r.binary, strings.Join(args, " "))
	mark := r.log.offset()
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start %s on %s: %w", r.kind.name, addr, err)
	}
	p := &process{cmd: cmd, done: make(chan struct{})}
	go func() {
		p.err = cmd.Wait()
		close(p.done)
	}()
	if err := r.waitReady(ctx, p, addr, mark); err != nil {
		if kerr := p.kill(); kerr != nil {
			err = errors.Join(err, kerr)
		}
		return err
	}
	r.proc = p
	return nil
}

// waitReady probes the readiness endpoint until the receiver's own process
// answers it, the process exits, or ctx ends.
func (r *Receiver) waitReady(ctx context.Context, p *process, addr string, mark int64) error {
	base := "http://" + addr
	// Probes end when the process does: a port holder that accepts
	// connections but never answers must not delay noticing the exit.
	probeCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	go func() {
		select {
		case <-p.done:
			cancel()
		case <-probeCtx.Done():
		}
	}()
	tick := time.NewTicker(probeInterval)
	defer tick.Stop()
	var lastErr error
	for {
		lastErr = r.probe(probeCtx, base+r.kind.readyPath)
		if lastErr == nil {
			if r.kind.owns(probeCtx, r, base) {
				return nil
			}
			// A server answered that is not ours: it holds the port, and
			// our process is failing to bind it.
			return &portInUseError{addr: addr}
		}
		select {
		case <-p.done:
			// Wait has returned, so all output is in the log.
			if strings.Contains(r.log.since(mark), "address already in use") {
				return &portInUseError{addr: addr}
			}
			return fmt.Errorf("start %s on %s: exited before it was ready: %s", r.kind.name, addr, describeExit(p.err))
		case <-ctx.Done():
			return fmt.Errorf("start %s on %s: not ready (last probe: %v): %w", r.kind.name, addr, lastErr, context.Cause(ctx))
		case <-tick.C:
		}
	}
}

// probe returns nil when url answers 200.
func (r *Receiver) probe(ctx context.Context, url string) error {
	ctx, cancel := context.WithTimeout(ctx, time.Second)
	defer cancel()
	_, err := r.getBody(ctx, url)
	return err
}

// Stop stops the receiver gracefully: SIGTERM, then SIGKILL if it is still
// running after the stop timeout. Stopping a stopped receiver does nothing.
// It returns an error when the receiver had exited on its own (crashed),
// exited with a failure, or had to be killed. Its data stays for Start.
func (r *Receiver) Stop() error {
	r.life.Lock()
	defer r.life.Unlock()
	p := r.proc
	if p == nil {
		return nil
	}
	r.proc = nil
	defer r.client.CloseIdleConnections()
	if p.exited() {
		return fmt.Errorf("stop %s on %s: it had exited on its own: %s", r.kind.name, r.addr(), describeExit(p.err))
	}
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil && !errors.Is(err, os.ErrProcessDone) {
		return errors.Join(fmt.Errorf("stop %s on %s: send SIGTERM: %w", r.kind.name, r.addr(), err), p.kill())
	}
	timer := time.NewTimer(r.set.stopTimeout)
	defer timer.Stop()
	select {
	case <-p.done:
		if p.err != nil && !terminatedBy(p.err, syscall.SIGTERM) {
			return fmt.Errorf("stop %s on %s: %s", r.kind.name, r.addr(), describeExit(p.err))
		}
		return nil
	case <-timer.C:
		return errors.Join(
			fmt.Errorf("stop %s on %s: still running %v after SIGTERM; killed", r.kind.name, r.addr(), r.set.stopTimeout),
			p.kill())
	}
}

// Kill kills the receiver with SIGKILL, as a crash or an OOM kill would:
// no graceful shutdown. Prometheus keeps every sample it accepted (its WAL
// is replayed on the next Start); VictoriaMetrics 1.79 loses the samples
// of the last ~5 s, which it keeps in memory only, even after Flush.
// Killing a stopped receiver does nothing.
func (r *Receiver) Kill() error {
	r.life.Lock()
	defer r.life.Unlock()
	p := r.proc
	if p == nil {
		return nil
	}
	r.proc = nil
	defer r.client.CloseIdleConnections()
	if err := p.kill(); err != nil {
		return fmt.Errorf("kill %s on %s: %w", r.kind.name, r.addr(), err)
	}
	return nil
}

// Restart stops the receiver if it is running and starts it again on the
// same port with the same data.
func (r *Receiver) Restart(ctx context.Context) error {
	if err := r.Stop(); err != nil {
		return err
	}
	return r.Start(ctx)
}

func (p *process) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// kill sends SIGKILL and waits for the process to be reaped.
func (p *process) kill() error {
	if err := p.cmd.Process.Kill(); err != nil && !errors.Is(err, os.ErrProcessDone) {
		return fmt.Errorf("send SIGKILL to pid %d: %w", p.cmd.Process.Pid, err)
	}
	<-p.done
	return nil
}

// terminatedBy reports whether err is an exit by the signal sig.
func terminatedBy(err error, sig syscall.Signal) bool {
	var ee *exec.ExitError
	if !errors.As(err, &ee) {
		return false
	}
	ws, ok := ee.Sys().(syscall.WaitStatus)
	return ok && ws.Signaled() && ws.Signal() == sig
}

func describeExit(err error) string {
	if err == nil {
		return "exit status 0"
	}
	return err.Error()
}

// getBody GETs url and returns its body when the status is 200.
func (r *Receiver) getBody(ctx context.Context, url string) (string, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return "", fmt.Errorf("build request for %s: %w", url, err)
	}
	resp, err := r.client.Do(req)
	if err != nil {
		return "", fmt.Errorf("get %s: %w", url, err)
	}
	body, err := readAndClose(resp.Body, maxBodyBytes)
	if err != nil {
		return "", fmt.Errorf("read %s: %w", url, err)
	}
	if resp.StatusCode != http.StatusOK {
		return "", fmt.Errorf("get %s: HTTP %d: %s", url, resp.StatusCode, snippet(body))
	}
	return string(body), nil
}

// getJSON GETs url and decodes its 200 answer into v.
func (r *Receiver) getJSON(ctx context.Context, url string, v any) error {
	body, err := r.getBody(ctx, url)
	if err != nil {
		return err
	}
	if err := json.Unmarshal([]byte(body), v); err != nil {
		return fmt.Errorf("decode %s: %w", url, err)
	}
	return nil
}

// maxBodyBytes bounds what is read of one HTTP answer: far above any test's
// query result, far below what would hurt.
const maxBodyBytes = 64 << 20

// readAndClose reads at most limit bytes of rc, drains the rest so the
// connection can be reused, and closes it.
func readAndClose(rc io.ReadCloser, limit int64) ([]byte, error) {
	body, err := io.ReadAll(io.LimitReader(rc, limit))
	_, derr := io.Copy(io.Discard, rc)
	cerr := rc.Close()
	if err != nil {
		return body, err
	}
	if derr != nil {
		return body, fmt.Errorf("drain body: %w", derr)
	}
	if cerr != nil {
		return body, fmt.Errorf("close body: %w", cerr)
	}
	return body, nil
}

// snippet shortens a body for an error message.
func snippet(body []byte) string {
	const n = 512
	s := strings.TrimSpace(string(body))
	if len(s) > n {
		return s[:n] + "…"
	}
	return s
}
