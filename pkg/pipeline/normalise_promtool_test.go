package pipeline

import (
	"bytes"
	"os"
	"os/exec"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/bmcstream/bmcstream/pkg/series"
	v1 "github.com/bmcstream/bmcstream/proto/bmcstream/v1"
)

const promtoolPath = "/usr/bin/promtool"

// exposition renders samples as Prometheus text format, each family once
// with its HELP and TYPE from the schema.
func exposition(t *testing.T, ss []series.Sample) []byte {
	t.Helper()
	fams := map[string]family{}
	for _, f := range families() {
		fams[f.name] = f
	}
	byFamily := map[string][]string{}
	for _, s := range ss {
		name := s.Series.Labels.Get("__name__")
		_, ok := fams[name]
		require.True(t, ok, "family %s is in the schema's list", name)
		byFamily[name] = append(byFamily[name], expoLine(t, s))
	}
	var b bytes.Buffer
	for _, name := range sortedKeys(byFamily) {
		f := fams[name]
		b.WriteString("# HELP " + f.name + " " + f.help + "\n")
		b.WriteString("# TYPE " + f.name + " " + f.typ + "\n")
		for _, l := range byFamily[name] {
			b.WriteString(l + "\n")
		}
	}
	return b.Bytes()
}

// TestNormalisePromtool lints an exposition of what every personality
// produces over both protocols with `promtool check metrics`: names,
// units, types and help must satisfy Prometheus' own linter.
func TestNormalisePromtool(t *testing.T) {
	if _, err := os.Stat(promtoolPath); err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("%s is required in CI (Debian package prometheus): %v", promtoolPath, err)
		}
		t.Skipf("%s not installed (apt-get install prometheus); CI runs this test", promtoolPath)
	}
	n, err := NewNormaliser(NormaliserOptions{})
	require.NoError(t, err)
	var all []series.Sample
	for _, name := range sortedKeys(simPersonalities(t)) {
		sp := pollSim(t, name)
		for _, s := range []*v1.Snapshot{sp.redfish, sp.ipmi} {
			s.BmcId = name + "-" + protoName(s.Protocol) // one series per view
			var st Stats
			all = n.Normalise(all, s, simBase(s.BmcId), &st)
		}
	}
	// The rest of the schema: every unit and class no simulated BMC has.
	var st Stats
	all = n.Normalise(all, vendorSnap("Acme", pRedfish,
		v1.Reading{Name: "Humidity", Kind: v1.Kind_KIND_HUMIDITY, Unit: "%", Value: 45},
		v1.Reading{Name: "Energy", Unit: "kW.h", Value: 2},
		v1.Reading{Name: "Airflow", Unit: "CFM", Value: 60},
		v1.Reading{Name: "Clock", Unit: "MHz", Value: 100},
		v1.Reading{Name: "Coolant", Unit: "kPa", Value: 101},
		v1.Reading{Name: "CPU Power", Kind: kPower, Unit: "W", Value: 120}), simBase("extra"), &st)
	expo := exposition(t, all)

	cmd := exec.Command(promtoolPath, "check", "metrics")
	cmd.Stdin = bytes.NewReader(expo)
	out, err := cmd.CombinedOutput()
	require.NoError(t, err, "promtool check metrics:\n%s", out)
	require.Empty(t, strings.TrimSpace(string(out)), "promtool check metrics has complaints")
	t.Logf("promtool check metrics: %d families, %d samples, no complaints", bytes.Count(expo, []byte("# TYPE")), len(all))
}
