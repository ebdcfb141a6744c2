package main

import (
	"io"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/bmcstream/bmcstream/internal/service"
)

// TestAdminServesMetrics: bmcsim's admin address serves /metrics (with
// bmcstream_build_info), /-/healthy and /-/ready beside the fleet's admin
// API, which keeps every other path.
func TestAdminServesMetrics(t *testing.T) {
	api := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, err := io.WriteString(w, "api "+r.Method+" "+r.URL.Path)
		require.NoError(t, err)
	})
	h := adminHandler(api, service.NewRegistry())
	get := func(method, path string) (int, string) {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest(method, path, nil))
		return rec.Code, rec.Body.String()
	}

	code, body := get(http.MethodGet, "/metrics")
	require.Equal(t, http.StatusOK, code)
	require.Regexp(t, `(?m)^bmcstream_build_info\{.*version="[^"]+"\} 1$`, body)
	code, body = get(http.MethodGet, "/-/ready")
	require.Equal(t, http.StatusOK, code)
	require.Equal(t, "Ready.\n", body)
	for _, tc := range []struct{ method, path string }{{http.MethodGet, "/fleet"}, {http.MethodDelete, "/faults"}, {http.MethodPut, "/bmcs/bmc-00001/faults"}} {
		code, body = get(tc.method, tc.path)
		require.Equal(t, http.StatusOK, code, tc.path)
		require.Equal(t, "api "+tc.method+" "+tc.path, body)
	}
}
