package e2e

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/require"

	"github.com/bmcstream/bmcstream/internal/testbed"
	"github.com/bmcstream/bmcstream/pkg/bmcsim/fleet"
	bmodel "github.com/bmcstream/bmcstream/pkg/bmcsim/model"
	"github.com/bmcstream/bmcstream/pkg/gateway"
	"github.com/bmcstream/bmcstream/pkg/poller"
)

// serverLog records what an embedded nats-server logs (permission
// violations among it) into a buffer.
type serverLog struct{ w io.Writer }

func (l serverLog) logf(level, format string, v ...any) {
	fmt.Fprintf(l.w, "[%s] "+format+"\n", append([]any{level}, v...)...)
}
func (l serverLog) Noticef(format string, v ...any) { l.logf("INF", format, v...) }
func (l serverLog) Warnf(format string, v ...any)   { l.logf("WRN", format, v...) }
func (l serverLog) Fatalf(format string, v ...any)  { l.logf("FTL", format, v...) }
func (l serverLog) Errorf(format string, v ...any)  { l.logf("ERR", format, v...) }
func (l serverLog) Debugf(format string, v ...any)  { l.logf("DBG", format, v...) }
func (l serverLog) Tracef(format string, v ...any)  {}

// remoteWriteRecorder is a remote-write receiver that decodes what it gets
// and remembers the BMCs it saw bmc_up for.
type remoteWriteRecorder struct {
	mu   sync.Mutex
	bmcs map[string]bool
	auth []string // Authorization headers received
}

func (r *remoteWriteRecorder) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	wr, _, err := testbed.ReadWriteRequest(req)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.bmcs == nil {
		r.bmcs = map[string]bool{}
	}
	r.auth = append(r.auth, req.Header.Get("Authorization"))
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
			r.bmcs[bmc] = true
		}
	}
	w.WriteHeader(http.StatusNoContent)
}

func (r *remoteWriteRecorder) seen() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.bmcs)
}

// stopper cancels a Run and returns its error, once however often it is
// called.
func stopper(cancel context.CancelFunc, done <-chan error) func() error {
	var once sync.Once
	var err error
	return func() error {
		once.Do(func() { cancel(); err = <-done })
		return err
	}
}

// permissionsFile is the example the documentation shows.
var permissionsFile = filepath.Join("..", "examples", "nats-permissions.conf")

// startPermissionedNATS starts a JetStream server with the users and
// permissions of examples/nats-permissions.conf, exactly as written there;
// only the address and the store directory are the test's.
func startPermissionedNATS(t *testing.T, passwords map[string]string) (*server.Server, *testbed.SyncBuffer) {
	t.Helper()
	for user, pw := range passwords {
		t.Setenv("BMCSTREAM_NATS_"+strings.ToUpper(user)+"_PASSWORD", pw)
	}
	opts, err := server.ProcessConfigFile(permissionsFile)
	require.NoError(t, err)
	opts.Host, opts.Port = "127.0.0.1", server.RANDOM_PORT
	opts.JetStream, opts.StoreDir = true, t.TempDir()
	opts.NoSigs = true
	srv, err := server.NewServer(opts)
	require.NoError(t, err)
	logs := &testbed.SyncBuffer{}
	srv.SetLoggerV2(serverLog{logs}, true, false, false)
	srv.Start()
	require.True(t, srv.ReadyForConnections(10*time.Second))
	t.Cleanup(func() {
		srv.Shutdown()
		srv.WaitForShutdown()
		if t.Failed() {
			t.Logf("nats-server log:\n%s", logs.String())
		}
	})
	return srv, logs
}

// TestDocumentedPermissionsRunThePipeline runs a real poller (dynamic
// sharding, so its membership bucket is used) and a real gateway (with a
// KV inventory bucket and the automation stream) against a server whose
// users have exactly the permissions docs/security.md documents: snapshots
// flow to the remote-write sink and to an automation consumer, and the
// server reports no permission violation. Then each user is shown to be
// refused what it was not given.
func TestDocumentedPermissionsRunThePipeline(t *testing.T) {
	spansPrograms(t)
	conf, err := os.ReadFile(permissionsFile)
	require.NoError(t, err)
	doc, err := os.ReadFile(filepath.Join("..", "docs", "security.md"))
	require.NoError(t, err)
	require.Contains(t, string(doc), string(conf), "docs/security.md shows examples/nats-permissions.conf as it is")

	pw := map[string]string{"poller": "perm-poller-pw-1", "gateway": "perm-gateway-pw-2", "automation": "perm-automation-pw-3"}
	srv, serverLogs := startPermissionedNATS(t, pw)
	url := srv.ClientURL()

	fcfg := fleet.DefaultConfig
	fcfg.Count = 2
	fcfg.Mix = map[string]int{"openbmc": 1, "idrac": 1}
	fcfg.Protocols = "redfish"
	fcfg.FirstAddress = netip.MustParseAddr("127.72.0.1")
	sim := testbed.StartSimFleet(t, fcfg, time.Second)

	rw := &remoteWriteRecorder{}
	rwSrv := httptest.NewServer(rw)
	t.Cleanup(rwSrv.Close)

	// The automation consumer listens first.
	auto, err := nats.Connect(url, nats.UserInfo("automation", pw["automation"]))
	require.NoError(t, err)
	t.Cleanup(auto.Close)
	var normMu sync.Mutex
	norm := map[string]bool{}
	_, err = auto.Subscribe("bmc.v1.norm.>", func(m *nats.Msg) {
		normMu.Lock()
		norm[m.Subject] = true
		normMu.Unlock()
	})
	require.NoError(t, err)
	events := make(chan string, 64)
	_, err = auto.Subscribe("bmc.v1.events.>", func(m *nats.Msg) {
		select {
		case events <- m.Subject:
		default:
		}
	})
	require.NoError(t, err)
	require.NoError(t, auto.Flush())

	gwLogs, pollerLogs := &testbed.SyncBuffer{}, &testbed.SyncBuffer{}
	gcfg, err := gateway.ParseConfig([]byte(fmt.Sprintf(`
nats:
  url: %s
  user: gateway
  password: %s
  inbox_prefix: _INBOX_gateway
inventory:
  files: [%s]
  kv_bucket: bmcstream_inventory
remote_write:%s`, url, pw["gateway"], sim.InvFile, sinkYAML("prom", rwSrv.URL))))
	require.NoError(t, err)
	gw, err := gateway.New(gcfg, gateway.Options{Logger: slog.New(slog.NewTextHandler(gwLogs, nil)), Registerer: prometheus.NewRegistry(), Version: "test", ShutdownTimeout: 5 * time.Second})
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	gdone := make(chan error, 1)
	go func() { gdone <- gw.Run(ctx) }()
	stopGateway := stopper(cancel, gdone)
	defer func() {
		if err := stopGateway(); err != nil {
			t.Errorf("gateway: %v", err)
		}
	}()
	require.Eventually(t, gw.Ready, 20*time.Second, 20*time.Millisecond, "gateway ready; its log:\n%s", gwLogs)

	pcfg, err := poller.ParseConfig([]byte(fmt.Sprintf(`
poller_id: perm
nats:
  url: %s
  user: poller
  password: %s
  inbox_prefix: _INBOX_poller
inventory:
  files: [%s]
  credentials_file: %s
sharding:
  mode: dynamic
  ttl: 2s
`, url, pw["poller"], sim.InvFile, sim.CredFile)))
	require.NoError(t, err)
	plog := slog.New(slog.NewTextHandler(pollerLogs, nil))
	p, err := poller.New(pcfg, poller.Options{Logger: plog, Registerer: prometheus.NewRegistry(), NewSource: poller.DefaultSources(pcfg, plog), ShutdownTimeout: 5 * time.Second})
	require.NoError(t, err)
	pctx, pcancel := context.WithCancel(context.Background())
	pdone := make(chan error, 1)
	go func() { pdone <- p.Run(pctx) }()
	stopPoller := stopper(pcancel, pdone)
	defer func() {
		if err := stopPoller(); err != nil {
			t.Errorf("poller: %v", err)
		}
	}()

	require.Eventually(t, func() bool { return rw.seen() == fcfg.Count }, 30*time.Second, 50*time.Millisecond,
		"every BMC reaches the sink; poller log:\n%s\ngateway log:\n%s", pollerLogs, gwLogs)
	require.Eventually(t, func() bool { normMu.Lock(); defer normMu.Unlock(); return len(norm) == fcfg.Count }, 20*time.Second, 50*time.Millisecond,
		"every BMC reaches the automation consumer")
	// A failed fan is an event on bmc.v1.events.<site>.<rack>.<bmc>.
	m, ok := sim.Fleet.Get("bmc-00001")
	require.True(t, ok)
	m.BMC.SetFaults(bmodel.Faults{FanFailed: 1})
	select {
	case subj := <-events:
		require.True(t, strings.HasPrefix(subj, "bmc.v1.events."), subj)
	case <-time.After(20 * time.Second):
		t.Fatal("no event reached the automation consumer")
	}

	// A few more heartbeats of the membership bucket, then a shutdown
	// (the poller leaves the membership, the gateway stops its consumers
	// and its bucket watch).
	// The server counts them in the bucket's stream, read in process (a
	// client would need permissions of its own).
	heartbeats := func() uint64 {
		jsz, err := srv.Jsz(&server.JSzOptions{Accounts: true, Streams: true})
		require.NoError(t, err)
		for _, acc := range jsz.AccountDetails {
			for _, st := range acc.Streams {
				if st.Name == "KV_bmcstream_pollers" {
					return st.State.LastSeq
				}
			}
		}
		return 0
	}
	seen := heartbeats()
	require.Positive(t, seen, "the poller joined the membership bucket")
	testbed.Eventually(t, 20*time.Second, func() bool { return heartbeats() >= seen+3 }, "three more heartbeats")
	require.NoError(t, stopPoller())
	require.NoError(t, stopGateway())
	for who, logs := range map[string]string{"nats-server": serverLogs.String(), "poller": pollerLogs.String(), "gateway": gwLogs.String()} {
		require.NotContains(t, strings.ToLower(logs), "violation", "%s log:\n%s", who, logs)
	}

	t.Run("refused", func(t *testing.T) {
		for _, tc := range []struct {
			user string
			// publish and subscribe are subjects this user must not use.
			publish, subscribe []string
		}{
			{"poller", []string{"bmc.v1.norm.x.y.z", "bmc.v1.events.x.y.z", "$JS.API.STREAM.DELETE.BMC_RAW", "$JS.API.CONSUMER.CREATE.BMC_RAW.steal"}, []string{"bmc.v1.raw.>", "bmc.v1.norm.>", "_INBOX.>", "_INBOX_gateway.>"}},
			{"gateway", []string{"bmc.v1.raw.forged", "$JS.API.STREAM.DELETE.BMC_RAW", "$KV.bmcstream_pollers.x"}, []string{"bmc.v1.raw.>", "_INBOX_poller.>"}},
			{"automation", []string{"bmc.v1.raw.forged", "bmc.v1.events.x.y.z", "$JS.API.STREAM.INFO.BMC_RAW"}, []string{"bmc.v1.raw.>", "_INBOX_gateway.>", "$KV.>"}},
		} {
			t.Run(tc.user, func(t *testing.T) {
				errs := make(chan error, 16)
				nc, err := nats.Connect(url, nats.UserInfo(tc.user, pw[tc.user]),
					nats.ErrorHandler(func(_ *nats.Conn, _ *nats.Subscription, err error) {
						select {
						case errs <- err:
						default:
						}
					}))
				require.NoError(t, err)
				defer nc.Close()
				expect := func(what string) {
					t.Helper()
					select {
					case err := <-errs:
						require.ErrorIs(t, err, nats.ErrPermissionViolation, what)
						require.Contains(t, strings.ToLower(err.Error()), strings.ToLower(what))
					case <-time.After(5 * time.Second):
						t.Fatalf("%s was not refused", what)
					}
				}
				for _, s := range tc.publish {
					require.NoError(t, nc.Publish(s, []byte("x")))
					require.NoError(t, nc.Flush())
					expect(fmt.Sprintf("publish to %q", s))
				}
				for _, s := range tc.subscribe {
					_, err := nc.SubscribeSync(s)
					require.NoError(t, err)
					require.NoError(t, nc.Flush())
					expect(fmt.Sprintf("subscription to %q", s))
				}
			})
		}
	})

}
