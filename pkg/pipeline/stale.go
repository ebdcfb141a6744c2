package pipeline

import (
	"math"
	"slices"

	"github.com/prometheus/prometheus/model/value"

	"github.com/bmcstream/bmcstream/pkg/series"
	v1 "github.com/bmcstream/bmcstream/proto/bmcstream/v1"
)

// Staleness writes Prometheus staleness markers for series that stop being
// reported, so dashboards end them at once instead of drawing the last value
// for five more minutes (Prometheus' lookback), and alerts on them resolve.
//
// It follows what Prometheus does for a scrape target: a series present in a
// BMC's previous snapshot and absent from this one gets one marker, at this
// snapshot's poll time. In particular a BMC that stops answering keeps its
// bmc_up series (now 0) and its sensor series end with one marker each;
// they start again, as the same series, when it answers. A flapping BMC thus
// draws gaps, which is what happened, and creates no new series. Exceptions:
//
//   - A partial snapshot (the BMC answered, some requests failed) adds the
//     series it has but marks none stale: the missing ones are missing from
//     the poll, not from the BMC. A BMC whose polls stay partial lets the
//     absent series lapse after the lookback instead.
//   - A BMC polled over both Redfish and IPMI sends two snapshots per poll
//     with different series. A series ends only when no protocol's latest
//     snapshot has it, so the two never mark each other's series stale.
//
// The gateway calls Observe for every snapshot Dedup accepted, before
// Dedup.Filter, and Forget when a BMC leaves the inventory. A Staleness is
// owned by one goroutine; it is not safe for concurrent use.
type Staleness struct {
	bmcs map[string]*staleBMC
}

type staleBMC struct {
	// series → which protocols' latest complete snapshot had it, and the
	// observation that last saw it.
	series seriesState[staleState]
	gen    uint32
	last   int64 // poll time of the last Observe
}

type staleState struct {
	sources uint8
	gen     uint32
}

// staleNaN is the value of a staleness marker. It is a NaN, so it is never
// compared, only written.
func staleNaN() float64 { return math.Float64frombits(value.StaleNaN) }

// NewStaleness returns an empty Staleness.
func NewStaleness() *Staleness {
	return &Staleness{bmcs: make(map[string]*staleBMC)}
}

// Observe records the series a snapshot produced (samples, as normalised,
// all of BMC s.BmcId) and appends to dst a staleness marker at the poll time
// s.PollStartMs for each series that the same protocol's previous snapshot
// of the BMC had, this one lacks, and no other protocol's latest snapshot
// has. dst may be samples: the markers are appended after them. Staleness
// markers among samples are ignored.
//
// Observe keeps each series (immutable once handed on), in a slice indexed
// by Slot for the series of the normaliser's table, and reuses its per-BMC
// state from poll to poll: in the steady state it does not allocate.
func (st *Staleness) Observe(dst []series.Sample, s *v1.Snapshot, samples []series.Sample) []series.Sample {
	b := st.bmcs[s.BmcId]
	if b == nil {
		b = &staleBMC{}
		st.bmcs[s.BmcId] = b
	}
	b.gen++
	b.last = max(b.last, s.PollStartMs)
	bit := uint8(1) << protoSlot(s.Protocol)
	for _, smp := range samples {
		if value.IsStaleNaN(smp.V) {
			continue
		}
		v := b.series.find(smp.Series)
		if v == nil {
			b.series.add(smp.Series, staleState{sources: bit, gen: b.gen})
			continue
		}
		v.sources |= bit
		v.gen = b.gen
	}
	if s.Up && s.Partial {
		return dst
	}
	t, gen := s.PollStartMs, b.gen
	b.series.each(func(ser *series.Series, v *staleState) bool {
		if v.sources&bit == 0 || v.gen == gen {
			return false
		}
		v.sources &^= bit
		if v.sources != 0 {
			return false
		}
		dst = append(dst, series.Sample{Series: ser, T: t, V: staleNaN()})
		return true
	})
	return dst
}

// Forget appends to dst a staleness marker at time t for every series of a
// BMC and drops the BMC's state: call it when the BMC leaves the inventory.
// A good t is LastSeen plus one millisecond: the series end right after
// their last sample, and the marker does not depend on the gateway's clock
// (a sink replaying a backlog gets the same marker as a live one).
func (st *Staleness) Forget(dst []series.Sample, bmcID string, t int64) []series.Sample {
	b := st.bmcs[bmcID]
	if b == nil {
		return dst
	}
	b.series.each(func(ser *series.Series, _ *staleState) bool {
		dst = append(dst, series.Sample{Series: ser, T: t, V: staleNaN()})
		return false
	})
	delete(st.bmcs, bmcID)
	return dst
}

// LastSeen returns the newest poll time Observe saw for a BMC.
func (st *Staleness) LastSeen(bmcID string) (t int64, ok bool) {
	b := st.bmcs[bmcID]
	if b == nil {
		return 0, false
	}
	return b.last, true
}

// BMCs returns the ids of the BMCs Staleness holds series for, sorted, so
// the gateway can Forget those a reloaded inventory no longer lists.
func (st *Staleness) BMCs() []string {
	ids := make([]string, 0, len(st.bmcs))
	for id := range st.bmcs {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	return ids
}
