// Package embedded runs the NATS server inside the process, for a
// single-node install (the gateway's nats.embedded) and for tests and
// benchmarks. It is its own package so that only the programs that embed a
// server link it: the poller, which only connects, does not.
package embedded

import (
	"fmt"
	"net"
	"strconv"
	"time"

	"github.com/nats-io/nats-server/v2/server"

	"github.com/bmcstream/bmcstream/pkg/bus"
)

// Start starts an in-process NATS server with JetStream (when
// jetStream is true) and waits until it accepts connections.
func Start(c bus.EmbeddedConfig, jetStream bool) (*server.Server, error) {
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
