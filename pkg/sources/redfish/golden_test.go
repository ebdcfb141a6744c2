package redfish_test

import (
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/bmcstream/bmcstream/pkg/bmcsim/model"
	"github.com/bmcstream/bmcstream/pkg/sources/redfish"
	v1 "github.com/bmcstream/bmcstream/proto/bmcstream/v1"
)

var update = flag.Bool("update", false, "rewrite the golden files under testdata/golden")

// goldenReading renders a Reading with enum names, so the golden files
// read (and diff) well.
type goldenReading struct {
	Name       string            `json:"name"`
	ID         string            `json:"id"`
	Kind       string            `json:"kind"`
	Unit       string            `json:"unit,omitempty"`
	Value      float64           `json:"value"`
	Context    string            `json:"context,omitempty"`
	SensorType string            `json:"sensor_type"`
	Health     string            `json:"health,omitempty"`
	State      string            `json:"state,omitempty"`
	Thresholds []goldenThreshold `json:"thresholds,omitempty"`
	Parent     string            `json:"parent,omitempty"`
}

type goldenThreshold struct {
	Kind  string  `json:"kind"`
	Value float64 `json:"value"`
}

type goldenSnapshot struct {
	Protocol   string            `json:"protocol"`
	Up         bool              `json:"up"`
	Partial    bool              `json:"partial"`
	Error      string            `json:"error,omitempty"`
	ErrorClass string            `json:"error_class,omitempty"`
	Info       map[string]string `json:"info"`
	Readings   []goldenReading   `json:"readings"`
}

// golden is one personality's golden file: the requests of the first poll
// (login and discovery included) and of a steady-state one, and the
// snapshot.
type golden struct {
	Requests struct {
		FirstPoll  int      `json:"first_poll"`
		SteadyPoll int      `json:"steady_poll"`
		Steady     []string `json:"steady"`
	} `json:"requests"`
	Snapshot goldenSnapshot `json:"snapshot"`
}

func render(s *v1.Snapshot) goldenSnapshot {
	g := goldenSnapshot{
		Protocol: s.Protocol.String(), Up: s.Up, Partial: s.Partial, Error: s.Error, ErrorClass: s.ErrorClass,
		Info: s.Info, Readings: []goldenReading{},
	}
	for _, r := range s.Readings {
		gr := goldenReading{
			Name: r.Name, ID: r.Id, Kind: r.Kind.String(), Unit: r.Unit, Value: r.Value, Context: r.Context,
			SensorType: r.SensorType, State: r.State, Parent: r.Parent,
		}
		if r.Health != v1.Health_HEALTH_UNSPECIFIED {
			gr.Health = r.Health.String()
		}
		for _, th := range r.Thresholds {
			gr.Thresholds = append(gr.Thresholds, goldenThreshold{Kind: th.Kind.String(), Value: th.Value})
		}
		g.Readings = append(g.Readings, gr)
	}
	return g
}

// TestGolden polls every personality at a frozen instant and compares the
// snapshot with testdata/golden/<personality>.json (go test -run Golden
// -update rewrites them), then checks key values against the model.
func TestGolden(t *testing.T) {
	for _, name := range personalities(t) {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			b := serveBMC(t, name, nil)
			s, count := newSource(t, target(t, b.srv.URL), redfish.Options{Now: b.clock.Now})

			first, err := collect(t, s, 10*time.Second)
			require.NoError(t, err)
			var g golden
			g.Requests.FirstPoll, _ = count.take()

			// The clock is frozen: the steady-state poll is answered 304
			// and reuses what the first decoded.
			second, err := collect(t, s, 10*time.Second)
			require.NoError(t, err)
			g.Requests.SteadyPoll, g.Requests.Steady = count.take()
			require.Equal(t, render(first), render(second), "a 304 reuses the readings")
			require.Positive(t, s.Stats().NotModified)

			g.Snapshot = render(first)
			got, err := json.MarshalIndent(g, "", "  ")
			require.NoError(t, err)
			got = append(got, '\n')
			file := filepath.Join("testdata", "golden", name+".json")
			if *update {
				require.NoError(t, os.MkdirAll(filepath.Dir(file), 0o755))
				require.NoError(t, os.WriteFile(file, got, 0o644))
			}
			want, err := os.ReadFile(file)
			require.NoError(t, err, "go test -run Golden -update creates it")
			require.Equal(t, string(want), string(got), "snapshot differs from %s (go test -run Golden -update rewrites it)", file)

			checkAgainstModel(t, b.model, b.clock.Now(), first)
		})
	}
}

// checkAgainstModel compares key readings with the model's own values at
// the same instant: intake, CPU, every fan, chassis power, PSU input
// power, identity; and checks absent sensors are not reported.
func checkAgainstModel(t *testing.T, b *model.BMC, at time.Time, snap *v1.Snapshot) {
	t.Helper()
	p := b.Personality
	require.True(t, snap.Up)
	require.False(t, snap.Partial)
	require.Equal(t, v1.Protocol_PROTOCOL_REDFISH, snap.Protocol)
	require.Equal(t, p.Manufacturer, snap.Info["vendor"])
	require.Equal(t, p.Model, snap.Info["model"])
	require.Equal(t, b.Serial, snap.Info["serial"])
	require.Equal(t, p.Firmware, snap.Info["firmware"])
	require.Equal(t, p.BIOS, snap.Info["bios_version"])
	require.Equal(t, p.ManagerModel, snap.Info["manager_model"])
	require.Equal(t, "On", snap.Info["power_state"])
	require.Equal(t, b.Health(at), snap.Info["health"])
	require.NotEmpty(t, snap.Info["uuid"])
	require.Contains(t, []string{"legacy", "modern", "both"}, snap.Info["schema"])

	var psuIn []float64
	seen := map[string]bool{}
	for _, r := range b.Readings(at) {
		s := r.Spec
		got := find(snap.Readings, s.Name)
		if r.State == "Absent" {
			require.Empty(t, got, "%s is absent", s.Name)
			continue
		}
		switch {
		case s.Source == model.SourceIntake, s.Source == model.SourceCPU && !seen["cpu"]:
			seen[s.Source] = true
			require.Len(t, got, 1, s.Name)
			require.Equal(t, v1.Kind_KIND_TEMPERATURE, got[0].Kind, s.Name)
			// iLO 4 prints whole degrees.
			require.InDelta(t, r.Value, got[0].Value, 0.5, s.Name)
			// An excerpt (ThermalMetrics) carries no health.
			require.Contains(t, []v1.Health{v1.Health_HEALTH_OK, v1.Health_HEALTH_UNSPECIFIED}, got[0].Health, s.Name)
			if v, ok := s.Thresholds["upper_critical"]; ok && !strings.Contains(got[0].Id, "#/TemperatureReadingsCelsius/") {
				// (an excerpt carries no thresholds)
				require.Contains(t, got[0].Thresholds, v1.Threshold{Kind: v1.ThresholdKind_THRESHOLD_UPPER_CRITICAL, Value: v}, s.Name)
			}
		case s.Kind == model.KindFan:
			// A fan may be listed in RPM and in percent (AMI's legacy
			// Thermal and its ThermalSubsystem): the one in the
			// model's unit then; a fan excerpt is in percent whatever
			// the model's unit.
			percent := func(g v1.Reading) bool { return g.Unit == "Percent" || g.Unit == "%" }
			if len(got) > 1 {
				got = slices.DeleteFunc(got, func(g v1.Reading) bool { return (s.Unit == "Percent") != percent(g) })
			}
			require.Len(t, got, 1, s.Name)
			require.Equal(t, v1.Kind_KIND_FAN, got[0].Kind, s.Name)
			want := r.Value
			if percent(got[0]) {
				want = r.Percent()
			}
			require.InDelta(t, want, got[0].Value, 1e-9, s.Name)
		case s.Source == model.SourcePSUInput:
			psuIn = append(psuIn, r.Value)
		}
	}
	require.True(t, seen[model.SourceIntake], "an intake sensor")
	power := bySensorType(snap.Readings, "PowerControl")
	require.Len(t, power, 1, "one chassis power reading")
	require.InDelta(t, b.ChassisPower(at), power[0].Value, 1e-9)
	require.Equal(t, v1.Kind_KIND_POWER, power[0].Kind)

	var gotIn []float64
	labels := map[string]bool{}
	for _, r := range bySensorType(snap.Readings, "PowerSupplyInput") {
		gotIn = append(gotIn, r.Value)
		require.False(t, labels[r.Name], "PSU label %q names one PSU", r.Name)
		labels[r.Name] = true
		require.NotEmpty(t, r.Parent)
	}
	slices.Sort(psuIn)
	slices.Sort(gotIn)
	require.Equal(t, psuIn, gotIn, "PSU input power")

	ids := map[string]bool{}
	for _, r := range snap.Readings {
		require.NotEmpty(t, r.Name)
		require.True(t, strings.HasPrefix(r.Id, "/redfish/v1/"), r.Id)
		require.False(t, ids[r.Id], "reading id %s is unique", r.Id)
		ids[r.Id] = true
	}
}
