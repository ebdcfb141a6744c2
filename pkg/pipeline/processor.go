package pipeline

import (
	"time"

	"github.com/bmcstream/bmcstream/pkg/inventory"
	"github.com/bmcstream/bmcstream/pkg/series"
	v1 "github.com/bmcstream/bmcstream/proto/bmcstream/v1"
)

// Processor runs the stages of one consumer over its snapshots, in the
// order the gateway applies them:
//
//	dedup.Accept → Normalise (inventory labels) → Sources.Split →
//	Rollup.Observe → Relabel → Staleness.Observe → dedup.Filter
//
// It does no I/O: a snapshot goes in (already decoded, its times checked,
// its BMC admitted), the samples to write come out with what the snapshot
// changed (a protocol failover) and counters for the self-metrics. One
// goroutine owns a Processor; every consumer of the gateway (one per sink
// and partition) has its own, and they share only the Normaliser, which is
// safe for concurrent use.
//
// What it keeps per BMC is released by Forget.
type Processor struct {
	norm    *Normaliser
	relabel *Relabeler // nil: no write_relabel_configs
	rollup  *Rollup    // nil: roll-ups off
	dedup   *Dedup
	stale   *Staleness
	sources *Sources

	samples []series.Sample // Process's output, reused
	rollups []series.Sample // Rollups' output, reused
	// newest is the newest poll time a roll-up observed (their time);
	// lastRollup the time of the last roll-up emitted.
	newest, lastRollup int64

	counts  Counters     // since the last TakeCounters
	seenDup DedupStats   // dedup's counters at the last count
	seenSrc SourcesStats // sources' counters at the last count
}

// ProcessorOptions are the stages of a Processor. Normaliser is required;
// Relabel and Rollup are optional.
type ProcessorOptions struct {
	// Normaliser turns readings into samples; it may be shared by several
	// processors.
	Normaliser *Normaliser
	// FailoverTimeout is the HA deduplication's failover timeout (see
	// NewDedup).
	FailoverTimeout time.Duration
	// Relabel, when set, is applied to every sample written (the sink's
	// write_relabel_configs), roll-ups included.
	Relabel *Relabeler
	// Rollup, when set, observes every sample a snapshot feeds; Rollups
	// emits them.
	Rollup *Rollup
}

// NewProcessor makes a Processor with the given stages.
func NewProcessor(opts ProcessorOptions) *Processor {
	return &Processor{
		norm:    opts.Normaliser,
		relabel: opts.Relabel,
		rollup:  opts.Rollup,
		dedup:   NewDedup(opts.FailoverTimeout),
		stale:   NewStaleness(),
		sources: NewSources(),
	}
}

// Output is what Process made of one snapshot.
type Output struct {
	// Accepted is false when HA deduplication refused the snapshot (another
	// poller leads the BMC, or it is not newer than the last accepted one:
	// a redelivery). Nothing else is set then.
	Accepted bool
	// Samples are the samples to write, in order: the snapshot's values
	// (after relabelling) and staleness markers for the series it no longer
	// has. Valid until the next call of the Processor.
	Samples []series.Sample
	// Known is whether the inventory lists the BMC (its labels were added).
	Known bool
	// Skipped counts the readings that became no sample, by reason.
	Skipped Stats
	// Change is the protocol move the snapshot made (a BMC polled over
	// both protocols), and Prefer the BMC's preferred protocol
	// (PROTOCOL_UNSPECIFIED for a BMC polled over one).
	Change SourceChange
	Prefer v1.Protocol
}

// Counters count what the stages decided, for the gateway's self-metrics.
// TakeCounters returns them since its previous call.
type Counters struct {
	NotLeader     uint64 // snapshots refused: another poller leads the BMC
	StaleSequence uint64 // snapshots refused: not newer than the last accepted
	HAFailovers   uint64 // leader changes of an HA pair
	OutOfOrder    uint64 // samples dropped: their series had a newer sample
	PassedOver    uint64 // samples left out: the preferred protocol feeds their series
	Takeovers     uint64 // preferred protocol down: the other feeds a BMC's series
	Handbacks     uint64 // preferred protocol up again
	StaleMarkers  uint64 // staleness markers in Process's output
}

// TakeCounters returns the counters since the previous call and resets
// them.
func (p *Processor) TakeCounters() Counters {
	p.count()
	c := p.counts
	p.counts = Counters{}
	return c
}

// count folds the stages' own counters into p.counts.
func (p *Processor) count() {
	d := p.dedup.Stats
	p.counts.NotLeader += d.NotLeader - p.seenDup.NotLeader
	p.counts.StaleSequence += d.StaleSequence - p.seenDup.StaleSequence
	p.counts.HAFailovers += d.Failovers - p.seenDup.Failovers
	p.counts.OutOfOrder += d.DroppedSamples - p.seenDup.DroppedSamples
	p.seenDup = d
	s := p.sources.Stats
	p.counts.PassedOver += s.PassedOver - p.seenSrc.PassedOver
	p.counts.Takeovers += s.Takeovers - p.seenSrc.Takeovers
	p.counts.Handbacks += s.Handbacks - p.seenSrc.Handbacks
	p.seenSrc = s
}

// Process runs one snapshot through the stages. enrich gives the BMC's
// inventory labels and preferred protocol (the inventory in force: the
// consumer passes the newest it has).
func (p *Processor) Process(snap *v1.Snapshot, enrich *Enricher) Output {
	// HA pairs: one leader per BMC; redelivered and older snapshots are
	// done with, not errors.
	if !p.dedup.Accept(snap) {
		return Output{}
	}
	out := Output{Accepted: true}
	base, known := enrich.Labels(snap.BmcId)
	out.Known = known
	samples := p.norm.Normalise(p.samples[:0], snap, base, &out.Skipped)
	// One source per series (protocol: both): samples[:fed] feed their
	// series; the rest, whose series the preferred protocol feeds, are
	// seen by staleness only, then left out.
	out.Prefer = preferredProtocol(enrich, snap.BmcId)
	fed, change := p.sources.Split(snap, out.Prefer, samples)
	out.Change = change
	if p.rollup != nil {
		p.rollup.Observe(samples[:fed])
		p.newest = max(p.newest, snap.PollStartMs)
	}
	if p.relabel != nil {
		// Each part in place: what is written never overtakes what is read.
		kept := p.relabel.Apply(samples[:0], samples[:fed])
		rest := p.relabel.Apply(samples[len(kept):len(kept)], samples[fed:])
		samples, fed = samples[:len(kept)+len(rest)], len(kept)
	}
	n0 := len(samples)
	samples = p.stale.Observe(samples, snap, samples)
	samples = append(samples[:fed], samples[n0:]...)
	p.counts.StaleMarkers += uint64(len(samples) - fed)
	if p.rollup != nil && len(samples) > fed {
		// A BMC gone dark leaves the roll-ups at once, not after their
		// stale window.
		p.rollup.Observe(samples[fed:])
	}
	samples = p.dedup.Filter(samples[:0], snap.BmcId, samples)
	p.samples = samples
	p.count()
	out.Samples = samples
	return out
}

// preferredProtocol is the protocol that feeds the series of a BMC polled
// over both (PROTOCOL_UNSPECIFIED: polled over one). A BMC the inventory
// does not list may be polled over both: Redfish is preferred then.
func preferredProtocol(enrich *Enricher, id string) v1.Protocol {
	e, ok := enrich.Inventory().Get(id)
	switch {
	case !ok:
		return v1.Protocol_PROTOCOL_REDFISH
	case e.Protocol != inventory.Both:
		return v1.Protocol_PROTOCOL_UNSPECIFIED
	case e.Prefer == inventory.IPMI:
		return v1.Protocol_PROTOCOL_IPMI
	}
	return v1.Protocol_PROTOCOL_REDFISH
}

// RollupKey is the dedup key of the roll-up series, and the source they
// are written under: no BMC id can be it.
const RollupKey = "\x00rollup"

// Rollups returns the roll-ups at the newest poll time observed (never a
// clock's), in order per series, relabelled and deduplicated; nil when
// roll-ups are off or nothing was observed at or after notBefore (a
// backlog from before this process, whose roll-ups a previous gateway may
// have written already). Valid until the next call.
func (p *Processor) Rollups(notBefore int64) []series.Sample {
	if p.rollup == nil || p.newest == 0 || p.newest < notBefore {
		return nil
	}
	// Never the same time twice: a staleness marker written on the time of
	// the previous value would be filtered out as a duplicate.
	t := max(p.newest, p.lastRollup+1)
	p.lastRollup = t
	out := p.rollup.Emit(p.rollups[:0], t)
	p.rollups = out
	if p.relabel != nil {
		out = p.relabel.Apply(out[:0], out)
	}
	return p.dedup.Filter(out[:0], RollupKey, out)
}

// Forget drops everything kept for a BMC, the shared normaliser's plans
// included (a processor that still has the BMC plans it afresh), and
// appends to dst staleness markers for each of its series, just after its
// last poll (never at a clock's time: a consumer replaying a backlog
// writes the same markers as a live one).
func (p *Processor) Forget(dst []series.Sample, id string) []series.Sample {
	if last, ok := p.stale.LastSeen(id); ok {
		dst = p.stale.Forget(dst, id, last+1)
	}
	p.dedup.Forget(id)
	p.sources.Forget(id)
	if p.rollup != nil {
		p.rollup.Forget(id)
	}
	p.norm.Forget(id)
	return dst
}
