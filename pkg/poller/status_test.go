package poller

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// TestStatusShowsErrorEscaped: /status shows each BMC's last error message
// beside its class, in the HTML page (escaped: the message quotes what a
// BMC sent) and in JSON.
func TestStatusShowsErrorEscaped(t *testing.T) {
	msg := `protocol: verify the BMC's TLS certificate: x509: certificate signed by unknown authority <script>alert(1)</script>`
	st := StatusView{Poller: "p1", Members: []string{"shard-0"}, BMCs: []Status{{
		ID: "bmc-1", Address: "10.0.0.1", Protocol: "redfish", LastPoll: time.Unix(0, 0), LastResult: "error",
		ErrorClass: "protocol", Error: msg, Failures: 3,
	}}}
	h := NewStatusHandler(func() StatusView { return st })

	page := httptest.NewRecorder()
	h.ServeHTTP(page, httptest.NewRequest("GET", "/status", nil))
	require.Equal(t, "text/html; charset=utf-8", page.Header().Get("Content-Type"))
	html := page.Body.String()
	require.Contains(t, html, "<title>bmcstream poller p1</title>")
	require.Contains(t, html, "<p>Members: shard-0 </p>")
	require.Contains(t, html, "<p>1 BMCs owned.</p>")
	require.Contains(t, html, "<th>error class</th><th>error</th>")
	require.Contains(t, html, "<td>protocol</td><td>protocol: verify the BMC&#39;s TLS certificate: x509: certificate signed by unknown authority &lt;script&gt;alert(1)&lt;/script&gt;</td><td>3</td>")
	require.NotContains(t, html, "<script>")

	for _, req := range []func() *http.Request{
		func() *http.Request { return httptest.NewRequest("GET", "/status?format=json", nil) },
		func() *http.Request {
			r := httptest.NewRequest("GET", "/status", nil)
			r.Header.Set("Accept", "application/json")
			return r
		},
	} {
		js := httptest.NewRecorder()
		h.ServeHTTP(js, req())
		require.Equal(t, "application/json", js.Header().Get("Content-Type"))
		var got StatusView
		require.NoError(t, json.Unmarshal(js.Body.Bytes(), &got))
		require.Equal(t, st.Poller, got.Poller)
		require.Equal(t, st.Members, got.Members)
		require.Equal(t, msg, got.BMCs[0].Error)
		require.Equal(t, "protocol", got.BMCs[0].ErrorClass)
	}
}
