package service_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"io"
	"log/slog"
	"math/big"
	"net"
	"net/http"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"
	"golang.org/x/crypto/bcrypt"

	"github.com/bmcstream/bmcstream/internal/service"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// selfSigned writes a self-signed certificate for 127.0.0.1 and its key
// into dir and returns their paths and a pool that trusts the certificate.
func selfSigned(t *testing.T, dir string) (certFile, keyFile string, pool *x509.CertPool) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "bmcstream test"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(time.Hour),
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
		IsCA:                  true,
		IPAddresses:           []net.IP{net.ParseIP("127.0.0.1")},
		DNSNames:              []string{"localhost"},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	require.NoError(t, err)
	cert, err := x509.ParseCertificate(der)
	require.NoError(t, err)
	pool = x509.NewCertPool()
	pool.AddCert(cert)
	keyDER, err := x509.MarshalECPrivateKey(key)
	require.NoError(t, err)
	certFile, keyFile = filepath.Join(dir, "web.crt"), filepath.Join(dir, "web.key")
	require.NoError(t, os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600))
	require.NoError(t, os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: keyDER}), 0o600))
	return certFile, keyFile, pool
}

// hash is a bcrypt hash at the lowest cost: the tests check who gets in,
// not how slow guessing is.
func hash(t *testing.T, password string) string {
	t.Helper()
	h, err := bcrypt.GenerateFromPassword([]byte(password), bcrypt.MinCost)
	require.NoError(t, err)
	return string(h)
}

// running is a service.Run in the background.
type running struct {
	addr string
	stop chan struct{}
	errc chan error
}

// start runs service.Run with the endpoints of NewMux (and a metric to
// find in /metrics), and the profiles when profiles is set, on a loopback
// port until the test ends.
func start(t *testing.T, webConfig string, profiles bool) *running {
	t.Helper()
	reg := prometheus.NewRegistry()
	c := prometheus.NewCounter(prometheus.CounterOpts{Name: "bmcstream_test_requests_total", Help: "A metric to find."})
	reg.MustRegister(c)
	c.Inc()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	r := &running{addr: ln.Addr().String(), stop: make(chan struct{}), errc: make(chan error, 1)}
	work := func(ctx context.Context) error {
		select {
		case <-ctx.Done():
		case <-r.stop:
		}
		return nil
	}
	mux := service.NewMux(reg, func() bool { return true })
	if profiles {
		service.HandleProfiles(mux)
	}
	go func() {
		r.errc <- service.Run(slog.New(slog.DiscardHandler), ln, webConfig, mux, work, func() error { return nil })
	}()
	t.Cleanup(func() { r.shutdown(t) })
	return r
}

func (r *running) shutdown(t *testing.T) {
	t.Helper()
	select {
	case <-r.stop:
		return
	default:
	}
	close(r.stop)
	select {
	case err := <-r.errc:
		require.NoError(t, err)
	case <-time.After(10 * time.Second):
		t.Fatal("service.Run did not return after its work ended")
	}
}

// get fetches url with c, with basic auth when user is set, and returns
// the status and body.
func get(t *testing.T, c *http.Client, url, user, password string) (int, string, http.Header) {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, url, nil)
	require.NoError(t, err)
	if user != "" {
		req.SetBasicAuth(user, password)
	}
	resp, err := c.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return resp.StatusCode, string(b), resp.Header
}

func TestWebConfigTLSAndBasicAuth(t *testing.T) {
	dir := t.TempDir()
	certFile, keyFile, pool := selfSigned(t, dir)
	const user, password = "prometheus", "scrape-pw-4b1d"
	webConfig := filepath.Join(dir, "web.yml")
	writeWebConfig := func(pw string) {
		require.NoError(t, os.WriteFile(webConfig, []byte(fmt.Sprintf(`tls_server_config:
  cert_file: %s
  key_file: %s
basic_auth_users:
  %s: %s
http_server_config:
  headers:
    X-Content-Type-Options: nosniff
`, filepath.Base(certFile), filepath.Base(keyFile), user, hash(t, pw))), 0o600))
	}
	writeWebConfig(password)
	wc, err := service.CheckWebConfig(webConfig)
	require.NoError(t, err)
	require.Equal(t, service.WebConfig{File: webConfig, TLS: true, BasicAuthUsers: 1}, wc)

	r := start(t, webConfig, true)
	tr := &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}}
	client := &http.Client{Transport: tr, Timeout: 10 * time.Second}
	defer tr.CloseIdleConnections()
	base := "https://" + r.addr
	require.Eventually(t, func() bool {
		conn, err := net.Dial("tcp", r.addr)
		if err == nil {
			_ = conn.Close()
		}
		return err == nil
	}, 5*time.Second, 10*time.Millisecond)

	t.Run("right credentials over HTTPS", func(t *testing.T) {
		code, body, h := get(t, client, base+"/metrics", user, password)
		require.Equal(t, http.StatusOK, code)
		require.Contains(t, body, "bmcstream_test_requests_total 1")
		require.Equal(t, "nosniff", h.Get("X-Content-Type-Options"), "http_server_config headers are set")
	})
	for _, tc := range []struct{ name, user, password string }{
		{"wrong password", user, "scrape-pw-wrong"},
		{"unknown user", "someone", password},
		{"no credentials", "", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			// Every endpoint is behind the same door, profiles included.
			for _, path := range []string{"/metrics", "/-/healthy", "/-/ready", "/debug/pprof/"} {
				code, body, h := get(t, client, base+path, tc.user, tc.password)
				require.Equal(t, http.StatusUnauthorized, code, path)
				require.Equal(t, "Basic", h.Get("WWW-Authenticate"), path)
				require.NotContains(t, body, "bmcstream_test_requests_total", path)
			}
		})
	}
	t.Run("plain HTTP is refused", func(t *testing.T) {
		plain := &http.Client{Timeout: 10 * time.Second}
		req, err := http.NewRequest(http.MethodGet, "http://"+r.addr+"/metrics", nil)
		require.NoError(t, err)
		req.SetBasicAuth(user, password)
		resp, err := plain.Do(req)
		if err == nil {
			b, _ := io.ReadAll(resp.Body)
			_ = resp.Body.Close()
			require.Equal(t, http.StatusBadRequest, resp.StatusCode, "an HTTPS server answers plain HTTP with 400")
			require.NotContains(t, string(b), "bmcstream_test_requests_total")
		}
	})
	t.Run("a client that does not trust the certificate", func(t *testing.T) {
		untrusting := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{}}
		_, err := untrusting.Get(base + "/metrics")
		require.Error(t, err)
		require.Contains(t, err.Error(), "certificate")
	})
	t.Run("users change without a restart", func(t *testing.T) {
		writeWebConfig("scrape-pw-rotated")
		code, _, _ := get(t, client, base+"/metrics", user, "scrape-pw-rotated")
		require.Equal(t, http.StatusOK, code)
		code, _, _ = get(t, client, base+"/metrics", user, password)
		require.Equal(t, http.StatusUnauthorized, code)
	})
	r.shutdown(t)
}

func TestNoWebConfigServesPlainHTTP(t *testing.T) {
	wc, err := service.CheckWebConfig("")
	require.NoError(t, err)
	require.Equal(t, service.WebConfig{}, wc)
	r := start(t, "", false)
	tr := &http.Transport{}
	defer tr.CloseIdleConnections()
	client := &http.Client{Transport: tr, Timeout: 10 * time.Second}
	require.Eventually(t, func() bool {
		resp, err := client.Get("http://" + r.addr + "/-/healthy")
		if err != nil {
			return false
		}
		_ = resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	}, 5*time.Second, 10*time.Millisecond)
	code, body, _ := get(t, client, "http://"+r.addr+"/metrics", "", "")
	require.Equal(t, http.StatusOK, code)
	require.Contains(t, body, "bmcstream_test_requests_total 1")
	code, body, _ = get(t, client, "http://"+r.addr+"/-/ready", "", "")
	require.Equal(t, http.StatusOK, code)
	require.Equal(t, "Ready.\n", body)
	r.shutdown(t)
}

// TestProfilesOptIn checks that the profiles are served only when the
// program asks for them (--web.enable-pprof), and then without the
// command line, which NewMux's callers never need to show.
func TestProfilesOptIn(t *testing.T) {
	tr := &http.Transport{}
	defer tr.CloseIdleConnections()
	client := &http.Client{Transport: tr, Timeout: 10 * time.Second}
	waitHealthy := func(r *running) {
		require.Eventually(t, func() bool {
			resp, err := client.Get("http://" + r.addr + "/-/healthy")
			if err != nil {
				return false
			}
			_ = resp.Body.Close()
			return resp.StatusCode == http.StatusOK
		}, 5*time.Second, 10*time.Millisecond)
	}
	profilePaths := []string{"/debug/pprof/", "/debug/pprof/heap", "/debug/pprof/goroutine?debug=2", "/debug/pprof/profile?seconds=1"}

	t.Run("off by default", func(t *testing.T) {
		r := start(t, "", false)
		waitHealthy(r)
		for _, path := range profilePaths {
			code, body, _ := get(t, client, "http://"+r.addr+path, "", "")
			require.Equal(t, http.StatusNotFound, code, path)
			require.NotContains(t, body, "goroutine", path)
		}
		code, _, _ := get(t, client, "http://"+r.addr+"/metrics", "", "")
		require.Equal(t, http.StatusOK, code, "the other endpoints are still served")
		r.shutdown(t)
	})
	t.Run("served when enabled", func(t *testing.T) {
		r := start(t, "", true)
		waitHealthy(r)
		code, body, _ := get(t, client, "http://"+r.addr+"/debug/pprof/", "", "")
		require.Equal(t, http.StatusOK, code)
		require.Contains(t, body, "goroutine")
		code, body, _ = get(t, client, "http://"+r.addr+"/debug/pprof/goroutine?debug=2", "", "")
		require.Equal(t, http.StatusOK, code)
		require.Contains(t, body, "service_test.start", "a full goroutine dump")
		code, body, h := get(t, client, "http://"+r.addr+"/debug/pprof/profile?seconds=1", "", "")
		require.Equal(t, http.StatusOK, code)
		require.Equal(t, "application/octet-stream", h.Get("Content-Type"))
		require.NotEmpty(t, body, "a CPU profile")
		code, body, _ = get(t, client, "http://"+r.addr+"/debug/pprof/cmdline", "", "")
		require.Equal(t, http.StatusNotFound, code, "the command line is not served")
		require.NotContains(t, body, os.Args[0])
		r.shutdown(t)
	})
}

func TestCheckWebConfig(t *testing.T) {
	dir := t.TempDir()
	certFile, keyFile, _ := selfSigned(t, dir)
	good := hash(t, "pw")
	tests := []struct {
		name    string
		content string // "" means no file at all
		// want is a substring of the error besides the file name; empty
		// for a valid file.
		want string
	}{
		{"basic auth only", "basic_auth_users:\n  u: " + good + "\n", ""},
		{"tls only", fmt.Sprintf("tls_server_config:\n  cert_file: %s\n  key_file: %s\n", certFile, keyFile), ""},
		{"missing file", "", "no such file"},
		{"unknown key", "tls_server_confg:\n  cert_file: x\n", "line 1"},
		{"a password instead of a bcrypt hash", "basic_auth_users:\n  u: plain-text-pw\n", "bcrypt"},
		{"missing certificate", fmt.Sprintf("tls_server_config:\n  cert_file: %s\n  key_file: %s\n", filepath.Join(dir, "none.crt"), keyFile), "none.crt"},
		{"key without certificate", fmt.Sprintf("tls_server_config:\n  key_file: %s\n", keyFile), "cert"},
		{"a header that cannot be set", "http_server_config:\n  headers:\n    Server: bmcstream\n", "Server"},
	}
	for i, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(dir, fmt.Sprintf("web-%d.yml", i))
			if tc.content != "" {
				require.NoError(t, os.WriteFile(path, []byte(tc.content), 0o600))
			}
			_, err := service.CheckWebConfig(path)
			if tc.want == "" {
				require.NoError(t, err)
				return
			}
			require.Error(t, err)
			require.Contains(t, err.Error(), path, "the error names the file")
			require.Contains(t, err.Error(), tc.want)
			require.NotContains(t, err.Error(), "plain-text-pw", "the error does not repeat a credential")
		})
	}
}

// TestRunRefusesInvalidWebConfig: a broken web configuration stops the
// program instead of serving the endpoints unprotected.
func TestRunRefusesInvalidWebConfig(t *testing.T) {
	webConfig := filepath.Join(t.TempDir(), "web.yml")
	require.NoError(t, os.WriteFile(webConfig, []byte("basic_auth_users:\n  u: not-a-hash\n"), 0o600))
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	errc := make(chan error, 1)
	go func() {
		errc <- service.Run(slog.New(slog.DiscardHandler), ln, webConfig, http.NewServeMux(),
			func(ctx context.Context) error { <-ctx.Done(); return nil }, func() error { return nil })
	}()
	select {
	case err := <-errc:
		require.Error(t, err)
		require.Contains(t, err.Error(), webConfig)
		require.False(t, strings.Contains(err.Error(), "not-a-hash"))
	case <-time.After(10 * time.Second):
		t.Fatal("Run served with an invalid web configuration")
	}
}

func TestExposed(t *testing.T) {
	tcp := func(s string) net.Addr { return net.TCPAddrFromAddrPort(netip.MustParseAddrPort(s)) }
	for _, tc := range []struct {
		addr net.Addr
		web  service.WebConfig
		want bool
	}{
		{tcp("0.0.0.0:9290"), service.WebConfig{}, true},
		{tcp("[::]:9290"), service.WebConfig{}, true},
		{tcp("10.1.2.3:9290"), service.WebConfig{}, true},
		{tcp("127.0.0.1:9290"), service.WebConfig{}, false},
		{tcp("[::1]:9290"), service.WebConfig{}, false},
		{tcp("0.0.0.0:9290"), service.WebConfig{File: "web.yml", BasicAuthUsers: 1}, false},
		{tcp("0.0.0.0:9290"), service.WebConfig{File: "web.yml", TLS: true, ClientAuth: "RequireAndVerifyClientCert"}, false},
		{tcp("0.0.0.0:9290"), service.WebConfig{File: "web.yml", TLS: true}, true}, // encrypted, open to all
		{tcp("0.0.0.0:9290"), service.WebConfig{File: "web.yml"}, true},            // headers only
	} {
		require.Equal(t, tc.want, service.Exposed(tc.addr, tc.web), "%s %+v", tc.addr, tc.web)
	}
}
