package fleet

import (
	"encoding/json"
	"fmt"
	"io"
	"math"
	"net/http"
	"net/netip"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/bmcstream/bmcstream/pkg/bmcsim/ipmi"
	"github.com/bmcstream/bmcstream/pkg/bmcsim/model"
)

// TestRedfishAndIPMIAgree reads every personality's sensors over both
// protocols at one frozen instant, with the real clients' wire formats, and
// checks the two views of one virtual BMC report the same physical values
// (IPMI within its conversion step).
func TestRedfishAndIPMIAgree(t *testing.T) {
	ps := personalities(t)
	names := model.Names(ps)
	cfg := DefaultConfig
	cfg.Count = len(names)
	cfg.TLS = false
	cfg.FirstAddress = netip.MustParseAddr("127.31.0.1")
	cfg.RedfishPort, cfg.IPMIPort = freeTCPPort(t), freeUDPPort(t)
	f, err := New(cfg, ps)
	require.NoError(t, err)
	// One member per personality, whatever the mix assigned.
	for i, m := range f.Members {
		m.BMC.Personality = ps[names[i]]
	}
	at := time.Date(2026, 11, 21, 14, 30, 0, 0, time.UTC)
	require.NoError(t, f.Start(StartOptions{Now: func() time.Time { return at }, IgnoreSensorLatency: true}))
	defer func() { require.NoError(t, f.Close()) }()

	for _, m := range f.Members {
		p := m.BMC.Personality
		t.Run(p.Name, func(t *testing.T) {
			// Redfish: the Sensors collection where the BMC has it, else
			// ThermalMetrics (a subsystem-only chassis), else legacy
			// Thermal; compared by sensor name.
			redfish := map[string]float64{}
			switch {
			case p.Redfish.Modern && p.Redfish.NoSensors:
				var tm struct {
					Readings []struct {
						DeviceName string   `json:"DeviceName"`
						Reading    *float64 `json:"Reading"`
					} `json:"TemperatureReadingsCelsius"`
				}
				getJSON(t, m, fmt.Sprintf("/redfish/v1/Chassis/%s/ThermalSubsystem/ThermalMetrics", p.Redfish.ChassisID), &tm)
				for _, s := range tm.Readings {
					if s.Reading != nil {
						redfish[s.DeviceName] = *s.Reading
					}
				}
			case p.Redfish.Modern:
				var coll struct {
					Members []struct {
						Name    string   `json:"Name"`
						Reading *float64 `json:"Reading"`
					} `json:"Members"`
				}
				getJSON(t, m, fmt.Sprintf("/redfish/v1/Chassis/%s/Sensors?$expand=.($levels=1)", p.Redfish.ChassisID), &coll)
				for _, s := range coll.Members {
					if s.Reading != nil {
						redfish[s.Name] = *s.Reading
					}
				}
			default:
				var th struct {
					Temperatures []struct {
						Name           string   `json:"Name"`
						ReadingCelsius *float64 `json:"ReadingCelsius"`
					} `json:"Temperatures"`
				}
				getJSON(t, m, fmt.Sprintf("/redfish/v1/Chassis/%s/Thermal", p.Redfish.ChassisID), &th)
				for _, s := range th.Temperatures {
					if s.ReadingCelsius != nil {
						redfish[s.Name] = *s.ReadingCelsius
					}
				}
			}
			require.NotEmpty(t, redfish)

			// IPMI: every sensor through go-ipmi's client, by SDR name.
			c := ipmiClient(t, m)
			sensors, err := c.GetSensors(t.Context())
			require.NoError(t, err)
			byName := map[string]float64{}
			for _, s := range sensors {
				byName[s.Name] = s.Value
			}
			sdrNames := ipmi.SensorIDs(p)
			compared := 0
			for i, spec := range p.Sensors {
				rv, onRedfish := redfish[spec.Name]
				iv, onIPMI := byName[sdrNames[i]]
				if !onRedfish || !onIPMI || spec.Kind != model.KindTemperature {
					continue
				}
				// Temperatures travel over IPMI in whole degrees.
				require.LessOrEqual(t, math.Abs(rv-iv), 0.5+1e-9, "%s: redfish %v, ipmi %v", spec.Name, rv, iv)
				compared++
			}
			require.Positive(t, compared, "no temperature seen over both protocols")
		})
	}
}

func getJSON(t *testing.T, m *Member, path string, v any) {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), http.MethodGet, m.RedfishURL(false)+path, nil)
	require.NoError(t, err)
	req.SetBasicAuth(DefaultConfig.Username, DefaultConfig.Password)
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	require.Equal(t, http.StatusOK, resp.StatusCode, "%s: %s", path, b)
	require.NoError(t, json.Unmarshal(b, v))
}
