package poller

import (
	"context"
	"regexp"

	"github.com/bmcstream/bmcstream/pkg/inventory"
	"github.com/bmcstream/bmcstream/pkg/sources"
	v1 "github.com/bmcstream/bmcstream/proto/bmcstream/v1"
)

// unpollableSource stands in for the sources of a BMC that cannot be
// polled as configured: its credentials reference resolves to nothing,
// its address is no address, a source could not be built. Every poll
// fails at once with class config and the reason, touching no network, so
// the BMC keeps its place: a snapshot with up=false per protocol at its
// interval (the gateway writes bmc_up 0 and BMCDown fires), a row on
// /status, a count in the poll metrics. Skipping it instead would leave
// it with no bmc_up series at all, and no alert could see it.
type unpollableSource struct{ err error }

// Collect records the configuration problem; it never blocks.
func (s unpollableSource) Collect(_ context.Context, dst *v1.Snapshot) error {
	dst.Up = false
	return sources.Fail(dst, &sources.Error{Class: sources.ClassConfig, Err: s.err})
}

// Close has nothing to release.
func (unpollableSource) Close(context.Context) error { return nil }

// unpollableWorker is the worker of a BMC that cannot be polled for
// reason err: one unpollableSource per protocol of the entry. reconcile
// restarts it on every pass (reload, membership change), so fixing the
// inventory or the credentials file brings the BMC back.
func (p *Poller) unpollableWorker(b inventory.BMC, err error) *worker {
	// Its snapshots carry the address: never credentials written into it.
	b.Address = redactUserinfo(b.Address)
	w := &worker{p: p, bmc: b, done: make(chan struct{}), unpollable: true,
		status: Status{ID: b.ID, Address: b.Address, Protocol: string(b.Protocol)}}
	for _, proto := range protocolsOf(b) {
		w.sources = append(w.sources, protoSource{proto: proto, src: unpollableSource{err: err}})
	}
	return w
}

// maxStatusError bounds the error text /status keeps per BMC: enough for
// a wrapped x509 message, little enough for tens of thousands of rows.
const maxStatusError = 512

// statusError is what /status shows of a poll's error: credentials written
// into a URL or an address replaced, bounded in length.
func statusError(msg string) string {
	msg = redactUserinfo(msg)
	if len(msg) > maxStatusError {
		cut := maxStatusError
		for cut > 0 && msg[cut]&0xC0 == 0x80 {
			cut-- // not inside a UTF-8 sequence
		}
		msg = msg[:cut] + "…"
	}
	return msg
}

// userinfo matches the user[:password]@ part of a URL or a host address.
var userinfo = regexp.MustCompile(`(^|[\s"'(=/]|://)[^\s"'/@]+@`)

// redactUserinfo replaces the user information of URLs and addresses in s
// ("https://admin:pw@10.0.0.1/", "admin:pw@10.0.0.1") with "<redacted>@".
func redactUserinfo(s string) string {
	return userinfo.ReplaceAllString(s, "${1}<redacted>@")
}
