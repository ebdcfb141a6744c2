package pipeline

import (
	"math"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"unicode/utf8"

	"github.com/prometheus/prometheus/prompb"

	"github.com/bmcstream/bmcstream/pkg/series"
	v1 "github.com/bmcstream/bmcstream/proto/bmcstream/v1"
)

// bmcState is what a Normaliser keeps of one BMC: its plans, one per
// protocol, and its series table, which the plans of both protocols share.
type bmcState struct {
	// plans are the current plans by protoSlot. They are read without mu
	// (a plan is immutable) and replaced under it.
	plans [protoSlots]atomic.Pointer[plan]
	// sweepAt is the BMC poll time at which an idle series of the table is
	// due to be freed, math.MaxInt64 when none is idle. Read without mu.
	sweepAt atomic.Int64

	mu    sync.Mutex // guards table and the building of plans
	table seriesTable
}

func newBMCState() *bmcState {
	st := &bmcState{}
	st.sweepAt.Store(math.MaxInt64)
	return st
}

// seriesTable is one BMC's series: each series its plans feed, made once,
// when a plan first meets it, and handed out as the same *series.Series
// from then on, whichever protocol's plan feeds it. A series' Slot is its
// index in entries, so the stages after the normaliser keep per-series
// state in slices indexed by Slot rather than in sets keyed by labels.
//
// A series no current plan of the BMC references (its sensor was renamed,
// an inventory label changed, a protocol's plan was rebuilt without it) is
// idle; it is freed DedupHorizon after it became idle, in the BMC's own
// poll time, and its slot may be reused by a later series. Until then a
// plan meeting its labels again gets it back, so a sensor that flaps in
// and out of the snapshots keeps its series. The table's memory is thus
// bounded by the series the BMC has plus those it churned within the last
// horizon.
type seriesTable struct {
	base *series.Base     // the BMC's base labels, shared by its series
	sers []*series.Series // by Slot; nil when free
	// plans has, by slot, bit protoSlot(p) set while protocol p's current
	// plan references the series.
	plans []uint8
	// idle holds the slots no plan references, with the poll time each
	// became idle. It is empty unless labels churned.
	idle   map[int32]int64
	free   []int32 // free slots
	newest int64   // newest poll time seen
}

// live returns the number of series in the table.
func (t *seriesTable) live() int { return len(t.sers) - len(t.free) }

// sweep frees the series idle for DedupHorizon at poll time now and
// returns when the next idle series will be due (math.MaxInt64: none).
func (t *seriesTable) sweep(now int64) int64 {
	horizon := DedupHorizon.Milliseconds()
	next := int64(math.MaxInt64)
	for slot, since := range t.idle {
		if now-since >= horizon {
			t.sers[slot] = nil
			t.free = append(t.free, slot)
			delete(t.idle, slot)
			continue
		}
		next = min(next, since+horizon)
	}
	// Free slots at the end shrink the table instead.
	n := len(t.sers)
	for n > 0 && t.sers[n-1] == nil {
		n--
	}
	if n < len(t.sers) {
		t.sers, t.plans = t.sers[:n], t.plans[:n]
		t.free = slices.DeleteFunc(t.free, func(s int32) bool { return int(s) >= n })
	}
	if len(t.idle) == 0 {
		t.idle = nil
	}
	// Lowest slot reused first, whatever order the idle map gave.
	slices.SortFunc(t.free, func(a, b int32) int { return int(b) - int(a) })
	return next
}

// planScratch is what building a plan needs and does not keep: a temporary
// index of the table's series by hash, the series made, and label buffers.
// Normalisers pool them; a plan never holds one.
type planScratch struct {
	index map[uint64]int32 // series hash → first slot with it
	next  []int32          // by slot: the next slot with the same hash, or -1
	prior []uint8          // by slot: plans bits before the build
	pend  []int32          // by slot: index in made of a series made by this build, or -1
	made  []series.Series  // the series this build made, moved to one slab by end
	fix   []fixup          // the outputs of made series
	base  []prompb.Label   // the base labels, sorted, empty values left out
	own   []prompb.Label
	all   []prompb.Label
	seen  map[seenKey]bool
}

type fixup struct {
	out  *outSeries
	made int32
}

var scratchPool = sync.Pool{New: func() any {
	return &planScratch{index: make(map[uint64]int32), seen: make(map[seenKey]bool)}
}}

func (sc *planScratch) release() {
	clear(sc.index)
	clear(sc.seen)
	clear(sc.made)
	clear(sc.fix)
	sc.next, sc.prior, sc.pend, sc.made, sc.fix = sc.next[:0], sc.prior[:0], sc.pend[:0], sc.made[:0], sc.fix[:0]
	clear(sc.base[:cap(sc.base)])
	clear(sc.own[:cap(sc.own)])
	clear(sc.all[:cap(sc.all)])
	sc.base, sc.own, sc.all = sc.base[:0], sc.own[:0], sc.all[:0]
	scratchPool.Put(sc)
}

// labelBuilder makes the series of one plan in a series table: for each
// label set it merges the series' own labels with the BMC's base labels
// (both sorted, no sort of the whole), hashes the result, and looks it up
// among the table's series; only a series the table lacks is made, with
// series.MakeSorted, so its own labels are interned across BMCs and its
// base is the table's. The series a build makes are moved into one slab
// when it ends.
type labelBuilder struct {
	t   *seriesTable
	bit uint8 // the protocol's bit in plans
	sc  *planScratch
}

// begin starts building a plan of protocol slot slot in t over base labels
// base at poll time now.
func (t *seriesTable) begin(slot int, base []prompb.Label, now int64) *labelBuilder {
	sc := scratchPool.Get().(*planScratch)
	b := &labelBuilder{t: t, bit: 1 << slot, sc: sc}
	t.newest = max(t.newest, now)
	// The base, as the merge reads it: sorted, no empty values.
	for _, l := range base {
		if l.Value != "" {
			sc.base = append(sc.base, l)
		}
	}
	if !slices.IsSortedFunc(sc.base, cmpLabel) {
		slices.SortStableFunc(sc.base, cmpLabel)
	}
	sc.base = slices.CompactFunc(sc.base, func(a, b prompb.Label) bool { return a.Name == b.Name })
	if t.base == nil || !t.base.Labels().EqualProm(sc.base) {
		// New or changed inventory labels: the series of the old base
		// no longer match any plan's labels and go idle.
		t.base = series.NewBase(sc.base)
	}
	for i, ser := range t.sers {
		sc.prior = append(sc.prior, t.plans[i])
		sc.next = append(sc.next, -1)
		sc.pend = append(sc.pend, -1)
		t.plans[i] &^= b.bit
		if ser == nil {
			continue
		}
		if head, ok := sc.index[ser.Hash]; ok {
			sc.next[i] = head
		}
		sc.index[ser.Hash] = int32(i)
	}
	return b
}

// end finishes the plan: the series it made move to one slab, and the
// series no plan references any more become idle now. It returns when the
// next idle series is due.
func (b *labelBuilder) end() int64 {
	t, sc := b.t, b.sc
	if len(sc.made) > 0 {
		slab := slices.Clone(sc.made)
		for k := range slab {
			t.sers[slab[k].Slot] = &slab[k]
		}
		for _, f := range sc.fix {
			f.out.ser = &slab[f.made]
		}
	}
	for i, ser := range t.sers {
		if ser == nil {
			continue
		}
		if t.plans[i] != 0 {
			delete(t.idle, int32(i))
		} else if i >= len(sc.prior) || sc.prior[i] != 0 {
			if t.idle == nil {
				t.idle = make(map[int32]int64)
			}
			t.idle[int32(i)] = t.newest
		}
	}
	if cap(t.sers) > len(t.sers)+len(t.sers)/8 {
		// The table is made in one go and then stays: no slack.
		t.sers, t.plans = slices.Clip(slices.Clone(t.sers)), slices.Clip(slices.Clone(t.plans))
	}
	b.sc = nil
	sc.release()
	return t.sweep(t.newest)
}

func cmpLabel(a, b prompb.Label) int { return strings.Compare(a.Name, b.Name) }

// series sets out to the series of metric name with extra name/value
// pairs over the base labels. Extra labels win over base labels of the
// same name (an extra with an empty value removes the base label); empty
// values are left out, as Prometheus does.
func (b *labelBuilder) series(out *outSeries, name string, extra ...string) {
	sc := b.sc
	own := append(sc.own[:0], prompb.Label{Name: "__name__", Value: name})
	removes := false
	for i := 0; i+1 < len(extra); i += 2 {
		v := extra[i+1]
		if v == "" {
			if _, ok := slices.BinarySearchFunc(sc.base, extra[i], func(l prompb.Label, n string) int { return strings.Compare(l.Name, n) }); ok {
				removes = true
			}
			continue
		}
		if !utf8.ValidString(v) {
			// A BMC's Latin-1 sensor name would make receivers reject
			// the whole write request.
			v = strings.ToValidUTF8(v, "\uFFFD")
		}
		own = append(own, prompb.Label{Name: extra[i], Value: v})
	}
	// A handful of labels: insertion sort.
	for i := 1; i < len(own); i++ {
		for j := i; j > 0 && own[j].Name < own[j-1].Name; j-- {
			own[j], own[j-1] = own[j-1], own[j]
		}
	}
	// Merge with the base: the whole set, sorted, to hash and compare.
	all := sc.all[:0]
	i := 0
	for _, l := range sc.base {
		if overridden(extra, l.Name) {
			continue
		}
		for i < len(own) && own[i].Name < l.Name {
			all = append(all, own[i])
			i++
		}
		all = append(all, l)
	}
	all = append(all, own[i:]...)
	sc.own, sc.all = own, all
	h := series.Hash(all)

	t := b.t
	if head, ok := sc.index[h]; ok {
		for j := head; j >= 0; j = sc.next[j] {
			if ser := t.sers[j]; ser != nil && ser.Labels.EqualProm(all) {
				t.plans[j] |= b.bit
				out.ser = ser
				return
			}
			if k := sc.pend[j]; k >= 0 && sc.made[k].Labels.EqualProm(all) {
				sc.fix = append(sc.fix, fixup{out: out, made: k})
				return
			}
		}
	}
	var ls series.Labels
	if removes {
		ls = series.MakeSorted(all, nil) // a base label removed: stored whole
	} else {
		ls = series.MakeSorted(own, t.base)
	}
	b.make(out, ls, h)
}

// instantiate makes a plan of shape shape from template tp, a plan of
// another BMC of the same model: the same decisions, each series the
// template's own labels over this table's base. It returns nil when the
// template's base has other label names.
//
// bmc_info, whose labels are the snapshot's identity (model, serial,
// firmware), is made from s.
func (b *labelBuilder) instantiate(tp *plan, shape uint64, s *v1.Snapshot) *plan {
	if _, ok := tp.base.Labels().Rebase(b.t.base); !ok {
		return nil
	}
	p := *tp
	p.shape, p.base = shape, b.t.base
	p.outs = slices.Clone(tp.outs)
	p.faults = slices.Clone(tp.faults)
	p.info = outSeries{}
	p.eachOut(func(o *outSeries) {
		if o.ser != nil {
			ls, _ := o.ser.Labels.Rebase(b.t.base) // rebaseable: checked when stored
			b.adopt(o, ls)
		}
	})
	b.infoSeries(&p, s)
	return &p
}

// adopt sets out to the table's series of labels ls, made if new.
func (b *labelBuilder) adopt(out *outSeries, ls series.Labels) {
	sc, t := b.sc, b.t
	h := ls.Hash()
	if head, ok := sc.index[h]; ok {
		for j := head; j >= 0; j = sc.next[j] {
			if ser := t.sers[j]; ser != nil && ser.Labels.Equal(ls) {
				t.plans[j] |= b.bit
				out.ser = ser
				return
			}
			if k := sc.pend[j]; k >= 0 && sc.made[k].Labels.Equal(ls) {
				sc.fix = append(sc.fix, fixup{out: out, made: k})
				return
			}
		}
	}
	b.make(out, ls, h)
}

// make adds a series of labels ls and hash h to the table, for out.
func (b *labelBuilder) make(out *outSeries, ls series.Labels, h uint64) {
	sc, t := b.sc, b.t
	var slot int32
	if n := len(t.free); n > 0 {
		slot = t.free[n-1]
		t.free = t.free[:n-1]
	} else {
		slot = int32(len(t.sers))
		t.sers = append(t.sers, nil)
		t.plans = append(t.plans, 0)
		sc.next = append(sc.next, -1)
		sc.pend = append(sc.pend, -1)
	}
	t.plans[slot] = b.bit
	k := int32(len(sc.made))
	sc.made = append(sc.made, series.Series{Labels: ls, Hash: h, Slot: slot})
	sc.fix = append(sc.fix, fixup{out: out, made: k})
	sc.pend[slot] = k
	sc.next[slot] = -1
	if head, ok := sc.index[h]; ok {
		sc.next[slot] = head
	}
	sc.index[h] = slot
}

func overridden(extra []string, name string) bool {
	for i := 0; i < len(extra); i += 2 {
		if extra[i] == name {
			return true
		}
	}
	return false
}

// nameInfo is what a plan derives from a sensor name alone: its canonical
// name, words, slugs and the place its words name. Fleets repeat names
// (every BMC of a model has the same sensors), so a ruleSet remembers them
// instead of running the name patterns again for each BMC.
type nameInfo struct {
	canon, words, slug, full string
	place                    placeRef
}

// nameMemo is a ruleSet's memory of nameInfo by name, bounded: it starts
// afresh once it holds maxNameMemo names, so names that churn do not pin
// memory.
type nameMemo struct {
	mu sync.RWMutex
	m  map[string]*nameInfo
}

const maxNameMemo = 1 << 15

func (rs *ruleSet) nameInfo(name string) *nameInfo {
	rs.memo.mu.RLock()
	ni := rs.memo.m[name]
	rs.memo.mu.RUnlock()
	if ni != nil {
		return ni
	}
	// Everything derived may share name's bytes, and name may alias a
	// message (Decode): derive from a copy, which the memo keeps.
	name = strings.Clone(name)
	canon := rs.canonicalName(name)
	ni = &nameInfo{canon: canon, words: words(canon), slug: slug(canon), full: slug(rs.stripPrefixes(strings.TrimSpace(name)))}
	ni.place = rs.namePlace(ni.words)
	rs.memo.mu.Lock()
	if rs.memo.m == nil || len(rs.memo.m) >= maxNameMemo {
		rs.memo.m = make(map[string]*nameInfo)
	}
	rs.memo.m[name] = ni
	rs.memo.mu.Unlock()
	return ni
}
