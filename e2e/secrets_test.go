package e2e

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/prometheus/common/model"
	"github.com/stretchr/testify/require"
	"golang.org/x/crypto/bcrypt"

	"github.com/bmcstream/bmcstream/internal/testbed"
	"github.com/bmcstream/bmcstream/pkg/bmcsim/fleet"
	"github.com/bmcstream/bmcstream/pkg/bus"
	"github.com/bmcstream/bmcstream/pkg/inventory"
	v1 "github.com/bmcstream/bmcstream/proto/bmcstream/v1"
)

// The credentials of TestNoCredentialLeaks: distinctive strings that occur
// nowhere unless leaked.
const (
	bmcUser           = "admin"
	bmcPassword       = "S3cr3t-bmc-pw-7f1c"
	bmcWrongPassword  = "Wr0ng-bmc-pw-93ad"
	natsPollerPW      = "N4ts-poller-pw-2b9e"
	natsGatewayPW     = "N4ts-gw-pw-c41d"
	natsWrongPW       = "N4ts-wrong-pw-66f0"
	natsAdminPW       = "N4ts-admin-pw-0a55"
	rwUser            = "bmcstream"
	rwPassword        = "Rw-basic-pw-5e6a"
	rwWrongPassword   = "Rw-wrong-pw-a7b3"
	rwBearerToken     = "Rw-bearer-tok-19fe"
	webPassword       = "W3b-scrape-pw-d00d"
	secretsFleetFirst = "127.73.0.1"
)

// leakScanner looks for every form a credential can take on the wire or
// in a log: as is, base64 (basic auth headers), and base64 of user:secret.
type leakScanner struct {
	forms map[string]string // needle -> description (never the secret)

	mu       sync.Mutex
	findings map[string]bool
	scanned  map[string]int // source kind -> items scanned
}

func newLeakScanner() *leakScanner {
	s := &leakScanner{forms: map[string]string{}, findings: map[string]bool{}, scanned: map[string]int{}}
	add := func(name, secret string, users ...string) {
		s.forms[secret] = name
		s.forms[base64.StdEncoding.EncodeToString([]byte(secret))] = name + " (base64)"
		s.forms[base64.RawURLEncoding.EncodeToString([]byte(secret))] = name + " (base64url)"
		for _, u := range users {
			s.forms[base64.StdEncoding.EncodeToString([]byte(u+":"+secret))] = name + " (basic auth header)"
		}
	}
	add("BMC password", bmcPassword, bmcUser)
	add("wrong BMC password", bmcWrongPassword, bmcUser)
	add("poller NATS password", natsPollerPW, "poller")
	add("gateway NATS password", natsGatewayPW, "gateway")
	add("wrong NATS password", natsWrongPW, "poller")
	add("NATS admin password", natsAdminPW, "admin")
	add("remote-write password", rwPassword, rwUser)
	add("wrong remote-write password", rwWrongPassword, rwUser)
	add("remote-write bearer token", rwBearerToken)
	add("web password", webPassword, "prometheus")
	return s
}

// scan records, by where and which credential (never the credential
// itself), every secret found in b.
func (s *leakScanner) scan(kind, where string, b []byte) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.scanned[kind]++
	for needle, name := range s.forms {
		if i := bytes.Index(b, []byte(needle)); i >= 0 {
			line := 1 + bytes.Count(b[:i], []byte("\n"))
			s.findings[fmt.Sprintf("%s in %s (line %d)", name, where, line)] = true
		}
	}
}

func (s *leakScanner) report(t *testing.T) {
	t.Helper()
	s.mu.Lock()
	defer s.mu.Unlock()
	t.Logf("scanned: %v", s.scanned)
	var found []string
	for f := range s.findings {
		found = append(found, f)
	}
	sort.Strings(found)
	require.Empty(t, found, "credentials leaked")
}

// authReceiver is a remote-write receiver that demands credentials per
// path and decodes what it accepts.
type authReceiver struct {
	mu       sync.Mutex
	up       map[string]map[string]bool // path -> BMCs with bmc_up
	refused  int
	scanner  *leakScanner
	accepted map[string]string // path -> the Authorization header it wants
}

func (r *authReceiver) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	want, ok := r.accepted[req.URL.Path]
	if !ok {
		http.NotFound(w, req)
		return
	}
	if req.Header.Get("Authorization") != want {
		r.mu.Lock()
		r.refused++
		r.mu.Unlock()
		http.Error(w, "Unauthorized", http.StatusUnauthorized)
		return
	}
	wr, b, err := testbed.ReadWriteRequest(req)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	r.scanner.scan("remote-write body", "a remote-write request body to "+req.URL.Path, b)
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, ts := range wr.Timeseries {
		name, bmc := "", ""
		for _, l := range ts.Labels {
			switch l.Name {
			case "__name__":
				name = l.Value
			case "bmc":
				bmc = l.Value
			}
		}
		if name == "bmc_up" {
			if r.up[req.URL.Path] == nil {
				r.up[req.URL.Path] = map[string]bool{}
			}
			r.up[req.URL.Path][bmc] = true
		}
	}
	w.WriteHeader(http.StatusNoContent)
}

func (r *authReceiver) bmcsUp(path string) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.up[path])
}

// subprocess is one of the project's programs run as a subprocess, its
// standard output and error kept apart for the scan.
type subprocess struct {
	name           string
	cmd            *exec.Cmd
	addr           string
	stdout, stderr *testbed.SyncBuffer
}

// startBinary runs bin with args, --web.listen-address on a free loopback
// port and --web.enable-pprof (the profile index is one more page to
// search), and waits until its /-/healthy answers.
func startBinary(t *testing.T, name, bin string, args ...string) *subprocess {
	t.Helper()
	b := &subprocess{name: name, addr: fmt.Sprintf("127.0.0.1:%d", testbed.FreePort(t)), stdout: &testbed.SyncBuffer{}, stderr: &testbed.SyncBuffer{}}
	b.cmd = exec.Command(bin, append(args, "--web.listen-address="+b.addr, "--web.enable-pprof")...)
	b.cmd.Stdout, b.cmd.Stderr = b.stdout, b.stderr
	require.NoError(t, b.cmd.Start())
	t.Cleanup(func() {
		b.stop(t)
		if t.Failed() {
			t.Logf("%s stdout:\n%s\n%s stderr:\n%s", name, b.stdout, name, b.stderr)
		}
	})
	require.Eventually(t, func() bool { return b.get("/-/healthy") == http.StatusOK }, 20*time.Second, 50*time.Millisecond, "%s never answered", name)
	return b
}

func (b *subprocess) get(path string) int {
	resp, err := http.Get("http://" + b.addr + path)
	if err != nil {
		return 0
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	_ = resp.Body.Close()
	return resp.StatusCode
}

func (b *subprocess) body(t *testing.T, path string) []byte {
	t.Helper()
	resp, err := http.Get("http://" + b.addr + path)
	require.NoError(t, err)
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	require.Equal(t, http.StatusOK, resp.StatusCode, "%s %s", b.name, path)
	return body
}

// stop sends SIGTERM and waits for the exit (a kill after 15 s).
func (b *subprocess) stop(t *testing.T) {
	if b.cmd.ProcessState != nil {
		return
	}
	_ = b.cmd.Process.Signal(syscall.SIGTERM)
	done := make(chan struct{})
	go func() { _ = b.cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(15 * time.Second):
		t.Errorf("%s did not stop within 15s of SIGTERM", b.name)
		_ = b.cmd.Process.Kill()
		<-done
	}
}

// TestNoCredentialLeaks runs the whole pipeline, a simulated fleet (one
// BMC with wrong credentials), a poller and a gateway binary, NATS with
// password authentication and remote write with basic auth and a bearer
// token (one sink with a wrong password), and looks for every credential
// everywhere an operator or a subscriber can see: every log line of both
// programs, their /metrics, /status and profile index pages, their
// --config.check output, every NATS message (subject, headers, payload)
// seen by a subscriber to ">", and the remote-write bodies.
func TestNoCredentialLeaks(t *testing.T) {
	spansPrograms(t)
	scan := newLeakScanner()
	// The scanner itself finds what it looks for.
	probe := newLeakScanner()
	probe.scan("probe", "a plain password", []byte("password="+bmcPassword))
	probe.scan("probe", "a basic auth header", []byte("Authorization: Basic "+base64.StdEncoding.EncodeToString([]byte(rwUser+":"+rwPassword))))
	probe.scan("probe", "a base64 token", []byte(base64.StdEncoding.EncodeToString([]byte(rwBearerToken))))
	require.Len(t, probe.findings, 3, "%v", probe.findings)
	gwBin := buildGateway(t)
	pollerBin := testbed.Build(t, "github.com/bmcstream/bmcstream/cmd/poller")
	dir := t.TempDir()
	write := func(name, content string) string {
		p := filepath.Join(dir, name)
		require.NoError(t, os.WriteFile(p, []byte(content), 0o600))
		return p
	}

	// NATS requiring passwords; an admin subscribes to everything.
	srv, err := server.NewServer(&server.Options{
		Host: "127.0.0.1", Port: server.RANDOM_PORT, JetStream: true, StoreDir: t.TempDir(), NoSigs: true, NoLog: true,
		Users: []*server.User{
			{Username: "poller", Password: natsPollerPW},
			{Username: "gateway", Password: natsGatewayPW},
			{Username: "admin", Password: natsAdminPW},
		},
	})
	require.NoError(t, err)
	srv.Start()
	t.Cleanup(func() { srv.Shutdown(); srv.WaitForShutdown() })
	require.True(t, srv.ReadyForConnections(10*time.Second))
	natsURL := "nats://" + srv.Addr().String()
	admin, err := nats.Connect(natsURL, nats.UserInfo("admin", natsAdminPW))
	require.NoError(t, err)
	t.Cleanup(admin.Close)
	var msgs sync.WaitGroup
	var authFailures struct {
		sync.Mutex
		protocols map[v1.Protocol][]string // the errors, for the log
	}
	authFailures.protocols = map[v1.Protocol][]string{}
	wrongSubject := bus.RawSubject("bmc-00003")
	_, err = admin.Subscribe(">", func(m *nats.Msg) {
		msgs.Add(1)
		defer msgs.Done()
		if m.Subject == wrongSubject {
			var snap v1.Snapshot
			if snap.Unmarshal(m.Data) == nil && snap.ErrorClass == "auth" {
				authFailures.Lock()
				authFailures.protocols[snap.Protocol] = append(authFailures.protocols[snap.Protocol], snap.Error)
				authFailures.Unlock()
			}
		}
		where := "a NATS message on " + m.Subject
		scan.scan("nats message", where, []byte(m.Subject))
		scan.scan("nats message", where, m.Data)
		for k, vs := range m.Header {
			for _, v := range vs {
				scan.scan("nats header", where+" header "+k, []byte(k+": "+v))
			}
		}
	})
	require.NoError(t, err)
	require.NoError(t, admin.Flush())

	// Three BMCs over Redfish (HTTPS) and IPMI; the last one's inventory
	// entry names credentials the BMC refuses.
	fcfg := fleet.DefaultConfig
	fcfg.Count = 3
	fcfg.Mix = map[string]int{"idrac": 1, "openbmc": 1, "supermicro": 1}
	fcfg.Protocols = "both"
	fcfg.Username, fcfg.Password = bmcUser, bmcPassword
	fcfg.FirstAddress = netip.MustParseAddr(secretsFleetFirst)
	sim := testbed.StartSimFleet(t, fcfg, time.Second)
	entries := sim.Fleet.Inventory(sim.CAFile)
	for i := range entries {
		entries[i].Interval = model.Duration(time.Second)
	}
	wrongID := entries[len(entries)-1].ID
	require.Equal(t, wrongSubject, bus.RawSubject(wrongID))
	entries[len(entries)-1].Credentials = "wrong"
	inv, err := inventory.Marshal(entries)
	require.NoError(t, err)
	invFile := write("inventory.yml", string(inv))
	credFile := write("credentials.yml", fmt.Sprintf("bmcsim:\n  username: %s\n  password: %s\nwrong:\n  username: %s\n  password_file: %s\n",
		bmcUser, bmcPassword, bmcUser, write("wrong-bmc-password", bmcWrongPassword+"\n")))

	rcv := &authReceiver{scanner: scan, up: map[string]map[string]bool{}, accepted: map[string]string{
		"/basic":  "Basic " + base64.StdEncoding.EncodeToString([]byte(rwUser+":"+rwPassword)),
		"/bearer": "Bearer " + rwBearerToken,
	}}
	rwSrv := httptest.NewServer(rcv)
	t.Cleanup(rwSrv.Close)

	write("nats-poller-password", natsPollerPW+"\n")
	pollerCfg := write("poller.yml", fmt.Sprintf(`poller_id: leaks
nats:
  url: %s
  user: poller
  password_file: nats-poller-password   # relative to this file
inventory:
  files: [%s]
  credentials_file: %s
`, natsURL, invFile, credFile))
	gatewayCfg := write("gateway.yml", fmt.Sprintf(`nats:
  url: %s
  user: gateway
  password: %s
inventory:
  files: [%s]
remote_write:
  - name: basic
    url: %s/basic
    basic_auth:
      username: %s
      password: %s
    queue_config: {batch_send_deadline: 100ms, min_backoff: 10ms, max_backoff: 200ms}
  - name: wrong
    url: %s/basic
    basic_auth:
      username: %s
      password_file: %s
    queue_config: {batch_send_deadline: 100ms, min_backoff: 10ms, max_backoff: 200ms}
  - name: bearer
    url: %s/bearer
    authorization:
      credentials: %s
    queue_config: {batch_send_deadline: 100ms, min_backoff: 10ms, max_backoff: 200ms}
`, natsURL, natsGatewayPW, invFile, rwSrv.URL, rwUser, rwPassword, rwSrv.URL, rwUser, write("rw-wrong-password", rwWrongPassword), rwSrv.URL, rwBearerToken))
	webCfg := write("web.yml", fmt.Sprintf("basic_auth_users:\n  prometheus: %s\n", mustBcrypt(t, webPassword)))
	badWebCfg := write("bad-web.yml", "basic_auth_users:\n  prometheus: "+webPassword+"\n")

	t.Run("config check", func(t *testing.T) {
		for _, tc := range []struct{ name, bin, cfg string }{{"poller", pollerBin, pollerCfg}, {"gateway", gwBin, gatewayCfg}} {
			out, err := exec.Command(tc.bin, "--config.file="+tc.cfg, "--config.check", "--web.config.file="+webCfg, "--log.level=debug").CombinedOutput()
			require.NoError(t, err, "%s", out)
			require.Contains(t, string(out), "web config "+webCfg+" is valid")
			scan.scan("config check", tc.name+" --config.check output", out)
			// A web configuration with a password where its bcrypt hash
			// belongs is refused, naming the file and not the password.
			out, err = exec.Command(tc.bin, "--config.file="+tc.cfg, "--config.check", "--web.config.file="+badWebCfg).CombinedOutput()
			require.Error(t, err)
			require.Contains(t, string(out), badWebCfg)
			scan.scan("config check", tc.name+" --config.check output with a bad web config", out)
		}
	})

	gw := startBinary(t, "gateway", gwBin, "--config.file="+gatewayCfg, "--log.level=debug", "--shutdown.timeout=5s")
	require.Eventually(t, func() bool { return gw.get("/-/ready") == http.StatusOK }, 30*time.Second, 50*time.Millisecond, "gateway not ready")
	poller := startBinary(t, "poller", pollerBin, "--config.file="+pollerCfg, "--log.level=debug", "--shutdown.timeout=5s")
	require.Eventually(t, func() bool { return poller.get("/-/ready") == http.StatusOK }, 30*time.Second, 50*time.Millisecond, "poller not ready")
	// A poller whose NATS password is wrong: it keeps retrying, and says so.
	badNATSCfg := write("poller-bad-nats.yml", strings.Replace(string(mustRead(t, pollerCfg)), "password_file: nats-poller-password", "password: "+natsWrongPW, 1))
	badNATS := startBinary(t, "poller with a wrong NATS password", pollerBin, "--config.file="+badNATSCfg, "--log.level=debug", "--poller.id=badnats")

	// Polls flow: both good BMCs reach both accepting sinks, the wrong
	// credentials are refused by the BMC, and the wrong sink by the
	// receiver.
	good := fcfg.Count - 1
	require.Eventually(t, func() bool { return rcv.bmcsUp("/basic") >= good && rcv.bmcsUp("/bearer") >= good }, 60*time.Second, 100*time.Millisecond,
		"samples reach the sinks")
	require.Eventually(t, func() bool {
		var st struct {
			BMCs []struct {
				ID         string `json:"id"`
				ErrorClass string `json:"error_class"`
			} `json:"bmcs"`
		}
		if json.Unmarshal(poller.body(t, "/status?format=json"), &st) != nil {
			return false
		}
		for _, b := range st.BMCs {
			if b.ID == wrongID && b.ErrorClass == "auth" {
				return true
			}
		}
		return false
	}, 30*time.Second, 100*time.Millisecond, "the BMC with wrong credentials refuses them")
	require.Eventually(t, func() bool { rcv.mu.Lock(); defer rcv.mu.Unlock(); return rcv.refused > 0 }, 30*time.Second, 100*time.Millisecond)
	require.Eventually(t, func() bool {
		return strings.Contains(badNATS.stderr.String(), "nats connection failed") &&
			strings.Contains(strings.ToLower(badNATS.stderr.String()), "authorization violation")
	}, 20*time.Second, 50*time.Millisecond, "the refused NATS password is reported")
	require.NotEqual(t, http.StatusOK, badNATS.get("/-/ready"))
	// The auth error paths run a few more times (the poller backs off
	// refused credentials, so not many; the refused NATS password is
	// retried every 500 ms but logged once in a while): the gateway retries
	// the wrong sink three more times meanwhile.
	refused := func() int { rcv.mu.Lock(); defer rcv.mu.Unlock(); return rcv.refused }
	r0 := refused()
	testbed.Eventually(t, 30*time.Second, func() bool { return refused() >= r0+3 }, "the wrong sink refused three more times")

	for _, b := range []*subprocess{gw, poller, badNATS} {
		for _, path := range []string{"/metrics", "/status", "/status?format=json", "/debug/pprof/", "/-/healthy", "/-/ready"} {
			resp, err := http.Get("http://" + b.addr + path)
			require.NoError(t, err)
			body, err := io.ReadAll(resp.Body)
			require.NoError(t, err)
			require.NoError(t, resp.Body.Close())
			if path == "/debug/pprof/" {
				require.Equal(t, http.StatusOK, resp.StatusCode, "%s serves its profiles", b.name)
			}
			scan.scan("http page", b.name+" "+path, body)
		}
	}
	metrics := string(gw.body(t, "/metrics"))
	require.Contains(t, metrics, `remote_name="wrong"`, "the refused sink shows in the metrics")

	for _, b := range []*subprocess{poller, badNATS, gw} {
		b.stop(t)
	}
	require.NoError(t, admin.Flush())
	msgs.Wait()
	for _, b := range []*subprocess{gw, poller, badNATS} {
		scan.scan("log", b.name+" stdout", []byte(b.stdout.String()))
		scan.scan("log", b.name+" stderr", []byte(b.stderr.String()))
	}
	// The failures whose messages had a chance to leak did happen: the
	// refused BMC's snapshots carry its auth errors, over both protocols,
	// and the gateway logged the refused sink.
	authFailures.Lock()
	require.NotEmpty(t, authFailures.protocols[v1.Protocol_PROTOCOL_REDFISH], "a Redfish auth failure was published")
	require.NotEmpty(t, authFailures.protocols[v1.Protocol_PROTOCOL_IPMI], "an IPMI auth failure was published")
	authFailures.Unlock()
	require.Contains(t, gw.stderr.String(), "401")
	scan.report(t)
}

func mustBcrypt(t *testing.T, pw string) string {
	t.Helper()
	h, err := bcrypt.GenerateFromPassword([]byte(pw), bcrypt.MinCost)
	require.NoError(t, err)
	return string(h)
}

func mustRead(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	require.NoError(t, err)
	return b
}
