package main

import (
	"encoding/json"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/bmcstream/bmcstream/pkg/poller"
)

// TestStatusShowsErrorEscaped: /status shows each BMC's last error message
// beside its class, in the HTML page (escaped: the message quotes what a
// BMC sent) and in JSON.
func TestStatusShowsErrorEscaped(t *testing.T) {
	msg := `protocol: verify the BMC's TLS certificate: x509: certificate signed by unknown authority <script>alert(1)</script>`
	st := statusView{Poller: "p1", Members: []string{"shard-0"}, BMCs: []poller.Status{{
		ID: "bmc-1", Address: "10.0.0.1", Protocol: "redfish", LastPoll: time.Unix(0, 0), LastResult: "error",
		ErrorClass: "protocol", Error: msg, Failures: 3,
	}}}

	page := httptest.NewRecorder()
	writeStatus(page, httptest.NewRequest("GET", "/status", nil), st)
	html := page.Body.String()
	require.Contains(t, html, "<th>error class</th><th>error</th>")
	require.Contains(t, html, "<td>protocol</td><td>protocol: verify the BMC&#39;s TLS certificate: x509: certificate signed by unknown authority &lt;script&gt;alert(1)&lt;/script&gt;</td>")
	require.NotContains(t, html, "<script>")

	js := httptest.NewRecorder()
	writeStatus(js, httptest.NewRequest("GET", "/status?format=json", nil), st)
	var got statusView
	require.NoError(t, json.Unmarshal(js.Body.Bytes(), &got))
	require.Equal(t, msg, got.BMCs[0].Error)
	require.Equal(t, "protocol", got.BMCs[0].ErrorClass)
}
