package service_test

import (
	"net/http"
	"net/http/httptest"
	"regexp"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/bmcstream/bmcstream/internal/service"
	"github.com/bmcstream/bmcstream/internal/version"
)

// TestRegistryServesBuildInfo: every program's /metrics (NewMux of
// NewRegistry) has bmcstream_build_info of the running build beside the
// Go runtime's and the process's metrics.
func TestRegistryServesBuildInfo(t *testing.T) {
	rec := httptest.NewRecorder()
	service.NewMux(service.NewRegistry(), func() bool { return true }).ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/metrics", nil))
	require.Equal(t, http.StatusOK, rec.Code)
	body := rec.Body.String()
	b := version.Get()
	require.Regexp(t, `(?m)^bmcstream_build_info\{branch="`+regexp.QuoteMeta(b.Branch)+`",goarch="`+b.GoArch+`",goos="`+b.GoOS+
		`",goversion="`+regexp.QuoteMeta(b.GoVersion)+`",revision="[^"]+",version="`+regexp.QuoteMeta(b.Version)+`"\} 1$`, body)
	require.Contains(t, body, "\ngo_goroutines ")
	require.Contains(t, body, "\nprocess_start_time_seconds ")
}
