package reliability

import (
	"context"
	"fmt"
	"hash/fnv"
	"math"
	"regexp"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/stretchr/testify/require"

	"github.com/bmcstream/bmcstream/internal/testbed"
	"github.com/bmcstream/bmcstream/pkg/bus"
	"github.com/bmcstream/bmcstream/pkg/inventory"
	"github.com/bmcstream/bmcstream/pkg/pipeline"
	v1 "github.com/bmcstream/bmcstream/proto/bmcstream/v1"
)

// sampleKey is one sample's identity: its series and its time.
type sampleKey struct {
	series uint64
	t      int64
}

// poll is one published snapshot, as the accounting needs it.
type poll struct {
	t      int64 // poll start, Unix ms
	end    int64 // poll end, Unix ms
	poller string
	up     bool
	class  string
}

// published is what the pollers put on the stream, turned into the samples
// the gateway must write: the expected side of the accounting.
type published struct {
	snapshots int
	overlaps  int // snapshots not newer than their BMC's previous one
	perPoller map[string]int
	polls     map[string][]poll                // BMC → its snapshots in stream order
	want      map[string]map[sampleKey]float64 // BMC → expected samples
	names     map[uint64]string                // series → its labels, for reports
	classes   map[string]map[string]int        // error class → BMC → snapshots
	seqs      map[string]map[uint64]bool       // poller and BMC → sequences seen
}

// missingSequences counts the snapshots that never reached the stream: each
// poller numbers a BMC's polls 1, 2, 3… for the life of its process, so a
// gap in the numbers is a snapshot lost before JetStream stored it.
func (p *published) missingSequences() int {
	missing := 0
	for _, seen := range p.seqs {
		var hi uint64
		for s := range seen {
			hi = max(hi, s)
		}
		missing += int(hi) - len(seen)
	}
	return missing
}

// readPublished reads every snapshot the stream holds, in stream order (the
// order each sink's consumer sees), and normalises each with the gateway's
// built-in rules and the inventory's labels. Rack roll-ups and staleness
// markers are the gateway's own and are not expected here.
func readPublished(t *testing.T, b *bed) *published {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	js := b.js()
	stream, err := js.Stream(ctx, bus.DefaultStreamConfig.Name)
	require.NoError(t, err)
	info, err := stream.Info(ctx)
	require.NoError(t, err)
	last := info.State.LastSeq
	cons, err := stream.OrderedConsumer(ctx, jetstream.OrderedConsumerConfig{DeliverPolicy: jetstream.DeliverAllPolicy})
	require.NoError(t, err)

	inv, err := inventory.Load(b.sim.InvFile)
	require.NoError(t, err)
	norm, err := pipeline.NewNormaliser(pipeline.NormaliserOptions{})
	require.NoError(t, err)
	p := &published{
		perPoller: map[string]int{},
		polls:     map[string][]poll{},
		want:      map[string]map[sampleKey]float64{},
		names:     map[uint64]string{},
		classes:   map[string]map[string]int{},
		seqs:      map[string]map[uint64]bool{},
	}
	var snap v1.Snapshot
	var seq uint64
	lastAccepted := map[string]int64{}
	for seq < last {
		batch, err := cons.Fetch(1000, jetstream.FetchMaxWait(2*time.Second))
		require.NoError(t, err)
		n := 0
		for m := range batch.Messages() {
			n++
			md, err := m.Metadata()
			require.NoError(t, err)
			seq = md.Sequence.Stream
			require.NoError(t, pipeline.Decode(m.Data(), &snap), "stream message %d", seq)
			p.snapshots++
			pk := snap.PollerId + "/" + snap.BmcId
			if p.seqs[pk] == nil {
				p.seqs[pk] = map[uint64]bool{}
			}
			p.seqs[pk][snap.Sequence] = true
			// The gateway writes a BMC's poll only if it is newer than
			// the last one it wrote for that protocol: two pollers
			// overlapping during a handover poll at the same instant
			// (schedules are per BMC), and the first in the stream wins.
			lk := fmt.Sprintf("%s/%d", snap.BmcId, snap.Protocol)
			if snap.PollStartMs <= lastAccepted[lk] {
				p.overlaps++
				continue
			}
			lastAccepted[lk] = snap.PollStartMs
			p.perPoller[snap.PollerId]++
			p.polls[snap.BmcId] = append(p.polls[snap.BmcId], poll{t: snap.PollStartMs, end: snap.PollEndMs, poller: snap.PollerId, up: snap.Up, class: snap.ErrorClass})
			if snap.ErrorClass != "" {
				if p.classes[snap.ErrorClass] == nil {
					p.classes[snap.ErrorClass] = map[string]int{}
				}
				p.classes[snap.ErrorClass][snap.BmcId]++
			}
			base, _ := pipeline.BaseLabels(inv, snap.BmcId)
			var st pipeline.Stats
			want := p.want[snap.BmcId]
			if want == nil {
				want = map[sampleKey]float64{}
				p.want[snap.BmcId] = want
			}
			for _, s := range norm.Normalise(nil, &snap, base, &st) {
				ls := make(map[string]string, s.Series.Labels.Len())
				s.Series.Labels.Range(func(n, v string) { ls[n] = v })
				h := labelHash(ls)
				if _, ok := p.names[h]; !ok {
					p.names[h] = describe(ls)
				}
				want[sampleKey{h, s.T}] = s.V
			}
		}
		require.NoError(t, batch.Error())
		require.NotZero(t, n, "stream read stalled at %d of %d", seq, last)
	}
	return p
}

// bmcs returns the BMC ids that published, sorted.
func (p *published) bmcs() []string {
	ids := make([]string, 0, len(p.polls))
	for id := range p.polls {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	return ids
}

// tally is one sink's accounting.
type tally struct {
	Sink     string
	Expected int // samples the pollers' snapshots make
	Lost     int // expected and not stored
	// Duplicated counts series timestamps holding two different values.
	Duplicated int
	// Resent counts extra identical copies of a stored sample (a batch
	// written twice after a crash; harmless, VictoriaMetrics shows them).
	Resent int
	// Spurious counts stored samples no snapshot made.
	Spurious int
	// Late counts expected samples that became queryable more than
	// lateAfter after their poll, among the BMCs and times a scenario
	// expects on time (-1: not measured).
	Late     int
	Polls    int // polls the lateness was measured over
	Examples []string
	lost     map[sampleKey]bool
}

func (tl tally) String() string {
	late := "n/a"
	if tl.Late >= 0 {
		late = fmt.Sprint(tl.Late)
	}
	return fmt.Sprintf("%s: expected %d, lost %d, duplicated %d, late %s (resent %d, spurious %d)",
		tl.Sink, tl.Expected, tl.Lost, tl.Duplicated, late, tl.Resent, tl.Spurious)
}

// account compares what a sink stores for the BMCs in ids against what
// they published, between from and to.
func account(t *testing.T, p *published, sink string, r *testbed.Receiver, ids []string, from, to time.Time) tally {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	tl := tally{Sink: sink, Late: -1, lost: map[sampleKey]bool{}}
	const chunk = 50
	for lo := 0; lo < len(ids); lo += chunk {
		part := ids[lo:min(lo+chunk, len(ids))]
		quoted := make([]string, len(part))
		for i, id := range part {
			quoted[i] = regexp.QuoteMeta(id)
		}
		sel := fmt.Sprintf(`{__name__=~"bmc_.+",__name__!~"bmc_rack_.+",bmc=~"%s"}`, strings.Join(quoted, "|"))
		got, err := r.Stored(ctx, sel, from, to)
		require.NoError(t, err)
		stored := map[string]map[sampleKey][]float64{}
		for _, s := range got {
			h := labelHash(s.Labels)
			id := s.Labels["bmc"]
			if stored[id] == nil {
				stored[id] = map[sampleKey][]float64{}
			}
			for _, pt := range s.Samples {
				if math.IsNaN(pt.V) {
					continue // a staleness marker
				}
				k := sampleKey{h, pt.T}
				stored[id][k] = append(stored[id][k], pt.V)
			}
		}
		for _, id := range part {
			want := p.want[id]
			have := stored[id]
			for k, v := range want {
				if k.t < from.UnixMilli() || k.t > to.UnixMilli() {
					continue
				}
				tl.Expected++
				vs, ok := have[k]
				if !ok {
					tl.Lost++
					tl.lost[k] = true
					if len(tl.Examples) < 3 {
						tl.Examples = append(tl.Examples, fmt.Sprintf("lost %s @%s", p.names[k.series], time.UnixMilli(k.t).Format("15:04:05.000")))
					}
					continue
				}
				if !sameValue(vs[0], v) && len(tl.Examples) < 5 {
					tl.Examples = append(tl.Examples, fmt.Sprintf("%s @%d: stored %v, published %v", p.names[k.series], k.t, vs[0], v))
				}
			}
			for k, vs := range have {
				if _, ok := want[k]; !ok {
					tl.Spurious++
				}
				for _, v := range vs[1:] {
					if sameValue(v, vs[0]) {
						tl.Resent++
					} else {
						tl.Duplicated++
					}
				}
			}
		}
	}
	if tl.Lost > 0 {
		// Whole polls or scattered samples? Group the losses by poll.
		perPoll := map[string]int{}
		for k := range tl.lost {
			for id, want := range p.want {
				if _, ok := want[k]; ok {
					perPoll[fmt.Sprintf("%s@%s", id, time.UnixMilli(k.t).Format("15:04:05.000"))]++
					break
				}
			}
		}
		keys := make([]string, 0, len(perPoll))
		for k := range perPoll {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for i, k := range keys {
			if i == 10 {
				tl.Examples = append(tl.Examples, fmt.Sprintf("… %d polls in all", len(keys)))
				break
			}
			tl.Examples = append(tl.Examples, fmt.Sprintf("lost %d samples of poll %s", perPoll[k], k))
		}
	}
	return tl
}

func sameValue(a, b float64) bool { return a == b || math.IsNaN(a) && math.IsNaN(b) }

// labelHash identifies a series by its label set, whoever answered it.
func labelHash(ls map[string]string) uint64 {
	keys := make([]string, 0, len(ls))
	for k := range ls {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	h := fnv.New64a()
	for _, k := range keys {
		_, _ = h.Write([]byte(k))
		_, _ = h.Write([]byte{0xff})
		_, _ = h.Write([]byte(ls[k]))
		_, _ = h.Write([]byte{0xfe})
	}
	return h.Sum64()
}

func describe(ls map[string]string) string {
	keys := make([]string, 0, len(ls))
	for k := range ls {
		if k != "__name__" {
			keys = append(keys, k)
		}
	}
	sort.Strings(keys)
	var b strings.Builder
	b.WriteString(ls["__name__"])
	b.WriteByte('{')
	for i, k := range keys {
		if i > 0 {
			b.WriteByte(',')
		}
		fmt.Fprintf(&b, "%s=%q", k, ls[k])
	}
	b.WriteByte('}')
	return b.String()
}

// arrivals records when each BMC's poll first became queryable in each
// sink, by watching bmc_up (one sample per snapshot) once a second.
type arrivals struct {
	t     *testing.T
	mu    sync.Mutex
	first map[string]map[string]map[int64]time.Time // sink → BMC → poll time → first seen
	done  chan struct{}
	wg    sync.WaitGroup
}

func watchArrivals(t *testing.T, b *bed) *arrivals {
	a := &arrivals{t: t, first: map[string]map[string]map[int64]time.Time{}, done: make(chan struct{})}
	// Long enough to see a backlog's oldest polls arrive after an outage.
	window := 3*b.sc.Interval + b.sc.Outage + b.sc.Run + 2*time.Minute
	for name, r := range b.sinks {
		a.first[name] = map[string]map[int64]time.Time{}
		a.wg.Add(1)
		go func() {
			defer a.wg.Done()
			tick := time.NewTicker(time.Second)
			defer tick.Stop()
			for {
				select {
				case <-a.done:
					return
				case <-tick.C:
				}
				ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
				// VictoriaMetrics makes rows searchable in batches of
				// seconds; flushing measures our delivery, not its buffer.
				_ = r.Flush(ctx)
				got, err := r.RawSamples(ctx, "bmc_up", window, time.Time{})
				cancel()
				if err != nil {
					continue // the sink is down: nothing arrives
				}
				now := time.Now()
				a.mu.Lock()
				for _, s := range got {
					id := s.Labels["bmc"]
					m := a.first[name][id]
					if m == nil {
						m = map[int64]time.Time{}
						a.first[name][id] = m
					}
					for _, pt := range s.Samples {
						if _, ok := m[pt.T]; !ok {
							m[pt.T] = now
						}
					}
				}
				a.mu.Unlock()
			}
		}()
	}
	t.Cleanup(a.stop)
	return a
}

func (a *arrivals) stop() {
	select {
	case <-a.done:
	default:
		close(a.done)
	}
	a.wg.Wait()
}

// lateAfter is the delivery delay (from the end of the poll) past which a
// poll counts as late: a 500 ms batch deadline, the receiver's ingestion and the one-second
// watch fit well inside it. The short form runs beside other test packages
// on small CI machines, where a busy second or two is the machine, not
// bmcstream: it allows 10 s.
var lateAfter = func() time.Duration {
	if currentScale().Name == "short" {
		return 10 * time.Second
	}
	return 5 * time.Second
}()

// lateness counts the polls of ids with poll times in [from, to) that a
// sink made queryable more than lateAfter after the poll (or never), and
// returns the count with the median and highest delay seen.
func (a *arrivals) lateness(p *published, sink string, ids []string, from, to time.Time) (late, total int, p50, worst time.Duration) {
	a.mu.Lock()
	defer a.mu.Unlock()
	var delays []time.Duration
	var examples []string
	defer func() {
		if len(examples) > 0 && a.t != nil {
			a.t.Logf("late in %s: %s", sink, strings.Join(examples, "; "))
		}
	}()
	for _, id := range ids {
		for _, pl := range p.polls[id] {
			if pl.t < from.UnixMilli() || pl.t >= to.UnixMilli() {
				continue
			}
			total++
			seen, ok := a.first[sink][id][pl.t]
			if !ok {
				late++
				if len(examples) < 5 {
					examples = append(examples, fmt.Sprintf("%s@%s never seen", id, time.UnixMilli(pl.t).Format("15:04:05.000")))
				}
				continue
			}
			// From the end of the poll: how long the BMC took to answer
			// is the BMC's; what follows is bmcstream's.
			d := seen.Sub(time.UnixMilli(pl.end))
			delays = append(delays, d)
			if d > lateAfter {
				late++
				if len(examples) < 5 {
					examples = append(examples, fmt.Sprintf("%s@%s after %s", id, time.UnixMilli(pl.t).Format("15:04:05.000"), d.Round(time.Millisecond)))
				}
			}
		}
	}
	if len(delays) > 0 {
		sort.Slice(delays, func(i, j int) bool { return delays[i] < delays[j] })
		p50, worst = delays[len(delays)/2], delays[len(delays)-1]
	}
	return late, total, p50, worst
}

// polled tells whether each of ids has at least n polls made at since or
// later queryable in sink.
func (a *arrivals) polled(sink string, ids []string, since time.Time, n int) bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	from := since.UnixMilli()
	for _, id := range ids {
		got := 0
		for pt := range a.first[sink][id] {
			if pt >= from {
				got++
			}
		}
		if got < n {
			return false
		}
	}
	return true
}

// caughtUp returns how long after since every BMC's first poll that ended
// after since became queryable in sink: the time a backlog took to drain.
// It is 0 if some BMC's never did.
func (a *arrivals) caughtUp(p *published, sink string, since time.Time) time.Duration {
	a.mu.Lock()
	defer a.mu.Unlock()
	var worst time.Duration
	for id, polls := range p.polls {
		found := false
		for _, pl := range polls {
			if pl.end < since.UnixMilli() {
				continue
			}
			seen, ok := a.first[sink][id][pl.t]
			if !ok {
				return 0
			}
			worst = max(worst, seen.Sub(since))
			found = true
			break
		}
		if !found {
			return 0
		}
	}
	return worst
}
