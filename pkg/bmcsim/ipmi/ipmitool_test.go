package ipmi

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/bmcstream/bmcstream/pkg/bmcsim/model"
)

// ipmitoolBinary finds ipmitool. Without it the cross-check is skipped
// locally and fails in CI (CI set), where .ci/run installs it.
func ipmitoolBinary(t *testing.T) string {
	t.Helper()
	path, err := exec.LookPath("ipmitool")
	if err != nil {
		path = "/usr/bin/ipmitool"
		if _, statErr := os.Stat(path); statErr != nil {
			if os.Getenv("CI") != "" {
				t.Fatalf("ipmitool is required in CI (apt-get install ipmitool): %v", err)
			}
			t.Skip("ipmitool not installed (apt-get install ipmitool); set CI to make this a failure")
		}
	}
	return path
}

// ipmitool runs one ipmitool command against a test BMC over lanplus and
// returns its combined output. The password travels in IPMI_PASSWORD (-E),
// not on the command line.
type ipmitool struct {
	bin       string
	port      int
	b         *model.BMC
	suite     int
	privilege string
}

func (it ipmitool) run(t *testing.T, args ...string) (string, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	base := []string{
		"-I", "lanplus", "-H", "127.0.0.1", "-p", strconv.Itoa(it.port),
		"-U", it.b.Username, "-E", "-C", strconv.Itoa(it.suite), "-L", it.privilege,
		"-N", "1", "-R", "2",
	}
	cmd := exec.CommandContext(ctx, it.bin, append(base, args...)...)
	cmd.Env = append(os.Environ(), "IPMI_PASSWORD="+it.b.Password)
	out, err := cmd.CombinedOutput()
	return string(out), err
}

func (it ipmitool) mustRun(t *testing.T, args ...string) string {
	t.Helper()
	out, err := it.run(t, args...)
	require.NoError(t, err, "ipmitool %s:\n%s", strings.Join(args, " "), out)
	return out
}

// table splits ipmitool's "a | b | c" output into trimmed cells per row.
func table(out string) [][]string {
	var rows [][]string
	sc := bufio.NewScanner(strings.NewReader(out))
	for sc.Scan() {
		if !strings.Contains(sc.Text(), "|") {
			continue
		}
		cells := strings.Split(sc.Text(), "|")
		for i := range cells {
			cells[i] = strings.TrimSpace(cells[i])
		}
		rows = append(rows, cells)
	}
	return rows
}

// colonFields parses ipmitool's "Key : value" listings.
func colonFields(out string) map[string]string {
	m := map[string]string{}
	sc := bufio.NewScanner(strings.NewReader(out))
	for sc.Scan() {
		k, v, ok := strings.Cut(sc.Text(), ":")
		if ok {
			m[strings.TrimSpace(k)] = strings.TrimSpace(v)
		}
	}
	return m
}

// leadingFloat parses the number a value cell starts with ("12.06 Volts").
func leadingFloat(t *testing.T, cell string) float64 {
	t.Helper()
	f, _, _ := strings.Cut(cell, " ")
	v, err := strconv.ParseFloat(f, 64)
	require.NoError(t, err, "value cell %q", cell)
	return v
}

// unitWords are ipmitool's names of the base units the simulator uses.
func unitWords(unit uint8) string {
	switch unit {
	case unitDegreesC:
		return "degrees C"
	case unitVolts:
		return "Volts"
	case unitAmps:
		return "Amps"
	case unitWatts:
		return "Watts"
	case unitRPM:
		return "RPM"
	}
	return ""
}

// TestIpmitoolCrossCheck reads every built-in personality with ipmitool,
// the reference console, and compares sensor names, values, units,
// thresholds, chassis status and DCMI power with the model.
func TestIpmitoolCrossCheck(t *testing.T) {
	bin := ipmitoolBinary(t)
	ps, err := model.Builtin()
	require.NoError(t, err)
	shared := NewShared()
	at := testInstant()
	for _, name := range model.Names(ps) {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			b := newTestBMC(t, name)
			srv, port := startBMC(t, b, Options{Now: func() time.Time { return at }, Shared: shared})
			it := ipmitool{bin: bin, port: port, b: b, suite: 3, privilege: "USER"}
			if name == "idrac" || name == "xcc" {
				it.suite, it.privilege = 17, "ADMINISTRATOR"
			}
			idx, ids := ipmiSensors(b.Personality)
			readings := b.Readings(at)

			disc := b.Personality.Discrete()
			// sdr list: "name | 21 degrees C | ok", then the discrete
			// sensors: "PS1 Status | 0x01 | ok" (states 0-7).
			rows := table(it.mustRun(t, "sdr", "list"))
			require.Len(t, rows, len(idx)+len(disc))
			for k, row := range rows[len(idx):] {
				st := b.DiscreteState(&disc[k])
				require.Equal(t, []string{disc[k].Name, fmt.Sprintf("0x%02x", st&0xFF), "ok"}, row)
			}
			for k, row := range rows[:len(idx)] {
				spec := &b.Personality.Sensors[idx[k]]
				sn := srv.profile.sensor(spec.IPMI.Number)
				require.Len(t, row, 3)
				require.Equal(t, ids[k], row[0])
				_, unit := typeAndUnit(spec)
				require.True(t, strings.HasSuffix(row[1], " "+unitWords(unit)), "%s: %q", spec.Name, row[1])
				tol := sn.conv.step()/2 + 0.005 // ipmitool prints two decimals at most
				require.InDelta(t, readings[idx[k]].Value, leadingFloat(t, row[1]), tol, "%s", spec.Name)
				wantStatus := map[string]string{"OK": "ok", "Warning": "nc", "Critical": "cr"}[readings[idx[k]].Health]
				require.Equal(t, wantStatus, row[2], spec.Name)
			}

			// sensor: "name | value | unit | status | lnr | lcr | lnc | unc | ucr | unr"
			rows = table(it.mustRun(t, "sensor"))
			require.Len(t, rows, len(idx)+len(disc))
			// Discrete: "PS1 Status | 0x1 | discrete | 0x0180 | na …", the
			// states and then Get Sensor Reading's bytes 3 and 4.
			for k, row := range rows[len(idx):] {
				st := b.DiscreteState(&disc[k])
				require.Equal(t, []string{disc[k].Name, fmt.Sprintf("0x%x", st), "discrete", fmt.Sprintf("0x%02x%02x", st&0xFF, 0x80|st>>8)}, row[:4])
			}
			for k, row := range rows[:len(idx)] {
				spec := &b.Personality.Sensors[idx[k]]
				sn := srv.profile.sensor(spec.IPMI.Number)
				require.Len(t, row, 10)
				require.Equal(t, ids[k], row[0])
				tol := sn.conv.step()/2 + 0.0005
				require.InDelta(t, readings[idx[k]].Value, leadingFloat(t, row[1]), tol, spec.Name)
				for col, th := range map[int]int{4: thLNR, 5: thLCR, 6: thLNC, 7: thUNC, 8: thUCR, 9: thUNR} {
					v, ok := spec.Thresholds[thresholdKey(th)]
					if !ok {
						require.Equal(t, "na", row[col], "%s %s", spec.Name, thresholdKey(th))
						continue
					}
					require.InDelta(t, v, leadingFloat(t, row[col]), tol, "%s %s", spec.Name, thresholdKey(th))
				}
			}

			cs := colonFields(it.mustRun(t, "chassis", "status"))
			require.Equal(t, "on", cs["System Power"])
			require.Equal(t, "false", cs["Cooling/Fan Fault"])
			require.Equal(t, "false", cs["Drive Fault"])
			require.Equal(t, "false", cs["Main Power Fault"])
			require.Equal(t, "inactive", cs["Chassis Intrusion"])

			out, err := it.run(t, "dcmi", "power", "reading")
			if !b.Personality.IPMI.DCMI {
				require.Error(t, err)
				require.Contains(t, out, "Invalid command (c1)")
			} else {
				require.NoError(t, err, out)
				dc := colonFields(out)
				require.Equal(t, fmt.Sprintf("%d Watts", int(b.ChassisPower(at))), dc["Instantaneous power reading"])
				require.Equal(t, "activated", dc["Power reading state is"])
			}

			require.Contains(t, it.mustRun(t, "sel", "list"), "SEL has no entries", "a healthy BMC logs nothing")

			fru := colonFields(it.mustRun(t, "fru", "print", "0"))
			require.Equal(t, b.Serial, fru["Product Serial"])
			require.Equal(t, b.Personality.Model, fru["Product Name"])

			require.Eventually(t, func() bool { return srv.SessionCount() == 0 }, 5*time.Second, 10*time.Millisecond,
				"ipmitool closes its sessions")
		})
	}
}

// TestIpmitoolFaults checks what an operator sees with ipmitool when a fan
// fails, and that ipmitool hits the session limit like a real BMC's.
func TestIpmitoolFaults(t *testing.T) {
	bin := ipmitoolBinary(t)
	b := newTestBMC(t, "xcc")
	srv, port := startBMC(t, b, Options{})
	it := ipmitool{bin: bin, port: port, b: b, suite: 3, privilege: "USER"}

	b.SetFaults(model.Faults{FanFailed: 1})
	require.Equal(t, "true", colonFields(it.mustRun(t, "chassis", "status"))["Cooling/Fan Fault"])
	var fan []string
	for _, row := range table(it.mustRun(t, "sdr", "list")) {
		if row[0] == "Fan 1 Tach" {
			fan = row
		}
	}
	require.Equal(t, []string{"Fan 1 Tach", "0 RPM", "cr"}, fan)
	b.SetFaults(model.Faults{})

	d := newDialer(port, b)
	for range b.Personality.IPMI.SessionLimit {
		c := d.mustDial(t)
		t.Cleanup(func() { require.NoError(t, c.Close(context.Background())) })
	}
	out, err := it.run(t, "mc", "info")
	require.Error(t, err)
	require.Contains(t, out, "insufficient resources for session")
	require.Equal(t, b.Personality.IPMI.SessionLimit, srv.SessionCount())
}

// TestIpmitoolDiscreteFaults injects a PSU failure, a PSU input loss and
// lost fan redundancy, and checks what ipmitool shows: the states of the
// discrete sensors by ipmitool's own names, and a SEL entry for each
// change, assertions and then deassertions once the faults clear.
func TestIpmitoolDiscreteFaults(t *testing.T) {
	bin := ipmitoolBinary(t)
	b := newTestBMC(t, "idrac")
	at := testInstant()
	_, port := startBMC(t, b, Options{Now: func() time.Time { return at }})
	it := ipmitool{bin: bin, port: port, b: b, suite: 17, privilege: "ADMINISTRATOR"}

	// sdr elist: "PS2 Status | D1h | ok | 10.2 | Presence detected, Failure detected"
	states := func() map[string][]string {
		out := map[string][]string{}
		for _, row := range table(it.mustRun(t, "sdr", "elist")) {
			require.Len(t, row, 5)
			out[row[0]] = []string{row[1], row[3], row[4]}
		}
		return out
	}
	healthy := states()
	require.Equal(t, []string{"D0h", "10.1", "Presence detected"}, healthy["PS1 Status"])
	require.Equal(t, []string{"D2h", "3.1", "Presence detected"}, healthy["CPU1 Status"])
	require.Equal(t, []string{"D4h", "30.1", "Fully Redundant"}, healthy["Fan Redundancy"])

	b.SetFaults(model.Faults{PSUFailed: 2, PSUInputLost: 1, FanRedundancyLost: true})
	faulty := states()
	require.Equal(t, []string{"D0h", "10.1", "Presence detected, Power Supply AC lost"}, faulty["PS1 Status"])
	require.Equal(t, []string{"D1h", "10.2", "Presence detected, Failure detected"}, faulty["PS2 Status"])
	require.Equal(t, []string{"D4h", "30.1", "Redundancy Lost"}, faulty["Fan Redundancy"])
	require.Equal(t, healthy["CPU1 Status"], faulty["CPU1 Status"])

	// sel list: "1 | 11/21/26 | 12:00:00 UTC | Power Supply #0xd1 | Failure detected | Asserted"
	sel := func() [][]string {
		var out [][]string
		for _, row := range table(it.mustRun(t, "sel", "list")) {
			require.Len(t, row, 6)
			require.Equal(t, strconv.Itoa(len(out)+1), row[0], "record ids count from 1")
			require.Equal(t, at.Format("01/02/06"), row[1])
			require.Equal(t, at.Format("15:04:05")+" UTC", row[2])
			out = append(out, row[3:])
		}
		return out
	}
	asserted := [][]string{
		{"Power Supply #0xd0", "Power Supply AC lost", "Asserted"},
		{"Power Supply #0xd1", "Failure detected", "Asserted"},
		{"Fan #0xd4", "Fully Redundant", "Deasserted"},
		{"Fan #0xd4", "Redundancy Lost", "Asserted"},
	}
	require.Equal(t, asserted, sel())
	require.Equal(t, "4", colonFields(it.mustRun(t, "sel", "info"))["Entries"])

	b.SetFaults(model.Faults{})
	require.Equal(t, healthy, states())
	require.Equal(t, append(asserted,
		[]string{"Power Supply #0xd0", "Power Supply AC lost", "Deasserted"},
		[]string{"Power Supply #0xd1", "Failure detected", "Deasserted"},
		[]string{"Fan #0xd4", "Fully Redundant", "Asserted"},
		[]string{"Fan #0xd4", "Redundancy Lost", "Deasserted"},
	), sel())
}
