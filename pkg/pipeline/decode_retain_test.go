package pipeline

import (
	"context"
	"encoding/json"
	"fmt"
	"runtime"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/bmcstream/bmcstream/internal/testbed"
	v1 "github.com/bmcstream/bmcstream/proto/bmcstream/v1"
)

// stagesRun is every stage the gateway runs on a snapshot, with the state
// they keep between snapshots.
type stagesRun struct {
	norm   *Normaliser
	src    *Sources
	stale  *Staleness
	dedup  *Dedup
	events *Events
	rollup *Rollup
	out    []string
}

func newStagesRun(t *testing.T) *stagesRun {
	n, err := NewNormaliser(NormaliserOptions{})
	require.NoError(t, err)
	ev := NewEvents()
	ev.Normaliser = n
	return &stagesRun{norm: n, src: NewSources(), stale: NewStaleness(), dedup: NewDedup(time.Minute), events: ev, rollup: NewRollup(RollupOptions{})}
}

func (r *stagesRun) handle(t *testing.T, s *v1.Snapshot) {
	if !r.dedup.Accept(s) {
		r.out = append(r.out, "refused")
		return
	}
	var st Stats
	ss := r.norm.Normalise(nil, s, simBase(s.BmcId), &st)
	fed, _ := r.src.Split(s, v1.Protocol_PROTOCOL_REDFISH, ss)
	r.rollup.Observe(ss[:fed])
	n0 := len(ss)
	ss = r.stale.Observe(ss, s, ss)
	ss = append(ss[:fed], ss[n0:]...)
	ss = r.dedup.Filter(ss[:0], s.BmcId, ss)
	for _, smp := range ss {
		r.out = append(r.out, fmt.Sprintf("%s %d %v", smp.Series.Labels, smp.T, smp.V))
	}
	for _, e := range r.events.Observe(nil, s, map[string]string{"rack": "r01", "site": "lab"}) {
		b, err := json.Marshal(e)
		require.NoError(t, err)
		r.out = append(r.out, string(b))
	}
	r.out = append(r.out, fmt.Sprint(st))
	for _, smp := range r.rollup.Emit(nil, s.PollStartMs) {
		r.out = append(r.out, fmt.Sprintf("%s %d %v", smp.Series.Labels, smp.T, smp.V))
	}
}

// TestDecodedStringsNotRetained holds every stage to Decode's contract: a
// reading's strings alias the message, so no stage may keep one. Each
// message is overwritten once handled; a stage that kept a string would
// then see garbage and write something else than a run on copied strings,
// and a message still referenced would never be collected.
func TestDecodedStringsNotRetained(t *testing.T) {
	var polls []*v1.Snapshot
	for _, name := range sortedKeys(simPersonalities(t)) {
		sp := pollSim(t, name)
		polls = append(polls, sp.redfish, sp.ipmi)
	}
	copied, aliased := newStagesRun(t), newStagesRun(t)
	var collected atomic.Int64
	made := 0
	var dec v1.Snapshot
	for poll := range 4 {
		for _, tmpl := range polls {
			s := *tmpl
			s.Readings = append([]v1.Reading(nil), tmpl.Readings...)
			s.PollStartMs += int64(poll) * 30_000
			s.PollEndMs += int64(poll) * 30_000
			for i := range s.Readings {
				s.Readings[i].Value += float64(poll % 2) // values move, as polls do
				if poll == 2 && i == 0 {
					s.Readings[i].Name += " renamed" // a sensor renamed: new series, plan rebuilt
				}
			}
			data, err := s.Marshal()
			require.NoError(t, err)

			var ref v1.Snapshot
			require.NoError(t, ref.Unmarshal(data))
			copied.handle(t, &ref)

			buf := append(make([]byte, 0, len(data)), data...)
			made++
			runtime.AddCleanup(&buf[0], func(*atomic.Int64) { collected.Add(1) }, &collected)
			require.NoError(t, Decode(buf, &dec))
			aliased.handle(t, &dec)
			for i := range buf {
				buf[i] = 'x'
			}
		}
	}
	require.Equal(t, copied.out, aliased.out, "a stage kept a decoded reading's string")
	// Every message but the last (dec still points into it) is garbage.
	dec = v1.Snapshot{}
	// Cleanups run on their own goroutine after a collection: collect
	// until they all have, or long enough to say some never will.
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Second)
	defer cancel()
	_ = testbed.Until(ctx, func() bool { // the count says what is left
		runtime.GC()
		return collected.Load() == int64(made)
	})
	require.EqualValues(t, made, collected.Load(), "decoded messages still referenced by a stage's state")
	runtime.KeepAlive(aliased) // its state is what must not hold them
}
