package redfish

import (
	"crypto/tls"
	"log/slog"
	"net/http"
	"time"
)

// NewServer returns an http.Server set up as a BMC's web server for h:
// HTTP/1.1 only (BMCs speak nothing else, and the Down and BlackHole faults
// hijack connections, which HTTP/2 forbids), TLS from tlsConfig when it is
// not nil (then serve with ServeTLS(listener, "", "")), and header reads
// bounded in time. net/http's own complaints (TLS handshakes from clients
// that do not trust the CA, for one) go to logger at debug level; a nil
// logger discards them.
func NewServer(h http.Handler, tlsConfig *tls.Config, logger *slog.Logger) *http.Server {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	var protocols http.Protocols
	protocols.SetHTTP1(true)
	return &http.Server{
		Handler:           h,
		TLSConfig:         tlsConfig,
		Protocols:         &protocols,
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       2 * time.Minute,
		ErrorLog:          slog.NewLogLogger(logger.Handler(), slog.LevelDebug),
	}
}
