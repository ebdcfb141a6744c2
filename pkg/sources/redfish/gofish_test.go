package redfish

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stmcginnis/gofish/schemas"
	"github.com/stretchr/testify/require"

	v1 "github.com/bmcstream/bmcstream/proto/bmcstream/v1"
)

// TestAgreesWithGofish decodes every healthy Thermal and Sensor document
// bmcsim serves with both this package's tolerant decoders and gofish's
// strict types: where gofish succeeds, the readings agree.
func TestAgreesWithGofish(t *testing.T) {
	files, err := filepath.Glob(filepath.Join(simGolden, "*.json"))
	require.NoError(t, err)
	require.NotEmpty(t, files)
	for _, file := range files {
		t.Run(strings.TrimSuffix(filepath.Base(file), ".json"), func(t *testing.T) {
			b, err := os.ReadFile(file)
			require.NoError(t, err)
			var docs map[string]json.RawMessage
			require.NoError(t, json.Unmarshal(b, &docs))
			compared := 0
			for uri, doc := range docs {
				uri = canonicalURI(uri) // iLO 4 serves /Thermal/
				switch {
				case strings.HasSuffix(uri, "/Thermal"):
					var th schemas.Thermal
					require.NoError(t, json.Unmarshal(doc, &th), uri)
					res, err := decodeThermal(doc, uri)
					require.NoError(t, err)
					want := map[string]float64{}
					for _, tm := range th.Temperatures {
						if tm.ReadingCelsius != nil && tm.Status.State != schemas.AbsentState {
							want[tm.Name] = *tm.ReadingCelsius
						}
					}
					for _, f := range th.Fans {
						if f.Reading != nil && f.Status.State != schemas.AbsentState {
							want[f.Name] = float64(*f.Reading)
						}
					}
					got := values(res.readings)
					for name, v := range want {
						require.Contains(t, got, name, uri)
						require.InDelta(t, v, got[name], 1e-9, "%s %s", uri, name)
					}
					for name := range got {
						if _, ok := want[name]; !ok {
							// gofish reads no CurrentReading (iLO 4's
							// Thermal 1.1): the reading is ours alone.
							require.Contains(t, string(doc), "CurrentReading", "%s: %s read here, not by gofish", uri, name)
						}
					}
					compared++
				case strings.Contains(uri, "/Sensors/"):
					var s schemas.Sensor
					require.NoError(t, json.Unmarshal(doc, &s), uri)
					res, err := decodeSensor(doc, uri, nil)
					require.NoError(t, err)
					require.Len(t, res.readings, 1, uri)
					r := res.readings[0]
					require.Equal(t, s.Name, r.Name)
					require.InDelta(t, *s.Reading, r.Value, 1e-9, uri)
					require.Equal(t, string(s.ReadingType), r.SensorType, uri)
					require.Equal(t, health(str(s.Status.Health)), r.Health, uri)
					require.Equal(t, string(s.Status.State), r.State, uri)
					compared++
				}
			}
			require.Positive(t, compared)
		})
	}
}

func values(rs []v1.Reading) map[string]float64 {
	out := map[string]float64{}
	for _, r := range rs {
		out[r.Name] = r.Value
	}
	return out
}
