// Package sources defines how the poller reads a BMC: one Source per BMC
// and protocol, a long-lived session behind a small interface, so the
// poller never sees a protocol library's types. Implementations live in
// pkg/sources/redfish and pkg/sources/ipmi.
package sources

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/bmcstream/bmcstream/pkg/secret"
	v1 "github.com/bmcstream/bmcstream/proto/bmcstream/v1"
)

// Source is one session to one BMC over one protocol.
//
// A Source is used by one goroutine at a time (the BMC's poll loop): BMCs
// handle one request at a time well and several badly, and protocol
// clients (go-ipmi's in particular) are not safe for concurrent use.
type Source interface {
	// Collect performs one poll. It opens (or reopens) the session when
	// needed and fills dst: Protocol, Up, Partial, Error, ErrorClass, Info
	// and Readings (appended to dst.Readings, whose capacity it may reuse).
	// The caller sets identity, sequence and poll times. Collect returns
	// what it could read before ctx's deadline with Partial set rather than
	// nothing. The returned error, when not nil, is also described in
	// dst.Error and classified in dst.ErrorClass; it is a *Error.
	Collect(ctx context.Context, dst *v1.Snapshot) error
	// Close ends the session (Redfish logout, IPMI Close Session) and
	// releases sockets. Safe to call more than once and before Collect.
	Close(ctx context.Context) error
}

// Target is where a Source connects and how it authenticates.
type Target struct {
	// Host is a host name or IP address; Port the protocol port (0 for the
	// standard one: 443 Redfish over HTTPS, 80 over HTTP, 623 IPMI).
	Host string
	Port int
	// Scheme is "https" (default) or "http", for Redfish.
	Scheme   string
	Username string
	Password secret.Secret
	// CAFile verifies the BMC's certificate; system roots when empty.
	CAFile string
	// InsecureSkipVerify turns TLS verification off (an explicit opt-in).
	InsecureSkipVerify bool
}

// Drop reasons: why a Source left a reading the BMC listed out of a
// snapshot. Every reading a BMC lists is either in the snapshot or counted
// under one of these (docs/metrics.md, "Nothing disappears uncounted").
const (
	// DropAbsent: the sensor or its component is not there (Redfish
	// Status.State Absent; IPMI "entity not present").
	DropAbsent = "absent"
	// DropDisabled: the sensor is there but not reading (Redfish State
	// Disabled, UnavailableOffline, StandbyOffline; IPMI scanning disabled).
	DropDisabled = "disabled"
	// DropNull: the reading is null or missing, or the BMC flagged it
	// unavailable (IPMI "reading unavailable").
	DropNull = "null"
	// DropNotANumber: the reading is something else than a number ("N/A",
	// an empty string, a boolean, an object).
	DropNotANumber = "not_a_number"
	// DropMalformed: a member that is not a JSON object, an undecodable
	// record.
	DropMalformed = "malformed"
	// DropUnsupportedLayout: the reading sits in a resource shape or
	// encoding the source cannot read (an OEM-only layout, a non-linear or
	// OEM IPMI conversion, a bridged IPMI owner).
	DropUnsupportedLayout = "unsupported_layout"
	// DropMerged: the same physical reading was read through a second
	// schema (legacy Thermal and the Sensors collection, say) and merged
	// into the first: not lost, but not a second reading either.
	DropMerged = "merged"
)

// Drop describes one reading a Source left out of a snapshot.
type Drop struct {
	// Reason is one of the Drop* constants.
	Reason string
	// Name is the vendor's sensor name, when known.
	Name string
	// ID identifies the reading as Reading.ID would have: a Redfish
	// member URI (with its JSON pointer for array members), an IPMI sensor
	// number.
	ID string
	// Detail says more in words: the raw value, the state, the reading
	// it was merged into.
	Detail string
}

// DropCounter is implemented by Sources that count the readings they
// leave out of snapshots.
type DropCounter interface {
	// Dropped returns how many readings were left out since the Source was
	// made, by reason (a Drop* constant). Counts only grow. The map is the
	// caller's. Safe to call from any goroutine.
	Dropped() map[string]uint64
}

// DocumentCounter is implemented by Sources that count the documents a
// BMC served but that could not be decoded, which the Source went on
// without (a Redfish system or chassis document that is not JSON).
type DocumentCounter interface {
	// MalformedDocuments returns how many since the Source was made; it
	// only grows. Safe to call from any goroutine.
	MalformedDocuments() uint64
}

// Class is the kind of a poll failure, for counting and backing off.
type Class string

// The failure classes. The poller backs off dead BMCs (unreachable,
// timeout) to a slow probe rate, and reports auth and session_limit
// distinctly: an operator must act on those, as on config.
const (
	ClassUnreachable  Class = "unreachable"   // connection refused, no route, DNS
	ClassTimeout      Class = "timeout"       // no answer in time
	ClassAuth         Class = "auth"          // credentials rejected
	ClassSessionLimit Class = "session_limit" // the BMC is out of sessions
	ClassRateLimited  Class = "rate_limited"  // 503/429 with or without Retry-After
	ClassProtocol     Class = "protocol"      // unexpected status or protocol error
	ClassDecode       Class = "decode"        // answer could not be understood
	// ClassConfig: the BMC cannot be polled as configured (credentials the
	// store does not hold, an address that is no address): no request is
	// sent, and only an edit of the inventory or credentials mends it.
	ClassConfig Class = "config"
)

// Error is a classified poll failure.
type Error struct {
	Class Class
	// RetryAfter is how long the BMC asked us to wait, when it said.
	RetryAfter time.Duration
	Err        error
}

func (e *Error) Error() string { return fmt.Sprintf("%s: %v", e.Class, e.Err) }

// Unwrap returns the underlying error.
func (e *Error) Unwrap() error { return e.Err }

// Errorf makes a classified error.
func Errorf(class Class, format string, args ...any) *Error {
	return &Error{Class: class, Err: fmt.Errorf(format, args...)}
}

// ClassOf returns the class of err, ClassProtocol when it has none.
func ClassOf(err error) Class {
	var e *Error
	if errors.As(err, &e) {
		return e.Class
	}
	if errors.Is(err, context.DeadlineExceeded) {
		return ClassTimeout
	}
	return ClassProtocol
}

// Fail records err in dst and returns it, for Collect's error paths.
func Fail(dst *v1.Snapshot, err error) error {
	dst.Error = err.Error()
	dst.ErrorClass = string(ClassOf(err))
	return err
}
