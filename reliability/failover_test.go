package reliability

import (
	"context"
	"fmt"
	"math"
	"sort"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/bmcstream/bmcstream/pkg/poller"
)

// memberTTL is the pollers' membership TTL at a poll interval: the shipped
// default TTL scaled as it stands to a 10 s interval, at least 1 s (the
// poller's minimum).
func memberTTL(interval time.Duration) time.Duration {
	ttl := time.Duration(poller.DefaultShardingConfig.TTL)
	return max(time.Second, time.Duration(float64(ttl)*float64(interval)/float64(10*time.Second)).Round(time.Millisecond))
}

// crashMissBound is the most polls a BMC of a crashed poller misses, as
// docs/scaling.md states it: ⌈(TTL + poll duration)/interval⌉, the survivor
// counting the poller gone TTL after its last heartbeat and starting the
// BMC at its next slot. The simulated BMCs answer in milliseconds; a
// quarter interval covers that and a loaded machine's late timers.
func crashMissBound(ttl, interval time.Duration) int {
	return int(math.Ceil(float64(ttl+interval/4) / float64(interval)))
}

// TestScenarioPollerKilled stops one of three pollers sharing the fleet by
// dynamic membership, with the shipped TTL (scaled to the interval), and
// measures per moved BMC the polls never made and the longest gap between
// polls:
//   - sigkill: a crash; each moved BMC misses at most crashMissBound polls;
//   - sigterm: a clean stop hands over; no poll is missed or made twice;
//   - sigkill-rf2: a crash with replication_factor 2; no poll is missed.
//
// Nothing published is lost on the way to Prometheus.
func TestScenarioPollerKilled(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		name  string
		sig   syscall.Signal
		rf    int
		block int
		title string
	}{
		{"sigkill", syscall.SIGKILL, 1, 126, "5. one of three pollers `kill -9` (dynamic membership, shipped TTL)"},
		{"sigterm", syscall.SIGTERM, 1, 146, "5b. one of three pollers stopped (SIGTERM: clean handover)"},
		{"sigkill-rf2", syscall.SIGKILL, 2, 147, "5c. one of three pollers `kill -9` with `replication_factor: 2`"},
	} {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			pollerStopped(t, c.sig, c.rf, c.block, c.title)
		})
	}
}

// bmcSlots is one BMC's polls around a poller's stop, laid on its slots.
type bmcSlots struct {
	missed   int           // slots with no poll
	twice    int           // slots polled by more pollers than rf
	gap      time.Duration // longest time between two polls
	takeover time.Duration // from the stop to its first poll by another poller
}

// slotsAround lays the polls of one BMC started in [from, to) on its
// slots: a BMC is polled at a fixed offset into each interval, so a poll's
// slot is its start rounded to whole intervals from the first poll.
func slotsAround(polls []poll, victim string, stopped, from, to time.Time, interval time.Duration, rf int) bmcSlots {
	var in []poll
	for _, pl := range polls {
		if pl.t >= from.UnixMilli() && pl.t < to.UnixMilli() {
			in = append(in, pl)
		}
	}
	sort.Slice(in, func(i, j int) bool { return in[i].t < in[j].t })
	var out bmcSlots
	if len(in) == 0 {
		return bmcSlots{missed: -1}
	}
	t0 := in[0].t
	iv := interval.Milliseconds()
	by := map[int64]map[string]bool{}
	for i, pl := range in {
		k := int64(math.Round(float64(pl.t-t0) / float64(iv)))
		if by[k] == nil {
			by[k] = map[string]bool{}
		}
		by[k][pl.poller] = true
		if i > 0 {
			out.gap = max(out.gap, time.Duration(pl.t-in[i-1].t)*time.Millisecond)
		}
		if out.takeover == 0 && pl.poller != victim && pl.t >= stopped.UnixMilli() {
			out.takeover = time.UnixMilli(pl.t).Sub(stopped)
		}
	}
	// Slots due before to, less half an interval for a poll's lag.
	last := (to.UnixMilli() - iv/2 - t0) / iv
	for k := int64(0); k <= last; k++ {
		switch n := len(by[k]); {
		case n == 0:
			out.missed++
		case n > rf:
			out.twice++
		}
	}
	return out
}

func pollerStopped(t *testing.T, sig syscall.Signal, rf, block int, title string) {
	o := bedOptions{Block: block, Sinks: []string{"prom"}, Pollers: 3, ReplicationFactor: rf}
	if rf > 1 {
		// Just over an interval: the other owner's polls are written from
		// the second slot the leader missed.
		o.FailoverTimeout = currentScale().Interval * 3 / 2
	}
	b := newBed(t, o)
	iv := b.sc.Interval
	ttl := memberTTL(iv)
	ids := b.fleetIDs()
	b.start()
	// Membership settles: every BMC polled for the steady run and two
	// intervals more.
	b.waitPolls(b.started, b.pollsIn(b.sc.Run+2*iv), ids, "prom")
	victim := "poller-0"
	stopped := time.Now()
	if sig == syscall.SIGKILL {
		kill(t, b.pollers[victim])
	} else {
		stop(t, b.pollers[victim])
	}
	// Observed until every BMC, moved ones included, has had polls
	// written for the crash's worst miss and three slots more.
	b.waitPolls(stopped, crashMissBound(ttl, iv)+3, ids, "prom")
	observed := time.Now()
	end := b.finish()

	p := readPublished(t, b)
	// The victim's BMCs: those it polled in the interval before the stop.
	from := stopped.Add(-3 * iv)
	var moved []bmcSlots
	var movedIDs []string
	missed, twice, worstMiss := 0, 0, 0
	for id, polls := range p.polls {
		mine := false
		for _, pl := range polls {
			if pl.poller == victim && pl.t >= stopped.Add(-iv).UnixMilli() && pl.t < stopped.UnixMilli() {
				mine = true
			}
		}
		if !mine {
			continue
		}
		s := slotsAround(polls, victim, stopped, from, observed, iv, rf)
		require.GreaterOrEqual(t, s.missed, 0, "BMC %s never polled around the stop", id)
		require.NotZero(t, s.takeover, "BMC %s never polled by another poller after the stop", id)
		moved = append(moved, s)
		movedIDs = append(movedIDs, id)
		missed += s.missed
		twice += s.twice
		worstMiss = max(worstMiss, s.missed)
	}
	require.NotEmpty(t, moved, "the victim owned no BMC")
	gaps := make([]time.Duration, len(moved))
	takeovers := make([]time.Duration, len(moved))
	for i, s := range moved {
		gaps[i], takeovers[i] = s.gap, s.takeover
	}
	sort.Slice(gaps, func(i, j int) bool { return gaps[i] < gaps[j] })
	sort.Slice(takeovers, func(i, j int) bool { return takeovers[i] < takeovers[j] })
	bound := crashMissBound(ttl, iv)
	figures := fmt.Sprintf("TTL %s: %d BMCs moved; polls never made %d (max %d per BMC), polled twice in a slot %d; longest gap per BMC p50 %s, max %s; first poll by a survivor p50 %s, max %s after the stop",
		ttl, len(moved), missed, worstMiss, twice,
		gaps[len(gaps)/2].Round(10*time.Millisecond), gaps[len(gaps)-1].Round(10*time.Millisecond),
		takeovers[len(takeovers)/2].Round(10*time.Millisecond), takeovers[len(takeovers)-1].Round(10*time.Millisecond))
	t.Log(figures)
	switch {
	case rf > 1:
		require.Zero(t, missed, "with replication_factor %d the other owner polls every slot", rf)
	case sig == syscall.SIGKILL:
		require.LessOrEqual(t, worstMiss, bound, "polls missed per BMC after a crash: at most ⌈(TTL + poll)/interval⌉")
		require.LessOrEqual(t, gaps[len(gaps)-1], time.Duration(bound+1)*iv+iv/2, "longest gap after a crash")
	default:
		require.Zero(t, missed, "a clean stop hands over without missing a slot")
		require.Zero(t, twice, "a clean stop hands over without polling a slot twice")
	}

	if rf > 1 {
		// The gateway's HA stage writes the leader's polls and the other
		// owner's once the leader has been silent for failover_timeout:
		// the written series of the BMCs the victim led miss at most
		// ⌈failover_timeout/interval⌉ slots. (The suite's sample accounting
		// models one poller per BMC, so it is not run here.)
		notWritten, worst, gap := b.writtenGaps(movedIDs, from, observed)
		figures += fmt.Sprintf("; written (gateway failover_timeout %s): slots not written %d (max %d per BMC), longest gap %s",
			b.opts.FailoverTimeout, notWritten, worst, gap.Round(10*time.Millisecond))
		t.Log(figures)
		failoverBound := int(math.Ceil(float64(b.opts.FailoverTimeout) / float64(iv)))
		require.LessOrEqual(t, worst, failoverBound, "slots not written per BMC: at most ⌈failover_timeout/interval⌉")
		b.requireGatewayDroppedNothing()
		report(t, row{Scenario: title, Load: loadOf(b, ""), Result: "— (HA pair: accounted by slots written, in the figures)", Notes: figures})
		return
	}

	// Everything published was written, including the survivors' first
	// polls of the moved BMCs.
	ts := b.settle(p, end, b.started, end.Add(-lateAfter), "prom")
	requireClean(t, ts[0])
	requireOnTime(t, ts[0])
	b.requireGatewayDroppedNothing()
	report(t, row{Scenario: title, Load: loadOf(b, ""), Result: results(ts...), Notes: figures})
}

// writtenGaps reads the bmc_up samples Prometheus stored for some BMCs in
// [from, to) and lays them on the BMCs' slots: the slots with no sample
// (all BMCs, and the most of one BMC) and the longest time between two
// samples of a BMC.
func (b *bed) writtenGaps(ids []string, from, to time.Time) (missed, worst int, gap time.Duration) {
	t := b.t
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	iv := b.sc.Interval.Milliseconds()
	for _, id := range ids {
		got, err := b.sinks["prom"].RawSamples(ctx, fmt.Sprintf(`bmc_up{bmc=%q}`, id), to.Sub(from), to)
		require.NoError(t, err)
		var ts []int64
		for _, s := range got {
			for _, pt := range s.Samples {
				ts = append(ts, pt.T)
			}
		}
		require.NotEmpty(t, ts, "BMC %s: nothing written around the stop", id)
		sort.Slice(ts, func(i, j int) bool { return ts[i] < ts[j] })
		seen := map[int64]bool{}
		for i, x := range ts {
			seen[int64(math.Round(float64(x-ts[0])/float64(iv)))] = true
			if i > 0 {
				gap = max(gap, time.Duration(x-ts[i-1])*time.Millisecond)
			}
		}
		n := 0
		for k := int64(0); k <= (to.UnixMilli()-iv/2-ts[0])/iv; k++ {
			if !seen[k] {
				n++
			}
		}
		missed += n
		worst = max(worst, n)
	}
	return missed, worst, gap
}
