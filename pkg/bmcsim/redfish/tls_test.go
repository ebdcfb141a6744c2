package redfish_test

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"testing"

	"github.com/stmcginnis/gofish"
	"github.com/stretchr/testify/require"

	"github.com/bmcstream/bmcstream/pkg/bmcsim/redfish"
)

// serveTLS serves h over HTTPS on ip (port chosen by the kernel) with the
// CA's per-address certificates, returning host:port; it skips the test
// where the address cannot be bound (127.0.0.2 outside Linux).
func serveTLS(t *testing.T, h http.Handler, ca *redfish.CA, ip string) string {
	t.Helper()
	ln, err := net.Listen("tcp", net.JoinHostPort(ip, "0"))
	if err != nil {
		t.Skipf("listen on %s: %v", ip, err)
	}
	srv := redfish.NewServer(h, ca.TLSConfig(), nil)
	done := make(chan error, 1)
	go func() { done <- srv.ServeTLS(ln, "", "") }()
	t.Cleanup(func() {
		require.NoError(t, srv.Close())
		require.ErrorIs(t, <-done, http.ErrServerClosed)
	})
	return ln.Addr().String()
}

func TestTLSWithCAFile(t *testing.T) {
	ca, err := redfish.NewCA()
	require.NoError(t, err)
	caFile := filepath.Join(t.TempDir(), "ca.pem")
	require.NoError(t, ca.WritePEM(caFile))
	pemBytes, err := os.ReadFile(caFile)
	require.NoError(t, err)
	roots := x509.NewCertPool()
	require.True(t, roots.AppendCertsFromPEM(pemBytes))

	b := newBMC(t, "xcc")
	h := redfish.NewHandler(b, redfish.Options{Now: newClock().Now})
	t.Cleanup(func() { require.NoError(t, h.Close()) })

	for _, ip := range []string{"127.0.0.1", "127.0.0.2"} {
		t.Run(ip, func(t *testing.T) {
			addr := serveTLS(t, h, ca, ip)
			endpoint := "https://" + addr

			// The certificate names the address the client dialled, and a client
			// offering HTTP/2 gets HTTP/1.1.
			conn, err := tls.Dial("tcp", addr, &tls.Config{RootCAs: roots, MinVersion: tls.VersionTLS12, NextProtos: []string{"h2", "http/1.1"}})
			require.NoError(t, err)
			state := conn.ConnectionState()
			require.NoError(t, conn.Close())
			require.Equal(t, "http/1.1", state.NegotiatedProtocol)
			leaf := state.PeerCertificates[0]
			require.Len(t, leaf.IPAddresses, 1)
			require.Equal(t, ip, leaf.IPAddresses[0].String())

			transport := &http.Transport{TLSClientConfig: &tls.Config{RootCAs: roots, MinVersion: tls.VersionTLS12}}
			t.Cleanup(transport.CloseIdleConnections)
			c, err := gofish.ConnectContext(t.Context(), gofish.ClientConfig{
				Endpoint:   endpoint,
				Username:   user,
				Password:   password,
				HTTPClient: &http.Client{Transport: transport},
			})
			require.NoError(t, err, "gofish verifies the BMC with the CA file")
			chassis, err := c.Service.Chassis()
			require.NoError(t, err)
			require.Equal(t, b.Serial, chassis[0].SerialNumber)
			c.Logout()
			require.Zero(t, h.SessionCount())

			// Without the CA, verification fails.
			bare := &http.Transport{TLSClientConfig: &tls.Config{RootCAs: x509.NewCertPool(), MinVersion: tls.VersionTLS12}}
			t.Cleanup(bare.CloseIdleConnections)
			_, err = gofish.ConnectContext(t.Context(), gofish.ClientConfig{
				Endpoint:   endpoint,
				Username:   user,
				Password:   password,
				HTTPClient: &http.Client{Transport: bare},
			})
			var unknown x509.UnknownAuthorityError
			require.True(t, errors.As(err, &unknown), "want an unknown-authority error, got %v", err)

			// Skipping verification is an explicit opt-in that works.
			insecure, err := gofish.ConnectContext(t.Context(), gofish.ClientConfig{
				Endpoint: endpoint, Username: user, Password: password, Insecure: true, BasicAuth: true,
			})
			require.NoError(t, err)
			insecure.HTTPClient.CloseIdleConnections()
		})
	}
}

func TestCALeafCache(t *testing.T) {
	ca, err := redfish.NewCA()
	require.NoError(t, err)
	tests := []struct {
		name string
		ip   net.IP
		host string
	}{
		{"ip", net.ParseIP("127.0.3.4"), ""},
		{"ip and name", net.ParseIP("127.0.3.4"), "bmc-1.example"},
		{"name only", nil, "bmc-2.example"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			a, err := ca.Leaf(tc.ip, tc.host)
			require.NoError(t, err)
			b, err := ca.Leaf(tc.ip, tc.host)
			require.NoError(t, err)
			require.Same(t, a, b, "leaves are cached")
			opts := x509.VerifyOptions{Roots: ca.CertPool()}
			if tc.ip != nil {
				require.NoError(t, a.Leaf.VerifyHostname(tc.ip.String()))
			}
			if tc.host != "" {
				require.NoError(t, a.Leaf.VerifyHostname(tc.host))
				opts.DNSName = tc.host
			}
			_, err = a.Leaf.Verify(opts)
			require.NoError(t, err)
		})
	}
}
