package redfish_test

import (
	"math"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/stmcginnis/gofish"
	"github.com/stmcginnis/gofish/schemas"
	"github.com/stretchr/testify/require"

	"github.com/bmcstream/bmcstream/pkg/bmcsim/model"
	"github.com/bmcstream/bmcstream/pkg/bmcsim/redfish"
)

// visible returns the readings Redfish shows, of the given kinds, in
// personality order.
func visible(rs []model.Reading, kinds ...string) []model.Reading {
	var out []model.Reading
	for _, r := range rs {
		if r.Spec.RedfishOmit {
			continue
		}
		for _, k := range kinds {
			if r.Spec.Kind == k {
				out = append(out, r)
			}
		}
	}
	return out
}

// listed returns the readings the Sensors collection lists, in
// personality order: none on a service without the collection, and not
// those the vendor keeps out of it.
func listed(p *model.Personality, rs []model.Reading) []model.Reading {
	if !p.Redfish.Modern || p.Redfish.NoSensors {
		return nil
	}
	var out []model.Reading
	for _, r := range visible(rs, model.KindTemperature, model.KindFan, model.KindPower, model.KindVoltage, model.KindCurrent) {
		if !r.Spec.SensorsOmit {
			out = append(out, r)
		}
	}
	return out
}

// shown is a reading in the unit its sensor reports.
func shown(r model.Reading) float64 {
	if r.Spec.Kind == model.KindFan && r.Spec.Unit == "Percent" {
		return r.Percent()
	}
	return r.Value
}

func requireStatus(t *testing.T, want model.Reading, got schemas.Status, name string) {
	t.Helper()
	require.EqualValues(t, want.State, got.State, name)
	if want.State == "Absent" {
		require.Empty(t, got.Health, "%s: an absent sensor has no health", name)
		return
	}
	require.EqualValues(t, want.Health, got.Health, name)
}

// TestPersonalitiesWithGofish reads every built-in personality with the
// real gofish client, the library bmcstream's Redfish source uses, and
// checks it decodes identity and readings equal to the model's at the same
// instant.
func TestPersonalitiesWithGofish(t *testing.T) {
	ps, err := model.Builtin()
	require.NoError(t, err)
	for _, name := range model.Names(ps) {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			b, h, srv, clk := newService(t, name, redfish.Options{IgnoreSensorLatency: true})
			p := b.Personality
			at := clk.Now()
			want := b.Readings(at)

			c := connect(t, srv.URL, false)
			require.Equal(t, 1, h.SessionCount(), "gofish logs in with a session")
			svc := c.Service
			require.NotEmpty(t, svc.RedfishVersion)
			require.NotEmpty(t, svc.UUID)
			require.Equal(t, p.Manufacturer, svc.Vendor)
			require.Equal(t, p.Redfish.Modern, svc.ProtocolFeaturesSupported.ExpandQuery.NoLinks)

			chassis, err := svc.Chassis()
			require.NoError(t, err)
			require.Len(t, chassis, 1)
			ch := chassis[0]
			require.Equal(t, p.Redfish.ChassisID, ch.ID)
			require.Equal(t, p.Manufacturer, ch.Manufacturer)
			require.Equal(t, p.Model, ch.Model)
			require.Equal(t, b.Serial, ch.SerialNumber)
			require.Equal(t, schemas.OnPowerState, ch.PowerState)
			require.EqualValues(t, b.Health(at), ch.Status.Health)

			systems, err := svc.Systems()
			require.NoError(t, err)
			require.Len(t, systems, 1)
			sys := systems[0]
			require.Equal(t, p.Redfish.SystemID, sys.ID)
			require.Equal(t, b.Serial, sys.SerialNumber)
			require.Equal(t, p.BIOS, sys.BiosVersion)
			require.Equal(t, schemas.OnPowerState, sys.PowerState)
			require.Len(t, strings.ReplaceAll(sys.UUID, "-", ""), 32)
			require.NotNil(t, sys.ProcessorSummary.Count)

			managers, err := svc.Managers()
			require.NoError(t, err)
			require.Len(t, managers, 1)
			require.Equal(t, p.Firmware, managers[0].FirmwareVersion)
			require.Equal(t, p.ManagerModel, managers[0].Model)

			switch {
			case p.Redfish.Legacy && p.Redfish.Style == model.StyleILO4:
				checkILO4(t, ch, b, want)
			case p.Redfish.Legacy:
				checkLegacy(t, ch, b, want)
			default:
				th, err := ch.Thermal()
				require.NoError(t, err)
				require.Nil(t, th, "no Thermal link without redfish.legacy")
			}
			if p.Redfish.Modern {
				checkModern(t, c, ch, b, want)
			} else {
				sensors, err := ch.Sensors()
				require.NoError(t, err)
				require.Empty(t, sensors, "no Sensors link without redfish.modern")
			}
		})
	}
}

func checkLegacy(t *testing.T, ch *schemas.Chassis, b *model.BMC, want []model.Reading) {
	th, err := ch.Thermal()
	require.NoError(t, err)
	temps := visible(want, model.KindTemperature)
	require.Len(t, th.Temperatures, len(temps))
	for i, r := range temps {
		got := th.Temperatures[i]
		require.Equal(t, r.Spec.Name, got.Name)
		require.NotNil(t, got.ReadingCelsius, r.Spec.Name)
		require.InDelta(t, r.Value, *got.ReadingCelsius, 1e-9, r.Spec.Name)
		requireStatus(t, r, got.Status, r.Spec.Name)
		if v, ok := r.Spec.Thresholds["upper_critical"]; ok {
			require.InDelta(t, v, *got.UpperThresholdCritical, 1e-9, r.Spec.Name)
		}
		require.EqualValues(t, r.Spec.Context, got.PhysicalContext)
	}
	fans := visible(want, model.KindFan)
	require.Len(t, th.Fans, len(fans))
	for i, r := range fans {
		got := th.Fans[i]
		require.Equal(t, r.Spec.Name, got.Name)
		require.NotNil(t, got.Reading, r.Spec.Name)
		require.Equal(t, int(math.Round(shown(r))), *got.Reading, r.Spec.Name)
		// AMI's fans carry no unit: ReadingUnits is absent, not "RPM".
		require.EqualValues(t, r.Spec.Unit, got.ReadingUnits, r.Spec.Name)
		requireStatus(t, r, got.Status, r.Spec.Name)
		if v, ok := r.Spec.Thresholds["lower_critical"]; ok {
			require.Equal(t, int(v), *got.LowerThresholdCritical, r.Spec.Name)
		}
	}

	pw, err := ch.Power()
	require.NoError(t, err)
	require.Len(t, pw.PowerControl, 1)
	require.InDelta(t, b.ChassisPower(testTime()), float64(*pw.PowerControl[0].PowerConsumedWatts), 1e-3)
	require.NotNil(t, pw.PowerControl[0].PowerMetrics.AverageConsumedWatts)
	psus := b.Personality.PSUs
	require.Len(t, pw.PowerSupplies, len(psus))
	for i, ps := range psus {
		got := pw.PowerSupplies[i]
		// iLO names every PSU alike and Supermicro names them "nil": the
		// names are served as the vendor gives them, MemberId tells them
		// apart.
		require.Equal(t, ps.Name, got.Name)
		require.Equal(t, ps.Model, got.Model)
		require.InDelta(t, ps.RatedWatts, float64(*got.PowerCapacityWatts), 1e-3)
		var input *model.Reading
		for _, r := range want {
			if r.Spec.Source == model.SourcePSUInput && r.Spec.Index == i && !r.Spec.RedfishOmit {
				input = &r
				break
			}
		}
		if input == nil {
			require.Nil(t, got.PowerInputWatts, "PSU %d has no input sensor", i)
			continue
		}
		require.InDelta(t, input.Value, float64(*got.PowerInputWatts), 1e-3)
	}
	volts := visible(want, model.KindVoltage)
	require.Len(t, pw.Voltages, len(volts))
	for i, r := range volts {
		require.Equal(t, r.Spec.Name, pw.Voltages[i].Name)
		require.InDelta(t, r.Value, float64(*pw.Voltages[i].ReadingVolts), 1e-4)
	}
}

// checkILO4 reads iLO 4's pre-1.0 Thermal and Power. gofish decodes
// their names, ReadingCelsius, FanName and LastPowerOutputWatts; a fan's
// CurrentReading has no field in gofish (the Redfish source must read the
// raw member), so a fan's Reading stays nil.
func checkILO4(t *testing.T, ch *schemas.Chassis, b *model.BMC, want []model.Reading) {
	th, err := ch.Thermal()
	require.NoError(t, err)
	require.Equal(t, "#Thermal.1.1.0.Thermal", th.ODataType)
	require.True(t, strings.HasSuffix(th.ODataID, "/Thermal/"), th.ODataID)
	temps := visible(want, model.KindTemperature)
	require.Len(t, th.Temperatures, len(temps))
	for i, r := range temps {
		got := th.Temperatures[i]
		require.Equal(t, r.Spec.Name, got.Name)
		require.Empty(t, got.MemberID, "iLO 4 members have no MemberId")
		require.NotNil(t, got.ReadingCelsius, r.Spec.Name)
		require.InDelta(t, r.Value, *got.ReadingCelsius, 0.5, "%s: whole degrees", r.Spec.Name)
		requireStatus(t, r, got.Status, r.Spec.Name)
		require.EqualValues(t, r.Spec.Context, got.PhysicalContext)
	}
	fans := visible(want, model.KindFan)
	require.Len(t, th.Fans, len(fans))
	for i, r := range fans {
		got := th.Fans[i]
		require.Equal(t, r.Spec.Name, got.FanName) //lint:ignore SA1019 iLO 4 sends only the deprecated FanName; the test checks gofish decodes it
		require.Empty(t, got.Name, "iLO 4 names fans by FanName only")
		require.Nil(t, got.Reading, "iLO 4 reads CurrentReading, which gofish does not decode")
		requireStatus(t, r, got.Status, r.Spec.Name)
	}

	pw, err := ch.Power()
	require.NoError(t, err)
	require.Len(t, pw.PowerControl, 1)
	require.InDelta(t, b.ChassisPower(testTime()), float64(*pw.PowerControl[0].PowerConsumedWatts), 1e-3)
	require.Len(t, pw.PowerSupplies, len(b.Personality.PSUs))
	for i, ps := range b.Personality.PSUs {
		got := pw.PowerSupplies[i]
		require.Equal(t, ps.Name, got.Name)
		require.Nil(t, got.PowerInputWatts, "iLO 4 reports no PSU input power")
		for _, r := range want {
			if r.Spec.Source == model.SourcePSUOutput && r.Spec.Index == i {
				require.NotNil(t, got.LastPowerOutputWatts, ps.Name)
				require.InDelta(t, r.Value, float64(*got.LastPowerOutputWatts), 0.5)
			}
		}
	}
	require.Empty(t, pw.Voltages)
}

func checkModern(t *testing.T, c *gofish.APIClient, ch *schemas.Chassis, b *model.BMC, want []model.Reading) {
	p := b.Personality
	sensors, err := ch.Sensors()
	require.NoError(t, err)
	all := listed(p, want)
	require.Len(t, sensors, len(all))
	for i, r := range all {
		got := sensors[i]
		require.Equal(t, r.Spec.Name, got.Name)
		require.NotNil(t, got.Reading, r.Spec.Name)
		require.InDelta(t, shown(r), *got.Reading, 1e-9, r.Spec.Name)
		requireStatus(t, r, got.Status, r.Spec.Name)
		if r.Spec.Unit == "" {
			require.Empty(t, got.ReadingUnits, "%s: a unitless vendor sensor has no ReadingUnits", r.Spec.Name)
		} else {
			require.Contains(t, []string{"Cel", "RPM", "%", "W", "V", "A"}, got.ReadingUnits)
		}
		switch r.Spec.Kind {
		case model.KindTemperature:
			require.Equal(t, schemas.TemperatureReadingType, got.ReadingType)
		case model.KindPower:
			require.Equal(t, schemas.PowerReadingType, got.ReadingType)
		}
		if v, ok := r.Spec.Thresholds["upper_critical"]; ok {
			require.InDelta(t, v, *got.Thresholds.UpperCritical.Reading, 1e-9)
		}
		require.NotEmpty(t, got.ODataEtag)
	}

	ts, err := ch.ThermalSubsystem()
	require.NoError(t, err)
	tm, err := ts.ThermalMetrics()
	require.NoError(t, err)
	temps := visible(want, model.KindTemperature)
	require.Len(t, tm.TemperatureReadingsCelsius, len(temps))
	for _, r := range temps {
		if r.Spec.Source == model.SourceIntake {
			require.InDelta(t, r.Value, *tm.TemperatureSummaryCelsius.Intake.Reading, 1e-9)
			break
		}
	}

	// gofish v0.26's ThermalSubsystem.Fans() decodes members as the legacy
	// ThermalFan, which has no SpeedPercent, so the speed is lost. Read the
	// collection as schemas.Fan instead (the Redfish source must do the
	// same).
	wrong, err := ts.Fans()
	require.NoError(t, err)
	require.NotEmpty(t, wrong)
	require.Nil(t, wrong[0].Reading, "gofish fixed ThermalSubsystem.Fans: drop the workaround")
	fans, err := schemas.GetCollectionObjects[schemas.Fan](c, ch.ODataID+"/ThermalSubsystem/Fans")
	require.NoError(t, err)
	require.NotEmpty(t, fans)
	for _, f := range fans {
		var tach *model.Reading
		for _, r := range want {
			if r.Spec.Name == f.Name {
				tach = &r
			}
		}
		require.NotNil(t, tach, f.Name)
		require.InDelta(t, tach.Percent(), *f.SpeedPercent.Reading, 1e-9, f.Name)
		require.InDelta(t, tach.Value, *f.SpeedPercent.SpeedRPM, 1e-9, f.Name)
		if tach.Spec.SensorsOmit {
			require.Empty(t, f.SpeedPercent.DataSourceURI, "%s has no Sensor to point to", f.Name)
		} else {
			require.Contains(t, f.SpeedPercent.DataSourceURI, ch.ODataID+"/Sensors/")
		}
	}

	if p.Redfish.EnvironmentMetrics {
		em, err := ch.EnvironmentMetrics()
		require.NoError(t, err)
		require.NotNil(t, em)
		require.NotNil(t, em.PowerWatts.Reading)
		require.InDelta(t, b.ChassisPower(testTime()), *em.PowerWatts.Reading, 1e-9)
		require.Len(t, em.FanSpeedsPercent, len(fans))
		for i, f := range fans {
			require.Equal(t, f.Name, em.FanSpeedsPercent[i].DeviceName)
			require.InDelta(t, *f.SpeedPercent.Reading, *em.FanSpeedsPercent[i].Reading, 1e-9)
		}
	}

	// Likewise PowerSubsystem.PowerSupplies() decodes members as the legacy
	// Power.PowerSupply, which has no Metrics link; schemas.PowerSupplyUnit
	// is the modern PowerSupply.
	psus, err := schemas.GetCollectionObjects[schemas.PowerSupplyUnit](c, ch.ODataID+"/PowerSubsystem/PowerSupplies")
	require.NoError(t, err)
	require.Len(t, psus, len(b.Personality.PSUs))
	for i, psu := range psus {
		require.Equal(t, b.Personality.PSUs[i].Name, psu.Name)
		metrics, err := psu.Metrics()
		require.NoError(t, err)
		for _, r := range want {
			switch {
			case r.Spec.RedfishOmit || r.Spec.Index != i:
			case r.Spec.Source == model.SourcePSUInput:
				require.NotNil(t, metrics.InputPowerWatts.Reading, psu.Name)
				require.InDelta(t, r.Value, *metrics.InputPowerWatts.Reading, 1e-9)
			case r.Spec.Source == model.SourcePSUOutput:
				require.NotNil(t, metrics.OutputPowerWatts.Reading, psu.Name)
				require.InDelta(t, r.Value, *metrics.OutputPowerWatts.Reading, 1e-9)
			}
		}
	}
}

// TestGofishAutoExpandReadsSensorsInOneRequest checks that a modern BMC
// announces $expand and answers the Sensors collection with every member
// inline, so a poll costs one request instead of one per sensor.
func TestGofishAutoExpandReadsSensorsInOneRequest(t *testing.T) {
	b := newBMC(t, "openbmc")
	h := redfish.NewHandler(b, redfish.Options{Now: newClock().Now, IgnoreSensorLatency: true})
	var sensorRequests atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.Contains(r.URL.Path, "/Sensors") {
			sensorRequests.Add(1)
		}
		h.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	t.Cleanup(func() { require.NoError(t, h.Close()) })

	c, err := gofish.ConnectContext(t.Context(), gofish.ClientConfig{
		Endpoint: srv.URL, Username: user, Password: password, AutoExpand: true,
	})
	require.NoError(t, err)
	t.Cleanup(c.Logout)
	chassis, err := c.Service.Chassis()
	require.NoError(t, err)
	sensors, err := chassis[0].Sensors()
	require.NoError(t, err)
	require.Len(t, sensors, len(visible(b.Readings(testTime()), model.KindTemperature, model.KindFan, model.KindPower, model.KindVoltage, model.KindCurrent)))
	require.Equal(t, int32(1), sensorRequests.Load())
	for _, s := range sensors {
		require.NotNil(t, s.Reading, s.Name)
	}
}
