package fleet

import (
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/bmcstream/bmcstream/pkg/bmcsim/model"
)

// TestDefaultMixCoversEveryPersonality checks that a fleet laid out with
// the default mix (every built-in personality, equally) holds each of them
// even when it is small, so a demo of ten BMCs shows every layout.
func TestDefaultMixCoversEveryPersonality(t *testing.T) {
	ps := personalities(t)
	cfg := DefaultConfig
	require.Empty(t, cfg.Mix)
	cfg.Count = 10
	f, err := New(cfg, ps)
	require.NoError(t, err)
	seen := map[string]bool{}
	for _, m := range f.Members {
		seen[m.BMC.Personality.Name] = true
	}
	for _, name := range model.Names(ps) {
		require.True(t, seen[name], "no %s in a default fleet of %d", name, cfg.Count)
	}
}

// TestFaultsOnNewLayoutsThroughAdmin puts a failed PSU and a failed fan on
// the members with the new layouts through the admin API, and reads them
// back where each layout carries them over Redfish, and over IPMI.
func TestFaultsOnNewLayoutsThroughAdmin(t *testing.T) {
	ps := personalities(t)
	names := []string{"ami", "hgx", "ilo4"}
	cfg := DefaultConfig
	cfg.Count = len(names)
	cfg.TLS = false
	cfg.FirstAddress = netip.MustParseAddr("127.33.0.1")
	cfg.RedfishPort, cfg.IPMIPort = freeTCPPort(t), freeUDPPort(t)
	f, err := New(cfg, ps)
	require.NoError(t, err)
	for i, m := range f.Members {
		m.BMC.Personality = ps[names[i]]
	}
	at := time.Date(2026, 11, 21, 14, 30, 0, 0, time.UTC)
	require.NoError(t, f.Start(StartOptions{Now: func() time.Time { return at }, IgnoreSensorLatency: true}))
	defer func() { require.NoError(t, f.Close()) }()
	admin := httptest.NewServer(f.AdminHandler())
	defer admin.Close()

	type status struct{ Health string }
	for _, m := range f.Members {
		p := m.BMC.Personality
		t.Run(p.Name, func(t *testing.T) {
			req, err := http.NewRequestWithContext(t.Context(), http.MethodPut, admin.URL+"/bmcs/"+m.BMC.ID+"/faults", strings.NewReader(`{"psu_failed":1,"fan_failed":1}`))
			require.NoError(t, err)
			resp, err := http.DefaultClient.Do(req)
			require.NoError(t, err)
			require.Equal(t, http.StatusOK, resp.StatusCode)
			require.NoError(t, resp.Body.Close())
			chassis := "/redfish/v1/Chassis/" + p.Redfish.ChassisID

			switch p.Name {
			case "ami":
				var pw struct {
					PowerSupplies []struct {
						PowerInputWatts  float64
						PowerOutputWatts float64
						Status           status
					}
				}
				getJSON(t, m, chassis+"/Power", &pw)
				require.Equal(t, "Critical", pw.PowerSupplies[0].Status.Health)
				require.Zero(t, pw.PowerSupplies[0].PowerInputWatts)
				require.Zero(t, pw.PowerSupplies[0].PowerOutputWatts)
				require.Positive(t, pw.PowerSupplies[1].PowerInputWatts)
				var th struct {
					Fans []struct {
						Name    string
						Reading int
						Status  status
					}
				}
				getJSON(t, m, chassis+"/Thermal", &th)
				require.Equal(t, "FAN0", th.Fans[0].Name)
				require.Zero(t, th.Fans[0].Reading)
				require.Equal(t, "Critical", th.Fans[0].Status.Health)
			case "hgx":
				var psu struct{ Status status }
				getJSON(t, m, chassis+"/PowerSubsystem/PowerSupplies/Bay1", &psu)
				require.Equal(t, "Critical", psu.Status.Health)
				var metrics struct {
					InputPowerWatts struct{ Reading *float64 }
					Status          status
				}
				getJSON(t, m, chassis+"/PowerSubsystem/PowerSupplies/Bay1/Metrics", &metrics)
				require.Equal(t, "Critical", metrics.Status.Health)
				require.NotNil(t, metrics.InputPowerWatts.Reading)
				require.Zero(t, *metrics.InputPowerWatts.Reading)
				var em struct {
					FanSpeedsPercent []struct {
						DeviceName string
						Reading    *float64
					}
				}
				getJSON(t, m, chassis+"/EnvironmentMetrics", &em)
				require.Equal(t, "Fan 1", em.FanSpeedsPercent[0].DeviceName)
				require.Zero(t, *em.FanSpeedsPercent[0].Reading)
				require.Positive(t, *em.FanSpeedsPercent[1].Reading)
			case "ilo4":
				var pw struct {
					PowerSupplies []struct {
						LastPowerOutputWatts *int
						Status               status
					}
				}
				getJSON(t, m, chassis+"/Power/", &pw)
				require.Equal(t, "Critical", pw.PowerSupplies[0].Status.Health)
				require.Zero(t, *pw.PowerSupplies[0].LastPowerOutputWatts)
				require.Positive(t, *pw.PowerSupplies[1].LastPowerOutputWatts)
				var th struct {
					Fans []struct {
						FanName        string
						CurrentReading *int
						Status         status
					}
				}
				getJSON(t, m, chassis+"/Thermal/", &th)
				require.Equal(t, "Fan 1", th.Fans[0].FanName)
				require.Zero(t, *th.Fans[0].CurrentReading)
				require.Equal(t, "Critical", th.Fans[0].Status.Health)
			}

			// IPMI reads the same failure: the first fan stopped, and the
			// failed PSU's input (where IPMI has it) at 0.
			sensors, err := ipmiClient(t, m).GetSensors(t.Context())
			require.NoError(t, err)
			byName := map[string]float64{}
			for _, s := range sensors {
				byName[s.Name] = s.Value
			}
			for _, s := range p.Sensors {
				if s.IPMI.Omit || s.Index != 0 {
					continue
				}
				if s.Source == model.SourceFan || s.Source == model.SourcePSUInput {
					v, ok := byName[s.Name]
					require.True(t, ok, "%s over IPMI", s.Name)
					require.Zero(t, v, "%s over IPMI", s.Name)
				}
			}
		})
	}
}
