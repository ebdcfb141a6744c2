package redfish_test

import (
	"bytes"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	simredfish "github.com/bmcstream/bmcstream/pkg/bmcsim/redfish"
	"github.com/bmcstream/bmcstream/pkg/sources"
	"github.com/bmcstream/bmcstream/pkg/sources/redfish"
	v1 "github.com/bmcstream/bmcstream/proto/bmcstream/v1"
)

// The Source counts what it leaves out.
var _ sources.DropCounter = (*redfish.Source)(nil)

// expander sits in front of a mockup handler and makes the service
// announce $expand (ExpandAll, Levels) in its root and honour it: a
// collection asked for with $expand comes with its members inlined, each
// read through the handler with the request's own credentials, under an
// ETag of its own.
func expander(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet {
			h.ServeHTTP(w, r)
			return
		}
		expand := r.URL.Query().Get("$expand") != ""
		root := strings.TrimRight(r.URL.Path, "/") == "/redfish/v1"
		if !expand && !root {
			h.ServeHTTP(w, r)
			return
		}
		inner := r.Clone(r.Context())
		inner.URL.RawQuery = ""
		inner.Header.Del("If-None-Match")
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, inner)
		var doc map[string]any
		if rec.Code != http.StatusOK || json.Unmarshal(rec.Body.Bytes(), &doc) != nil {
			w.WriteHeader(rec.Code)
			_, _ = w.Write(rec.Body.Bytes())
			return
		}
		if root {
			doc["ProtocolFeaturesSupported"] = map[string]any{"ExpandQuery": map[string]any{"ExpandAll": true, "Levels": true, "NoLinks": true}}
		}
		if ms, ok := doc["Members"].([]any); ok && expand {
			for i, m := range ms {
				id, _ := m.(map[string]any)["@odata.id"].(string)
				mr := r.Clone(r.Context())
				mr.URL.Path, mr.URL.RawQuery = id, ""
				mr.Header.Del("If-None-Match")
				mrec := httptest.NewRecorder()
				h.ServeHTTP(mrec, mr)
				var md map[string]any
				if mrec.Code == http.StatusOK && json.Unmarshal(mrec.Body.Bytes(), &md) == nil {
					ms[i] = md
				}
			}
		}
		b, err := json.Marshal(doc)
		if err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		etag := fmt.Sprintf(`"%x"`, sha256.Sum256(b))
		w.Header().Set("ETag", etag)
		if r.Header.Get("If-None-Match") == etag {
			w.WriteHeader(http.StatusNotModified)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write(b)
	})
}

// layout serves testdata/layouts/<name>, announcing and honouring
// $expand when expand is set.
func layout(t *testing.T, name string, expand bool) (string, *clock) {
	t.Helper()
	clk := newClock()
	h, err := simredfish.NewMockupHandler(filepath.Join("testdata", "layouts", name), simredfish.MockupOptions{
		Options: simredfish.Options{Now: clk.Now}, Username: user, Password: password,
	})
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, h.Close()) })
	var hh http.Handler = h
	if expand {
		hh = expander(h)
	}
	return httptestServer(t, hh), clk
}

// drops collects what OnDrop reports.
type drops struct {
	mu  sync.Mutex
	all []sources.Drop
}

func (d *drops) add(x sources.Drop) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.all = append(d.all, x)
}

// take returns the drops since the last take.
func (d *drops) take() []sources.Drop {
	d.mu.Lock()
	defer d.mu.Unlock()
	out := d.all
	d.all = nil
	return out
}

// brief is a reading as the layout tests compare it.
type brief struct {
	Name, ID, SensorType, Unit, Context string
	Kind                                v1.Kind
	Value                               float64
	Thresholds                          int
}

func briefs(rs []v1.Reading) []brief {
	out := make([]brief, len(rs))
	for i, r := range rs {
		out[i] = brief{r.Name, r.Id, r.SensorType, r.Unit, r.Context, r.Kind, r.Value, len(r.Thresholds)}
	}
	return out
}

const ch = "/redfish/v1/Chassis/1"

// TestLayouts reads each synthetic layout through each schema choice,
// with and without $expand announced: the readings are the same whether
// or not the service expands, every reading the BMC lists is either read
// or reported to OnDrop (and counted by Dropped), and the copies of one
// sensor merge into one reading.
func TestLayouts(t *testing.T) {
	legacyReadings := []brief{
		{"CPU1 Temp", ch + "/Thermal#/Temperatures/0", "Temperatures", "Cel", "CPU", v1.Kind_KIND_TEMPERATURE, 40, 0},
		{"Fan 1", ch + "/Thermal#/Fans/0", "Fans", "RPM", "", v1.Kind_KIND_FAN, 5040, 1},
		{"Chassis Power", ch + "/Power#/PowerControl/0", "PowerControl", "W", "", v1.Kind_KIND_POWER, 312, 0},
		{"PSU1", ch + "/Power#/PowerSupplies/0/PowerInputWatts", "PowerSupplyInput", "W", "PowerSupply", v1.Kind_KIND_POWER, 165, 0},
		{"PSU1", ch + "/Power#/PowerSupplies/0/PowerOutputWatts", "PowerSupplyOutput", "W", "PowerSupply", v1.Kind_KIND_POWER, 150, 0},
		{"P12V", ch + "/Power#/Voltages/0", "Voltages", "V", "", v1.Kind_KIND_VOLTAGE, 12.1, 2},
	}
	sensorReadings := []brief{
		{"CPU1 Temperature", ch + "/Sensors/CPU1Temp", "Temperature", "Cel", "CPU", v1.Kind_KIND_TEMPERATURE, 40.4, 1},
		{"Inlet Temp", ch + "/Sensors/Inlet", "Temperature", "Cel", "Intake", v1.Kind_KIND_TEMPERATURE, 22.5, 0},
		{"PSU1 Input Power", ch + "/Sensors/PSU1Input", "Power", "W", "", v1.Kind_KIND_POWER, 165, 0},
	}
	absent := sources.Drop{Reason: sources.DropAbsent, Name: "Slot 3 Temp", ID: ch + "/Thermal#/Temperatures/1", Detail: "state Absent"}
	bad := sources.Drop{Reason: sources.DropNotANumber, Name: "Bad", ID: ch + "/Sensors/Bad", Detail: `reading "N/A"`}
	tests := []struct {
		layout string
		schema redfish.Schema
		want   []brief
		drops  []sources.Drop
	}{
		{"legacy", redfish.SchemaAuto, legacyReadings, []sources.Drop{absent}},
		{"sensors", redfish.SchemaAuto, sensorReadings, []sources.Drop{bad}},
		{
			// Both generations: the legacy CPU1 Temp is the Sensor CPU1
			// Temperature (name and value), which carries a threshold and
			// is kept; the Sensor PSU1 Input Power names the legacy PSU
			// input as its RelatedItem, and the legacy member, which has
			// a PhysicalContext, is kept. The fan, the chassis power, the
			// PSU output and the voltage exist only in legacy, the inlet
			// only in Sensors: all are read.
			"both", redfish.SchemaAuto,
			[]brief{
				legacyReadings[1], legacyReadings[2], legacyReadings[3], legacyReadings[4], legacyReadings[5],
				sensorReadings[0], sensorReadings[1],
			},
			[]sources.Drop{
				absent, bad,
				{Reason: sources.DropMerged, Name: "CPU1 Temp", ID: ch + "/Thermal#/Temperatures/0", Detail: ch + "/Sensors/CPU1Temp"},
				{Reason: sources.DropMerged, Name: "PSU1 Input Power", ID: ch + "/Sensors/PSU1Input", Detail: ch + "/Power#/PowerSupplies/0/PowerInputWatts"},
			},
		},
		{"both", redfish.SchemaLegacy, legacyReadings, []sources.Drop{absent}},
		{"both", redfish.SchemaModern, sensorReadings, []sources.Drop{bad}},
		{"legacy", redfish.SchemaModern, legacyReadings, []sources.Drop{absent}},
		{"sensors", redfish.SchemaLegacy, sensorReadings, []sources.Drop{bad}},
		{
			"subsystem", redfish.SchemaAuto,
			[]brief{
				{"Fan 1", ch + "/ThermalSubsystem/Fans/1#/SpeedPercent", "Fans", "Percent", "", v1.Kind_KIND_FAN, 45, 0},
				{"Fan 2", ch + "/ThermalSubsystem/Fans/2#/SpeedPercent", "Fans", "RPM", "", v1.Kind_KIND_FAN, 7200, 0},
				{"Inlet", ch + "/ThermalSubsystem/ThermalMetrics#/TemperatureReadingsCelsius/0", "Temperatures", "Cel", "Intake", v1.Kind_KIND_TEMPERATURE, 23, 0},
				{"PSU Bay 1", ch + "/PowerSubsystem/PowerSupplies/1/Metrics#/InputPowerWatts", "PowerSupplyInput", "W", "PowerSupply", v1.Kind_KIND_POWER, 170, 0},
				{"PSU Bay 1", ch + "/PowerSubsystem/PowerSupplies/1/Metrics#/OutputPowerWatts", "PowerSupplyOutput", "W", "PowerSupply", v1.Kind_KIND_POWER, 155, 0},
				{"Chassis Power", ch + "/EnvironmentMetrics#/PowerWatts", "PowerControl", "W", "Chassis", v1.Kind_KIND_POWER, 320, 0},
			},
			[]sources.Drop{{Reason: sources.DropNull, Name: "CPU", ID: ch + "/ThermalSubsystem/ThermalMetrics#/TemperatureReadingsCelsius/1", Detail: "reading null"}},
		},
		{
			"ilo4", redfish.SchemaAuto,
			[]brief{
				{"01-Inlet Ambient", ch + "/Thermal#/Temperatures/0", "Temperatures", "Cel", "Intake", v1.Kind_KIND_TEMPERATURE, 21, 0},
				{"Fan 1", ch + "/Thermal#/Fans/0", "Fans", "Percent", "", v1.Kind_KIND_FAN, 23, 0},
			},
			[]sources.Drop{{Reason: sources.DropAbsent, Name: "Fan 2", ID: ch + "/Thermal#/Fans/1", Detail: "state Absent"}},
		},
		{"empty", redfish.SchemaAuto, []brief{}, nil},
	}
	for _, tc := range tests {
		t.Run(tc.layout+"/"+string(tc.schema), func(t *testing.T) {
			var got [2][]brief
			for i, expand := range []bool{false, true} {
				srv, clk := layout(t, tc.layout, expand)
				var d drops
				s, _ := newSource(t, target(t, srv), redfish.Options{Now: clk.Now, Schema: tc.schema, OnDrop: d.add})
				for poll := range 2 {
					snap, err := collect(t, s, 10*time.Second)
					require.NoError(t, err)
					require.True(t, snap.Up, "%s", snap.Error)
					require.Equal(t, "Warning", snap.Info["health"], "the chassis' own health, not a rollup")
					got[i] = briefs(snap.Readings)
					require.Equal(t, tc.want, append([]brief{}, got[i]...), "expand %v, poll %d", expand, poll+1)
					require.ElementsMatch(t, tc.drops, d.take(), "expand %v, poll %d", expand, poll+1)
				}
				want := map[string]uint64{}
				for _, x := range tc.drops {
					want[x.Reason] += 2
				}
				require.Equal(t, want, s.Dropped(), "two polls")
			}
			require.Equal(t, got[0], got[1], "the same readings whether or not the service expands")
		})
	}
}

// TestUnsupportedLayout serves a Thermal whose Temperatures is an object:
// its readings are counted as unsupported_layout, the rest of the poll is
// read, and the poll's error says what and where.
func TestUnsupportedLayout(t *testing.T) {
	srv := httptestServer(t, layoutRewrite(t, "legacy", "/redfish/v1/Chassis/1/Thermal", func(b []byte) []byte {
		return bytes.Replace(b, []byte(`"Temperatures": [`), []byte(`"Temperatures": "none", "Unread": [`), 1)
	}))
	var d drops
	s, _ := newSource(t, target(t, srv), redfish.Options{OnDrop: d.add})
	snap, err := collect(t, s, 10*time.Second)
	require.Error(t, err)
	require.True(t, snap.Up)
	require.True(t, snap.Partial)
	require.Contains(t, err.Error(), "/redfish/v1/Chassis/1/Thermal#/Temperatures is not an array")
	require.Contains(t, err.Error(), "unsupported layout")
	require.Equal(t, "decode", snap.ErrorClass)
	require.NotEmpty(t, bySensorType(snap.Readings, "Voltages"), "the rest is read")
	require.Equal(t, uint64(1), s.Dropped()[sources.DropUnsupportedLayout])
}

// layoutRewrite serves a layout with the document at path rewritten.
func layoutRewrite(t *testing.T, name, path string, rewrite func([]byte) []byte) http.Handler {
	t.Helper()
	h, err := simredfish.NewMockupHandler(filepath.Join("testdata", "layouts", name), simredfish.MockupOptions{
		Username: user, Password: password,
	})
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, h.Close()) })
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != path {
			h.ServeHTTP(w, r)
			return
		}
		r = r.Clone(r.Context())
		r.Header.Del("If-None-Match")
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, r)
		w.WriteHeader(rec.Code)
		_, _ = w.Write(rewrite(rec.Body.Bytes()))
	})
}

// TestRequestsPerLayout measures what a poll of each layout costs, at
// discovery (the first poll, login included) and in steady state, with
// and without $expand; in steady state every document is unchanged, so
// every request carries If-None-Match and is answered 304.
func TestRequestsPerLayout(t *testing.T) {
	tests := []struct {
		layout        string
		expand        bool
		first, steady int
	}{
		{"legacy", false, 10, 2},    // Thermal, Power
		{"sensors", false, 13, 5},   // the collection, then its 4 members
		{"sensors", true, 6, 1},     // the expanded collection
		{"both", false, 15, 7},      // Thermal, Power, the collection and 4 members
		{"both", true, 8, 3},        // Thermal, Power, the expanded collection
		{"subsystem", false, 24, 6}, // Fans and its 2 members, ThermalMetrics, PSU metrics, EnvironmentMetrics
		{"subsystem", true, 16, 4},  // the expanded Fans, ThermalMetrics, PSU metrics, EnvironmentMetrics
		{"ilo4", false, 9, 1},       // Thermal
		{"empty", false, 8, 1},      // the service root, to know the BMC is up
	}
	for _, tc := range tests {
		t.Run(tc.layout+map[bool]string{true: "/expand", false: ""}[tc.expand], func(t *testing.T) {
			srv, clk := layout(t, tc.layout, tc.expand)
			s, count := newSource(t, target(t, srv), redfish.Options{Now: clk.Now})
			_, err := collect(t, s, 10*time.Second)
			require.NoError(t, err)
			first, log := count.take()
			require.Equal(t, tc.first, first, "first poll: %v", log)
			for range 3 {
				before := s.Stats().NotModified
				_, err := collect(t, s, 10*time.Second)
				require.NoError(t, err)
				n, log := count.take()
				require.Equal(t, tc.steady, n, "steady poll: %v", log)
				if tc.layout != "empty" {
					require.EqualValues(t, n, s.Stats().NotModified-before, "every document unchanged: 304: %v", log)
				}
			}
			t.Logf("%s expand=%v: first poll %d requests, then %d a poll", tc.layout, tc.expand, first, tc.steady)
		})
	}
}

// TestDeadLinkAtDiscovery serves a chassis linking a Thermal it does not
// serve (404 from the start): the service's own inconsistency, not a
// failure. The first poll is clean, with what the rest gives, and the
// Thermal is not asked for again until the next discovery; a resource
// served before and then gone (404) still fails its poll and makes the
// source discover again, which finds the Thermal once it is served.
func TestDeadLinkAtDiscovery(t *testing.T) {
	const (
		thermal = "/redfish/v1/Chassis/1/Thermal"
		power   = "/redfish/v1/Chassis/1/Power"
	)
	h, err := simredfish.NewMockupHandler(filepath.Join("testdata", "layouts", "legacy"), simredfish.MockupOptions{
		Username: user, Password: password,
	})
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, h.Close()) })
	var missing atomic.Value // the path answered 404
	missing.Store(thermal)
	srv := httptestServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == missing.Load().(string) {
			http.NotFound(w, r)
			return
		}
		h.ServeHTTP(w, r)
	}))
	s, count := newSource(t, target(t, srv), redfish.Options{})
	snap, err := collect(t, s, 10*time.Second)
	require.NoError(t, err, "a link dead from the start fails nothing")
	require.True(t, snap.Up)
	require.False(t, snap.Partial)
	require.Empty(t, bySensorType(snap.Readings, "Temperatures"))
	require.NotEmpty(t, bySensorType(snap.Readings, "Voltages"), "the rest is read")
	count.take()
	missing.Store("")
	for range 3 {
		_, err = collect(t, s, 10*time.Second)
		require.NoError(t, err)
		_, log := count.take()
		require.NotContains(t, log, "GET "+thermal, "not asked again before discovery")
	}
	require.EqualValues(t, 1, s.Stats().Discoveries)

	// Power, served before, is gone: an error, and discovery again.
	missing.Store(power)
	snap, err = collect(t, s, 10*time.Second)
	requireClass(t, err, sources.ClassProtocol)
	require.True(t, snap.Partial)
	missing.Store("")
	snap, err = collect(t, s, 10*time.Second)
	require.NoError(t, err)
	require.EqualValues(t, 2, s.Stats().Discoveries)
	require.NotEmpty(t, bySensorType(snap.Readings, "Temperatures"), "the Thermal, served now, is read")
	require.NotEmpty(t, bySensorType(snap.Readings, "Voltages"))
}

// TestMalformedDocumentAtDiscovery: a system document that does not decode
// leaves discovery to go on without it, and is counted.
func TestMalformedDocumentAtDiscovery(t *testing.T) {
	srv := httptestServer(t, layoutRewrite(t, "legacy", "/redfish/v1/Systems/1", func(b []byte) []byte {
		return b[:len(b)/2] // broken JSON
	}))
	s, _ := newSource(t, target(t, srv), redfish.Options{})
	require.Zero(t, s.Stats().MalformedDocuments)
	snap, err := collect(t, s, 10*time.Second)
	require.NoError(t, err)
	require.True(t, snap.Up)
	require.NotEmpty(t, bySensorType(snap.Readings, "Voltages"), "the rest is read")
	require.EqualValues(t, 1, s.Stats().MalformedDocuments)
}
