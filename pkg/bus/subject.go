// Package bus holds bmcstream's NATS contract: subject names, the escaping of
// BMC ids into subject tokens, JetStream stream and consumer setup, and the
// connection and embedded-server settings shared by the poller and the gateway.
package bus

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// Subject prefixes of schema version 1. The version is part of every subject
// so a v2 schema can run beside v1 during an upgrade.
const (
	// RawPrefix starts the subjects pollers publish snapshots on:
	// bmc.v1.raw.<bmc>.
	RawPrefix = "bmc.v1.raw."
	// RawWildcard matches every raw snapshot subject.
	RawWildcard = "bmc.v1.raw.>"
	// NormPrefix starts the normalised-reading subjects:
	// bmc.v1.norm.<site>.<rack>.<bmc>.
	NormPrefix = "bmc.v1.norm."
	// EventPrefix starts the event subjects:
	// bmc.v1.events.<site>.<rack>.<bmc>.
	EventPrefix = "bmc.v1.events."
)

// EscapeToken turns an arbitrary id (a BMC id, a site or rack name) into one
// NATS subject token, reversibly:
//
//   - ASCII letters, digits and '-' are kept;
//   - '.' becomes '_', so an IP address stays readable (10.0.0.5 → 10_0_0_5);
//   - every other byte, '_' and '~' included, becomes '~' and two upper-case
//     hex digits (node_1 → node~5F1, fe80::1 → fe80~3A~3A1).
//
// The result never contains '.', '*', '>' or whitespace, so it is always a
// single literal token that wildcards cannot be smuggled through. An empty id
// escapes to "~" + "" which UnescapeToken rejects; callers validate ids first.
func EscapeToken(id string) string {
	clean := true
	for i := 0; i < len(id); i++ {
		if !keep(id[i]) {
			clean = false
			break
		}
	}
	if clean {
		return id
	}
	var b strings.Builder
	b.Grow(len(id) + 8)
	for i := 0; i < len(id); i++ {
		c := id[i]
		switch {
		case keep(c):
			b.WriteByte(c)
		case c == '.':
			b.WriteByte('_')
		default:
			const hex = "0123456789ABCDEF"
			b.WriteByte('~')
			b.WriteByte(hex[c>>4])
			b.WriteByte(hex[c&0x0f])
		}
	}
	return b.String()
}

func keep(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-'
}

// ErrBadToken reports a subject token that EscapeToken cannot have produced.
var ErrBadToken = errors.New("malformed subject token")

// UnescapeToken reverses EscapeToken.
func UnescapeToken(tok string) (string, error) {
	if tok == "" {
		return "", fmt.Errorf("%w: empty", ErrBadToken)
	}
	if !strings.ContainsAny(tok, "_~") {
		for i := 0; i < len(tok); i++ {
			if !keep(tok[i]) {
				return "", fmt.Errorf("%w: %q has byte %q", ErrBadToken, tok, tok[i])
			}
		}
		return tok, nil
	}
	out := make([]byte, 0, len(tok))
	for i := 0; i < len(tok); i++ {
		c := tok[i]
		switch {
		case keep(c):
			out = append(out, c)
		case c == '_':
			out = append(out, '.')
		case c == '~':
			if i+2 >= len(tok) {
				return "", fmt.Errorf("%w: %q ends inside an escape", ErrBadToken, tok)
			}
			hi, ok1 := unhex(tok[i+1])
			lo, ok2 := unhex(tok[i+2])
			if !ok1 || !ok2 {
				return "", fmt.Errorf("%w: %q has a bad escape at %d", ErrBadToken, tok, i)
			}
			b := hi<<4 | lo
			if keep(b) || b == '.' {
				// EscapeToken never escapes these: accepting them would give
				// one id two subjects.
				return "", fmt.Errorf("%w: %q escapes %q needlessly", ErrBadToken, tok, b)
			}
			out = append(out, b)
			i += 2
		default:
			return "", fmt.Errorf("%w: %q has byte %q", ErrBadToken, tok, c)
		}
	}
	return string(out), nil
}

func unhex(c byte) (byte, bool) {
	switch {
	case c >= '0' && c <= '9':
		return c - '0', true
	case c >= 'A' && c <= 'F':
		return c - 'A' + 10, true
	}
	return 0, false
}

// RawSubject is the subject a poller publishes a BMC's snapshots on.
func RawSubject(bmcID string) string { return RawPrefix + EscapeToken(bmcID) }

// BMCFromRawSubject returns the BMC id a raw subject names: bmc.v1.raw.<bmc>
// as published, or bmc.v1.raw.<partition>.<bmc> as a partitioned stream
// stores it (StreamConfig.Partitions).
func BMCFromRawSubject(subject string) (string, error) {
	tok, ok := RawToken(subject)
	if !ok {
		return "", fmt.Errorf("%w: %q is not %s<bmc>", ErrBadToken, subject, RawPrefix)
	}
	return UnescapeToken(tok)
}

// RawToken returns the BMC token of a raw subject, published or
// partitioned, without unescaping it: the key that keeps one BMC's
// snapshots together whichever form the subject has.
func RawToken(subject string) (string, bool) {
	tok, ok := strings.CutPrefix(subject, RawPrefix)
	if !ok {
		return "", false
	}
	if i := strings.IndexByte(tok, '.'); i >= 0 {
		if _, err := strconv.ParseUint(tok[:i], 10, 32); err != nil {
			return "", false
		}
		tok = tok[i+1:]
	}
	if tok == "" || strings.ContainsAny(tok, ".*>") {
		return "", false
	}
	return tok, true
}

// PartitionFilter is the subject filter of one partition of a
// partitioned stream.
func PartitionFilter(partition int) string {
	return RawPrefix + strconv.Itoa(partition) + ".*"
}

// NormSubject is the subject of a BMC's normalised readings. Empty site or
// rack become "_unknown" so consumers can still filter by position.
func NormSubject(site, rack, bmcID string) string {
	return NormPrefix + placeToken(site) + "." + placeToken(rack) + "." + EscapeToken(bmcID)
}

// EventSubject is the subject of a BMC's events.
func EventSubject(site, rack, bmcID string) string {
	return EventPrefix + placeToken(site) + "." + placeToken(rack) + "." + EscapeToken(bmcID)
}

// Unknown is the token used for a missing site or rack. It cannot collide
// with an escaped name: EscapeToken turns a leading '_' into "~5F".
const Unknown = "_unknown"

func placeToken(s string) string {
	if s == "" {
		return Unknown
	}
	return EscapeToken(s)
}

// MsgID is the JetStream Nats-Msg-Id of a snapshot: unique per poller
// process, BMC and poll, so a republished snapshot is deduplicated by the
// stream and two pollers of an HA pair never collide.
func MsgID(pollerID string, epoch int64, bmcID string, seq uint64) string {
	return fmt.Sprintf("%s/%d/%s/%d", EscapeToken(pollerID), epoch, EscapeToken(bmcID), seq)
}
