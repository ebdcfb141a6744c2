package ipmi

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/bmcstream/bmcstream/pkg/bmcsim/model"
	v1 "github.com/bmcstream/bmcstream/proto/bmcstream/v1"
)

// ipmitoolRun runs one ipmitool command over lanplus against a loopback
// BMC and returns its output. The password travels in IPMI_PASSWORD (-E),
// not on the command line.
func ipmitoolRun(t *testing.T, port int, user, password string, suite int, privilege string, args ...string) string {
	t.Helper()
	bin := requireIpmitool(t)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	base := []string{"-I", "lanplus", "-H", "127.0.0.1", "-p", strconv.Itoa(port), "-U", user, "-E",
		"-C", strconv.Itoa(suite), "-L", privilege, "-N", "1", "-R", "2"}
	cmd := exec.CommandContext(ctx, bin, append(base, args...)...)
	cmd.Env = append(os.Environ(), "IPMI_PASSWORD="+password)
	out, err := cmd.CombinedOutput()
	require.NoError(t, err, "ipmitool %s:\n%s", strings.Join(args, " "), out)
	return string(out)
}

// requireIpmitool finds ipmitool. Without it the test is skipped locally
// and fails in CI (CI set), where .ci/run installs it.
func requireIpmitool(t *testing.T) string {
	t.Helper()
	if path, err := exec.LookPath("ipmitool"); err == nil {
		return path
	}
	if _, err := os.Stat("/usr/bin/ipmitool"); err == nil {
		return "/usr/bin/ipmitool"
	}
	if os.Getenv("CI") != "" {
		t.Fatal("ipmitool is required in CI (apt-get install ipmitool)")
	}
	t.Skip("ipmitool not installed (apt-get install ipmitool); set CI to make this a failure")
	return ""
}

// ipmitoolStates are ipmitool's words for the states the cross-checks
// assert, and this package's names of them.
var ipmitoolStates = map[string]string{
	"Presence detected":    "presence_detected",
	"Failure detected":     "failure_detected",
	"Predictive failure":   "predictive_failure",
	"Power Supply AC lost": "input_lost",
	"Fully Redundant":      "fully_redundant",
	"Redundancy Lost":      "redundancy_lost",
}

// elistRow is one discrete sensor as "ipmitool sdr elist" shows it:
// "PS2 Status | 61h | ok | 10.2 | Presence detected, Failure detected".
type elistRow struct {
	number, entity string
	states         []string // this package's names, in ipmitool's order
}

// parseElist reads the discrete rows of "ipmitool sdr elist" by sensor
// name, translating ipmitool's state words.
func parseElist(t *testing.T, out string) map[string]elistRow {
	t.Helper()
	rows := map[string]elistRow{}
	sc := bufio.NewScanner(strings.NewReader(out))
	for sc.Scan() {
		cells := strings.Split(sc.Text(), "|")
		if len(cells) != 5 {
			continue
		}
		for i := range cells {
			cells[i] = strings.TrimSpace(cells[i])
		}
		row := elistRow{number: cells[1], entity: cells[3]}
		for _, w := range strings.Split(cells[4], ", ") {
			if w == "" {
				continue
			}
			name, ok := ipmitoolStates[w]
			if !ok {
				// A threshold sensor's value ("22 degrees C"), or a state
				// this table does not know.
				row.states = nil
				break
			}
			row.states = append(row.states, name)
		}
		rows[cells[0]] = row
	}
	return rows
}

// requireAgree checks that a snapshot's discrete readings and ipmitool's
// "sdr elist" name the same sensors with the same number, entity and
// asserted states ("absent" is the Source's own addition).
func requireAgree(t *testing.T, snap *v1.Snapshot, elist map[string]elistRow) int {
	t.Helper()
	n := 0
	for _, r := range snap.Readings {
		if r.Kind != v1.Kind_KIND_DISCRETE {
			continue
		}
		row, ok := elist[r.Name]
		require.True(t, ok, "ipmitool does not list %q", r.Name)
		require.Equal(t, strings.ToUpper(strings.TrimPrefix(r.Id, "0x"))+"h", row.number, r.Name)
		require.Equal(t, fmt.Sprintf("%d.%d", r.EntityId, r.EntityInstance), row.entity, r.Name)
		var ours []string
		for _, st := range strings.Split(r.State, ",") {
			if st != "" && st != stateAbsent {
				ours = append(ours, st)
			}
		}
		want := append([]string(nil), row.states...)
		sort.Strings(want)
		sort.Strings(ours)
		require.Equal(t, want, ours, "%s: ipmitool and the Source disagree on the asserted states", r.Name)
		n++
	}
	return n
}

// TestIpmitoolAgreesOnDiscrete injects a PSU failure, a PSU input loss and
// lost fan redundancy into a bmcsim BMC and reads it with ipmitool and the
// Source: they agree on every discrete sensor, before and after.
func TestIpmitoolAgreesOnDiscrete(t *testing.T) {
	requireIpmitool(t)
	at := testInstant()
	s := startSim(t, "idrac", func() time.Time { return at })
	src := newSource(t, s.target(), Options{Now: func() time.Time { return at }})
	ctx := context.Background()
	elist := func() map[string]elistRow {
		return parseElist(t, ipmitoolRun(t, s.port, s.b.Username, s.b.Password, 17, "ADMINISTRATOR", "sdr", "elist"))
	}
	discrete := len(s.b.Personality.Discrete())

	snap, _, err := collect(t, ctx, src, s)
	require.NoError(t, err)
	require.Equal(t, discrete, requireAgree(t, snap, elist()))

	s.b.SetFaults(model.Faults{PSUFailed: 2, PSUInputLost: 1, FanRedundancyLost: true})
	snap, _, err = collect(t, ctx, src, s)
	require.NoError(t, err)
	rows := elist()
	require.Equal(t, discrete, requireAgree(t, snap, rows))
	require.Equal(t, []string{"presence_detected", "failure_detected"}, rows["PS2 Status"].states)
	require.Equal(t, []string{"presence_detected", "input_lost"}, rows["PS1 Status"].states)
	require.Equal(t, []string{"redundancy_lost"}, rows["Fan Redundancy"].states)
}
