package pipeline

import (
	"github.com/prometheus/prometheus/model/value"

	"github.com/bmcstream/bmcstream/pkg/series"
	v1 "github.com/bmcstream/bmcstream/proto/bmcstream/v1"
)

// Sources keeps one source per series for BMCs polled over both Redfish and
// IPMI. Both protocols read many of the same quantities (the same
// temperature, the same fan) and the normaliser gives them the same series,
// so without it each such series would get two samples per poll, a second
// apart and of two precisions, and whichever came second could be older
// than the first (an out-of-order drop at the receiver).
//
// Per BMC one protocol is preferred (the inventory's `prefer`). Its
// snapshots feed every series they produce. The other protocol's snapshots
// feed only the series the preferred one does not produce (the chassis
// faults only IPMI reports, say), and every series while the preferred one
// is down: its last snapshot had up=false. The first snapshot of the
// preferred protocol that is up again takes its series back. Series that
// carry the protocol as a label (bmc_up, bmc_poll_duration_seconds,
// bmc_info, bmc_sensor_info) are distinct per protocol, so each protocol
// produces its own and keeps feeding it.
//
// What the preferred protocol produces is what its last complete snapshot
// had: a partial snapshot (the BMC answered, some requests failed) adds
// series but removes none, so one failed request does not hand a series to
// the other protocol for a poll. Like Dedup, the decisions depend only on
// the sequence of snapshots, never on the gateway's clock.
//
// A gateway that starts (or a Sources that meets a BMC for the first time)
// knows nothing of the preferred protocol until its first snapshot: until
// then the other protocol feeds what it has, since it may be all there is
// (a preferred protocol that is down, or a BMC polled over one protocol).
// After a restart a series can thus get one sample from the other protocol
// before the preferred one's first snapshot takes it; it stays in order.
//
// The gateway runs Split right after normalise, so that every later stage
// (roll-ups, relabelling, the sinks, the automation stream) sees only the
// samples that feed their series, except Staleness, which must see them
// all: a series the other protocol still has is not ended when the
// preferred protocol stops answering, since the other takes it over.
//
// A Sources is owned by one goroutine; it is not safe for concurrent use.
type Sources struct {
	bmcs map[string]*sourceBMC

	// Stats counts what Sources did since it was made. The owning goroutine
	// may read and reset it at any time.
	Stats SourcesStats
}

// SourcesStats counts the decisions of Sources, for the gateway's
// self-metrics.
type SourcesStats struct {
	// Takeovers counts the times the preferred protocol of a BMC went down
	// while the other protocol was in use, so the other took its series.
	Takeovers uint64
	// Handbacks counts the times the preferred protocol came back up and
	// took its series back.
	Handbacks uint64
	// PassedOver counts the samples of the non-preferred protocol left out
	// because the preferred protocol feeds their series.
	PassedOver uint64
}

// SourceChange is what a snapshot changed about who feeds a BMC's series.
type SourceChange uint8

// The changes Split reports.
const (
	// SourceUnchanged: the same protocol feeds the BMC's series as before.
	SourceUnchanged SourceChange = iota
	// SourceTakeover: the preferred protocol went down; the other feeds
	// every series from its next snapshot on.
	SourceTakeover
	// SourceHandback: the preferred protocol is up again and feeds its
	// series once more.
	SourceHandback
)

// String names the change as the gateway's metrics and logs do.
func (c SourceChange) String() string {
	switch c {
	case SourceTakeover:
		return "takeover"
	case SourceHandback:
		return "handback"
	}
	return "unchanged"
}

// preferredState is what Sources knows of a BMC's preferred protocol.
type preferredState uint8

const (
	preferredUnknown preferredState = iota // no snapshot of it yet
	preferredUp
	preferredDown
)

type sourceBMC struct {
	prefer v1.Protocol
	state  preferredState
	// otherSeen: the other protocol has sent a snapshot, so a change of
	// the preferred one's state moves series (it is counted and reported).
	otherSeen bool
	// series the preferred protocol produces → the generation of the last
	// of its snapshots that had the series.
	series seriesState[uint32]
	gen    uint32
}

// NewSources returns an empty Sources.
func NewSources() *Sources {
	return &Sources{bmcs: make(map[string]*sourceBMC)}
}

// Split reorders in place the samples one snapshot produced (as normalised,
// all of BMC s.BmcId) so that those feeding their series come first, in
// their order, and returns how many they are: samples[:n] go on,
// samples[n:] are left out because the preferred protocol feeds their
// series. It also reports whether the snapshot moved the BMC's series from
// one protocol to the other.
//
// prefer is the BMC's preferred protocol; PROTOCOL_UNSPECIFIED means the
// BMC is polled over one protocol only: every sample goes on, and whatever
// Sources knew of the BMC is dropped. A change of prefer (an inventory
// reload) starts the BMC afresh.
//
// Split keeps a reference to the preferred protocol's series (immutable
// once handed on), in a slice indexed by Slot for the series of the
// normaliser's table (which both protocols' samples share), and reuses its
// per-BMC state from poll to poll: in the steady state it does not
// allocate.
func (ss *Sources) Split(s *v1.Snapshot, prefer v1.Protocol, samples []series.Sample) (n int, change SourceChange) {
	if prefer == v1.Protocol_PROTOCOL_UNSPECIFIED {
		delete(ss.bmcs, s.BmcId)
		return len(samples), SourceUnchanged
	}
	b := ss.bmcs[s.BmcId]
	if b == nil || b.prefer != prefer {
		b = &sourceBMC{prefer: prefer}
		ss.bmcs[s.BmcId] = b
	}
	if s.Protocol == prefer {
		return len(samples), b.observePreferred(ss, s, samples)
	}
	b.otherSeen = true
	if b.state != preferredUp {
		return len(samples), SourceUnchanged
	}
	for i := range samples {
		smp := &samples[i]
		if !value.IsStaleNaN(smp.V) && b.series.find(smp.Series) != nil {
			continue // the preferred protocol feeds it
		}
		if i != n {
			samples[n], samples[i] = samples[i], samples[n]
		}
		n++
	}
	ss.Stats.PassedOver += uint64(len(samples) - n)
	return n, SourceUnchanged
}

// observePreferred records a snapshot of the preferred protocol: its state,
// and the series it produces.
func (b *sourceBMC) observePreferred(ss *Sources, s *v1.Snapshot, samples []series.Sample) SourceChange {
	change := SourceUnchanged
	switch {
	case !s.Up && b.state == preferredUp:
		b.state = preferredDown
		if b.otherSeen {
			change = SourceTakeover
			ss.Stats.Takeovers++
		}
	case !s.Up:
		b.state = preferredDown
	case b.state == preferredDown:
		b.state = preferredUp
		if b.otherSeen {
			change = SourceHandback
			ss.Stats.Handbacks++
		}
	default:
		b.state = preferredUp
	}
	if !s.Up {
		// A poll that failed says nothing of which series the protocol
		// produces: keep them for when it is back.
		return change
	}
	b.gen++
	for i := range samples {
		smp := &samples[i]
		if value.IsStaleNaN(smp.V) {
			continue
		}
		if g := b.series.find(smp.Series); g != nil {
			*g = b.gen
		} else {
			b.series.add(smp.Series, b.gen)
		}
	}
	if !s.Partial {
		// What the preferred protocol no longer has goes.
		gen := b.gen
		b.series.each(func(_ *series.Series, g *uint32) bool { return *g != gen })
	}
	return change
}

// Forget drops all state of a BMC. Call it when the BMC leaves the
// inventory.
func (ss *Sources) Forget(bmcID string) {
	delete(ss.bmcs, bmcID)
}

// Len returns the number of BMCs and series Sources holds state for.
func (ss *Sources) Len() (bmcs, seriesCount int) {
	for _, b := range ss.bmcs {
		seriesCount += b.series.len()
	}
	return len(ss.bmcs), seriesCount
}

// The events of Sources, published on bmc.v1.events.<site>.<rack>.<bmc>
// with the others (see Event).
const (
	// EventProtocolTakeover: the preferred protocol of a BMC polled over
	// both went down; the other protocol feeds its series (Previous is the
	// preferred protocol, Current the other; Error and ErrorClass say why).
	EventProtocolTakeover EventKind = "protocol_takeover"
	// EventProtocolHandback: the preferred protocol answers again and
	// feeds its series (Previous is the other protocol, Current the
	// preferred one).
	EventProtocolHandback EventKind = "protocol_handback"
)

// SourceEvent returns the event of a change Split reported for snapshot s
// (the preferred protocol's) of a BMC whose preferred protocol is prefer;
// labels are the BMC's inventory labels, shared, not modified.
func SourceEvent(s *v1.Snapshot, prefer v1.Protocol, change SourceChange, labels map[string]string) Event {
	other := v1.Protocol_PROTOCOL_IPMI
	if prefer == v1.Protocol_PROTOCOL_IPMI {
		other = v1.Protocol_PROTOCOL_REDFISH
	}
	e := Event{
		Version:  SchemaVersion,
		Kind:     EventProtocolTakeover,
		BMC:      s.BmcId,
		Site:     labels["site"],
		Rack:     labels["rack"],
		Labels:   labels,
		Protocol: sourceProtocolName(s.Protocol),
		Metric:   "bmc_up",
		Previous: sourceProtocolName(prefer),
		Current:  sourceProtocolName(other),
		TimeMs:   s.PollStartMs,
		Poller:   s.PollerId,
	}
	if change == SourceHandback {
		e.Kind, e.Value, e.Previous, e.Current = EventProtocolHandback, 1, e.Current, e.Previous
	} else {
		e.Error, e.ErrorClass = s.Error, s.ErrorClass
	}
	return e
}

func sourceProtocolName(p v1.Protocol) string {
	switch p {
	case v1.Protocol_PROTOCOL_REDFISH:
		return "redfish"
	case v1.Protocol_PROTOCOL_IPMI:
		return "ipmi"
	}
	return "unspecified"
}
