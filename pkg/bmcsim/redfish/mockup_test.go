package redfish_test

import (
	"net/http"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/bmcstream/bmcstream/pkg/bmcsim/redfish"
)

const mockupDir = "testdata/mockup/rackmount"

func newMockup(t *testing.T, dir string, limit int) (*redfish.Handler, *clock) {
	t.Helper()
	clk := newClock()
	h, err := redfish.NewMockupHandler(dir, redfish.MockupOptions{
		Options:      redfish.Options{Now: clk.Now},
		Username:     user,
		Password:     password,
		SessionLimit: limit,
	})
	require.NoError(t, err)
	return h, clk
}

func TestMockupWithGofish(t *testing.T) {
	h, _ := newMockup(t, mockupDir, 0)
	srv := serve(t, h)
	c := connect(t, srv.URL, false)
	require.Equal(t, 1, h.SessionCount())

	svc := c.Service
	require.Equal(t, "Contoso", svc.Vendor)
	chassis, err := svc.Chassis()
	require.NoError(t, err)
	require.Len(t, chassis, 1)
	ch := chassis[0]
	require.Equal(t, "1U", ch.ID)
	require.Equal(t, "437XR1138R2", ch.SerialNumber)

	th, err := ch.Thermal()
	require.NoError(t, err)
	require.Len(t, th.Temperatures, 3)
	require.Equal(t, "CPU1 Temp", th.Temperatures[0].Name)
	require.InDelta(t, 41, *th.Temperatures[0].ReadingCelsius, 1e-9)
	require.Nil(t, th.Temperatures[1].ReadingCelsius, "a disabled sensor has no reading")
	require.Equal(t, 2100, *th.Fans[0].Reading)
	require.NotEmpty(t, th.ODataEtag, "the ETag header fills in a missing @odata.etag")

	pw, err := ch.Power()
	require.NoError(t, err)
	require.InDelta(t, 344, float64(*pw.PowerControl[0].PowerConsumedWatts), 1e-3)
	require.InDelta(t, 356, float64(*pw.PowerSupplies[0].PowerInputWatts), 1e-3)
	require.Len(t, pw.Voltages, 2)

	sensors, err := ch.Sensors()
	require.NoError(t, err)
	require.Len(t, sensors, 2)
	require.InDelta(t, 22.5, *sensors[0].Reading, 1e-9)
	require.InDelta(t, 35, *sensors[0].Thresholds.UpperCritical.Reading, 1e-9)

	systems, err := svc.Systems()
	require.NoError(t, err)
	require.Equal(t, "P79 v1.45 (12/06/2017)", systems[0].BiosVersion)
	managers, err := svc.Managers()
	require.NoError(t, err)
	require.Equal(t, "4.4.6521", managers[0].FirmwareVersion)

	c.Logout()
	require.Zero(t, h.SessionCount())
}

func TestMockupProtocol(t *testing.T) {
	h, clk := newMockup(t, mockupDir, 2)
	srv := serve(t, h)
	thermal := "/redfish/v1/Chassis/1U/Thermal"
	loginReq := request{method: http.MethodPost, path: "/redfish/v1/SessionService/Sessions", auth: "none",
		body: `{"UserName":"admin","Password":"s3cret"}`}

	tests := []struct {
		name   string
		req    request
		status int
	}{
		{"service root is public", request{path: "/redfish/v1/", auth: "none"}, http.StatusOK},
		{"version object", request{path: "/redfish", auth: "none"}, http.StatusOK},
		{"metadata", request{path: "/redfish/v1/$metadata", auth: "none"}, http.StatusOK},
		{"trailing slash", request{path: "/redfish/v1/Chassis/"}, http.StatusOK},
		{"thermal needs credentials", request{path: thermal, auth: "none"}, http.StatusUnauthorized},
		{"thermal with basic auth", request{path: thermal}, http.StatusOK},
		{"unknown resource", request{path: "/redfish/v1/Chassis/2U"}, http.StatusNotFound},
		{"GET only", request{method: http.MethodPatch, path: thermal, body: `{}`}, http.StatusMethodNotAllowed},
		{"first session", loginReq, http.StatusCreated},
		{"second session", loginReq, http.StatusCreated},
		{"session limit", loginReq, http.StatusServiceUnavailable},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			resp, body := do(t, srv, tc.req)
			require.Equal(t, tc.status, resp.StatusCode, "%s", body)
		})
	}

	resp, _ := do(t, srv, request{path: "/redfish/v1/$metadata", auth: "none"})
	require.Equal(t, "application/xml", resp.Header.Get("Content-Type"))

	// The live session collection replaces the captured one.
	sessions := getJSON(t, srv, "/redfish/v1/SessionService/Sessions")
	require.EqualValues(t, 2, sessions["Members@odata.count"])

	resp, _ = do(t, srv, request{path: thermal})
	etag := resp.Header.Get("ETag")
	require.NotEmpty(t, etag)
	resp, _ = do(t, srv, request{path: thermal, header: map[string]string{"If-None-Match": etag}})
	require.Equal(t, http.StatusNotModified, resp.StatusCode)

	clk.Advance(redfish.DefaultSessionTimeout + 1)
	require.Zero(t, h.SessionCount(), "mockup sessions expire too")
}

func TestMockupLayouts(t *testing.T) {
	// A tree without the leading redfish directory: dir/v1/index.json.
	bare := t.TempDir()
	require.NoError(t, os.CopyFS(bare, os.DirFS(filepath.Join(mockupDir, "redfish"))))
	require.NoError(t, os.Remove(filepath.Join(bare, "index.json")))

	tests := []struct {
		name string
		dir  string
		opts redfish.MockupOptions
		err  string
	}{
		{"mockup creator layout", mockupDir, redfish.MockupOptions{Username: user, Password: password}, ""},
		{"without the redfish directory", bare, redfish.MockupOptions{Username: user, Password: password}, ""},
		{"no mockup", t.TempDir(), redfish.MockupOptions{Username: user, Password: password}, "neither redfish/v1/index.json nor v1/index.json"},
		{"no credentials", mockupDir, redfish.MockupOptions{}, "username: must be set"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			h, err := redfish.NewMockupHandler(tc.dir, tc.opts)
			if tc.err != "" {
				require.ErrorContains(t, err, tc.err)
				return
			}
			require.NoError(t, err)
			srv := serve(t, h)
			doc := getJSON(t, srv, "/redfish")
			require.Equal(t, "/redfish/v1/", doc["v1"])
			c := connect(t, srv.URL, true)
			chassis, err := c.Service.Chassis()
			require.NoError(t, err)
			require.Len(t, chassis, 1)
		})
	}
}

func TestMockupRejectsBadJSON(t *testing.T) {
	dir := t.TempDir()
	require.NoError(t, os.CopyFS(dir, os.DirFS(mockupDir)))
	bad := filepath.Join(dir, "redfish", "v1", "Chassis", "1U", "index.json")
	require.NoError(t, os.WriteFile(bad, []byte(`{"Id": "1U",`), 0o644))
	_, err := redfish.NewMockupHandler(dir, redfish.MockupOptions{Username: user, Password: password})
	require.ErrorContains(t, err, "not valid JSON")
}
