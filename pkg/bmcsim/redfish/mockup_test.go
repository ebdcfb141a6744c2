package redfish_test

import (
	"bytes"
	"encoding/json"
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
	// DMTF's published mockups: the directory is /redfish/v1 itself.
	flat := t.TempDir()
	require.NoError(t, os.CopyFS(flat, os.DirFS(filepath.Join(mockupDir, "redfish", "v1"))))

	tests := []struct {
		name string
		dir  string
		opts redfish.MockupOptions
		err  string
	}{
		{"mockup creator layout", mockupDir, redfish.MockupOptions{Username: user, Password: password}, ""},
		{"without the redfish directory", bare, redfish.MockupOptions{Username: user, Password: password}, ""},
		{"flat, the directory is /redfish/v1", flat, redfish.MockupOptions{Username: user, Password: password}, ""},
		{"no mockup", t.TempDir(), redfish.MockupOptions{Username: user, Password: password}, "none of redfish/v1/index.json, v1/index.json and index.json exists"},
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

// TestMockupServesMalformedJSON replays a document that is not valid JSON
// byte for byte, as the BMC it was captured from did, with an ETag and 304
// like any other, and reports it once at load.
func TestMockupServesMalformedJSON(t *testing.T) {
	dir := t.TempDir()
	require.NoError(t, os.CopyFS(dir, os.DirFS(mockupDir)))
	bad := []byte(`{"Id": "1U",`)
	require.NoError(t, os.WriteFile(filepath.Join(dir, "redfish", "v1", "Chassis", "1U", "index.json"), bad, 0o644))
	// A collection cut short is served as captured too (it cannot be
	// expanded).
	badColl := []byte(`{"Members": [{"@odata.id": "/redfish/v1/Chassis/1U"}`)
	require.NoError(t, os.WriteFile(filepath.Join(dir, "redfish", "v1", "Chassis", "index.json"), badColl, 0o644))

	var malformed []string
	h, err := redfish.NewMockupHandler(dir, redfish.MockupOptions{
		Username: user, Password: password,
		OnMalformed: func(uri string) { malformed = append(malformed, uri) },
	})
	require.NoError(t, err)
	require.ElementsMatch(t, []string{"/redfish/v1/Chassis", "/redfish/v1/Chassis/1U"}, malformed)
	srv := serve(t, h)

	for path, want := range map[string][]byte{"/redfish/v1/Chassis/1U": bad, "/redfish/v1/Chassis?$expand=.": badColl} {
		resp, body := do(t, srv, request{path: path})
		require.Equal(t, http.StatusOK, resp.StatusCode)
		require.Equal(t, want, body, "served byte for byte")
		etag := resp.Header.Get("ETag")
		require.NotEmpty(t, etag)
		resp, _ = do(t, srv, request{path: path, header: map[string]string{"If-None-Match": etag}})
		require.Equal(t, http.StatusNotModified, resp.StatusCode)
	}
	// The rest of the mockup is unaffected.
	require.Len(t, getJSON(t, srv, "/redfish/v1/Chassis/1U/Thermal")["Temperatures"], 3)
}

// TestMockupExpand inlines a collection's members one level deep for
// $expand=. and $expand=*, with or without $levels, and leaves them links
// for $expand=~ (Links only) and without $expand; each form has its own
// ETag and answers 304 to it.
func TestMockupExpand(t *testing.T) {
	dir := t.TempDir()
	require.NoError(t, os.CopyFS(dir, os.DirFS(mockupDir)))
	// A member the mockup does not hold stays a link.
	coll := filepath.Join(dir, "redfish", "v1", "Chassis", "1U", "Sensors", "index.json")
	orig, err := os.ReadFile(coll)
	require.NoError(t, err)
	var doc map[string]any
	require.NoError(t, json.Unmarshal(orig, &doc))
	members := doc["Members"].([]any)
	require.Len(t, members, 2)
	doc["Members"] = append(members, map[string]any{"@odata.id": "/redfish/v1/Chassis/1U/Sensors/Missing"})
	b, err := json.Marshal(doc)
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(coll, b, 0o644))

	h, err := redfish.NewMockupHandler(dir, redfish.MockupOptions{Username: user, Password: password})
	require.NoError(t, err)
	srv := serve(t, h)
	const sensors = "/redfish/v1/Chassis/1U/Sensors"
	member0 := getJSON(t, srv, sensors+"/AmbientTemp")

	tests := []struct {
		query  string
		inline bool
	}{
		{"", false},
		{"?$expand=.", true},
		{"?$expand=*", true},
		{"?$expand=.($levels=1)", true},
		{"?$expand=*($levels=1)", true},
		{"?$expand=.($levels=2)", true},
		{"?$expand=~", false},
		{"?$expand=~($levels=1)", false},
		{"?$top=1", false},
	}
	etags := map[bool]string{}
	for _, tc := range tests {
		t.Run(tc.query, func(t *testing.T) {
			resp, body := do(t, srv, request{path: sensors + tc.query})
			require.Equal(t, http.StatusOK, resp.StatusCode, "%s", body)
			var got map[string]any
			require.NoError(t, json.Unmarshal(body, &got), "%s", body)
			ms := got["Members"].([]any)
			require.Len(t, ms, 3)
			require.Equal(t, map[string]any{"@odata.id": sensors + "/Missing"}, ms[2], "a member the mockup lacks stays a link")
			first := ms[0].(map[string]any)
			if tc.inline {
				require.Equal(t, member0, first, "the member's own document, inlined")
				// One level: the inlined member's own links stay links.
				require.NotContains(t, string(body), `"Members":[{"@odata.id":"`+sensors+`/AmbientTemp"}`)
			} else {
				require.Equal(t, map[string]any{"@odata.id": sensors + "/AmbientTemp"}, first)
			}
			require.Equal(t, got["Members@odata.count"], doc["Members@odata.count"], "the rest of the collection as captured")

			etag := resp.Header.Get("ETag")
			require.NotEmpty(t, etag)
			if prev, ok := etags[tc.inline]; ok {
				require.Equal(t, prev, etag, "the same representation has the same ETag")
			}
			etags[tc.inline] = etag
			resp, _ = do(t, srv, request{path: sensors + tc.query, header: map[string]string{"If-None-Match": etag}})
			require.Equal(t, http.StatusNotModified, resp.StatusCode)
		})
	}
	require.NotEqual(t, etags[true], etags[false], "expanded and plain collections differ, and so do their ETags")

	// Key order is the captured one: @odata.type comes before Members in
	// the test mockup's Chassis collection, and still does.
	_, body := do(t, srv, request{path: "/redfish/v1/Chassis?$expand=*"})
	require.Less(t, bytes.Index(body, []byte(`"@odata.type"`)), bytes.Index(body, []byte(`"Members"`)))
	require.Contains(t, string(body), `"SerialNumber":"437XR1138R2"`, "the chassis inlined")
}
