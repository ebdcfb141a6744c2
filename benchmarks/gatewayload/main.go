// Command gatewayload measures the gateway end to end against its encode
// ceiling, in one run.
//
// A second process (this executable again) starts an embedded JetStream
// server, pre-loads stream BMC_RAW with polls × bmcs snapshots of 40-120
// readings (gwfleet: bmcsim's personalities, grown to size) and serves a
// loopback remote-write receiver that decodes every request to count its
// samples. This process runs the real gateway (gateway.New and Run, the
// default configuration but for the NATS URL, the inventory file and one
// remote_write sink pointed at the receiver) until the consumer has acked
// every snapshot, then runs the ceiling (gogo marshal + snappy of the same
// series, one goroutine) for a fixed time. Keeping NATS and the receiver
// out of this process makes its CPU time, allocations and RSS the
// gateway's own.
//
// The gateway handles one snapshot per BMC at a time, so the load is
// spread over many BMCs. The first poll of every BMC builds its
// normalisation plan (the cold path); the steady-state figures cover the
// later polls only.
//
// With --replicas=N (N ≥ 2) a second run follows on a fresh stream of the
// same load, partitioned (--partitions, 16 by default) before it is
// loaded: N gateway replicas, each its own process (this executable,
// GATEWAYLOAD_ROLE=replica), share it. The harness keeps every partition's
// lease until all of them see one another, then lets go, so they consume
// their own partitions from the start. Each replica's samples, CPU time and
// RSS are its own; their sum, per CPU second, is compared with the
// one-gateway run's.
//
//	go run ./benchmarks/gatewayload --bmcs=10000 --polls=3
//	go run ./benchmarks/gatewayload --bmcs=10000 --polls=3 --replicas=2
package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"runtime/pprof"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/bmcstream/bmcstream/benchmarks/internal/gwfleet"
	"github.com/bmcstream/bmcstream/internal/service"
	"github.com/bmcstream/bmcstream/pkg/bus"
	"github.com/bmcstream/bmcstream/pkg/gateway"
	"github.com/bmcstream/bmcstream/pkg/inventory"
	"github.com/bmcstream/bmcstream/pkg/series"
	"github.com/bmcstream/bmcstream/pkg/sinks/remotewrite"
	v1 "github.com/bmcstream/bmcstream/proto/bmcstream/v1"
)

// sinkName is the harness's one remote_write sink; consumerName is its
// durable consumer (bmcstream-gateway-bench-p<k> for partition k).
const (
	sinkName     = "bench"
	consumerName = "bmcstream-gateway-" + sinkName
)

// roleMain runs the process's role when roleEnv names one, and reports
// whether it did.
func roleMain() (bool, error) {
	switch role := os.Getenv(roleEnv); role {
	case "":
		return false, nil
	case "infra":
		return true, infraMain(os.Args[1:])
	case "replica":
		return true, replicaMain(os.Args[1:])
	default:
		return true, fmt.Errorf("%s=%q is not infra or replica", roleEnv, role)
	}
}

func main() {
	if ok, err := roleMain(); ok {
		if err != nil {
			fmt.Fprintf(os.Stderr, "gatewayload %s: %v\n", os.Getenv(roleEnv), err)
			os.Exit(1)
		}
		return
	}
	var o options
	flag.IntVar(&o.BMCs, "bmcs", 10000, "fleet size")
	flag.IntVar(&o.Polls, "polls", 3, "polls per BMC in the stream; the first warms the normaliser's plans")
	flag.DurationVar(&o.Timeout, "timeout", 5*time.Minute, "bound on the whole run")
	flag.DurationVar(&o.CeilingTime, "ceiling-time", 3*time.Second, "how long the ceiling encodes")
	flag.StringVar(&o.Profile, "profile", "", "write a CPU profile of the gateway's steady state to this file, and its heap at the end to this file plus .heap")
	flag.IntVar(&o.Replicas, "replicas", 1, "with 2 or more, also run that many gateway replicas, each its own process, on a fresh partitioned stream of the same load, after the one-gateway run")
	flag.IntVar(&o.Partitions, "partitions", 0, "partitions of the replicas' stream (with --replicas of 2 or more; default 16)")
	flag.IntVar(&o.CeilingBMCs, "ceiling-bmcs", 10000, "the ceilings encode one poll of at most this many BMCs (their series are held in memory at once)")
	flag.IntVar(&o.KeepBodies, "snappy-bodies", 256, "uncompressed request bodies the receiver keeps (a uniform sample) for the snappy-only ceiling")
	flag.Float64Var(&o.MinAvailableGB, "min-available", 2, "stop the run when the machine's MemAvailable falls below this many GB")
	record := flag.String("record", "", "also append the results, with commit, machine and date, to this markdown file")
	jsonFile := flag.String("json", "", "also write the headline figures as JSON to this file")
	flag.Parse()
	if o.Replicas < 1 {
		fmt.Fprintln(os.Stderr, "gatewayload: --replicas must be at least 1")
		os.Exit(2)
	}
	if o.Replicas > 1 && o.Partitions == 0 {
		o.Partitions = 16
	}
	if o.Replicas > 1 && (o.Partitions < o.Replicas || o.Partitions > bus.MaxPartitions) {
		fmt.Fprintf(os.Stderr, "gatewayload: --partitions must be from --replicas (%d) to %d\n", o.Replicas, bus.MaxPartitions)
		os.Exit(2)
	}
	r, err := run(o)
	if err == nil && o.Replicas > 1 {
		debug.FreeOSMemory() // the one-gateway run's heap, before the replicas need memory
		r.replicas, err = runReplicas(o)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "gatewayload:", err)
		os.Exit(1)
	}
	var out bytes.Buffer
	fmt.Fprint(&out, header(o))
	r.print(&out)
	if r.replicas != nil {
		fmt.Fprintln(&out)
		r.replicas.print(&out, r)
	}
	if _, err := os.Stdout.Write(out.Bytes()); err != nil {
		fmt.Fprintln(os.Stderr, "gatewayload: write the report:", err)
		os.Exit(1)
	}
	if *jsonFile != "" {
		if err := r.writeJSON(*jsonFile); err != nil {
			fmt.Fprintln(os.Stderr, "gatewayload: json:", err)
			os.Exit(1)
		}
	}
	if *record != "" {
		f, err := os.OpenFile(*record, os.O_APPEND|os.O_WRONLY, 0)
		if err == nil {
			_, err = f.Write(append([]byte("\n"), out.Bytes()...))
			if cerr := f.Close(); err == nil {
				err = cerr
			}
		}
		if err != nil {
			fmt.Fprintln(os.Stderr, "gatewayload: record:", err)
			os.Exit(1)
		}
	}
}

// header names the run: commit, machine, date and command.
func header(o options) string {
	commit := "unknown"
	if b, err := exec.Command("git", "rev-parse", "--short", "HEAD").Output(); err == nil {
		commit = strings.TrimSpace(string(b))
		if b, err := exec.Command("git", "--no-optional-locks", "status", "--porcelain", "--untracked-files=no").Output(); err == nil && len(b) > 0 {
			commit += " (with local changes)"
		}
	}
	model := "unknown CPU"
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for _, l := range strings.Split(string(b), "\n") {
			if k, v, ok := strings.Cut(l, ":"); ok && strings.TrimSpace(k) == "model name" {
				model = strings.TrimSpace(v)
				break
			}
		}
	}
	var sb strings.Builder
	fmt.Fprintf(&sb, "### gatewayload run\n\n")
	fmt.Fprintf(&sb, "- Commit: %s\n", commit)
	fmt.Fprintf(&sb, "- Machine: %d CPUs (%s); %s, %s/%s\n", runtime.NumCPU(), model, runtime.Version(), runtime.GOOS, runtime.GOARCH)
	fmt.Fprintf(&sb, "- Date: %s\n", time.Now().UTC().Format("2006-01-02 15:04 MST"))
	scale := ""
	if o.Replicas > 1 {
		scale = fmt.Sprintf(" --replicas=%d --partitions=%d", o.Replicas, o.Partitions)
	}
	fmt.Fprintf(&sb, "- Command: `go run ./benchmarks/gatewayload --bmcs=%d --polls=%d --ceiling-time=%s --ceiling-bmcs=%d --snappy-bodies=%d%s`\n\n",
		o.BMCs, o.Polls, o.CeilingTime, o.CeilingBMCs, o.KeepBodies, scale)
	return sb.String()
}

type options struct {
	BMCs, Polls int
	Timeout     time.Duration
	CeilingTime time.Duration
	Profile     string
	// Replicas above 1 adds a run of that many replicas, each its own
	// process, on a stream of Partitions partitions.
	Replicas, Partitions int
	// CeilingBMCs caps the BMCs whose poll the ceilings encode;
	// KeepBodies is the receiver's sample of request bodies for the
	// snappy-only ceiling.
	CeilingBMCs, KeepBodies int
	// MinAvailableGB stops a run that would leave the machine less
	// memory than this.
	MinAvailableGB float64
	// selfCmd runs this program again in another role (tests: the test
	// binary); nil means os.Executable.
	selfCmd func(args ...string) *exec.Cmd
}

// point is the gateway process's counters at one instant.
type point struct {
	at       time.Time
	cpu      float64 // user+system seconds
	mallocs  uint64
	received receiverStats
}

// result is one run's figures.
type result struct {
	opts     options
	load     infraReady
	cold     point // before gateway.New (which reads the inventory)
	started  point // gateway.New returned: Run starts
	warm     point // every first poll acked
	end      point // every snapshot acked
	rssKB    int64 // peak RSS of this process while the gateway ran
	infraCPU float64
	ceil     ceilingRun // in the normaliser's order
	// ceilSharded is the same in the queue's shard order: a diagnostic.
	ceilSharded ceilingRun
	// ceilBMCs is the BMCs whose poll the ceilings encode.
	ceilBMCs int
	// bodies is the receiver's sample of the requests the gateway sent;
	// ceilSnappy is snappy.Encode alone over them.
	bodies     []keptBody
	ceilSnappy ceilingRun
	snappySame bool // compressing the bodies again gave the sizes sent
	// replicas is the run of several replicas (--replicas), or nil.
	replicas *replicaRun
}

func run(o options) (*result, error) {
	if o.Polls < 2 {
		return nil, fmt.Errorf("--polls must be at least 2: the first only warms up")
	}
	ctx, cancel := context.WithTimeout(context.Background(), o.Timeout)
	defer cancel()
	dir, err := os.MkdirTemp("", "gatewayload")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir) // a temporary directory; one left behind costs only disk

	fleet, invFile, err := writeInventory(ctx, o.BMCs, dir)
	if err != nil {
		return nil, err
	}

	infra, err := startInfra(ctx, o, dir, 0, false)
	if err != nil {
		return nil, err
	}
	defer infra.stop()
	r := &result{opts: o, load: infra.ready}

	if err := runGateway(ctx, o, r, invFile); err != nil {
		return nil, err
	}
	if r.bodies, err = fetchBodies(ctx, r.load.Bodies); err != nil {
		return nil, fmt.Errorf("request bodies: %w", err)
	}
	infra.stop()
	r.infraCPU = infra.cpu

	fmt.Fprintf(os.Stderr, "running the ceiling for %s\n", o.CeilingTime)
	return r, ceiling(o, fleet, r)
}

// writeInventory writes the inventory of a fleet of n BMCs into dir.
func writeInventory(ctx context.Context, n int, dir string) (*gwfleet.Fleet, string, error) {
	fleet, err := loadFleet(ctx, n)
	if err != nil {
		return nil, "", err
	}
	invFile := filepath.Join(dir, "inventory.yml")
	b, err := inventory.Marshal(fleet.BMCs)
	if err != nil {
		return nil, "", err
	}
	return fleet, invFile, os.WriteFile(invFile, b, 0o600)
}

// command runs this executable (or, in tests, the test binary) again in
// another role.
func (o options) command(role string, args ...string) (*exec.Cmd, error) {
	var c *exec.Cmd
	if o.selfCmd != nil {
		c = o.selfCmd(args...)
	} else {
		exe, err := os.Executable()
		if err != nil {
			return nil, err
		}
		c = exec.Command(exe, args...)
	}
	c.Env = append(os.Environ(), roleEnv+"="+role)
	c.Stderr = os.Stderr
	return c, nil
}

// infraProc is a running infrastructure process.
type infraProc struct {
	cmd     *exec.Cmd
	stdin   io.WriteCloser
	lines   chan string   // its stdout
	exited  chan struct{} // closed when its stdout ends
	ready   infraReady
	stopped bool
	cpu     float64 // its user+system CPU seconds, once stopped
}

// startInfra starts the infrastructure process on a fresh store in dir
// (a partitioned stream when partitions > 0) and waits until it has
// loaded the stream, or, with waitLoad, until it has created the stream
// empty: then load loads it.
func startInfra(ctx context.Context, o options, dir string, partitions int, waitLoad bool) (*infraProc, error) {
	args := []string{"--bmcs", fmt.Sprint(o.BMCs), "--polls", fmt.Sprint(o.Polls), "--dir", dir, "--partitions", fmt.Sprint(partitions),
		"--wait-load=" + strconv.FormatBool(waitLoad)}
	if partitions == 0 {
		args = append(args, "--keep-bodies", fmt.Sprint(o.KeepBodies))
	}
	c, err := o.command("infra", args...)
	if err != nil {
		return nil, err
	}
	stdin, err := c.StdinPipe()
	if err != nil {
		return nil, err
	}
	stdout, err := c.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := c.Start(); err != nil {
		return nil, err
	}
	p := &infraProc{cmd: c, stdin: stdin, lines: make(chan string, 2), exited: make(chan struct{})}
	go func() {
		defer close(p.exited)
		defer close(p.lines)
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			select {
			case p.lines <- sc.Text():
			default:
			}
		}
	}()
	how := "stream"
	if partitions > 0 {
		how = fmt.Sprintf("stream of %d partitions", partitions)
	}
	if waitLoad {
		fmt.Fprintf(os.Stderr, "creating a fresh %s\n", how)
		if err := p.readLine(ctx); err != nil {
			p.stop()
			return nil, err
		}
		return p, nil
	}
	fmt.Fprintf(os.Stderr, "loading %d snapshots (%d BMCs × %d polls) into a fresh %s\n", o.BMCs*o.Polls, o.BMCs, o.Polls, how)
	if err := p.readLine(ctx); err != nil {
		p.stop()
		return nil, err
	}
	p.loaded()
	return p, nil
}

// load tells a process started with waitLoad to load its stream, and
// waits until it has.
func (p *infraProc) load(ctx context.Context) error {
	if _, err := io.WriteString(p.stdin, "load\n"); err != nil {
		return err
	}
	if err := p.readLine(ctx); err != nil {
		return err
	}
	p.loaded()
	return nil
}

func (p *infraProc) loaded() {
	fmt.Fprintf(os.Stderr, "loaded %d snapshots, %.1f MB, in %.1fs\n", p.ready.Snapshots, float64(p.ready.Bytes)/1e6, p.ready.LoadSecs)
}

// readLine reads the process's next infraReady line.
func (p *infraProc) readLine(ctx context.Context) error {
	select {
	case l, ok := <-p.lines:
		if !ok {
			return errors.New("infrastructure process exited")
		}
		if err := json.Unmarshal([]byte(l), &p.ready); err != nil {
			return fmt.Errorf("infrastructure process: %q: %w", l, err)
		}
		return nil
	case <-ctx.Done():
		return fmt.Errorf("infrastructure process: %w", ctx.Err())
	}
}

// stop closes the process's stdin, which ends it (killed 30 s later if it
// has not), and records its CPU time. It is idempotent.
func (p *infraProc) stop() {
	if p.stopped {
		return
	}
	p.stopped = true
	_ = p.stdin.Close() // closing stdin asks the gateway to stop; waitOrKill makes sure it does
	waitOrKill(p.cmd, 30*time.Second)
	if p.cmd.ProcessState != nil {
		if ru, ok := p.cmd.ProcessState.SysUsage().(*syscall.Rusage); ok {
			p.cpu = tv(ru.Utime) + tv(ru.Stime)
		}
	}
}

// runGateway runs the gateway until every snapshot is acked and records
// its counters at the start, after the warm-up poll and at the end.
func runGateway(ctx context.Context, o options, r *result, invFile string) error {
	cfg, err := gateway.ParseConfig(fmt.Appendf(nil, "nats:\n  url: %s\ninventory:\n  files: [%s]\nremote_write:\n  - name: bench\n    url: %s\n",
		r.load.NATS, invFile, r.load.Receiver))
	if err != nil {
		return err
	}
	nc, err := nats.Connect(r.load.NATS)
	if err != nil {
		return err
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		return err
	}
	r.cold, err = sample(ctx, r.load.Stats)
	if err != nil {
		return err
	}
	// The garbage collector's target the gateway program sets (GOGC wins).
	service.DefaultGCPercent(service.GatewayGCPercent)
	gw, err := gateway.New(cfg, gateway.Options{Version: "gatewayload", ShutdownTimeout: 30 * time.Second})
	if err != nil {
		return err
	}
	if r.started, err = sample(ctx, r.load.Stats); err != nil {
		return err
	}
	gctx, stop := context.WithCancel(ctx)
	errc := make(chan error, 1)
	go func() { errc <- gw.Run(gctx) }()
	defer func() {
		stop()
		select {
		case <-errc:
		case <-time.After(40 * time.Second):
		}
	}()

	warm := uint64(o.BMCs)
	total := uint64(r.load.Snapshots)
	progress := "no snapshot acked yet"
	profiling := false
	var cpuProfile *os.File
	defer func() {
		if profiling {
			pprof.StopCPUProfile()
		}
	}()
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for n := 0; r.warm.at.IsZero() || r.end.at.IsZero(); n++ {
		select {
		case <-ctx.Done():
			return fmt.Errorf("gateway did not ack every snapshot (%s): %w", progress, ctx.Err())
		case err := <-errc:
			return fmt.Errorf("gateway stopped (%s): %v", progress, err)
		case <-tick.C:
		}
		if n%10 == 0 {
			if err := checkMemory(o.MinAvailableGB); err != nil {
				return fmt.Errorf("%s: %w", progress, err)
			}
		}
		info, err := consumerInfo(ctx, js)
		if err != nil {
			continue // Not created yet.
		}
		progress = fmt.Sprintf("%d of %d snapshots acked after %s, %.1f CPU s, peak RSS %.2f GB", info.AckFloor.Stream, total,
			time.Since(r.started.at).Round(time.Second), cpuSeconds()-r.started.cpu, float64(maxRSS())*1024/1e9)
		if r.warm.at.IsZero() && info.AckFloor.Stream >= warm {
			if r.warm, err = sample(ctx, r.load.Stats); err != nil {
				return err
			}
			if o.Profile != "" {
				f, err := os.Create(o.Profile)
				if err != nil {
					return err
				}
				defer f.Close() // on an early return; the profile's own close is checked below
				if err := pprof.StartCPUProfile(f); err != nil {
					return err
				}
				profiling, cpuProfile = true, f
			}
		}
		if info.NumAckPending == 0 && info.NumPending == 0 && info.Delivered.Stream >= total && info.AckFloor.Stream >= total {
			if r.end, err = sample(ctx, r.load.Stats); err != nil {
				return err
			}
		}
	}
	if profiling {
		pprof.StopCPUProfile()
		profiling = false
		if err := cpuProfile.Close(); err != nil {
			return fmt.Errorf("write CPU profile: %w", err)
		}
	}
	r.rssKB = maxRSS()
	if o.Profile != "" {
		f, err := os.Create(o.Profile + ".heap")
		if err != nil {
			return err
		}
		runtime.GC()
		err = pprof.Lookup("heap").WriteTo(f, 0)
		if cerr := f.Close(); err == nil && cerr != nil {
			err = fmt.Errorf("write heap profile: %w", cerr)
		}
		return err
	}
	return nil
}

func consumerInfo(ctx context.Context, js jetstream.JetStream) (*jetstream.ConsumerInfo, error) {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	c, err := js.Consumer(ctx, bus.DefaultStreamConfig.Name, consumerName)
	if err != nil {
		return nil, err
	}
	return c.Info(ctx)
}

// sample reads this process's counters and the receiver's.
func sample(ctx context.Context, statsURL string) (point, error) {
	p := point{at: time.Now(), cpu: cpuSeconds()}
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	p.mallocs = ms.Mallocs
	var err error
	p.received, err = receiverStatsAt(ctx, statsURL)
	return p, err
}

// receiverStatsAt reads the receiver's counts.
func receiverStatsAt(ctx context.Context, statsURL string) (receiverStats, error) {
	var st receiverStats
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, statsURL, nil)
	if err != nil {
		return st, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return st, err
	}
	defer resp.Body.Close() // the body is read below; a close error changes nothing
	err = json.NewDecoder(resp.Body).Decode(&st)
	_, _ = io.Copy(io.Discard, resp.Body) // draining only lets the connection be reused
	return st, err
}

// ceiling normalises one later poll of the whole fleet as the gateway does
// and encodes it over and over, on one goroutine, for o.CeilingTime.
func ceiling(o options, fleet *gwfleet.Fleet, r *result) error {
	start := time.Now().Add(-time.Hour)
	r.ceilBMCs = o.BMCs
	if o.CeilingBMCs > 0 {
		r.ceilBMCs = min(o.BMCs, o.CeilingBMCs)
	}
	snaps := make([]*v1.Snapshot, r.ceilBMCs)
	for i := range snaps {
		snaps[i] = fleet.Snapshot(i, 1, start)
	}
	all, err := fleet.Series(snaps)
	if err != nil {
		return err
	}
	snaps = nil
	r.ceil, err = encodeFor(all, o.CeilingTime)
	if err != nil {
		return err
	}
	r.ceilSharded, err = encodeFor(gwfleet.ShardOrder(all, remotewrite.DefaultQueueConfig.Shards), o.CeilingTime)
	if err != nil {
		return err
	}
	all = nil
	r.ceilSnappy, r.snappySame = snappyFor(r.bodies, o.CeilingTime)
	return nil
}

// ceilingRun is one ceiling measurement.
type ceilingRun struct {
	samples int64   // samples encoded
	cpu     float64 // CPU seconds used
	bytes   float64 // compressed bytes per sample
	allocs  float64 // allocations per sample
}

func (c ceilingRun) perCore() float64 { return float64(c.samples) / c.cpu }

// encodeFor encodes all, over and over, on this goroutine, for at least d.
//
// The ceiling is gogo's marshal + snappy of the same samples: their labels
// are turned into []prompb.Label first, outside the timed loop.
func encodeFor(samples []series.Sample, d time.Duration) (ceilingRun, error) {
	var c ceilingRun
	var enc gwfleet.Encoder
	all := gwfleet.Prom(samples)
	if _, err := enc.EncodeAll(all); err != nil {
		return c, err
	}
	runtime.GC()
	var m0, m1 runtime.MemStats
	runtime.ReadMemStats(&m0)
	cpu0, t0 := cpuSeconds(), time.Now()
	var bytes int
	for time.Since(t0) < d || c.samples == 0 {
		n, err := enc.EncodeAll(all)
		if err != nil {
			return c, err
		}
		bytes = n
		c.samples += int64(len(all))
	}
	c.cpu = cpuSeconds() - cpu0
	runtime.ReadMemStats(&m1)
	c.bytes = float64(bytes) / float64(len(all))
	c.allocs = float64(m1.Mallocs-m0.Mallocs) / float64(c.samples)
	return c, nil
}

// window is the gateway's figures between two points.
type window struct {
	samples, requests, bytes int64
	wall, cpu                float64
	allocs                   float64
}

func between(a, b point) window {
	s := b.received.Samples - a.received.Samples
	w := window{samples: s, requests: b.received.Requests - a.received.Requests, bytes: b.received.Bytes - a.received.Bytes,
		wall: b.at.Sub(a.at).Seconds(), cpu: b.cpu - a.cpu}
	if s > 0 {
		w.allocs = float64(b.mallocs-a.mallocs) / float64(s)
	}
	return w
}

func (r *result) print(out *bytes.Buffer) {
	steady, all := between(r.warm, r.end), between(r.cold, r.end)
	ceil := r.ceil.perCore()
	fmt.Fprintf(out, "load: %d BMCs × %d polls = %d snapshots, %.1f readings and %.0f bytes per snapshot; %d samples received (%d requests, %d errors)\n",
		r.opts.BMCs, r.opts.Polls, r.load.Snapshots, float64(r.load.Readings)/float64(r.load.Snapshots),
		float64(r.load.Bytes)/float64(r.load.Snapshots), r.end.received.Samples, r.end.received.Requests, r.end.received.Errors)
	fmt.Fprintln(out, "| what | samples | wall s | CPU s | cores | samples/s | samples/s per core | of ceiling | allocs/sample | bytes/sample |")
	fmt.Fprintln(out, "|---|---|---|---|---|---|---|---|---|---|")
	fmt.Fprintf(out, "| ceiling: gogo marshal + snappy, one goroutine | %d | | %.2f | | | %.0f | 100%% | %.3f | %.2f |\n",
		r.ceil.samples, r.ceil.cpu, ceil, r.ceil.allocs, r.ceil.bytes)
	fmt.Fprintf(out, "| ceiling, samples in the queue's shard order | %d | | %.2f | | | %.0f | %.1f%% | %.3f | %.2f |\n",
		r.ceilSharded.samples, r.ceilSharded.cpu, r.ceilSharded.perCore(), 100*r.ceilSharded.perCore()/ceil, r.ceilSharded.allocs, r.ceilSharded.bytes)
	row := func(name string, w window) {
		perCore := float64(w.samples) / w.cpu
		fmt.Fprintf(out, "| %s | %d | %.2f | %.2f | %.2f | %.0f | %.0f | %.1f%% | %.2f | %.2f |\n", name, w.samples, w.wall, w.cpu, w.cpu/w.wall,
			float64(w.samples)/w.wall, perCore, 100*perCore/ceil, w.allocs, float64(w.bytes)/float64(w.samples))
	}
	if sn := r.ceilSnappy; sn.samples > 0 {
		fmt.Fprintf(out, "| ceiling: snappy alone, over %d of the request bodies the gateway sent | %d | | %.2f | | | %.0f | %.1f%% | %.3f | %.2f |\n",
			len(r.bodies), sn.samples, sn.cpu, sn.perCore(), 100*sn.perCore()/ceil, sn.allocs, sn.bytes)
	}
	row(fmt.Sprintf("gateway, steady (polls 2-%d)", r.opts.Polls), steady)
	row("gateway, all polls (first builds plans)", all)
	s := r.summary()
	if r.ceilBMCs < r.opts.BMCs {
		fmt.Fprintf(out, "the ceilings encode one poll of %d of the %d BMCs (--ceiling-bmcs): their series are held in memory at once\n", r.ceilBMCs, r.opts.BMCs)
	}
	if s.SnappyCeiling > 0 {
		same := "the same compressed sizes as the gateway sent"
		if !r.snappySame {
			same = "**not** the compressed sizes the gateway sent: it compresses otherwise"
		}
		fmt.Fprintf(out, "steady: %.1f%% of the gogo+snappy ceiling, %.1f%% of the snappy-only ceiling (%d request bodies, a uniform sample of %d; compressing them again gives %s)\n",
			100*s.SteadyRatio, 100*s.SteadySnappyRatio, len(r.bodies), r.end.received.Requests, same)
	}
	fp := firstPollOf(between(r.started, r.warm), steady)
	fmt.Fprintf(out, "first poll (plan build): %.2f CPU s from Run until every first poll was acked, for %d samples; at the steady rate they cost %.2f s; the rest, %.3f ms per BMC, is the first poll's own work\n",
		fp.cpu, fp.samples, fp.atSteady, 1e3*fp.extra/float64(r.opts.BMCs))
	fmt.Fprintf(out, "gateway peak RSS %.0f MB, %.1f KB per BMC; gateway.New (inventory) %.2f CPU s; NATS + receiver process CPU %.2f s (not counted above)\n",
		float64(r.rssKB)/1024, float64(r.rssKB)/float64(r.opts.BMCs), r.started.cpu-r.cold.cpu, r.infraCPU)
}

// firstPoll is the first poll's CPU beyond what its samples cost at the
// steady rate.
type firstPoll struct {
	cpu, atSteady, extra float64
	samples              int64
}

// firstPollOf derives the cost of the first poll of every BMC (building
// its plan, and the gateway's tables growing) from two windows of one run:
// first, from Run until every first poll is acked, and steady, the later
// polls. The samples written in first would cost first.samples ÷ the
// steady samples per CPU second if they were steady; the rest of first's
// CPU is the first polls' own.
func firstPollOf(first, steady window) firstPoll {
	f := firstPoll{cpu: first.cpu, samples: first.samples}
	if steady.samples > 0 && steady.cpu > 0 {
		f.atSteady = float64(first.samples) * steady.cpu / float64(steady.samples)
	}
	f.extra = max(0, f.cpu-f.atSteady)
	return f
}

func tv(t syscall.Timeval) float64 { return float64(t.Sec) + float64(t.Usec)/1e6 }

func cpuSeconds() float64 {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return tv(ru.Utime) + tv(ru.Stime)
}

// maxRSS is this process's peak resident set in KiB.
func maxRSS() int64 {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return int64(ru.Maxrss)
}

func waitOrKill(c *exec.Cmd, d time.Duration) {
	done := make(chan struct{})
	// the process's exit status is not a figure: it was told to stop
	go func() { _ = c.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(d):
		_ = c.Process.Kill() // it may have exited meanwhile; done says when it has
		<-done
	}
}
