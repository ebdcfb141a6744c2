package poller

import (
	"fmt"
	"log/slog"
	"net"
	"strconv"
	"strings"
	"time"

	"github.com/bmcstream/bmcstream/pkg/inventory"
	"github.com/bmcstream/bmcstream/pkg/secret"
	"github.com/bmcstream/bmcstream/pkg/sources"
	ipmisrc "github.com/bmcstream/bmcstream/pkg/sources/ipmi"
	redfishsrc "github.com/bmcstream/bmcstream/pkg/sources/redfish"
	v1 "github.com/bmcstream/bmcstream/proto/bmcstream/v1"
)

// DefaultSources opens the project's Redfish and IPMI sources with the
// configuration's protocol settings and the inventory entry's. A BMC's own
// ca_file takes precedence over redfish.ca_file; insecure_skip_verify is
// warned about once per inventory load (warnSkipVerify), not here: sources
// are opened again on every ownership change.
func DefaultSources(cfg *Config, logger *slog.Logger) SourceFactory {
	return sourceFactory(cfg, logger, nil)
}

// sourceFactory is DefaultSources whose sources, when onDrop is not nil,
// report each reading they leave out of a poll to it, with their protocol
// (Options.OnDrop of both sources: called synchronously from Collect).
func sourceFactory(cfg *Config, logger *slog.Logger, onDrop func(v1.Protocol, sources.Drop)) SourceFactory {
	hook := func(proto v1.Protocol) func(sources.Drop) {
		if onDrop == nil {
			return nil
		}
		return func(d sources.Drop) { onDrop(proto, d) }
	}
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
			return redfishsrc.New(t, redfishsrc.Options{
				BasicAuth:      cfg.Redfish.BasicAuth,
				RequestTimeout: time.Duration(cfg.Polling.RequestTimeout),
				InfoInterval:   time.Duration(cfg.Polling.InfoInterval),
				Schema:         redfishsrc.Schema(b.RedfishSchema),
				OnDrop:         hook(proto),
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
				SkipDiscrete:   !cfg.IPMI.Discrete,
				OnDrop:         hook(proto),
				Logger:         l,
			}), nil
		}
		return nil, fmt.Errorf("protocol %v: not supported", proto)
	}
}

// skipVerifyExamples bounds how many BMC ids the skip-verify warning names:
// enough to find the entries, few enough for one log line.
const skipVerifyExamples = 5

// warnSkipVerify logs one line when the inventory turns Redfish TLS
// verification off for some BMCs: how many, and the first few ids in
// inventory order. It runs at start and at every reload, so the warning
// stays visible without repeating per BMC.
func warnSkipVerify(logger *slog.Logger, bmcs []inventory.BMC) {
	var ids []string
	n := 0
	for _, b := range bmcs {
		if !b.InsecureSkipVerify || b.Protocol == inventory.IPMI {
			continue
		}
		n++
		if len(ids) < skipVerifyExamples {
			ids = append(ids, b.ID)
		}
	}
	if n == 0 {
		return
	}
	examples := strings.Join(ids, ",")
	if n > len(ids) {
		examples += ",…"
	}
	logger.Warn("Redfish TLS certificate verification is disabled by insecure_skip_verify in the inventory", "bmcs", n, "examples", examples)
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
