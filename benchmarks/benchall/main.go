// Command benchall runs the benchmark harnesses one after another and
// composes their figures into one report: first a table of the targets of
// the gateway core and poller memory work, one row each with its target and
// whether the median meets it, then a row per harness run with its load:
// the remote-write encode ceilings, the gateway end to end and their ratios
// (gatewayload at 10 000 BMCs, in one process and one run, then two
// replicas against one in the same run; gatewayload again at 50 000 BMCs),
// the poller's CPU and memory per BMC against a bmcsim fleet over Redfish
// and over IPMI (pollerload, twice), and reading → queryable latency
// through a real Prometheus (latency). `make bench` runs it; --runs=N runs
// everything N times and shows medians with their ranges; --record appends
// the report, with commit, machine, date and command, to a markdown file.
//
// The harnesses run in sequence, each in its own process, so none measures
// another's load; each writes its figures with --json.
//
//	go run ./benchmarks/benchall --record=benchmarks/RESULTS.md
package main

import (
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"time"

	"github.com/bmcstream/bmcstream/benchmarks/internal/figures"
)

// step is one harness run.
type step struct {
	name    string // for --only and the log: gatewayload-50k, pollerload-ipmi, ...
	harness string // package under benchmarks/
	args    []string
	timeout time.Duration
}

func main() {
	gwFlags := flag.String("gatewayload-flags", "--bmcs=10000 --polls=3", "flags of benchmarks/gatewayload")
	gwReplicas := flag.Int("gatewayload-replicas", 2, "add --replicas=N to gatewayload's flags unless they set --replicas (1: the one-gateway run only)")
	gw50kFlags := flag.String("gatewayload-50k-flags", "--bmcs=50000 --polls=3 --timeout=10m", "flags of the second gatewayload run, the large fleet (\"\": not run)")
	plFlags := flag.String("pollerload-flags", "--bmcs=2000 --protocol=redfish --interval=10s --warmup=20s --measure=60s", "flags of benchmarks/pollerload (\"\": not run)")
	plIPMIFlags := flag.String("pollerload-ipmi-flags", "--bmcs=2000 --protocol=ipmi --interval=10s --warmup=20s --measure=60s", "flags of the IPMI pollerload run (\"\": not run)")
	latFlags := flag.String("latency-flags", "--bmcs=2000 --interval=15s --warmup=30s --measure=60s", "flags of benchmarks/latency (\"\": not run)")
	runs := flag.Int("runs", 1, "run every harness this many times (all of them, then all again); the table shows medians and, over more than one run, ranges")
	record := flag.String("record", "", "also append the table, with commit, machine and date, to this markdown file")
	only := flag.String("only", "", "run only these harnesses (comma-separated: gatewayload,gatewayload-50k,pollerload,pollerload-ipmi,latency); the table shows what ran")
	flag.Parse()
	if *runs < 1 {
		fmt.Fprintln(os.Stderr, "benchall: --runs must be at least 1")
		os.Exit(2)
	}

	gwArgs := strings.Fields(*gwFlags)
	if len(gwArgs) > 0 && *gwReplicas > 1 && !slices.ContainsFunc(gwArgs, func(a string) bool { return strings.HasPrefix(strings.TrimLeft(a, "-"), "replicas") }) {
		gwArgs = append(gwArgs, fmt.Sprintf("--replicas=%d", *gwReplicas))
	}
	all := []step{
		{"gatewayload", "gatewayload", gwArgs, 8 * time.Minute},
		{"gatewayload-50k", "gatewayload", strings.Fields(*gw50kFlags), 12 * time.Minute},
		{"pollerload", "pollerload", strings.Fields(*plFlags), 6 * time.Minute},
		{"pollerload-ipmi", "pollerload", strings.Fields(*plIPMIFlags), 6 * time.Minute},
		{"latency", "latency", strings.Fields(*latFlags), 6 * time.Minute},
	}
	keep := map[string]bool{}
	for _, n := range strings.Split(*only, ",") {
		if n = strings.TrimSpace(n); n != "" {
			keep[n] = true
		}
	}
	var steps []step
	for _, s := range all {
		if len(s.args) > 0 && (len(keep) == 0 || keep[s.name]) {
			steps = append(steps, s)
		}
	}
	started := time.Now()
	figs, err := runAll(steps, *runs)
	if err != nil {
		fmt.Fprintln(os.Stderr, "benchall:", err)
		os.Exit(1)
	}
	failed := slices.ContainsFunc(figs, func(r *results) bool { return len(r.Failed) > 0 })
	var cmd strings.Builder
	cmd.WriteString("go run ./benchmarks/benchall")
	if *runs > 1 {
		fmt.Fprintf(&cmd, " --runs=%d", *runs)
	}
	for _, s := range steps {
		fmt.Fprintf(&cmd, " --%s-flags='%s'", s.name, strings.Join(s.args, " "))
	}
	for _, s := range all {
		if !slices.ContainsFunc(steps, func(t step) bool { return t.name == s.name }) {
			fmt.Fprintf(&cmd, " --%s-flags=''", s.name)
		}
	}
	section := header(cmd.String(), started) + table(figs, time.Since(started))
	fmt.Print("\n" + section)
	if *record != "" {
		f, err := os.OpenFile(*record, os.O_APPEND|os.O_WRONLY, 0)
		if err == nil {
			_, err = io.WriteString(f, "\n"+section)
			if cerr := f.Close(); err == nil {
				err = cerr
			}
		}
		if err != nil {
			fmt.Fprintln(os.Stderr, "benchall: record:", err)
			os.Exit(1)
		}
		fmt.Fprintf(os.Stderr, "benchall: appended to %s\n", *record)
	}
	if failed {
		fmt.Fprintln(os.Stderr, "benchall: a harness failed (see the table)")
		os.Exit(1)
	}
}

// lastLine keeps the last non-empty line written to it (a harness's error).
type lastLine struct{ cur, last []byte }

func (l *lastLine) Write(p []byte) (int, error) {
	for _, c := range p {
		if c == '\n' {
			if len(bytes.TrimSpace(l.cur)) > 0 {
				l.last = append(l.last[:0], l.cur...)
			}
			l.cur = l.cur[:0]
			continue
		}
		if len(l.cur) < 4096 {
			l.cur = append(l.cur, c)
		}
	}
	return len(p), nil
}

func (l *lastLine) String() string {
	if len(bytes.TrimSpace(l.cur)) > 0 {
		return string(l.cur)
	}
	return string(l.last)
}

// runAll builds the harnesses, then runs every step runs times (every step
// once, then every step again), each with --json into a temporary file,
// and reads its figures back: one results per run.
func runAll(steps []step, runs int) ([]*results, error) {
	dir, err := os.MkdirTemp("", "benchall")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir) // a temporary directory of built binaries; one left behind costs only disk
	built := map[string]bool{}
	for _, s := range steps {
		if built[s.harness] {
			continue
		}
		built[s.harness] = true
		bin := filepath.Join(dir, s.harness)
		if out, err := exec.Command("go", "build", "-o", bin, "./benchmarks/"+s.harness).CombinedOutput(); err != nil {
			return nil, fmt.Errorf("build %s: %v: %s", s.harness, err, out)
		}
	}
	var out []*results
	for run := 1; run <= runs; run++ {
		figs := &results{}
		for _, s := range steps {
			jsonFile := filepath.Join(dir, s.name+".json")
			args := append(append([]string(nil), s.args...), "--json="+jsonFile)
			fmt.Fprintf(os.Stderr, "\n=== benchall: run %d of %d: %s: %s %s\n", run, runs, s.name, s.harness, strings.Join(s.args, " "))
			ctx, cancel := context.WithTimeout(context.Background(), s.timeout)
			c := exec.CommandContext(ctx, filepath.Join(dir, s.harness), args...)
			// The harness's own report goes to stderr: stdout is the table.
			var last lastLine
			c.Stdout, c.Stderr = os.Stderr, io.MultiWriter(os.Stderr, &last)
			c.WaitDelay = 30 * time.Second
			t0 := time.Now()
			err := c.Run()
			cancel()
			if err != nil {
				// The table still shows the step, failed, and the
				// other steps run: a harness that a change makes fail
				// (a fleet too big for the machine) is a result too.
				why := strings.TrimSpace(last.String())
				if why == "" || ctx.Err() != nil {
					why = cmp.Or(why+"; ", "") + err.Error()
				}
				fmt.Fprintf(os.Stderr, "=== benchall: %s failed after %s: %v\n", s.name, time.Since(t0).Round(time.Second), err)
				figs.fail(s.name, why)
				continue
			}
			b, err := os.ReadFile(jsonFile)
			if err != nil {
				return nil, fmt.Errorf("%s wrote no figures: %w", s.name, err)
			}
			if err := figs.decode(s.name, b); err != nil {
				return nil, err
			}
			_ = os.Remove(jsonFile) // its figures are decoded; a file left behind costs only disk
			fmt.Fprintf(os.Stderr, "=== benchall: %s took %s\n", s.name, time.Since(t0).Round(time.Second))
		}
		out = append(out, figs)
	}
	return out, nil
}

// decode reads the --json figures of step name into f.
func (f *results) decode(name string, b []byte) error {
	var v any
	switch name {
	case "gatewayload":
		f.Gateway = &figures.Gateway{}
		v = f.Gateway
	case "gatewayload-50k":
		f.Gateway50k = &figures.Gateway{}
		v = f.Gateway50k
	case "pollerload":
		f.Poller = &figures.Poller{}
		v = f.Poller
	case "pollerload-ipmi":
		f.PollerIPMI = &figures.Poller{}
		v = f.PollerIPMI
	case "latency":
		f.Latency = &figures.Latency{}
		v = f.Latency
	default:
		return fmt.Errorf("unknown harness %q", name)
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return fmt.Errorf("%s figures: %w", name, err)
	}
	return nil
}

// header names the run: commit, machine, date and command.
func header(command string, at time.Time) string {
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
	fmt.Fprintf(&sb, "## make bench: %s\n\n", at.UTC().Format("2006-01-02 15:04 MST"))
	fmt.Fprintf(&sb, "- Commit: %s\n", commit)
	fmt.Fprintf(&sb, "- Machine: %d CPUs (%s); %s, %s/%s; every process of a harness on these CPUs\n", runtime.NumCPU(), model, runtime.Version(), runtime.GOOS, runtime.GOARCH)
	fmt.Fprintf(&sb, "- Date: %s\n", at.UTC().Format("2006-01-02 15:04 MST"))
	fmt.Fprintf(&sb, "- Command: `make bench`, that is `%s`\n\n", command)
	return sb.String()
}
