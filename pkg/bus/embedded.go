package bus

import (
	"fmt"
	"net"
	"strconv"
	"time"

	"github.com/nats-io/nats-server/v2/server"
)

// EmbeddedConfig runs a NATS server inside the process, so a single-node
// install needs no separate NATS.
type EmbeddedConfig struct {
	Enabled bool `yaml:"enabled"`
	// Listen is the client address; other programs (pollers, automation)
	// connect here. Loopback by default.
	Listen string `yaml:"listen,omitempty"`
	// StoreDir holds JetStream's files; required with JetStream.
	StoreDir string `yaml:"store_dir,omitempty"`
	// MaxPayload bounds one message in bytes (default 1 MiB).
	MaxPayload int32 `yaml:"max_payload,omitempty"`
}

// StartEmbedded starts an in-process NATS server with JetStream (when
// jetStream is true) and waits until it accepts connections.
func StartEmbedded(c EmbeddedConfig, jetStream bool) (*server.Server, error) {
	host, port := "127.0.0.1", 4222
	if c.Listen != "" {
		h, p, err := net.SplitHostPort(c.Listen)
		if err != nil {
			return nil, fmt.Errorf("nats.embedded.listen %q: %w", c.Listen, err)
		}
		host = h
		if port, err = strconv.Atoi(p); err != nil {
			return nil, fmt.Errorf("nats.embedded.listen %q: port: %w", c.Listen, err)
		}
		if port == 0 {
			port = server.RANDOM_PORT
		}
	}
	maxPayload := c.MaxPayload
	if maxPayload == 0 {
		maxPayload = 1 << 20
	}
	opts := &server.Options{
		ServerName: "bmcstream-embedded",
		Host:       host,
		Port:       port,
		JetStream:  jetStream,
		StoreDir:   c.StoreDir,
		MaxPayload: maxPayload,
		NoSigs:     true,
		NoLog:      true,
	}
	s, err := server.NewServer(opts)
	if err != nil {
		return nil, fmt.Errorf("start embedded nats: %w", err)
	}
	s.Start()
	if !s.ReadyForConnections(10 * time.Second) {
		s.Shutdown()
		return nil, fmt.Errorf("start embedded nats on %s: not ready after 10s", c.Listen)
	}
	return s, nil
}
