package testbed

import (
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// Build compiles a package of this module (an import path, or "." for the
// test's own directory) into a binary in t.TempDir and returns its path.
func Build(t testing.TB, pkg string) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), filepath.Base(pkg))
	if pkg == "." {
		bin = filepath.Join(t.TempDir(), "program")
	}
	out, err := exec.Command("go", "build", "-o", bin, pkg).CombinedOutput()
	require.NoError(t, err, "go build %s: %s", pkg, out)
	return bin
}

// Program is one of the project's own programs run as a subprocess with
// its web endpoints on a free loopback port.
type Program struct {
	Cmd *exec.Cmd
	// Addr is the host:port of its --web.listen-address.
	Addr string
	// LogFile holds its standard output and error.
	LogFile string
}

// StartProgram runs bin with args plus --web.listen-address on a free
// loopback port, waits until its /-/ready answers 200, and kills it at
// cleanup. Its output is printed with t.Log when the test fails.
func StartProgram(t testing.TB, name, bin string, args ...string) *Program {
	t.Helper()
	logf, err := os.Create(filepath.Join(t.TempDir(), name+".log"))
	require.NoError(t, err)
	p := &Program{Addr: fmt.Sprintf("127.0.0.1:%d", FreePort(t)), LogFile: logf.Name()}
	p.Cmd = exec.Command(bin, append(args, "--web.listen-address="+p.Addr)...)
	p.Cmd.Stdout, p.Cmd.Stderr = logf, logf
	require.NoError(t, p.Cmd.Start())
	t.Cleanup(func() {
		if p.Cmd.ProcessState == nil {
			_ = p.Cmd.Process.Kill() // the process may have exited already; Wait reaps it either way
			_ = p.Cmd.Wait()         // killed: the exit status says nothing
		}
		if t.Failed() {
			b, _ := os.ReadFile(logf.Name()) // a missing log prints as empty; the test has failed already
			t.Logf("%s log:\n%s", name, b)
		}
	})
	require.Eventually(t, func() bool {
		resp, err := http.Get("http://" + p.Addr + "/-/ready")
		if err != nil {
			return false
		}
		_ = resp.Body.Close() // only the status is wanted
		return resp.StatusCode == http.StatusOK
	}, 20*time.Second, 50*time.Millisecond, "%s never became ready", name)
	return p
}
