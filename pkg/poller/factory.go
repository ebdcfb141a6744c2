package poller

import (
	"fmt"
	"log/slog"
	"net"
	"strconv"
	"time"

	"github.com/bmcstream/bmcstream/pkg/inventory"
	"github.com/bmcstream/bmcstream/pkg/secret"
	"github.com/bmcstream/bmcstream/pkg/sources"
	ipmisrc "github.com/bmcstream/bmcstream/pkg/sources/ipmi"
	redfishsrc "github.com/bmcstream/bmcstream/pkg/sources/redfish"
	v1 "github.com/bmcstream/bmcstream/proto/bmcstream/v1"
)

// DefaultSources opens the project's Redfish and IPMI sources with the
// configuration's protocol settings.
func DefaultSources(cfg *Config, logger *slog.Logger) SourceFactory {
	return func(b inventory.BMC, proto v1.Protocol, user string, password secret.Secret) (sources.Source, error) {
		host, port := splitAddress(b.Address)
		t := sources.Target{Host: host, Username: user, Password: password, CAFile: b.CAFile, InsecureSkipVerify: b.InsecureSkipVerify, Scheme: b.RedfishScheme}
		if t.CAFile == "" {
			t.CAFile = cfg.Redfish.CAFile
		}
		l := logger.With("bmc", b.ID)
		switch proto {
		case v1.Protocol_PROTOCOL_REDFISH:
			t.Port = port
			if b.RedfishPort != 0 {
				t.Port = b.RedfishPort
			}
			if t.InsecureSkipVerify {
				logger.Warn("TLS certificate verification is disabled for a BMC by its inventory entry", "bmc", b.ID)
			}
			return redfishsrc.New(t, redfishsrc.Options{
				BasicAuth:      cfg.Redfish.BasicAuth,
				RequestTimeout: time.Duration(cfg.Polling.RequestTimeout),
				InfoInterval:   time.Duration(cfg.Polling.InfoInterval),
				Logger:         l,
			}), nil
		case v1.Protocol_PROTOCOL_IPMI:
			t.Port = port
			if b.IPMIPort != 0 {
				t.Port = b.IPMIPort
			}
			priv := ipmisrc.PrivilegeUser
			switch cfg.IPMI.Privilege {
			case "operator":
				priv = ipmisrc.PrivilegeOperator
			case "administrator":
				priv = ipmisrc.PrivilegeAdministrator
			}
			rt := time.Duration(cfg.Polling.RequestTimeout)
			if rt > 2*time.Second {
				rt = 2 * time.Second // UDP: a lost packet is retried, not waited on
			}
			return ipmisrc.New(t, ipmisrc.Options{
				CipherSuite:    uint8(cfg.IPMI.CipherSuite),
				Privilege:      priv,
				RequestTimeout: rt,
				InfoInterval:   time.Duration(cfg.Polling.InfoInterval),
				Logger:         l,
			}), nil
		}
		return nil, fmt.Errorf("protocol %v: not supported", proto)
	}
}

// splitAddress accepts host, host:port, [v6] and [v6]:port.
func splitAddress(a string) (string, int) {
	if h, p, err := net.SplitHostPort(a); err == nil {
		if n, err := strconv.Atoi(p); err == nil {
			return h, n
		}
	}
	return a, 0
}
