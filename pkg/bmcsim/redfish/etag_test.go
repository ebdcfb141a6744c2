package redfish_test

import (
	"encoding/json"
	"errors"
	"net/http"
	"testing"
	"time"

	"github.com/stmcginnis/gofish/schemas"
	"github.com/stretchr/testify/require"

	"github.com/bmcstream/bmcstream/pkg/bmcsim/redfish"
)

func TestETags(t *testing.T) {
	_, _, srv, clk := newService(t, "idrac", redfish.Options{IgnoreSensorLatency: true})
	tests := []struct {
		path string
		// sensor resources carry their ETag in the body too.
		sensor bool
	}{
		{"/redfish/v1/", false},
		{"/redfish/v1/$metadata", false},
		{"/redfish/v1/SessionService", false},
		{"/redfish/v1/Chassis/System.Embedded.1", false},
		{"/redfish/v1/Chassis/System.Embedded.1/Thermal", true},
		{"/redfish/v1/Chassis/System.Embedded.1/Power", true},
		{"/redfish/v1/Chassis/System.Embedded.1/Sensors", true},
		{"/redfish/v1/Chassis/System.Embedded.1/Sensors/SystemBoardInletTemp", true},
		{"/redfish/v1/Chassis/System.Embedded.1/PowerSubsystem/PowerSupplies/Bay1/Metrics", true},
	}
	for _, tc := range tests {
		t.Run(tc.path, func(t *testing.T) {
			resp, body := do(t, srv, request{path: tc.path})
			require.Equal(t, http.StatusOK, resp.StatusCode)
			etag := resp.Header.Get("ETag")
			require.Regexp(t, `^"[0-9a-f]{16}"$`, etag)
			if tc.sensor {
				var doc map[string]any
				require.NoError(t, json.Unmarshal(body, &doc))
				require.Equal(t, etag, doc["@odata.etag"])
			}

			resp, body = do(t, srv, request{path: tc.path, header: map[string]string{"If-None-Match": etag}})
			require.Equal(t, http.StatusNotModified, resp.StatusCode)
			require.Empty(t, body)
			require.Equal(t, etag, resp.Header.Get("ETag"))

			resp, _ = do(t, srv, request{path: tc.path, header: map[string]string{"If-None-Match": `"0000000000000000", W/` + etag}})
			require.Equal(t, http.StatusNotModified, resp.StatusCode, "a list and a weak tag match too")

			resp, _ = do(t, srv, request{method: http.MethodHead, path: tc.path})
			require.Equal(t, http.StatusOK, resp.StatusCode)
			require.Equal(t, etag, resp.Header.Get("ETag"))
		})
	}

	// Readings drift: a minute later the sensor documents differ, and so
	// do their ETags.
	path := "/redfish/v1/Chassis/System.Embedded.1/Thermal"
	resp, _ := do(t, srv, request{path: path})
	before := resp.Header.Get("ETag")
	clk.Advance(time.Minute)
	resp, body := do(t, srv, request{path: path, header: map[string]string{"If-None-Match": before}})
	require.Equal(t, http.StatusOK, resp.StatusCode)
	require.NotEmpty(t, body)
	require.NotEqual(t, before, resp.Header.Get("ETag"))
}

// TestGofishRefresh checks gofish's conditional GET (schemas.Refresh) against
// the service: unchanged readings give ErrNotModified, changed ones a fresh
// document.
func TestGofishRefresh(t *testing.T) {
	_, _, srv, clk := newService(t, "xcc", redfish.Options{})
	c := connect(t, srv.URL, false)
	chassis, err := c.Service.Chassis()
	require.NoError(t, err)
	th, err := chassis[0].Thermal()
	require.NoError(t, err)
	require.NotEmpty(t, th.ODataEtag)

	same, err := schemas.Refresh(th)
	require.True(t, errors.Is(err, schemas.ErrNotModified), "%v", err)
	require.Same(t, th, same)

	clk.Advance(5 * time.Minute)
	fresh, err := schemas.Refresh(th)
	require.NoError(t, err)
	require.NotEqual(t, th.ODataEtag, fresh.ODataEtag)
}
