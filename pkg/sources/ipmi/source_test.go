package ipmi

import (
	"bytes"
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/bougou/go-ipmi/pkg/client"
	"github.com/bougou/go-ipmi/pkg/types"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	bsipmi "github.com/bmcstream/bmcstream/pkg/bmcsim/ipmi"
	"github.com/bmcstream/bmcstream/pkg/bmcsim/model"
	"github.com/bmcstream/bmcstream/pkg/secret"
	"github.com/bmcstream/bmcstream/pkg/sources"
	v1 "github.com/bmcstream/bmcstream/proto/bmcstream/v1"
)

var update = flag.Bool("update", false, "rewrite the golden files and fuzz seeds under testdata/")

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// testPassword is distinctive so that a leak into an error or a log line
// is found by a plain substring search.
const testPassword = "Zq9-sEcReT-7xW"

// testInstant is the instant every frozen clock reads.
func testInstant() time.Time { return time.Date(2026, 11, 21, 12, 0, 0, 0, time.UTC) }

// fakeClock is a clock tests move by hand, shared by bmcsim and the Source.
type fakeClock struct{ ns atomic.Int64 }

func newFakeClock() *fakeClock {
	c := &fakeClock{}
	c.ns.Store(testInstant().UnixNano())
	return c
}

func (c *fakeClock) Now() time.Time          { return time.Unix(0, c.ns.Load()).UTC() }
func (c *fakeClock) Advance(d time.Duration) { c.ns.Add(int64(d)) }

// countingConn counts the datagrams a BMC receives: every IPMI request,
// retransmissions included.
type countingConn struct {
	net.PacketConn
	n atomic.Int64
}

func (c *countingConn) ReadFrom(b []byte) (int, net.Addr, error) {
	n, addr, err := c.PacketConn.ReadFrom(b)
	if err == nil {
		c.n.Add(1)
	}
	return n, addr, err
}

// sim is a bmcsim virtual BMC serving IPMI on loopback.
type sim struct {
	b    *model.BMC
	srv  *bsipmi.Server
	port int
	conn *countingConn
}

// startSim serves a virtual BMC of a built-in personality until the test
// ends.
func startSim(t *testing.T, personality string, now func() time.Time) *sim {
	t.Helper()
	ps, err := model.Builtin()
	require.NoError(t, err)
	p, ok := ps[personality]
	require.True(t, ok, personality)
	b := model.NewBMC("bmc-"+personality, "r01", p, model.Room{Seed: 7}, "operator", testPassword)
	srv, err := bsipmi.New(b, bsipmi.Options{Now: now})
	require.NoError(t, err)
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	require.NoError(t, err)
	cc := &countingConn{PacketConn: pc}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(context.Background(), cc) }()
	t.Cleanup(func() {
		require.NoError(t, srv.Close())
		if err := <-errc; !errors.Is(err, bsipmi.ErrClosed) { // closed before Serve began: fine
			require.NoError(t, err)
		}
	})
	return &sim{b: b, srv: srv, port: pc.LocalAddr().(*net.UDPAddr).Port, conn: cc}
}

// target is the sim's address with its credentials.
func (s *sim) target() sources.Target {
	return sources.Target{Host: "127.0.0.1", Port: s.port, Username: s.b.Username, Password: secret.Secret(s.b.Password)}
}

// newSource makes a Source for a sim, closed at cleanup.
func newSource(t *testing.T, tg sources.Target, opts Options) *Source {
	t.Helper()
	src := New(tg, opts)
	t.Cleanup(func() { _ = src.Close(context.Background()) })
	return src
}

// collect polls once and returns the snapshot, its error and the number
// of requests it cost, as the BMC counted them.
func collect(t *testing.T, ctx context.Context, src *Source, s *sim) (*v1.Snapshot, int, error) {
	t.Helper()
	var snap v1.Snapshot
	before := s.conn.n.Load()
	err := src.Collect(ctx, &snap)
	return &snap, int(s.conn.n.Load() - before), err
}

// ipmiSpecs returns the model sensors a BMC's SDR holds, by SDR ID.
func ipmiSpecs(p *model.Personality) map[string]int {
	out := map[string]int{}
	for i, id := range bsipmi.SensorIDs(p) {
		if id != "" && !p.Sensors[i].Absent {
			out[id] = i
		}
	}
	return out
}

// TestPersonalities polls every built-in personality of bmcsim at a frozen
// instant: the snapshot matches its golden file and the model, a DCMI BMC
// adds the chassis input power, and with the SDR cached a poll costs one
// request per sensor plus Get Chassis Status (plus DCMI when supported).
func TestPersonalities(t *testing.T) {
	ps, err := model.Builtin()
	require.NoError(t, err)
	for _, name := range model.Names(ps) {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			at := testInstant()
			s := startSim(t, name, func() time.Time { return at })
			p := s.b.Personality
			src := newSource(t, s.target(), Options{Now: func() time.Time { return at }})
			ctx := context.Background()

			snap, firstCost, err := collect(t, ctx, src, s)
			require.NoError(t, err)
			require.True(t, snap.Up)
			require.False(t, snap.Partial)
			require.Equal(t, v1.Protocol_PROTOCOL_IPMI, snap.Protocol)
			checkGolden(t, name, snap)

			// The readings against the model, within the SDR's resolution.
			specs := ipmiSpecs(p)
			values := s.b.Readings(at)
			steps := map[string]float64{}
			for _, sn := range src.repo.sensors {
				steps[sn.id] = sn.conv.step()
			}
			var dcmi int
			disc := map[string]*model.DiscreteSpec{}
			for _, d := range p.Discrete() {
				disc[d.Name] = &d
			}
			for _, r := range snap.Readings {
				if d, ok := disc[r.Name]; ok {
					// A discrete sensor: its states as the model sets them,
					// named, and healthy without faults.
					require.Equal(t, v1.Kind_KIND_DISCRETE, r.Kind, r.Name)
					require.Equal(t, float64(s.b.DiscreteState(d)), r.Value, r.Name)
					require.Equal(t, fmt.Sprintf("0x%02x", d.Number), r.Id)
					require.Equal(t, uint32(d.Entity), r.EntityId, r.Name)
					require.Equal(t, uint32(d.Instance), r.EntityInstance, r.Name)
					require.Equal(t, map[string]string{model.RolePSU: "presence_detected", model.RoleProcessor: "presence_detected",
						model.RoleFanRedundancy: "fully_redundant"}[d.Role], r.State, r.Name)
					require.Equal(t, v1.Health_HEALTH_OK, r.Health, r.Name)
					delete(disc, r.Name)
					continue
				}
				if r.SensorType == "PowerControl" {
					dcmi++
					require.Equal(t, s.b.ChassisPower(at), r.Value, "DCMI power")
					require.Equal(t, v1.Kind_KIND_POWER, r.Kind)
					require.Equal(t, "Watts", r.Unit)
					continue
				}
				i, ok := specs[r.Name]
				require.True(t, ok, "reading %q is not a model sensor", r.Name)
				spec, want := &p.Sensors[i], values[i]
				tol := steps[r.Id]/2 + 1e-9
				require.InDelta(t, want.Value, r.Value, tol, r.Name)
				require.Equal(t, fmt.Sprintf("0x%02x", spec.IPMI.Number), r.Id)
				require.Equal(t, uint32(spec.IPMI.Entity), r.EntityId, r.Name)
				require.Equal(t, uint32(spec.IPMI.Instance), r.EntityInstance, r.Name)
				require.Equal(t, map[string]v1.Health{"OK": v1.Health_HEALTH_OK, "Warning": v1.Health_HEALTH_WARNING,
					"Critical": v1.Health_HEALTH_CRITICAL}[want.Health], r.Health, r.Name)
				require.Len(t, r.Thresholds, len(spec.Thresholds), r.Name)
				for _, th := range r.Thresholds {
					key := strings.ToLower(strings.TrimPrefix(th.Kind.String(), "THRESHOLD_"))
					require.InDelta(t, spec.Thresholds[key], th.Value, tol, "%s %s", r.Name, key)
				}
				delete(specs, r.Name)
			}
			require.Empty(t, specs, "model sensors missing from the snapshot")
			require.Empty(t, disc, "discrete sensors missing from the snapshot")
			require.Equal(t, map[bool]int{true: 1, false: 0}[p.IPMI.DCMI], dcmi, "DCMI readings")

			require.Equal(t, fmt.Sprint(p.IPMI.ManufacturerID), snap.Info["manufacturer_id"])
			require.Equal(t, fmt.Sprint(p.IPMI.ProductID), snap.Info["product_id"])
			require.Equal(t, "On", snap.Info["power_state"])
			require.Equal(t, "false", snap.Info["chassis_cooling_fault"])
			wantGUID := fmt.Sprintf("%x-%x-%x-%x-%x", s.b.UUID[0:4], s.b.UUID[4:6], s.b.UUID[6:8], s.b.UUID[8:10], s.b.UUID[10:16])
			require.Equal(t, wantGUID, snap.Info["guid"], "the GUID matches the model's (and Redfish's) UUID")

			// Steady state: with the SDR cached, one request per sensor,
			// chassis status, and DCMI only where supported; ami refused
			// DCMI once and is not asked again.
			want := len(src.repo.sensors) + 1
			if p.IPMI.DCMI {
				want++
			}
			for range 2 {
				counted := src.Stats().Requests
				snap2, cost, err := collect(t, ctx, src, s)
				require.NoError(t, err)
				require.Equal(t, want, cost, "requests per poll")
				require.Equal(t, uint64(want), src.Stats().Requests-counted, "requests the Source counted")
				require.Equal(t, len(snap.Readings), len(snap2.Readings))
			}
			require.Greater(t, firstCost, want, "the first poll opens the session and reads the SDR")
			t.Logf("%s: first poll %d requests, then %d per poll (%d sensors)", name, firstCost, want, len(src.repo.sensors))
			require.Equal(t, uint64(1), src.Stats().SDRReads)
			require.Equal(t, 1, s.srv.SessionCount())

			if *update {
				writeSeeds(t, ctx, src, name)
			}
			require.NoError(t, src.Close(ctx))
			require.Zero(t, s.srv.SessionCount(), "Close ends the session")
		})
	}
}

// goldenReading is a reading as the golden files show it: enums by name.
type goldenReading struct {
	Name           string             `json:"name"`
	ID             string             `json:"id"`
	Kind           string             `json:"kind"`
	Unit           string             `json:"unit"`
	Value          float64            `json:"value"`
	SensorType     string             `json:"sensor_type"`
	EntityID       uint32             `json:"entity_id"`
	EntityInstance uint32             `json:"entity_instance"`
	Health         string             `json:"health"`
	State          string             `json:"state"`
	Thresholds     map[string]float64 `json:"thresholds,omitempty"`
}

type goldenSnapshot struct {
	Up       bool              `json:"up"`
	Partial  bool              `json:"partial"`
	Info     map[string]string `json:"info"`
	Readings []goldenReading   `json:"readings"`
}

func toGolden(snap *v1.Snapshot) goldenSnapshot {
	g := goldenSnapshot{Up: snap.Up, Partial: snap.Partial, Info: snap.Info, Readings: []goldenReading{}}
	for _, r := range snap.Readings {
		gr := goldenReading{
			Name: r.Name, ID: r.Id, Kind: r.Kind.String(), Unit: r.Unit, Value: r.Value,
			SensorType: r.SensorType, EntityID: r.EntityId, EntityInstance: r.EntityInstance,
			Health: r.Health.String(), State: r.State,
		}
		for _, th := range r.Thresholds {
			if gr.Thresholds == nil {
				gr.Thresholds = map[string]float64{}
			}
			gr.Thresholds[th.Kind.String()] = th.Value
		}
		g.Readings = append(g.Readings, gr)
	}
	return g
}

// checkGolden compares a snapshot with testdata/golden/<name>.json, or
// rewrites it with -update.
func checkGolden(t *testing.T, name string, snap *v1.Snapshot) {
	t.Helper()
	got, err := json.MarshalIndent(toGolden(snap), "", "  ")
	require.NoError(t, err)
	got = append(got, '\n')
	path := filepath.Join("testdata", "golden", name+".json")
	if *update {
		require.NoError(t, os.MkdirAll(filepath.Dir(path), 0o755))
		require.NoError(t, os.WriteFile(path, got, 0o644))
		return
	}
	want, err := os.ReadFile(path)
	require.NoError(t, err, "golden file missing: run go test -run %s ./pkg/sources/ipmi -update", t.Name())
	require.Equal(t, string(want), string(got), "snapshot differs from %s (-update rewrites it)", path)
}

// writeSeeds dumps a BMC's SDR records as fuzz seeds, one hex record per
// line, into testdata/sdr/<name>.hex.
func writeSeeds(t *testing.T, ctx context.Context, src *Source, name string) {
	t.Helper()
	sc := &scanState{}
	var buf bytes.Buffer
	for sc.next != 0xFFFF {
		rec, next, err := src.readRecord(ctx, sc, sc.next)
		require.NoError(t, err)
		fmt.Fprintln(&buf, hex.EncodeToString(rec))
		sc.next = next
	}
	writeSeedFile(t, name, buf.Bytes())
}

func writeSeedFile(t *testing.T, name string, b []byte) {
	t.Helper()
	path := filepath.Join("testdata", "sdr", name+".hex")
	require.NoError(t, os.MkdirAll(filepath.Dir(path), 0o755))
	require.NoError(t, os.WriteFile(path, b, 0o644))
}

// TestSessionHygiene polls a BMC a thousand times on one session, then
// closes it: the BMC never holds more than that one session, and none
// after Close.
func TestSessionHygiene(t *testing.T) {
	t.Parallel()
	at := testInstant()
	s := startSim(t, "supermicro", func() time.Time { return at })
	src := newSource(t, s.target(), Options{Now: func() time.Time { return at }})
	ctx := context.Background()
	var snap v1.Snapshot
	for i := range 1000 {
		snap.Readings = snap.Readings[:0]
		require.NoError(t, src.Collect(ctx, &snap), "poll %d", i)
		if i%100 == 0 {
			require.Equal(t, 1, s.srv.SessionCount(), "poll %d", i)
		}
	}
	require.Equal(t, 1, s.srv.SessionCount())
	st := src.Stats()
	require.Equal(t, uint64(1), st.Sessions)
	require.Zero(t, st.Reconnects)
	require.NoError(t, src.Close(ctx))
	require.NoError(t, src.Close(ctx), "Close twice")
	require.Zero(t, s.srv.SessionCount())
	err := src.Collect(ctx, &snap)
	require.ErrorContains(t, err, "source closed")
}

// TestDeadSession drops every session on the BMC (as a reset or an idle
// expiry does): the next poll finds its session silent, replaces it once
// and succeeds, and the BMC holds one session again.
func TestDeadSession(t *testing.T) {
	t.Parallel()
	at := testInstant()
	s := startSim(t, "idrac", func() time.Time { return at })
	src := newSource(t, s.target(), Options{Now: func() time.Time { return at }, RequestTimeout: 150 * time.Millisecond})
	ctx := context.Background()
	first, _, err := collect(t, ctx, src, s)
	require.NoError(t, err)

	s.b.SetFaults(model.Faults{DropIPMISessions: true})
	start := time.Now()
	snap, _, err := collect(t, ctx, src, s)
	require.NoError(t, err)
	require.True(t, snap.Up)
	require.False(t, snap.Partial)
	require.Len(t, snap.Readings, len(first.Readings), "the retried poll read everything")
	require.Less(t, time.Since(start), 2*time.Second)
	st := src.Stats()
	require.Equal(t, uint64(1), st.Reconnects)
	require.Equal(t, uint64(2), st.Sessions)
	require.Equal(t, uint64(1), st.SDRReads, "the SDR cache survives the new session (its fingerprint held)")
	require.Equal(t, 1, s.srv.SessionCount())

	_, _, err = collect(t, ctx, src, s)
	require.NoError(t, err)
	require.Equal(t, uint64(1), src.Stats().Reconnects, "one reconnect, not one per poll")
}

// TestExpiredSession lets a session idle past the session timeout: the
// next poll replaces it without waiting for a request to time out.
func TestExpiredSession(t *testing.T) {
	clk := newFakeClock()
	s := startSim(t, "xcc", clk.Now)
	src := newSource(t, s.target(), Options{Now: clk.Now, RequestTimeout: 5 * time.Second})
	ctx := context.Background()
	_, _, err := collect(t, ctx, src, s)
	require.NoError(t, err)

	clk.Advance(DefaultSessionTimeout + 4*time.Second) // bmcsim expires it at 63 s
	start := time.Now()
	_, _, err = collect(t, ctx, src, s)
	require.NoError(t, err)
	require.Less(t, time.Since(start), time.Second, "no request timed out")
	st := src.Stats()
	require.Equal(t, uint64(1), st.Expired)
	require.Zero(t, st.Reconnects)
	require.Equal(t, 1, s.srv.SessionCount())
}

// TestKeepAlive checks that KeepAlive is silent while the session is
// fresh, sends one cheap request once it has idled for Options.KeepAlive,
// and so keeps the session across a gap longer than the BMC's timeout.
func TestKeepAlive(t *testing.T) {
	clk := newFakeClock()
	s := startSim(t, "openbmc", clk.Now)
	src := newSource(t, s.target(), Options{Now: clk.Now})
	ctx := context.Background()
	_, _, err := collect(t, ctx, src, s)
	require.NoError(t, err)

	tests := []struct {
		advance time.Duration
		sends   int64
	}{
		{advance: 10 * time.Second, sends: 0},
		{advance: 25 * time.Second, sends: 1}, // 35 s idle
		{advance: 5 * time.Second, sends: 0},
		{advance: 40 * time.Second, sends: 1},
		{advance: 40 * time.Second, sends: 1}, // 115 s since the poll
	}
	for i, tc := range tests {
		clk.Advance(tc.advance)
		before := s.conn.n.Load()
		require.NoError(t, src.KeepAlive(ctx), "step %d", i)
		require.Equal(t, tc.sends, s.conn.n.Load()-before, "step %d", i)
	}
	snap, _, err := collect(t, ctx, src, s)
	require.NoError(t, err)
	require.NotEmpty(t, snap.Readings)
	require.Equal(t, uint64(1), src.Stats().Sessions, "the session survived 115 s")
	require.Equal(t, 1, s.srv.SessionCount())

	require.NoError(t, src.Close(ctx))
	require.NoError(t, src.KeepAlive(ctx), "KeepAlive on a closed Source does nothing")
}

// TestPollDeadline slows the BMC down so the poll deadline passes mid-poll:
// the snapshot holds what was read, Up and Partial, with a timeout error.
func TestPollDeadline(t *testing.T) {
	t.Parallel()
	at := testInstant()
	s := startSim(t, "ilo", func() time.Time { return at })
	src := newSource(t, s.target(), Options{Now: func() time.Time { return at }})
	ctx := context.Background()
	full, _, err := collect(t, ctx, src, s)
	require.NoError(t, err)

	s.b.SetFaults(model.Faults{LatencyMedianMs: 25})
	dctx, cancel := context.WithTimeout(ctx, 220*time.Millisecond)
	defer cancel()
	snap, _, err := collect(t, dctx, src, s)
	require.Error(t, err)
	require.Equal(t, sources.ClassTimeout, sources.ClassOf(err))
	require.Equal(t, "timeout", snap.ErrorClass)
	require.Contains(t, snap.Error, "poll deadline")
	t.Logf("%s: %d of %d readings", err, len(snap.Readings), len(full.Readings))
	require.True(t, snap.Up)
	require.True(t, snap.Partial)
	require.NotEmpty(t, snap.Readings)
	require.Less(t, len(snap.Readings), len(full.Readings))

	// The session is still good: a poll with time enough completes.
	s.b.SetFaults(model.Faults{})
	snap, _, err = collect(t, ctx, src, s)
	require.NoError(t, err)
	require.Len(t, snap.Readings, len(full.Readings))
	require.Zero(t, src.Stats().Reconnects)
	require.Equal(t, 1, s.srv.SessionCount())
}

// TestConnectErrors checks the classification of failures to open a
// session, and that the password appears in no error, log line or
// formatted value on the way.
func TestConnectErrors(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name  string
		setup func(t *testing.T, s *sim, tg *sources.Target)
		class sources.Class
		up    bool
		// sessions is what the BMC holds afterwards; -1 skips the check.
		sessions int
	}{
		{
			name:  "wrong password",
			setup: func(_ *testing.T, _ *sim, tg *sources.Target) { tg.Password = "Wr0ng-" + testPassword },
			class: sources.ClassAuth, up: true, sessions: 0, // RAKP 3 told the BMC to drop it
		},
		{
			name:  "unknown user",
			setup: func(_ *testing.T, _ *sim, tg *sources.Target) { tg.Username = "intruder" },
			class: sources.ClassAuth, up: true, sessions: -1,
		},
		{
			name: "session limit",
			setup: func(t *testing.T, s *sim, _ *sources.Target) {
				for range s.b.Personality.IPMI.SessionLimit {
					fillSession(t, s)
				}
			},
			class: sources.ClassSessionLimit, up: true, sessions: -1,
		},
		{
			name:     "black hole",
			setup:    func(_ *testing.T, s *sim, _ *sources.Target) { s.b.SetFaults(model.Faults{BlackHole: true}) },
			class:    sources.ClassTimeout,
			sessions: 0,
		},
		{
			name:     "down",
			setup:    func(_ *testing.T, s *sim, _ *sources.Target) { s.b.SetFaults(model.Faults{Down: true}) },
			class:    sources.ClassTimeout,
			sessions: 0,
		},
		{
			name: "port unreachable",
			setup: func(t *testing.T, _ *sim, tg *sources.Target) {
				pc, err := net.ListenPacket("udp", "127.0.0.1:0")
				require.NoError(t, err)
				tg.Port = pc.LocalAddr().(*net.UDPAddr).Port
				require.NoError(t, pc.Close()) // nothing listens: ICMP port unreachable
			},
			class: sources.ClassUnreachable, sessions: 0,
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			s := startSim(t, "supermicro", testInstant)
			tg := s.target()
			tc.setup(t, s, &tg)
			var logs bytes.Buffer
			opts := Options{
				RequestTimeout: 100 * time.Millisecond,
				Logger:         slog.New(slog.NewJSONHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
			}
			src := newSource(t, tg, opts)
			var snap v1.Snapshot
			start := time.Now()
			err := src.Collect(context.Background(), &snap)
			require.Error(t, err)
			require.Less(t, time.Since(start), time.Second, "a failure is reported promptly")
			var se *sources.Error
			require.True(t, errors.As(err, &se), "Collect returns a *sources.Error")
			require.Equal(t, tc.class, se.Class, "%v", err)
			t.Logf("%s", err)
			require.Equal(t, string(tc.class), snap.ErrorClass)
			require.Equal(t, err.Error(), snap.Error)
			require.Equal(t, tc.up, snap.Up)
			require.False(t, snap.Partial)
			require.Empty(t, snap.Readings)
			if tc.sessions >= 0 {
				require.Equal(t, tc.sessions, s.srv.SessionCount())
			}
			require.NoError(t, src.Close(context.Background()))

			for _, out := range []string{err.Error(), snap.Error, logs.String(),
				fmt.Sprintf("%v %+v %#v", src, src, tg), fmt.Sprint(src.Stats())} {
				require.NotContains(t, out, testPassword)
			}
		})
	}
}

// fillSession occupies one of the BMC's session slots with a go-ipmi
// client until the test ends.
func fillSession(t *testing.T, s *sim) {
	t.Helper()
	c, err := client.NewClient("127.0.0.1", s.port, s.b.Username, s.b.Password)
	require.NoError(t, err)
	c.WithCipherSuiteID(types.CipherSuiteID3).WithMaxPrivilegeLevel(types.PrivilegeLevelUser).WithTimeout(time.Second)
	require.NoError(t, c.Connect(context.Background()))
	t.Cleanup(func() { _ = c.Close(context.Background()) })
}

// TestTransientOutage makes an established session's BMC go silent: the
// poll fails as a timeout (not up), the BMC is not flooded, and once it
// answers again the next poll opens a new session and succeeds.
func TestTransientOutage(t *testing.T) {
	t.Parallel()
	at := testInstant()
	s := startSim(t, "ami", func() time.Time { return at })
	src := newSource(t, s.target(), Options{Now: func() time.Time { return at }, RequestTimeout: 100 * time.Millisecond})
	ctx := context.Background()
	_, _, err := collect(t, ctx, src, s)
	require.NoError(t, err)

	s.b.SetFaults(model.Faults{BlackHole: true})
	snap, sent, err := collect(t, ctx, src, s)
	t.Logf("%s (%d packets)", err, sent)
	require.Equal(t, sources.ClassTimeout, sources.ClassOf(err))
	require.False(t, snap.Up)
	// 2 attempts of the first request, 1 Close Session, 2 probes after the
	// reconnect, 1 Close Session: a dead BMC costs a handful of packets.
	require.LessOrEqual(t, sent, 6)

	s.b.SetFaults(model.Faults{})
	snap, _, err = collect(t, ctx, src, s)
	require.NoError(t, err)
	require.True(t, snap.Up)
	require.NotEmpty(t, snap.Readings)
}

// TestPrivilegeAndCipherSuite opens sessions with cipher suite 17 at
// OPERATOR privilege (which takes Set Session Privilege Level).
func TestPrivilegeAndCipherSuite(t *testing.T) {
	at := testInstant()
	s := startSim(t, "openbmc", func() time.Time { return at })
	src := newSource(t, s.target(), Options{Now: func() time.Time { return at }, CipherSuite: 17, Privilege: PrivilegeOperator})
	snap, _, err := collect(t, context.Background(), src, s)
	require.NoError(t, err)
	require.NotEmpty(t, snap.Readings)
}

// TestInvalidConfiguration checks that New's validation errors surface on
// Collect.
func TestInvalidConfiguration(t *testing.T) {
	tests := []struct {
		name string
		tg   sources.Target
		opts Options
		want string
	}{
		{name: "no host", tg: sources.Target{Username: "u"}, want: "host must be set"},
		{name: "cipher suite", tg: sources.Target{Host: "h"}, opts: Options{CipherSuite: 1}, want: "cipher suite 1"},
		{name: "privilege", tg: sources.Target{Host: "h"}, opts: Options{Privilege: 5}, want: "privilege 5"},
		{name: "keep-alive", tg: sources.Target{Host: "h"}, opts: Options{KeepAlive: time.Minute}, want: "keep-alive"},
		{name: "long user", tg: sources.Target{Host: "h", Username: "a-user-name-of-17b"}, want: "user name"},
		{name: "long password", tg: sources.Target{Host: "h", Password: "a-password-of-21-byte"}, want: "password longer"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			src := New(tc.tg, tc.opts)
			var snap v1.Snapshot
			err := src.Collect(context.Background(), &snap)
			require.ErrorContains(t, err, tc.want)
			require.Equal(t, sources.ClassProtocol, sources.ClassOf(err))
			require.NoError(t, src.Close(context.Background()))
		})
	}
	require.NoError(t, Options{}.Validate())
}

// TestSnapshotReuse polls into the same snapshot twice: owned fields and
// info keys are reset, readings appended after what the caller left.
func TestSnapshotReuse(t *testing.T) {
	at := testInstant()
	s := startSim(t, "supermicro", func() time.Time { return at })
	src := newSource(t, s.target(), Options{Now: func() time.Time { return at }})
	snap := &v1.Snapshot{Error: "stale", ErrorClass: "auth", Partial: true, Info: map[string]string{"power_state": "Off", "rack": "r01"}}
	require.NoError(t, src.Collect(context.Background(), snap))
	require.Empty(t, snap.Error)
	require.Empty(t, snap.ErrorClass)
	require.False(t, snap.Partial)
	require.Equal(t, "On", snap.Info["power_state"])
	require.Equal(t, "r01", snap.Info["rack"], "keys the Source does not own are kept")
	n := len(snap.Readings)
	require.NoError(t, src.Collect(context.Background(), snap))
	require.Len(t, snap.Readings, 2*n, "readings are appended")
}

// BenchmarkCollect measures a steady-state poll of a bmcsim BMC on
// loopback, its allocations included.
func BenchmarkCollect(b *testing.B) {
	ps, err := model.Builtin()
	require.NoError(b, err)
	at := testInstant()
	bmc := model.NewBMC("bench", "r01", ps["ilo"], model.Room{Seed: 7}, "operator", testPassword)
	srv, err := bsipmi.New(bmc, bsipmi.Options{Now: func() time.Time { return at }})
	require.NoError(b, err)
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	require.NoError(b, err)
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(context.Background(), pc) }()
	defer func() { _ = srv.Close(); <-errc }()
	src := New(sources.Target{Host: "127.0.0.1", Port: pc.LocalAddr().(*net.UDPAddr).Port, Username: "operator", Password: testPassword}, Options{})
	defer func() { _ = src.Close(context.Background()) }()
	ctx := context.Background()
	var snap v1.Snapshot
	require.NoError(b, src.Collect(ctx, &snap))
	b.ReportAllocs()
	for b.Loop() {
		snap.Readings = snap.Readings[:0]
		if err := src.Collect(ctx, &snap); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(len(snap.Readings)), "readings/op")
}

// TestScanResumes interrupts the first SDR repository read with the poll
// deadline: the next poll continues it where it stopped instead of
// starting over, so a large repository on a slow BMC is read eventually.
func TestScanResumes(t *testing.T) {
	at := testInstant()
	s := startSim(t, "ilo", func() time.Time { return at })
	src := newSource(t, s.target(), Options{Now: func() time.Time { return at }})
	s.b.SetFaults(model.Faults{LatencyMedianMs: 10})
	ctx := context.Background()
	dctx, cancel := context.WithTimeout(ctx, 350*time.Millisecond)
	defer cancel()
	snap, _, err := collect(t, dctx, src, s)
	require.Equal(t, sources.ClassTimeout, sources.ClassOf(err), "%v", err)
	require.True(t, snap.Up)
	require.True(t, snap.Partial)
	require.NotNil(t, src.scan, "the read is in progress")
	require.Positive(t, src.scan.records)
	require.Nil(t, src.repo)
	done := src.scan.records

	s.b.SetFaults(model.Faults{})
	snap, cost, err := collect(t, ctx, src, s)
	require.NoError(t, err)
	require.Len(t, snap.Readings, 16+len(s.b.Personality.Discrete())) // 15 threshold sensors, DCMI and the discrete sensors
	require.Nil(t, src.scan)
	require.Equal(t, uint64(1), src.Stats().SDRReads)
	// What a first poll costs without the head start: the resumed poll
	// saved at least a header and a chunk per record read before.
	fresh := newSource(t, s.target(), Options{Now: func() time.Time { return at }})
	_, freshCost, err := collect(t, ctx, fresh, s)
	require.NoError(t, err)
	require.LessOrEqual(t, cost, freshCost-2*done, "the records read before were not read again")
}

// TestInfoInterval checks the cadence of identity and repository checks:
// nothing extra within InfoInterval, three cheap requests after it while
// the repository is unchanged, and a new read when its fingerprint
// changes.
func TestInfoInterval(t *testing.T) {
	at := testInstant()
	s := startSim(t, "supermicro", func() time.Time { return at })
	clk := newFakeClock() // the Source's clock only: the BMC's stays frozen
	src := newSource(t, s.target(), Options{Now: clk.Now, InfoInterval: time.Minute, SessionTimeout: time.Hour})
	ctx := context.Background()
	_, _, err := collect(t, ctx, src, s)
	require.NoError(t, err)
	steady := len(src.repo.sensors) + 2 // chassis and DCMI

	tests := []struct {
		name    string
		advance time.Duration
		tamper  bool
		cost    int
		reads   uint64
	}{
		{name: "within the interval", advance: 30 * time.Second, cost: steady, reads: 1},
		{name: "interval passed, repository unchanged", advance: 31 * time.Second, cost: steady + 3, reads: 1},
		{name: "right after", advance: time.Second, cost: steady, reads: 1},
		{name: "repository changed", advance: time.Minute, tamper: true, reads: 2},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			clk.Advance(tc.advance)
			if tc.tamper {
				src.repo.fp.addition++ // as if the BMC had added a record since
			}
			snap, cost, err := collect(t, ctx, src, s)
			require.NoError(t, err)
			require.Len(t, snap.Readings, len(src.repo.sensors)+1)
			if tc.cost > 0 {
				require.Equal(t, tc.cost, cost)
			} else {
				require.Greater(t, cost, steady+3, "the repository was read again")
			}
			require.Equal(t, tc.reads, src.Stats().SDRReads)
		})
	}
}

// TestKeepAliveDeadSession lets the BMC go silent between polls: KeepAlive
// reports a timeout and releases the session, and the next poll opens a
// new one.
func TestKeepAliveDeadSession(t *testing.T) {
	t.Parallel()
	at := testInstant()
	s := startSim(t, "idrac", func() time.Time { return at })
	clk := newFakeClock()
	src := newSource(t, s.target(), Options{Now: clk.Now, RequestTimeout: 100 * time.Millisecond, SessionTimeout: time.Hour})
	ctx := context.Background()
	_, _, err := collect(t, ctx, src, s)
	require.NoError(t, err)

	s.b.SetFaults(model.Faults{BlackHole: true})
	clk.Advance(DefaultKeepAlive)
	err = src.KeepAlive(ctx)
	require.Equal(t, sources.ClassTimeout, sources.ClassOf(err), "%v", err)
	require.Nil(t, src.c, "the dead session is released")

	s.b.SetFaults(model.Faults{})
	_, _, err = collect(t, ctx, src, s)
	require.NoError(t, err)
	require.Equal(t, uint64(2), src.Stats().Sessions)
}

// TestCloseBeforeCollect closes a Source that never polled.
func TestCloseBeforeCollect(t *testing.T) {
	src := New(sources.Target{Host: "127.0.0.1", Port: 9}, Options{})
	require.NoError(t, src.Close(context.Background()))
	require.NoError(t, src.Close(context.Background()))
	var snap v1.Snapshot
	err := src.Collect(context.Background(), &snap)
	require.ErrorContains(t, err, "source closed")
	require.Equal(t, "protocol", snap.ErrorClass)
	require.Equal(t, "ipmi source 127.0.0.1:9", fmt.Sprintf("%+v", src))
}

// TestIPv6 polls a BMC on the IPv6 loopback address: go-ipmi needs the
// literal in brackets, which the Source adds.
func TestIPv6(t *testing.T) {
	pc, err := net.ListenPacket("udp", "[::1]:0")
	if err != nil {
		t.Skipf("no IPv6 loopback: %v", err)
	}
	require.NoError(t, pc.Close())
	ps, err := model.Builtin()
	require.NoError(t, err)
	b := model.NewBMC("bmc-v6", "r01", ps["openbmc"], model.Room{Seed: 7}, "operator", testPassword)
	srv, err := bsipmi.New(b, bsipmi.Options{Now: testInstant})
	require.NoError(t, err)
	pc, err = net.ListenPacket("udp", "[::1]:0")
	require.NoError(t, err)
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(context.Background(), pc) }()
	defer func() { require.NoError(t, srv.Close()); <-errc }()
	for _, host := range []string{"::1", "[::1]"} {
		src := newSource(t, sources.Target{Host: host, Port: pc.LocalAddr().(*net.UDPAddr).Port, Username: "operator", Password: testPassword}, Options{})
		var snap v1.Snapshot
		require.NoError(t, src.Collect(context.Background(), &snap), host)
		require.NotEmpty(t, snap.Readings)
		require.NoError(t, src.Close(context.Background()))
	}
}
