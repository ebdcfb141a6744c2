// Command benchall runs the benchmark harnesses one after another and
// composes their figures into one table: the remote-write encode ceiling,
// the gateway end to end and their ratio (gatewayload, both in one
// process and one run), two gateway replicas, each its own process,
// against one in the same run (gatewayload --replicas=2), the poller's CPU
// and memory per BMC against a bmcsim fleet (pollerload), and reading →
// queryable latency through a real Prometheus (latency). `make bench` runs it; --record appends the table,
// with commit, machine, date and command, to a markdown file.
//
// The harnesses run in sequence, each in its own process, so none measures
// another's load; each writes its figures with --json.
//
//	go run ./benchmarks/benchall --record=benchmarks/RESULTS.md
package main

import (
	"bytes"
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
	name    string // package under benchmarks/
	args    []string
	timeout time.Duration
}

func main() {
	gwFlags := flag.String("gatewayload-flags", "--bmcs=10000 --polls=3", "flags of benchmarks/gatewayload")
	gwReplicas := flag.Int("gatewayload-replicas", 2, "add --replicas=N to gatewayload's flags unless they set --replicas (1: the one-gateway run only)")
	plFlags := flag.String("pollerload-flags", "--bmcs=2000 --protocol=redfish --interval=10s --warmup=20s --measure=60s", "flags of benchmarks/pollerload")
	latFlags := flag.String("latency-flags", "--bmcs=2000 --interval=15s --warmup=30s --measure=60s", "flags of benchmarks/latency")
	record := flag.String("record", "", "also append the table, with commit, machine and date, to this markdown file")
	only := flag.String("only", "", "run only these harnesses (comma-separated: gatewayload,pollerload,latency); the table shows what ran")
	flag.Parse()

	gwArgs := strings.Fields(*gwFlags)
	if *gwReplicas > 1 && !slices.ContainsFunc(gwArgs, func(a string) bool { return strings.HasPrefix(strings.TrimLeft(a, "-"), "replicas") }) {
		gwArgs = append(gwArgs, fmt.Sprintf("--replicas=%d", *gwReplicas))
	}
	steps := []step{
		{"gatewayload", gwArgs, 8 * time.Minute},
		{"pollerload", strings.Fields(*plFlags), 6 * time.Minute},
		{"latency", strings.Fields(*latFlags), 6 * time.Minute},
	}
	if *only != "" {
		keep := map[string]bool{}
		for _, n := range strings.Split(*only, ",") {
			keep[strings.TrimSpace(n)] = true
		}
		var kept []step
		for _, s := range steps {
			if keep[s.name] {
				kept = append(kept, s)
			}
		}
		steps = kept
	}
	started := time.Now()
	figs, err := runAll(steps)
	if err != nil {
		fmt.Fprintln(os.Stderr, "benchall:", err)
		os.Exit(1)
	}
	figs.Wall = time.Since(started)
	var cmd strings.Builder
	cmd.WriteString("go run ./benchmarks/benchall")
	for _, s := range steps {
		fmt.Fprintf(&cmd, " --%s-flags='%s'", s.name, strings.Join(s.args, " "))
	}
	section := header(cmd.String(), started) + figs.table()
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
}

// runAll builds the harnesses, then runs each with --json into a temporary
// file and reads its figures back.
func runAll(steps []step) (*results, error) {
	dir, err := os.MkdirTemp("", "benchall")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)
	figs := &results{}
	for _, s := range steps {
		bin := filepath.Join(dir, s.name)
		if out, err := exec.Command("go", "build", "-o", bin, "./benchmarks/"+s.name).CombinedOutput(); err != nil {
			return nil, fmt.Errorf("build %s: %v: %s", s.name, err, out)
		}
	}
	for _, s := range steps {
		jsonFile := filepath.Join(dir, s.name+".json")
		args := append(append([]string(nil), s.args...), "--json="+jsonFile)
		fmt.Fprintf(os.Stderr, "\n=== benchall: %s %s\n", s.name, strings.Join(s.args, " "))
		ctx, cancel := context.WithTimeout(context.Background(), s.timeout)
		c := exec.CommandContext(ctx, filepath.Join(dir, s.name), args...)
		// The harness's own report goes to stderr: stdout is the table.
		c.Stdout, c.Stderr = os.Stderr, os.Stderr
		c.WaitDelay = 30 * time.Second
		t0 := time.Now()
		err := c.Run()
		cancel()
		if err != nil {
			return nil, fmt.Errorf("%s: %w", s.name, err)
		}
		b, err := os.ReadFile(jsonFile)
		if err != nil {
			return nil, fmt.Errorf("%s wrote no figures: %w", s.name, err)
		}
		if err := figs.decode(s.name, b); err != nil {
			return nil, err
		}
		fmt.Fprintf(os.Stderr, "=== benchall: %s took %s\n", s.name, time.Since(t0).Round(time.Second))
	}
	return figs, nil
}

// decode reads the --json figures of the harness name into f.
func (f *results) decode(name string, b []byte) error {
	var v any
	switch name {
	case "gatewayload":
		f.Gateway = &figures.Gateway{}
		v = f.Gateway
	case "pollerload":
		f.Poller = &figures.Poller{}
		v = f.Poller
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
