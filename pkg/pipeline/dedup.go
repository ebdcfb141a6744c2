package pipeline

import (
	"slices"
	"time"

	"github.com/bmcstream/bmcstream/pkg/series"
	v1 "github.com/bmcstream/bmcstream/proto/bmcstream/v1"
)

// Dedup is the HA stage: pollers may run as HA pairs (replication factor 2),
// both publishing snapshots of the same BMC. Per BMC it accepts one poller
// as leader and fails over to another when the leader goes quiet, as Mimir's
// HA tracker does for Prometheus replicas; and it drops samples that would
// make a series go back in time, which remote-write receivers reject
// (Prometheus rejects the whole request for one such sample).
//
// Time is the snapshots' own poll time, never the gateway's clock: the
// decisions depend only on the sequence of snapshots, so a backlog replayed
// from the same state decides the same way as the live stream did, however
// fast it is consumed, and every sink's consumer (each runs its own Dedup
// over the same stream order) makes the same decisions. The state lives in
// memory: a restarted gateway elects again from the first snapshot it sees.
//
// The gateway runs, per snapshot: Accept; if accepted, normalise, then
// Sources.Split (one protocol per series for BMCs polled over both), then
// Staleness.Observe over all the samples, then Filter over the samples that
// feed their series and the staleness markers together, so the markers too
// keep each series in order.
//
// A Dedup is owned by one goroutine; it is not safe for concurrent use.
type Dedup struct {
	failoverMs int64
	bmcs       map[string]*dedupBMC

	// Stats counts what Dedup rejected since it was made. The owning
	// goroutine may read and reset it at any time.
	Stats DedupStats
}

// DedupStats counts rejections, for the gateway's self-metrics.
type DedupStats struct {
	// NotLeader counts snapshots from a poller that is not the BMC's leader
	// while the leader is active (metric reason "not_leader").
	NotLeader uint64
	// StaleSequence counts snapshots whose poll time is not after the last
	// accepted snapshot of the same BMC and protocol: redeliveries and older
	// data (metric reason "stale_sequence").
	StaleSequence uint64
	// Failovers counts leader changes (the first leader of a BMC is not one).
	Failovers uint64
	// DroppedSamples counts samples Filter dropped because their series
	// already had a sample at the same or a later time.
	DroppedSamples uint64
}

// DedupHorizon is how long Dedup remembers a series that receives no
// samples, in the BMC's own time (the newest sample it accepted). After it,
// a sample for that series at or before the forgotten time could pass, but
// receivers reject it anyway: Prometheus' head refuses samples more than an
// hour behind its newest (out of bounds). Forgetting bounds the memory that
// label churn (firmware in bmc_info, renamed sensors) would otherwise grow.
const DedupHorizon = time.Hour

// protoSlots is the number of per-protocol slots a BMC's state keeps: one per
// v1.Protocol, the last shared by any value added later.
const protoSlots = 4

func protoSlot(p v1.Protocol) int {
	if p < 0 || p >= protoSlots {
		return protoSlots - 1
	}
	return int(p)
}

type dedupBMC struct {
	leader string
	// leaderLast is the newest poll time accepted for the BMC, from any
	// protocol: the leader's last sign of life.
	leaderLast int64
	// last is the newest poll time accepted per protocol. A BMC polled over
	// both Redfish and IPMI gets two snapshots per poll from one poller,
	// which may start in the same millisecond.
	last [protoSlots]int64

	series seriesState[int64] // series → time of its last accepted sample
	newest int64              // newest sample time accepted for the BMC
	swept  int64              // newest when the set was last swept
}

// NewDedup returns a Dedup that fails over from a BMC's leader to another
// poller once the leader has had no accepted snapshot for longer than
// failover, in poll time. Make failover comfortably longer than the poll
// interval and the pollers' clock skew (for example two to three intervals):
// a shorter one flips leaders on a late poll, and each flip can cost a poll's
// samples. A failover of zero or less accepts any snapshot newer than the
// last one, whichever poller sent it.
//
// Poll times come from the pollers' clocks, so keep them synchronised (NTP):
// a follower whose clock runs ahead of the leader's by more than failover
// takes over at once, and a leader whose clock runs ahead delays a failover
// by the difference.
func NewDedup(failover time.Duration) *Dedup {
	return &Dedup{failoverMs: max(failover.Milliseconds(), 0), bmcs: make(map[string]*dedupBMC)}
}

// Accept reports whether a snapshot should be processed. The first poller
// seen for a BMC becomes its leader and stays leader for as long as it sends
// snapshots: another poller's snapshot is rejected unless its poll time is
// more than the failover time after the newest accepted one, in which case
// that poller becomes leader. A snapshot from a poller running with
// replication factor 1 is a handover and makes its poller leader at once
// (if newer than the last accepted). A snapshot whose poll time is not after the
// last accepted one of the same BMC and protocol is rejected too
// (redelivered or older data).
func (d *Dedup) Accept(s *v1.Snapshot) bool {
	b := d.bmcs[s.BmcId]
	if b == nil {
		b = &dedupBMC{}
		d.bmcs[s.BmcId] = b
	}
	if b.leaderLast == 0 {
		b.leader = s.PollerId // the first snapshot of the BMC
	}
	failover := false
	if s.PollerId != b.leader {
		// A poller without an HA partner (replication factor 1) sending a
		// BMC another poller had is a handover — its poller left, or
		// membership moved the BMC — so it leads at once: waiting for the
		// failover time would drop every poll of the moved BMCs meanwhile.
		if s.ReplicationFactor != 1 && s.PollStartMs-b.leaderLast <= d.failoverMs {
			d.Stats.NotLeader++
			return false
		}
		failover = true
	}
	slot := protoSlot(s.Protocol)
	if s.PollStartMs <= b.last[slot] {
		d.Stats.StaleSequence++
		return false
	}
	if failover {
		b.leader = s.PollerId
		d.Stats.Failovers++
	}
	b.last[slot] = s.PollStartMs
	b.leaderLast = max(b.leaderLast, s.PollStartMs)
	return true
}

// Leader returns the poller currently accepted for a BMC.
func (d *Dedup) Leader(bmcID string) (pollerID string, ok bool) {
	b := d.bmcs[bmcID]
	if b == nil {
		return "", false
	}
	return b.leader, true
}

// Filter appends to dst the samples of one BMC whose time is after the last
// sample Filter let through for the same series, and drops (and counts) the
// others, so every series stays strictly increasing in time. Staleness
// markers are samples like the others. dst may be samples[:0]: Filter then
// works in place.
//
// Filter keeps a reference to each series (immutable once handed on, see
// series.Sample), in a slice indexed by the series' Slot for the series of
// the normaliser's table: in the steady state it does not allocate.
func (d *Dedup) Filter(dst []series.Sample, bmcID string, samples []series.Sample) []series.Sample {
	b := d.bmcs[bmcID]
	if b == nil {
		b = &dedupBMC{}
		d.bmcs[bmcID] = b
	}
	for _, smp := range samples {
		if last := b.series.find(smp.Series); last == nil {
			b.series.add(smp.Series, smp.T)
		} else {
			if smp.T <= *last {
				d.Stats.DroppedSamples++
				continue
			}
			*last = smp.T
		}
		b.newest = max(b.newest, smp.T)
		dst = append(dst, smp)
	}
	if horizon := DedupHorizon.Milliseconds(); b.newest-b.swept >= horizon {
		if b.swept != 0 {
			cut := b.newest - horizon
			b.series.each(func(_ *series.Series, last *int64) bool { return *last < cut })
		}
		b.swept = b.newest
	}
	return dst
}

// Forget drops all state of a BMC: its leader and its series. Call it when
// the BMC leaves the inventory.
func (d *Dedup) Forget(bmcID string) {
	delete(d.bmcs, bmcID)
}

// Len returns the number of BMCs and series Dedup holds state for.
func (d *Dedup) Len() (bmcs, seriesCount int) {
	for _, b := range d.bmcs {
		seriesCount += b.series.len()
	}
	return len(d.bmcs), seriesCount
}

// seriesState maps series to a value: the per-BMC state of Dedup,
// Staleness and Sources. A series made by the normaliser's series table
// (Slot >= 0) has its state in a slice indexed by Slot, checked by pointer:
// a slot holding another series (its slot was reused after the first was
// freed) is that series' state no longer, and is started afresh. A series
// made alone (Slot < 0: roll-ups, relabelled series, tests) falls back to a
// set keyed by hash and compared by labels.
type seriesState[V any] struct {
	slots []slotEntry[V] // by Series.Slot; ser nil when empty
	n     int            // entries of slots in use
	other seriesSet[V]
}

// slotChunk is how many slots seriesState grows by.
const slotChunk = 32

type slotEntry[V any] struct {
	ser *series.Series
	val V
}

// find returns the value of a series, or nil. The state keeps ser, the
// newest pointer of the series, from then on.
func (s *seriesState[V]) find(ser *series.Series) *V {
	if sl := int(ser.Slot); sl >= 0 {
		if sl >= len(s.slots) {
			return nil
		}
		e := &s.slots[sl]
		if e.ser == ser {
			return &e.val
		}
		if e.ser != nil && e.ser.Hash == ser.Hash && e.ser.Labels.Equal(ser.Labels) {
			// The same series made again (its table was rebuilt).
			e.ser = ser
			return &e.val
		}
		return nil
	}
	i := s.other.find(ser)
	if i < 0 {
		return nil
	}
	e := &s.other.entries[i]
	e.ser = ser
	return &e.val
}

// add sets the value of a series find did not find, replacing whatever
// state its slot held, and returns it.
func (s *seriesState[V]) add(ser *series.Series, v V) *V {
	sl := int(ser.Slot)
	if sl < 0 {
		i := s.other.add(ser, v)
		return &s.other.entries[i].val
	}
	if sl >= len(s.slots) {
		if sl < cap(s.slots) {
			s.slots = s.slots[:sl+1]
		} else {
			// Grown by a little at a time, not doubled: a BMC's
			// table is made once and then stays, and slack would
			// be kept for as long as the BMC is.
			grown := make([]slotEntry[V], sl+1, sl+1+slotChunk)
			copy(grown, s.slots)
			s.slots = grown
		}
	}
	e := &s.slots[sl]
	if e.ser == nil {
		s.n++
	}
	*e = slotEntry[V]{ser: ser, val: v}
	return &e.val
}

// len returns the number of series.
func (s *seriesState[V]) len() int { return s.n + len(s.other.entries) }

// each calls f with every series and its value, slots first, and removes
// those for which f returns true.
func (s *seriesState[V]) each(f func(ser *series.Series, v *V) (remove bool)) {
	for i := range s.slots {
		e := &s.slots[i]
		if e.ser == nil {
			continue
		}
		if f(e.ser, &e.val) {
			*e = slotEntry[V]{}
			s.n--
		}
	}
	// Trailing empty slots are given back, so the slice follows the table.
	n := len(s.slots)
	for n > 0 && s.slots[n-1].ser == nil {
		n--
	}
	switch {
	case n == 0:
		s.slots = nil
	case cap(s.slots)-n > slotChunk:
		s.slots = slices.Clone(s.slots[:n])
	default:
		s.slots = s.slots[:n]
	}
	for i := len(s.other.entries) - 1; i >= 0; i-- {
		e := &s.other.entries[i]
		if f(e.ser, &e.val) {
			s.other.remove(i)
		}
	}
}

// seriesSet maps series (by hash, collision-safe on labels) to a value: the
// fallback of seriesState for series made alone. The map holds no pointers,
// so the garbage collector does not scan it; entries are a dense slice,
// reused across polls, with removal by swapping in the last entry.
type seriesSet[V any] struct {
	index   map[uint64]int32 // hash → first entry with that hash; nil until used
	entries []seriesEntry[V]
}

type seriesEntry[V any] struct {
	ser *series.Series
	// next is the next entry with the same hash, or -1. Two label sets with
	// one 64-bit hash are rare enough that a chain through the slice costs
	// nothing in the common case.
	next int32
	val  V
}

// find returns the index of the entry for a series, or -1.
func (s *seriesSet[V]) find(ser *series.Series) int {
	i, ok := s.index[ser.Hash]
	if !ok {
		return -1
	}
	for i >= 0 {
		if e := s.entries[i].ser; e == ser || e.Labels.Equal(ser.Labels) {
			return int(i)
		}
		i = s.entries[i].next
	}
	return -1
}

// add adds a series that find did not find and returns its index.
func (s *seriesSet[V]) add(ser *series.Series, v V) int {
	if s.index == nil {
		s.index = make(map[uint64]int32)
	}
	next := int32(-1)
	if head, ok := s.index[ser.Hash]; ok {
		next = head
	}
	i := int32(len(s.entries))
	s.entries = append(s.entries, seriesEntry[V]{ser: ser, next: next, val: v})
	s.index[ser.Hash] = i
	return int(i)
}

// remove removes entry i, moving the last entry into its place. Iterating
// from the end while removing visits every entry once.
func (s *seriesSet[V]) remove(i int) {
	s.unlink(i)
	last := len(s.entries) - 1
	if i != last {
		// Point whatever referred to last at i.
		m := &s.entries[last]
		if head := s.index[m.ser.Hash]; int(head) == last {
			s.index[m.ser.Hash] = int32(i)
		} else {
			j := head
			for int(s.entries[j].next) != last {
				j = s.entries[j].next
			}
			s.entries[j].next = int32(i)
		}
		s.entries[i] = *m
	}
	s.entries[last] = seriesEntry[V]{} // drop the series reference
	s.entries = s.entries[:last]
}

// unlink takes entry i out of its hash chain.
func (s *seriesSet[V]) unlink(i int) {
	e := &s.entries[i]
	h := e.ser.Hash
	head := s.index[h]
	if int(head) == i {
		if e.next < 0 {
			delete(s.index, h)
		} else {
			s.index[h] = e.next
		}
		return
	}
	j := head
	for int(s.entries[j].next) != i {
		j = s.entries[j].next
	}
	s.entries[j].next = e.next
}
