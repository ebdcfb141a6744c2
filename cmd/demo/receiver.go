package main

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"time"
)

// process is a system program the demo runs (Prometheus, VictoriaMetrics,
// Alertmanager), with its output in a log file.
type process struct {
	name    string
	proc    *os.Process
	exited  chan struct{} // closed once the process has been waited for
	logFile string
	base    string // http://127.0.0.1:port
}

// stop ends the process: SIGTERM, then SIGKILL after 10 s.
func (p *process) stop() {
	// An error means the process has exited already: p.exited is closed.
	_ = p.proc.Signal(syscall.SIGTERM)
	select {
	case <-p.exited:
	case <-time.After(10 * time.Second):
		_ = p.proc.Kill() // as Signal above
		<-p.exited
	}
}

// startProcess runs bin with args, its output in dir/name.log, and waits
// until base+ready answers 200.
func startProcess(ctx context.Context, name, bin, dir, base, ready string, args ...string) (*process, error) {
	logf, err := os.Create(filepath.Join(dir, name+".log"))
	if err != nil {
		return nil, err
	}
	// The process writes through its own descriptor; ours is never
	// written, so closing it cannot lose output.
	defer func() { _ = logf.Close() }()
	cmd := exec.Command(bin, args...)
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = sysProcAttr()
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s: %w", bin, err)
	}
	p := &process{name: name, proc: cmd.Process, exited: make(chan struct{}), logFile: logf.Name(), base: base}
	// The exit status is of a process the demo stops itself, or one that
	// exits early, which the wait below reports with its log file.
	go func() { _ = cmd.Wait(); close(p.exited) }()
	deadline := time.Now().Add(30 * time.Second)
	for {
		resp, err := http.Get(base + ready)
		if err == nil {
			_ = resp.Body.Close() // only the status matters
			if resp.StatusCode == http.StatusOK {
				return p, nil
			}
		}
		select {
		case <-p.exited:
			return nil, fmt.Errorf("%s exited before it was ready on %s (log: %s)", name, base, logf.Name())
		case <-ctx.Done():
			p.stop()
			return nil, ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			p.stop()
			return nil, fmt.Errorf("%s did not become ready on %s (log: %s)", name, base, logf.Name())
		}
	}
}

// lookPath finds a system program on PATH or in the usual directories, which
// a non-root PATH may lack: the first of names found.
func lookPath(names ...string) (string, error) {
	for _, name := range names {
		if p, err := exec.LookPath(name); err == nil {
			return p, nil
		}
		for _, d := range []string{"/usr/bin", "/usr/sbin", "/usr/local/bin"} {
			p := filepath.Join(d, name)
			if st, err := os.Stat(p); err == nil && !st.IsDir() && st.Mode().Perm()&0o111 != 0 {
				return p, nil
			}
		}
	}
	return "", fmt.Errorf("%s not found", names[0])
}
