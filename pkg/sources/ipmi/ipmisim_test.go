package ipmi

import (
	"bytes"
	"context"
	"encoding/hex"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/bmcstream/bmcstream/internal/testbed"
	"github.com/bmcstream/bmcstream/pkg/secret"
	"github.com/bmcstream/bmcstream/pkg/sources"
	v1 "github.com/bmcstream/bmcstream/proto/bmcstream/v1"
)

// requireTool finds a Debian openipmi binary. Without it the test is
// skipped locally and fails in CI (CI set), where .ci/run installs it.
func requireTool(t *testing.T, name string) string {
	t.Helper()
	path, err := exec.LookPath(name)
	if err == nil {
		return path
	}
	if _, statErr := os.Stat("/usr/bin/" + name); statErr == nil {
		return "/usr/bin/" + name
	}
	if os.Getenv("CI") != "" {
		t.Fatalf("%s is required in CI (apt-get install openipmi): %v", name, err)
	}
	t.Skipf("%s not installed (apt-get install openipmi); set CI to make this a failure", name)
	return ""
}

// syncBuffer collects a subprocess's output for failure messages.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// ipmiSim is an ipmi_sim subprocess serving the BMC of
// testdata/ipmisim on a loopback port.
type ipmiSim struct {
	port    int
	console int // TCP port of ipmi_sim's command console
	guid    string
	out     *syncBuffer
}

// ipmiSimName names the simulated BMC; ipmi_sim keeps its persistent
// state (the SDR repository among it) under <state>/ipmi_sim/<name>.
const ipmiSimName = "bmcstream-peer"

// startIPMISim compiles testdata/ipmisim/sensors.sdrs with sdrcomp, writes
// a lan.conf for a free loopback port, and runs
// ipmi_sim -c lan.conf -f bmc.emu -s <state> -n until the test ends.
func startIPMISim(t *testing.T) *ipmiSim {
	t.Helper()
	simBin := requireTool(t, "ipmi_sim")
	sdrcomp := requireTool(t, "sdrcomp")
	dir := t.TempDir()
	stateDir := filepath.Join(dir, "state")
	repoDir := filepath.Join(stateDir, "ipmi_sim", ipmiSimName)
	require.NoError(t, os.MkdirAll(repoDir, 0o755))
	sdrs, err := filepath.Abs(filepath.Join("testdata", "ipmisim", "sensors.sdrs"))
	require.NoError(t, err)
	emu, err := filepath.Abs(filepath.Join("testdata", "ipmisim", "bmc.emu"))
	require.NoError(t, err)
	out, err := exec.Command(sdrcomp, "-o", filepath.Join(repoDir, "sdr.20.main"), sdrs).CombinedOutput()
	require.NoError(t, err, "sdrcomp: %s", out)
	if *update {
		raw, err := exec.Command(sdrcomp, "-r", sdrs).Output()
		require.NoError(t, err)
		writeSeedFile(t, "ipmisim", splitRecords(t, raw))
	}

	const guid = "00112233445566778899aabbccddeeff"
	for attempt := 0; ; attempt++ {
		port, console := freeUDPPort(t), freeTCPPort(t)
		conf := filepath.Join(dir, "lan.conf")
		// The console user may open ten sessions at USER privilege; the
		// "allowed_auths" lines are IPMI v1.5 and do not apply to RMCP+.
		lan := fmt.Sprintf(`name "%s"
set_working_mc 0x20
startlan 1
  addr 127.0.0.1 %d
  priv_limit admin
  allowed_auths_callback none
  allowed_auths_user md5
  allowed_auths_operator md5
  allowed_auths_admin md5
  guid %s
endlan
console 127.0.0.1 %d
user 2 true "operator" "%s" user 10 md5
`, ipmiSimName, port, guid, console, testPassword)
		require.NoError(t, os.WriteFile(conf, []byte(lan), 0o600))

		cmd := exec.Command(simBin, "-c", conf, "-f", emu, "-s", stateDir, "-n")
		cmd.Dir = dir
		buf := &syncBuffer{}
		cmd.Stdout, cmd.Stderr = buf, buf
		require.NoError(t, cmd.Start())
		exited := make(chan struct{})
		go func() { _ = cmd.Wait(); close(exited) }()
		stop := func() {
			_ = cmd.Process.Kill() // this process only, by its own handle
			<-exited
		}
		start := time.Now()
		if waitIPMISim(port, exited) {
			t.Logf("ipmi_sim answered after %s", time.Since(start))
			t.Cleanup(stop)
			return &ipmiSim{port: port, console: console, guid: guid, out: buf}
		}
		stop()
		if attempt == 2 {
			t.Fatalf("ipmi_sim did not answer on 127.0.0.1:%d:\n%s", port, buf.String())
		}
	}
}

// freeUDPPort returns a loopback UDP port that was free a moment ago.
func freeUDPPort(t *testing.T) int {
	t.Helper()
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	require.NoError(t, err)
	defer func() { _ = pc.Close() }()
	return pc.LocalAddr().(*net.UDPAddr).Port
}

// freeTCPPort returns a loopback TCP port that was free a moment ago.
func freeTCPPort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer func() { _ = l.Close() }()
	return l.Addr().(*net.TCPAddr).Port
}

// command runs one ipmi_sim_cmd(5) command on ipmi_sim's console, as an
// operator injecting a fault would, and waits for the console's next
// prompt (the command has run).
func (s *ipmiSim) command(t *testing.T, cmd string) {
	t.Helper()
	c, err := net.DialTimeout("tcp", net.JoinHostPort("127.0.0.1", fmt.Sprint(s.console)), 5*time.Second)
	require.NoError(t, err)
	defer func() { _ = c.Close() }()
	require.NoError(t, c.SetDeadline(time.Now().Add(5*time.Second)))
	_, err = c.Write([]byte(cmd + "\n"))
	require.NoError(t, err)
	// The console prompts "> " when it connects and after each command.
	var got []byte
	buf := make([]byte, 256)
	for strings.Count(string(got), "> ") < 2 {
		n, err := c.Read(buf)
		got = append(got, buf[:n]...)
		require.NoError(t, err, "console answered %q to %q", got, cmd)
	}
	require.NotContains(t, string(got), "rror", "console answered %q to %q", got, cmd)
}

// waitIPMISim probes the port with Get Channel Authentication Capabilities
// until ipmi_sim answers (true), exits or 5 s pass.
func waitIPMISim(port int, exited <-chan struct{}) bool {
	src := New(sources.Target{Host: "127.0.0.1", Port: port}, Options{RequestTimeout: 100 * time.Millisecond, Retries: -1})
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	up := false
	// Refused until ipmi_sim listens: look again until it answers or exits.
	err := testbed.Until(ctx, func() bool {
		select {
		case <-exited:
			return true
		default:
		}
		up = src.probe(ctx) == nil
		return up
	})
	return err == nil && up
}

// splitRecords turns sdrcomp -r output (records back to back) into one
// hex record per line.
func splitRecords(t *testing.T, raw []byte) []byte {
	t.Helper()
	var buf bytes.Buffer
	for len(raw) > 0 {
		require.GreaterOrEqual(t, len(raw), sdrHeaderLen)
		n := sdrHeaderLen + int(raw[4])
		require.GreaterOrEqual(t, len(raw), n)
		fmt.Fprintln(&buf, hex.EncodeToString(raw[:n]))
		raw = raw[n:]
	}
	return buf.Bytes()
}

// TestIPMISim polls ipmi_sim, an independent BMC implementation, set up
// from our own SDR source file: every reading equals what bmc.emu set,
// converted by the factors sensors.sdrs declares, and what must not be
// published (absent, unscanned, non-linear) is not.
func TestIPMISim(t *testing.T) {
	t.Parallel()
	sim := startIPMISim(t)
	type want struct {
		id, unit, sensorType string
		kind                 v1.Kind
		value                float64
		health               v1.Health
		entity, instance     uint32
		thresholds           map[v1.ThresholdKind]float64
	}
	wants := map[string]want{
		"Inlet Temp": {id: "0x01", unit: "degrees C", sensorType: "Temperature", kind: v1.Kind_KIND_TEMPERATURE,
			value: 24, health: v1.Health_HEALTH_OK, entity: 0x37, instance: 1,
			thresholds: map[v1.ThresholdKind]float64{v1.ThresholdKind_THRESHOLD_UPPER_CAUTION: 38, v1.ThresholdKind_THRESHOLD_UPPER_CRITICAL: 42}},
		"CPU1 Temp": {id: "0x02", unit: "degrees C", sensorType: "Temperature", kind: v1.Kind_KIND_TEMPERATURE,
			value: 85, health: v1.Health_HEALTH_WARNING, entity: 3, instance: 1,
			thresholds: map[v1.ThresholdKind]float64{v1.ThresholdKind_THRESHOLD_UPPER_CAUTION: 80, v1.ThresholdKind_THRESHOLD_UPPER_CRITICAL: 90}},
		"CPU1 Margin": {id: "0x03", unit: "degrees C", sensorType: "Temperature", kind: v1.Kind_KIND_TEMPERATURE,
			value: -30, health: v1.Health_HEALTH_OK, entity: 3, instance: 1},
		// sdrcomp packs "FAN1" and "12V" as 6-bit ASCII (ipmitool prints
		// them as garbage).
		"FAN1": {id: "0x30", unit: "RPM", sensorType: "Fan", kind: v1.Kind_KIND_FAN,
			value: 5400, health: v1.Health_HEALTH_OK, entity: 29, instance: 1,
			thresholds: map[v1.ThresholdKind]float64{v1.ThresholdKind_THRESHOLD_LOWER_CAUTION: 900, v1.ThresholdKind_THRESHOLD_LOWER_CRITICAL: 600}},
		"12V": {id: "0x40", unit: "Volts", sensorType: "Voltage", kind: v1.Kind_KIND_VOLTAGE,
			value: 12.02, health: v1.Health_HEALTH_OK, entity: 7, instance: 1,
			thresholds: map[v1.ThresholdKind]float64{
				v1.ThresholdKind_THRESHOLD_LOWER_CRITICAL: 10.70, v1.ThresholdKind_THRESHOLD_LOWER_CAUTION: 11.30,
				v1.ThresholdKind_THRESHOLD_UPPER_CAUTION: 12.80, v1.ThresholdKind_THRESHOLD_UPPER_CRITICAL: 13.22}},
		"Batt Current": {id: "0x41", unit: "Amps", sensorType: "Current", kind: v1.Kind_KIND_CURRENT,
			value: -1, health: v1.Health_HEALTH_OK, entity: 40, instance: 1},
	}
	type discreteWant struct {
		id       string
		value    float64
		state    string
		health   v1.Health
		instance uint32
	}
	discreteWants := map[string]discreteWant{
		// Its record declares no states: absence cannot be told.
		"PSU1 Status": {id: "0x60", value: 0b11, state: "presence_detected,failure_detected", health: v1.Health_HEALTH_CRITICAL, instance: 1},
		"PS2 Status":  {id: "0x61", value: 0b01, state: "presence_detected", health: v1.Health_HEALTH_OK, instance: 2},
		// Presence reported and not asserted: an empty bay.
		"PS3 Status": {id: "0x62", value: 0, state: "absent", health: v1.Health_HEALTH_OK, instance: 3},
	}
	tests := []struct {
		name     string
		discrete bool
		extra    int // readings beyond wants
	}{
		{name: "threshold sensors"},
		{name: "with discrete sensors", discrete: true, extra: 3},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tg := sources.Target{Host: "127.0.0.1", Port: sim.port, Username: "operator", Password: secret.Secret(testPassword)}
			clk := newFakeClock() // the Source's own; ipmi_sim keeps real time
			src := newSource(t, tg, Options{SkipDiscrete: !tc.discrete, Now: clk.Now, SessionTimeout: time.Hour})
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			var snap v1.Snapshot
			require.NoError(t, src.Collect(ctx, &snap), "ipmi_sim output:\n%s", sim.out.String())
			require.True(t, snap.Up)
			require.False(t, snap.Partial)
			require.Len(t, snap.Readings, len(wants)+tc.extra)
			for _, r := range snap.Readings {
				if r.Kind == v1.Kind_KIND_DISCRETE {
					require.True(t, tc.discrete)
					w, ok := discreteWants[r.Name]
					require.True(t, ok, "unexpected discrete reading %q", r.Name)
					require.Equal(t, w, discreteWant{id: r.Id, value: r.Value, state: r.State, health: r.Health, instance: r.EntityInstance}, r.Name)
					require.Equal(t, "Power Supply", r.SensorType)
					require.Equal(t, uint32(0x0A), r.EntityId)
					continue
				}
				w, ok := wants[r.Name]
				require.True(t, ok, "unexpected reading %q", r.Name)
				require.Equal(t, w.id, r.Id, r.Name)
				require.Equal(t, w.kind, r.Kind, r.Name)
				require.Equal(t, w.unit, r.Unit, r.Name)
				require.Equal(t, w.sensorType, r.SensorType, r.Name)
				require.Equal(t, w.value, r.Value, r.Name)
				require.Equal(t, w.health, r.Health, r.Name)
				require.Equal(t, w.entity, r.EntityId, r.Name)
				require.Equal(t, w.instance, r.EntityInstance, r.Name)
				require.Equal(t, "Enabled", r.State)
				got := map[v1.ThresholdKind]float64{}
				for _, th := range r.Thresholds {
					got[th.Kind] = th.Value
				}
				if len(w.thresholds) == 0 {
					require.Empty(t, got, r.Name)
				} else {
					require.Equal(t, w.thresholds, got, r.Name)
				}
			}
			for _, name := range []string{"Absent Temp", "Idle Temp", "Airflow"} {
				for _, r := range snap.Readings {
					require.NotEqual(t, name, r.Name, "must not be published")
				}
			}
			require.Equal(t, map[string]string{
				"vendor": "MontaVista", "manufacturer_id": "4753", "product_id": "3842", "firmware": "9.08",
				"guid":                "33221100-5544-7766-8899-aabbccddeeff",
				"power_state":         "Off",
				"chassis_power_fault": "false", "chassis_cooling_fault": "false",
				"chassis_drive_fault": "false", "chassis_intrusion": "false",
			}, snap.Info)

			st := src.Stats()
			skipped := uint64(4) // Airflow (logarithmic) and the three discrete sensors
			if tc.discrete {
				skipped = 1
			}
			require.Equal(t, skipped, st.SkippedSensors)
			// Every sensor of the SDR is a reading or a counted drop:
			// Absent Temp is not there, Idle Temp is not scanned, the
			// others are not read.
			require.Equal(t, map[string]uint64{
				sources.DropAbsent: 1, sources.DropDisabled: 1, sources.DropUnsupportedLayout: skipped,
			}, src.Dropped())
			require.Zero(t, st.BadRecords)
			require.Equal(t, uint64(2), st.Unavailable, "Absent Temp and Idle Temp")

			// ipmi_sim refuses DCMI at USER privilege (D4h): the session
			// does not ask again. A poll is one Get Sensor Reading per
			// cached sensor and Get Chassis Status, until Absent Temp has
			// said three times it is not there: then it is left alone
			// until the next InfoInterval.
			for i, want := range []int{len(src.repo.sensors) + 1, len(src.repo.sensors) + 1, len(src.repo.sensors)} {
				before := src.Stats().Requests
				snap.Readings = snap.Readings[:0]
				require.NoError(t, src.Collect(ctx, &snap))
				require.Len(t, snap.Readings, len(wants)+tc.extra)
				require.Equal(t, uint64(want), src.Stats().Requests-before, "poll %d", i+2)
			}
			// An InfoInterval later: identity, repository fingerprint, and
			// Absent Temp asked again.
			clk.Advance(DefaultInfoInterval)
			before := src.Stats().Requests
			require.NoError(t, src.Collect(ctx, &snap))
			require.Equal(t, uint64(len(src.repo.sensors)+1+3), src.Stats().Requests-before)
			require.NoError(t, src.Close(ctx))
		})
	}

	// A PSU fails, asserted through ipmi_sim's console as an operator
	// would: the Source reads it critical, ipmitool's sdr elist agrees on
	// every discrete sensor, and the SEL holds the assertion.
	t.Run("psu failure", func(t *testing.T) {
		tg := sources.Target{Host: "127.0.0.1", Port: sim.port, Username: "operator", Password: secret.Secret(testPassword)}
		src := newSource(t, tg, Options{})
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		ipmitool := func(args ...string) string {
			return ipmitoolRun(t, sim.port, "operator", testPassword, 3, "USER", args...)
		}
		var snap v1.Snapshot
		require.NoError(t, src.Collect(ctx, &snap))
		require.Equal(t, 3, requireAgree(t, &snap, parseElist(t, ipmitool("sdr", "elist"))))
		require.NotContains(t, ipmitool("sel", "list"), "Failure detected")

		sim.command(t, "sensor_set_bit 0x20 0 0x61 1 1 1")
		snap.Readings = snap.Readings[:0]
		require.NoError(t, src.Collect(ctx, &snap))
		var ps2 *v1.Reading
		for i := range snap.Readings {
			if snap.Readings[i].Name == "PS2 Status" {
				ps2 = &snap.Readings[i]
			}
		}
		require.NotNil(t, ps2)
		require.Equal(t, "presence_detected,failure_detected", ps2.State)
		require.Equal(t, v1.Health_HEALTH_CRITICAL, ps2.Health)
		require.Equal(t, 3.0, ps2.Value)
		rows := parseElist(t, ipmitool("sdr", "elist"))
		require.Equal(t, 3, requireAgree(t, &snap, rows))
		require.Equal(t, []string{"presence_detected", "failure_detected"}, rows["PS2 Status"].states)

		// "1 | <date> | <time> | Power Supply #0x61 | Failure detected | Asserted"
		sel := ipmitool("sel", "list")
		var found bool
		for _, line := range strings.Split(sel, "\n") {
			cells := strings.Split(line, "|")
			for i := range cells {
				cells[i] = strings.TrimSpace(cells[i])
			}
			if len(cells) == 6 && cells[3] == "Power Supply #0x61" && cells[4] == "Failure detected" && cells[5] == "Asserted" {
				found = true
			}
		}
		require.True(t, found, "sel list:\n%s", sel)
		require.NoError(t, src.Close(ctx))
	})

	t.Run("wrong password", func(t *testing.T) {
		tg := sources.Target{Host: "127.0.0.1", Port: sim.port, Username: "operator", Password: "Wr0ng-" + testPassword}
		src := newSource(t, tg, Options{RequestTimeout: 500 * time.Millisecond})
		var snap v1.Snapshot
		err := src.Collect(context.Background(), &snap)
		require.Equal(t, sources.ClassAuth, sources.ClassOf(err), "%v", err)
		require.NotContains(t, err.Error(), testPassword)
		require.True(t, snap.Up)
	})
	t.Run("unknown user", func(t *testing.T) {
		tg := sources.Target{Host: "127.0.0.1", Port: sim.port, Username: "intruder", Password: testPassword}
		src := newSource(t, tg, Options{RequestTimeout: 500 * time.Millisecond})
		var snap v1.Snapshot
		err := src.Collect(context.Background(), &snap)
		require.Equal(t, sources.ClassAuth, sources.ClassOf(err), "%v", err)
		require.False(t, strings.Contains(err.Error(), testPassword))
	})
}
