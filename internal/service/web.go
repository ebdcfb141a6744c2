package service

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"

	"github.com/prometheus/exporter-toolkit/web"
	"go.yaml.in/yaml/v2"
)

// WebConfig summarises a validated web configuration file (the Prometheus
// exporter-toolkit format: tls_server_config, basic_auth_users,
// http_server_config), for the start-up log.
type WebConfig struct {
	// File is the file's path; "" means plain HTTP without authentication.
	File string
	// TLS is true when the endpoints are served over HTTPS.
	TLS bool
	// ClientAuth is tls_server_config.client_auth_type ("" when not set).
	ClientAuth string
	// BasicAuthUsers is how many users basic_auth_users lists.
	BasicAuthUsers int
}

// CheckWebConfig reads and validates the web configuration file at path:
// its YAML (strictly), the bcrypt hashes of basic_auth_users, the headers
// of http_server_config, and the TLS certificate, key and client CA files.
// An empty path is valid and means plain HTTP. Errors name the file.
//
// The file is read again for every request and TLS handshake once served,
// so renewed certificates and changed users apply without a restart; a
// file broken later makes requests fail (500, or a failed handshake)
// rather than fall back to plain HTTP.
func CheckWebConfig(path string) (WebConfig, error) {
	if path == "" {
		return WebConfig{}, nil
	}
	if err := web.Validate(path); err != nil {
		return WebConfig{}, fmt.Errorf("web config %s: %w", path, err)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return WebConfig{}, fmt.Errorf("web config %s: %w", path, err)
	}
	var c web.Config
	if err := yaml.Unmarshal(b, &c); err != nil {
		return WebConfig{}, fmt.Errorf("web config %s: %w", path, err)
	}
	return WebConfig{File: path, TLS: c.TLSConfig.IsEnabled(), ClientAuth: c.TLSConfig.ClientAuth, BasicAuthUsers: len(c.Users)}, nil
}

// LogValue describes the configuration without its secrets.
func (w WebConfig) LogValue() slog.Value {
	if w.File == "" {
		return slog.GroupValue(slog.Bool("tls", false), slog.Int("basic_auth_users", 0))
	}
	attrs := []slog.Attr{slog.String("file", w.File), slog.Bool("tls", w.TLS), slog.Int("basic_auth_users", w.BasicAuthUsers)}
	if w.ClientAuth != "" {
		attrs = append(attrs, slog.String("client_auth", w.ClientAuth))
	}
	return slog.GroupValue(attrs...)
}

// Exposed reports whether endpoints served on addr with the web
// configuration w are open to anyone who can reach the host: no basic
// authentication and no verified client certificate, on an address other
// than loopback (TLS alone encrypts but lets anyone in). The programs warn
// when they serve profiles that way.
func Exposed(addr net.Addr, w WebConfig) bool {
	if w.BasicAuthUsers > 0 || (w.TLS && w.ClientAuth == "RequireAndVerifyClientCert") {
		return false
	}
	tcp, ok := addr.(*net.TCPAddr)
	return !ok || !tcp.IP.IsLoopback()
}

// serve serves srv on ln as the web configuration file says: plain HTTP
// when webConfigFile is "", otherwise with its TLS, basic authentication
// and response headers.
func serve(logger *slog.Logger, ln net.Listener, srv *http.Server, webConfigFile string) error {
	addrs := []string{ln.Addr().String()}
	systemd := false
	err := web.Serve(ln, srv, &web.FlagConfig{
		WebListenAddresses: &addrs,
		WebSystemdSocket:   &systemd,
		WebConfigFile:      &webConfigFile,
	}, logger)
	if err != nil && webConfigFile != "" && !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("serve with web config %s: %w", webConfigFile, err)
	}
	return err
}
