package remotewrite

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/pem"
	"errors"
	"io"
	"log"
	"math"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/common/config"
	"github.com/prometheus/prometheus/model/value"
	"github.com/prometheus/prometheus/prompb"
	"github.com/stretchr/testify/require"

	"github.com/bmcstream/bmcstream/pkg/series"
)

// TestEndToEndEncodingAndHeaders sends samples through a Queue and the HTTP
// Client, and checks what the receiver decodes and which headers it saw.
func TestEndToEndEncodingAndHeaders(t *testing.T) {
	dir := t.TempDir()
	passwordFile := filepath.Join(dir, "password")
	require.NoError(t, os.WriteFile(passwordFile, []byte("from-file\n"), 0o600))
	tokenFile := filepath.Join(dir, "token")
	require.NoError(t, os.WriteFile(tokenFile, []byte("token-from-file\n"), 0o600))
	basic := func(user, pass string) string {
		return "Basic " + base64.StdEncoding.EncodeToString([]byte(user+":"+pass))
	}

	tests := []struct {
		name     string
		http     config.HTTPClientConfig
		wantAuth string
	}{
		{name: "no auth"},
		{
			name:     "basic auth password",
			http:     config.HTTPClientConfig{BasicAuth: &config.BasicAuth{Username: "bmc", Password: "hunter2"}},
			wantAuth: basic("bmc", "hunter2"),
		},
		{
			name:     "basic auth password_file",
			http:     config.HTTPClientConfig{BasicAuth: &config.BasicAuth{Username: "bmc", PasswordFile: passwordFile}},
			wantAuth: basic("bmc", "from-file"),
		},
		{
			name:     "bearer token",
			http:     config.HTTPClientConfig{BearerToken: "s3cret"},
			wantAuth: "Bearer s3cret",
		},
		{
			name:     "authorization credentials_file",
			http:     config.HTTPClientConfig{Authorization: &config.Authorization{CredentialsFile: tokenFile}},
			wantAuth: "Bearer token-from-file",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rcv := newReceiver(t, nil)
			cfg := testConfig(t, rcv.srv.URL+"/api/v1/write")
			cfg.HTTPClientConfig = tt.http
			cfg.HTTPClientConfig.FollowRedirects = true
			cfg.Headers = map[string]string{"X-Custom": "custom-value"}
			cfg.OrgID = "tenant-a"
			cfg.ThanosTenant = "tenant-b"
			q, _ := newTestQueue(t, cfg, newTestClient(t, cfg))

			in := makeSamples(0, 50, 1_700_000_000_000)
			in[1].V = math.Float64frombits(value.StaleNaN)
			in[2].V = math.Inf(-1)
			in[3].T = 0
			dc := newDoneCounter()
			require.NoError(t, q.Append(t.Context(), in, dc.done(0)))
			dc.wait(t, 1, 5*time.Second)
			require.NoError(t, q.Stop(t.Context()))

			require.Empty(t, rcv.decodeErrors())
			reqs := rcv.requests()
			require.NotEmpty(t, reqs)
			for _, r := range reqs {
				h := r.header
				require.Equal(t, "snappy", h.Get("Content-Encoding"))
				require.Equal(t, "application/x-protobuf", h.Get("Content-Type"))
				require.Equal(t, "0.1.0", h.Get("X-Prometheus-Remote-Write-Version"))
				require.Equal(t, "bmcstream/test-version", h.Get("User-Agent"))
				require.Equal(t, "tenant-a", h.Get("X-Scope-OrgID"))
				require.Equal(t, "tenant-b", h.Get("THANOS-TENANT"))
				require.Equal(t, "custom-value", h.Get("X-Custom"))
				require.Equal(t, tt.wantAuth, h.Get("Authorization"))
				require.Empty(t, h.Get("Retry-Attempt"), "first attempts carry no Retry-Attempt")
				for _, name := range []string{"Content-Encoding", "Content-Type", "X-Prometheus-Remote-Write-Version", "User-Agent"} {
					require.Len(t, h.Values(name), 1, name)
				}
			}

			// Same samples, compared per series (shards may interleave).
			for _, r := range reqs {
				for _, ts := range r.req.Timeseries {
					require.True(t, isSorted(ts.Labels), "labels sorted: %v", ts.Labels)
				}
			}
			got := rcv.samples()
			require.Len(t, got, len(in))
			bySeries := map[uint64]series.Sample{}
			for _, s := range got {
				bySeries[s.Series.Hash] = s
			}
			for _, want := range in {
				g, ok := bySeries[want.Series.Hash]
				require.True(t, ok, "series %v missing", want.Series.Labels)
				require.Equal(t, want.Series.Labels.Prom(), g.Series.Labels.Prom())
				require.Equal(t, want.T, g.T)
				require.Equal(t, math.Float64bits(want.V), math.Float64bits(g.V), "value bits of %v", want.Series.Labels)
			}
		})
	}
}

func isSorted(ls []prompb.Label) bool {
	for i := 1; i < len(ls); i++ {
		if ls[i-1].Name >= ls[i].Name {
			return false
		}
	}
	return true
}

// validRequest is an encoded one-sample WriteRequest.
func validRequest(t testing.TB) []byte {
	t.Helper()
	var enc encoder
	data, err := enc.encode(makeSamples(0, 1, 1000))
	require.NoError(t, err)
	return append([]byte(nil), data...)
}

func TestClientClassification(t *testing.T) {
	tests := []struct {
		name           string
		status         int
		header         map[string]string
		body           string
		retryOn429     bool
		wantNil        bool
		wantRecover    bool
		wantRetryAfter time.Duration
	}{
		{name: "200", status: 200, wantNil: true},
		{name: "204", status: 204, wantNil: true},
		{name: "500", status: 500, wantRecover: true},
		{name: "502", status: 502, wantRecover: true},
		{name: "503 with Retry-After", status: 503, header: map[string]string{"Retry-After": "7"}, wantRecover: true, wantRetryAfter: 7 * time.Second},
		{name: "429 retried", status: 429, retryOn429: true, header: map[string]string{"Retry-After": "2"}, wantRecover: true, wantRetryAfter: 2 * time.Second},
		{name: "429 not retried", status: 429, retryOn429: false},
		{name: "400", status: 400, body: "out of order sample"},
		{name: "404", status: 404},
		{name: "413", status: 413},
		{name: "long body", status: 400, body: strings.Repeat("x", 10*maxErrBody)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				for k, v := range tt.header {
					w.Header().Set(k, v)
				}
				w.WriteHeader(tt.status)
				_, _ = io.WriteString(w, tt.body)
			}))
			defer srv.Close()
			cfg := testConfig(t, srv.URL)
			cfg.QueueConfig.RetryOnRateLimit = tt.retryOn429
			err := newTestClient(t, cfg).Store(t.Context(), validRequest(t), 0)
			if tt.wantNil {
				require.NoError(t, err)
				return
			}
			require.Error(t, err)
			var serr *StatusError
			require.ErrorAs(t, err, &serr)
			require.Equal(t, tt.status, serr.StatusCode)
			require.LessOrEqual(t, len(serr.Body), maxErrBody)
			require.Contains(t, err.Error(), tt.body[:min(len(tt.body), 20)])
			var rerr RecoverableError
			require.Equal(t, tt.wantRecover, errors.As(err, &rerr))
			require.Equal(t, tt.wantRetryAfter, rerr.RetryAfter)
		})
	}
}

func TestClientNetworkErrors(t *testing.T) {
	// A port nobody listens on: bind, note the address, close.
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	closedURL := "http://" + l.Addr().String() + "/api/v1/write"
	require.NoError(t, l.Close())

	hangup := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		conn, _, err := w.(http.Hijacker).Hijack()
		if err == nil {
			_ = conn.Close()
		}
	}))
	defer hangup.Close()

	slow := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		// The request context only ends on a client hang-up once the body
		// has been read; srv.Close waits for this handler.
		_, _ = io.Copy(io.Discard, r.Body)
		<-r.Context().Done()
	}))
	defer slow.Close()

	tests := []struct {
		name    string
		url     string
		timeout time.Duration
	}{
		{name: "closed port", url: closedURL},
		{name: "server hangs up", url: hangup.URL},
		{name: "remote_timeout", url: slow.URL, timeout: 50 * time.Millisecond},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := testConfig(t, tt.url)
			if tt.timeout > 0 {
				cfg.RemoteTimeout = modelDuration(tt.timeout)
			}
			err := newTestClient(t, cfg).Store(t.Context(), validRequest(t), 0)
			require.Error(t, err)
			require.ErrorAs(t, err, &RecoverableError{})
			var serr *StatusError
			require.False(t, errors.As(err, &serr))
		})
	}

	t.Run("caller cancelled is not recoverable", func(t *testing.T) {
		cfg := testConfig(t, slow.URL)
		ctx, cancel := context.WithTimeout(t.Context(), 20*time.Millisecond)
		defer cancel()
		err := newTestClient(t, cfg).Store(ctx, validRequest(t), 0)
		require.ErrorIs(t, err, context.DeadlineExceeded)
		require.False(t, errors.As(err, &RecoverableError{}))
	})
}

func TestClientRetryAttemptHeader(t *testing.T) {
	rcv := newReceiver(t, nil)
	c := newTestClient(t, testConfig(t, rcv.srv.URL))
	require.NoError(t, c.Store(t.Context(), validRequest(t), 3))
	reqs := rcv.requests()
	require.Len(t, reqs, 1)
	require.Equal(t, "3", reqs[0].header.Get("Retry-Attempt"))
}

func TestParseRetryAfter(t *testing.T) {
	now := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	tests := []struct {
		in   string
		want time.Duration
	}{
		{"", 0},
		{"1", time.Second},
		{" 120 ", 2 * time.Minute},
		{"0", 0},
		{"-5", 0},
		{"1.5", 0},
		{"soon", 0},
		{now.Add(3 * time.Second).Format(http.TimeFormat), 3 * time.Second},
		{now.Add(-time.Hour).Format(http.TimeFormat), 0},
		{"Sun, 01 Mar 2026 12:00:10 GMT", 10 * time.Second},
		{"99999999999999999", time.Duration(math.MaxInt64 / int64(time.Second) * int64(time.Second))},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			require.Equal(t, tt.want, parseRetryAfter(tt.in, now))
		})
	}
}

func FuzzParseRetryAfter(f *testing.F) {
	for _, s := range []string{"", "1", "-1", "Sun, 01 Mar 2026 12:00:10 GMT", "9223372036854775807"} {
		f.Add(s)
	}
	now := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	f.Fuzz(func(t *testing.T, s string) {
		require.GreaterOrEqual(t, parseRetryAfter(s, now), time.Duration(0))
	})
}

func TestBodyGuard(t *testing.T) {
	data := []byte("payload")
	g := &bodyGuard{data: data}
	r1 := g.newReader()
	got, err := io.ReadAll(r1)
	require.NoError(t, err)
	require.Equal(t, data, got)

	r2 := g.newReader() // As GetBody does for a retried HTTP/2 request.
	buf := make([]byte, 3)
	n, err := r2.Read(buf)
	require.NoError(t, err)
	require.Equal(t, 3, n)

	g.revoke()
	_, err = r2.Read(buf)
	require.ErrorIs(t, err, errBodyRevoked)
	_, err = g.newReader().Read(buf)
	require.ErrorIs(t, err, errBodyRevoked)
}

// testPKI is a CA with a server certificate for 127.0.0.1 and a client
// certificate, all written as PEM files.
type testPKI struct {
	caFile, clientCert, clientKey string
	server                        tls.Certificate
	pool                          *x509.CertPool
}

func newTestPKI(t *testing.T) testPKI {
	t.Helper()
	dir := t.TempDir()
	newKey := func() *ecdsa.PrivateKey {
		k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		require.NoError(t, err)
		return k
	}
	writePEM := func(name, typ string, der []byte) string {
		p := filepath.Join(dir, name)
		require.NoError(t, os.WriteFile(p, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o600))
		return p
	}
	now := time.Now()

	caKey := newKey()
	caTmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "bmcstream test CA"},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.Add(time.Hour),
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageCertSign,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	require.NoError(t, err)
	caCert, err := x509.ParseCertificate(caDER)
	require.NoError(t, err)

	issue := func(serial int64, cn string, usage x509.ExtKeyUsage, ips []net.IP) ([]byte, *ecdsa.PrivateKey) {
		k := newKey()
		tmpl := &x509.Certificate{
			SerialNumber: big.NewInt(serial),
			Subject:      pkix.Name{CommonName: cn},
			NotBefore:    now.Add(-time.Hour),
			NotAfter:     now.Add(time.Hour),
			KeyUsage:     x509.KeyUsageDigitalSignature,
			ExtKeyUsage:  []x509.ExtKeyUsage{usage},
			IPAddresses:  ips,
		}
		der, err := x509.CreateCertificate(rand.Reader, tmpl, caCert, &k.PublicKey, caKey)
		require.NoError(t, err)
		return der, k
	}
	serverDER, serverKey := issue(2, "receiver", x509.ExtKeyUsageServerAuth, []net.IP{net.ParseIP("127.0.0.1")})
	clientDER, clientKey := issue(3, "gateway", x509.ExtKeyUsageClientAuth, nil)
	clientKeyDER, err := x509.MarshalECPrivateKey(clientKey)
	require.NoError(t, err)

	pool := x509.NewCertPool()
	pool.AddCert(caCert)
	return testPKI{
		caFile:     writePEM("ca.pem", "CERTIFICATE", caDER),
		clientCert: writePEM("client.pem", "CERTIFICATE", clientDER),
		clientKey:  writePEM("client-key.pem", "EC PRIVATE KEY", clientKeyDER),
		server:     tls.Certificate{Certificate: [][]byte{serverDER}, PrivateKey: serverKey},
		pool:       pool,
	}
}

func TestClientTLS(t *testing.T) {
	pki := newTestPKI(t)
	start := func(clientAuth tls.ClientAuthType) *httptest.Server {
		srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			_, _ = io.Copy(io.Discard, r.Body)
			w.WriteHeader(http.StatusNoContent)
		}))
		srv.TLS = &tls.Config{Certificates: []tls.Certificate{pki.server}, ClientAuth: clientAuth, ClientCAs: pki.pool}
		srv.Config.ErrorLog = log.New(io.Discard, "", 0) // Expected handshake failures.
		srv.StartTLS()
		t.Cleanup(srv.Close)
		return srv
	}
	plain := start(tls.NoClientCert)
	mutual := start(tls.RequireAndVerifyClientCert)

	tests := []struct {
		name    string
		srv     *httptest.Server
		tls     config.TLSConfig
		wantErr string
	}{
		{name: "ca_file verifies the server", srv: plain, tls: config.TLSConfig{CAFile: pki.caFile}},
		{name: "no ca_file fails verification", srv: plain, wantErr: "certificate"},
		{name: "insecure_skip_verify", srv: plain, tls: config.TLSConfig{InsecureSkipVerify: true}},
		{
			name: "client certificate accepted",
			srv:  mutual,
			tls:  config.TLSConfig{CAFile: pki.caFile, CertFile: pki.clientCert, KeyFile: pki.clientKey},
		},
		// With TLS 1.3 the server's refusal may surface as "certificate
		// required" or as a broken pipe, depending on timing.
		{name: "client certificate missing", srv: mutual, tls: config.TLSConfig{CAFile: pki.caFile}, wantErr: "127.0.0.1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := testConfig(t, tt.srv.URL)
			cfg.HTTPClientConfig.TLSConfig = tt.tls
			err := newTestClient(t, cfg).Store(t.Context(), validRequest(t), 0)
			if tt.wantErr == "" {
				require.NoError(t, err)
				return
			}
			require.ErrorContains(t, err, tt.wantErr)
			require.ErrorAs(t, err, &RecoverableError{}, "TLS failures are retried: data is kept until the config is fixed")
		})
	}
}
