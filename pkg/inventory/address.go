package inventory

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strconv"
	"strings"
)

// CheckAddress reports why an entry's address cannot be polled: it must be
// a host (a DNS name, an IPv4 address, an IPv6 address with or without
// brackets), optionally followed by ":port" (IPv6 in brackets then:
// "[fe80::1]:8443") with a port from 1 to 65535.
//
// Parse does not apply it: a BMC whose address is wrong must still appear
// as down (class config) rather than take its whole file with it; the
// poller applies it when it opens a BMC's sources, and --config.check
// reports it with the entry's line.
//
// The message quotes the address unless it holds '@': credentials written
// into an address (user:password@host) are never repeated.
func CheckAddress(address string) error {
	if address == "" {
		return errors.New("address: must be set")
	}
	quoted := strconv.Quote(address)
	if strings.Contains(address, "@") {
		return errors.New("address: holds '@': credentials do not belong in an address (the credentials key names them)")
	}
	if strings.Contains(address, "://") {
		return fmt.Errorf("address: %s is a URL; give the host, optionally with :port (redfish_scheme sets http or https)", quoted)
	}
	host, port := address, ""
	switch {
	case strings.HasPrefix(address, "["):
		end := strings.Index(address, "]")
		if end < 0 {
			return fmt.Errorf("address: %s opens '[' without closing it", quoted)
		}
		host = address[1:end]
		rest := address[end+1:]
		if rest != "" {
			if !strings.HasPrefix(rest, ":") {
				return fmt.Errorf("address: %s has %q after ']' where a :port may follow", quoted, rest)
			}
			port = rest[1:]
			if port == "" {
				return fmt.Errorf("address: %s ends in ':' without a port", quoted)
			}
		}
		if a, err := netip.ParseAddr(host); err != nil || !a.Is6() {
			return fmt.Errorf("address: %s: %q in brackets is not an IPv6 address", quoted, host)
		}
	case strings.Count(address, ":") > 1:
		// A bare IPv6 address: no port can follow without brackets.
		if _, err := netip.ParseAddr(address); err != nil {
			return fmt.Errorf("address: %s is not an IPv6 address (write [v6]:port to give a port)", quoted)
		}
		return nil
	case strings.Contains(address, ":"):
		h, p, err := net.SplitHostPort(address)
		if err != nil {
			return fmt.Errorf("address: %s is not host:port", quoted)
		}
		if p == "" {
			return fmt.Errorf("address: %s ends in ':' without a port", quoted)
		}
		host, port = h, p
	}
	if port != "" {
		n, err := strconv.Atoi(port)
		if err != nil || n < 1 || n > 65535 || strings.HasPrefix(port, "+") {
			return fmt.Errorf("address: %s: port %q is not from 1 to 65535", quoted, port)
		}
	}
	if strings.HasPrefix(address, "[") {
		return nil
	}
	if _, err := netip.ParseAddr(host); err == nil {
		return nil
	}
	if err := checkHostName(host); err != nil {
		return fmt.Errorf("address: %s: %w", quoted, err)
	}
	return nil
}

// checkHostName accepts a DNS name: dot-separated labels of 1 to 63
// letters, digits, '-' and '_' (found in real zones), not starting or
// ending with '-', 253 characters at most; a trailing dot is allowed.
func checkHostName(h string) error {
	if h == "" {
		return errors.New("no host")
	}
	h = strings.TrimSuffix(h, ".")
	if len(h) > 253 {
		return errors.New("host name is longer than 253 characters")
	}
	for _, label := range strings.Split(h, ".") {
		if label == "" {
			return errors.New("host name has an empty label")
		}
		if len(label) > 63 {
			return errors.New("host name has a label longer than 63 characters")
		}
		if label[0] == '-' || label[len(label)-1] == '-' {
			return fmt.Errorf("host name label %q starts or ends with '-'", label)
		}
		for _, r := range label {
			if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '_') {
				return fmt.Errorf("%q is not allowed in a host name", r)
			}
		}
	}
	return nil
}
