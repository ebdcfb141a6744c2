package reliability

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/bmcstream/bmcstream/internal/testbed"
	"github.com/bmcstream/bmcstream/pkg/bmcsim/fleet"
	"github.com/bmcstream/bmcstream/pkg/bmcsim/model"
)

// window is the accounted time range of a bed: from a minute before the
// start to a minute after end, so no sample sits on an edge.
func (b *bed) window(end time.Time) (time.Time, time.Time) {
	return b.started.Add(-time.Minute), end.Add(time.Minute)
}

// settle accounts every sink over every BMC, measures lateness for the
// sinks onTime names over [lateFrom, lateTo), and requires that nothing was
// lost, duplicated or made up, that no snapshot was lost before the stream
// (unless allowMissing), and that the gateway dropped nothing.
func (b *bed) settle(p *published, end time.Time, lateFrom, lateTo time.Time, onTime ...string) []tally {
	t := b.t
	from, to := b.window(end)
	ids := p.bmcs()
	require.Len(t, ids, b.sc.BMCs, "BMCs that published")
	var out []tally
	if b.final != "" {
		t.Logf("gateway: remote-write drops %v, out-of-order drops %v, dedup rejections %v, snapshots %v",
			metricSum(b.final, "bmcstream_remote_write_samples_dropped_total"),
			metricSum(b.final, "bmcstream_gateway_out_of_order_samples_dropped_total"),
			metricSum(b.final, "bmcstream_gateway_dedup_snapshots_rejected_total"),
			metricSum(b.final, "bmcstream_gateway_snapshots_total"))
	}
	for _, name := range b.opts.Sinks {
		tl := account(t, p, name, b.sinks[name], ids, from, to)
		tl.Late, tl.Polls = -1, 0
		if lateTo.After(lateFrom) && contains(onTime, name) {
			late, polls, p50, worst := b.arrivals.lateness(p, name, ids, lateFrom, lateTo)
			tl.Late, tl.Polls = late, polls
			t.Logf("%s: delivery delay p50 %s, max %s over %d polls", name, p50.Round(time.Millisecond), worst.Round(time.Millisecond), polls)
		}
		t.Logf("%s", tl)
		for _, e := range tl.Examples {
			t.Logf("  %s", e)
		}
		out = append(out, tl)
	}
	return out
}

// requireClean fails unless a tally shows nothing lost, duplicated or made
// up.
func requireClean(t *testing.T, tl tally) {
	t.Helper()
	require.Zero(t, tl.Lost, "%s", tl)
	require.Zero(t, tl.Duplicated, "%s", tl)
	require.Zero(t, tl.Spurious, "%s", tl)
	require.Positive(t, tl.Expected, "%s", tl)
}

// requireOnTime fails unless every poll measured arrived on time.
func requireOnTime(t *testing.T, tl tally) {
	t.Helper()
	require.Positive(t, tl.Polls, "%s: no polls measured", tl)
	require.Zero(t, tl.Late, "%s", tl)
}

// requireGatewayDroppedNothing checks the gateway's own counters: no sample
// dropped by a sink, none for being out of order.
func (b *bed) requireGatewayDroppedNothing() {
	t := b.t
	require.NotEmpty(t, b.final)
	require.Zero(t, metricSum(b.final, "bmcstream_remote_write_samples_dropped_total"), "remote-write drops")
	require.Zero(t, metricSum(b.final, "bmcstream_gateway_out_of_order_samples_dropped_total"), "out-of-order drops")
}

// TestScenarioGatewayKilled kills the gateway with SIGKILL mid-stream and
// restarts it after two intervals: what it had fetched and not acked is
// redelivered, what was published meanwhile waits in the stream.
func TestScenarioGatewayKilled(t *testing.T) {
	t.Parallel()
	b := newBed(t, bedOptions{Block: 120, Sinks: []string{"prom", "vm"}})
	ids := b.fleetIDs()
	b.start()
	// Long enough for polls measured on time before the kill.
	b.waitPolls(b.started, b.pollsIn(b.sc.Run), ids, "prom", "vm")
	kill(t, b.gateway)
	killed := time.Now()
	published := b.pollerMetric("bmcstream_poller_snapshots_published_total")
	// Down for two intervals, and until every BMC's poll made meanwhile
	// went into the stream with no gateway to take it.
	b.hold(2*b.sc.Interval, func() bool {
		return b.pollerMetric("bmcstream_poller_snapshots_published_total") >= published+float64(b.sc.BMCs)
	}, "the pollers published a poll of every BMC while the gateway was down")
	b.startGateway()
	b.waitPolls(time.Now(), 2, ids, "prom", "vm")
	end := b.finish()

	p := readPublished(t, b)
	require.Zero(t, p.missingSequences(), "snapshots lost before the stream")
	ts := b.settle(p, end, b.started, killed.Add(-lateAfter), "prom", "vm")
	for _, tl := range ts {
		requireClean(t, tl)
		requireOnTime(t, tl) // before the kill
	}
	b.requireGatewayDroppedNothing()
	report(t, row{
		Scenario: "1. gateway `kill -9` mid-stream, restarted after 2 intervals",
		Load:     loadOf(b, "sinks Prometheus + VictoriaMetrics"),
		Result:   results(ts...),
		Notes:    "late counted before the kill; polls made while the gateway was down arrive after its restart",
	})
}

// TestScenarioSinkDown stops the only sink (Prometheus) for the outage,
// then starts it again: the backlog waits in the stream, is delivered in
// order (Prometheus rejects an out-of-order sample, which would show as
// lost), and the gateway's memory stays bounded meanwhile.
func TestScenarioSinkDown(t *testing.T) {
	t.Parallel()
	b := newBed(t, bedOptions{Block: 121, Sinks: []string{"prom"}})
	ids := b.fleetIDs()
	b.start()
	b.waitPolls(b.started, b.pollsIn(b.sc.Run), ids, "prom")
	steady := b.memory.peak("steady")
	prom := b.sinks["prom"]
	require.NoError(t, prom.Stop())
	down := time.Now()
	b.memory.phase("outage")
	b.hold(b.sc.Outage, func() bool {
		return b.gatewayMetric("bmcstream_remote_write_requests_total", `code="network"`, `remote_name="prom"`) > 0
	}, "the gateway's writes to Prometheus failed")
	b.memory.phase("recovery")
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	require.NoError(t, prom.Start(ctx))
	back := time.Now()
	// The backlog drained: polls made after Prometheus returned are
	// queryable (a sink writes a BMC's snapshots in order).
	b.waitPolls(back, 2, ids, "prom")
	end := b.finish()

	p := readPublished(t, b)
	require.Zero(t, p.missingSequences(), "snapshots lost before the stream")
	ts := b.settle(p, end, b.started, down.Add(-lateAfter), "prom")
	requireClean(t, ts[0])
	requireOnTime(t, ts[0])
	b.requireGatewayDroppedNothing()
	// Drained: a sink writes a BMC's snapshots in order, so once the first
	// poll made after Prometheus returned is queryable, that BMC's backlog
	// is written. The backlog is drained when that holds for every BMC.
	drained := b.arrivals.caughtUp(p, "prom", back)
	require.Positive(t, drained, "the backlog never drained")
	outage := b.memory.peak("outage")
	t.Logf("gateway RSS: steady %d MiB, outage peak %d MiB, backlog of %s drained in %s", steady>>20, outage>>20, b.sc.Outage, drained.Round(100*time.Millisecond))
	// The backlog lives in JetStream; the gateway holds at most
	// max_ack_pending snapshots of it.
	require.Less(t, outage, int64(512<<20), "gateway memory during the outage")
	report(t, row{
		Scenario: fmt.Sprintf("2. only sink (Prometheus) down for %s, then back", b.sc.Outage),
		Load:     loadOf(b, ""),
		Result:   results(ts...),
		Notes: fmt.Sprintf("gateway RSS %d MiB steady, %d MiB peak during the outage; backlog drained in %s, in order",
			steady>>20, outage>>20, drained.Round(100*time.Millisecond)),
	})
}

// TestScenarioOneOfTwoSinksDown stops VictoriaMetrics while Prometheus
// stays up: Prometheus keeps receiving on time, VictoriaMetrics catches up
// when it returns.
func TestScenarioOneOfTwoSinksDown(t *testing.T) {
	t.Parallel()
	b := newBed(t, bedOptions{Block: 122, Sinks: []string{"prom", "vm"}})
	ids := b.fleetIDs()
	b.start()
	b.waitPolls(b.started, b.pollsIn(b.sc.Run), ids, "prom", "vm")
	vm := b.sinks["vm"]
	require.NoError(t, vm.Stop())
	down := time.Now()
	b.hold(b.sc.Outage, func() bool {
		return b.gatewayMetric("bmcstream_remote_write_requests_total", `code="network"`, `remote_name="vm"`) > 0
	}, "the gateway's writes to VictoriaMetrics failed")
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	require.NoError(t, vm.Start(ctx))
	b.waitPolls(time.Now(), 2, ids, "prom", "vm")
	end := b.finish()

	p := readPublished(t, b)
	require.Zero(t, p.missingSequences())
	// Prometheus on time throughout, except the last polls before finish.
	ts := b.settle(p, end, b.started, end.Add(-lateAfter), "prom")
	requireClean(t, ts[0])
	requireOnTime(t, ts[0])
	requireClean(t, ts[1])
	vmLate, vmPolls, _, _ := b.arrivals.lateness(p, "vm", p.bmcs(), down, down.Add(b.sc.Outage))
	t.Logf("VictoriaMetrics: %d of %d polls made during its outage arrived after it", vmLate, vmPolls)
	b.requireGatewayDroppedNothing()
	report(t, row{
		Scenario: fmt.Sprintf("3. one of two sinks (VictoriaMetrics) down for %s", b.sc.Outage),
		Load:     loadOf(b, "sinks Prometheus + VictoriaMetrics"),
		Result:   results(ts...),
		Notes:    fmt.Sprintf("Prometheus on time throughout; VictoriaMetrics caught up when back (%d of its %d outage polls later than the lateness bound)", vmLate, vmPolls),
	})
}

// TestScenarioNATSRestart restarts the NATS server, embedded and the
// nats-server binary (killed): pollers buffer what they poll meanwhile and
// publish it when NATS returns; nothing is lost.
func TestScenarioNATSRestart(t *testing.T) {
	t.Parallel()
	for i, standalone := range []bool{false, true} {
		name := map[bool]string{false: "embedded", true: "standalone"}[standalone]
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			b := newBed(t, bedOptions{Block: 123 + i, Sinks: []string{"prom"}, StandaloneNATS: standalone})
			ids := b.fleetIDs()
			b.start()
			b.waitPolls(b.started, b.pollsIn(b.sc.Run), ids, "prom")
			b.nats.stop()
			down := time.Now()
			b.hold(min(b.sc.Outage, 30*time.Second), func() bool {
				return b.pollerMetric("bmcstream_poller_publish_buffer_snapshots") > 0
			}, "the pollers buffered what they polled")
			b.nats.start()
			b.waitPolls(time.Now(), 2, ids, "prom")
			end := b.finish()

			p := readPublished(t, b)
			require.Zero(t, p.missingSequences(), "snapshots lost before the stream")
			ts := b.settle(p, end, b.started, down.Add(-lateAfter), "prom")
			requireClean(t, ts[0])
			requireOnTime(t, ts[0])
			b.requireGatewayDroppedNothing()
			report(t, row{
				Scenario: fmt.Sprintf("4. NATS (%s) restarted after %s down", name, min(b.sc.Outage, 30*time.Second)),
				Load:     loadOf(b, "publish buffer 10000 snapshots"),
				Result:   results(ts...),
				Notes:    "pollers buffered and republished; 0 snapshots missing from the stream",
			})
		})
	}
}

// TestScenarioNATSOutageBeyondBuffer keeps NATS down longer than the
// pollers' publish buffer holds: the oldest snapshots are dropped, and
// every one of them is counted and logged — the stream misses exactly
// as many snapshots as the pollers counted.
func TestScenarioNATSOutageBeyondBuffer(t *testing.T) {
	sc := currentScale()
	buffer := sc.BMCs * 2 // two intervals of polls
	t.Parallel()
	b := newBed(t, bedOptions{Block: 125, Sinks: []string{"prom"}, PublishBuffer: buffer})
	ids := b.fleetIDs()
	b.start()
	// Nothing is measured on time here: the fleet only has to be flowing.
	b.waitPolls(b.started, 2, ids, "prom")
	b.nats.stop()
	b.hold(5*b.sc.Interval, func() bool {
		return b.pollerMetric("bmcstream_poller_snapshots_dropped_total") > 0
	}, "the pollers dropped snapshots from a full buffer")
	b.nats.start()
	// Publishing again, past the buffer's backlog: the drops are over.
	b.waitPolls(time.Now(), 2, ids, "prom")
	var dropped float64
	var logged bool
	for _, pr := range b.pollers {
		dropped += metricSum(scrape(t, pr), "bmcstream_poller_snapshots_dropped_total")
		log, err := os.ReadFile(pr.LogFile)
		if err == nil && strings.Contains(string(log), "publish buffer full") {
			logged = true
		}
	}
	end := b.finish()

	p := readPublished(t, b)
	missing := p.missingSequences()
	t.Logf("pollers counted %v dropped snapshots; the stream misses %d", dropped, missing)
	require.Positive(t, missing, "the outage should have overflowed the buffer")
	// Every snapshot missing from the stream is counted. The count may
	// exceed it by the publishes in flight when NATS went away: their acks
	// were lost, so the poller cannot know the server stored them, keeps
	// them, and counts them when they are dropped — it never under-counts.
	require.GreaterOrEqual(t, dropped, float64(missing), "every snapshot missing from the stream is counted")
	require.LessOrEqual(t, dropped-float64(missing), float64(b.sc.BMCs), "over-count bounded by one publish batch")
	require.True(t, logged, "the drop is logged")
	// What reached the stream reached Prometheus.
	ts := b.settle(p, end, b.started, b.started, "prom")
	requireClean(t, ts[0])
	report(t, row{
		Scenario: fmt.Sprintf("4b. NATS down for %s with a publish buffer of %d snapshots (2 intervals)", 5*b.sc.Interval, buffer),
		Load:     loadOf(b, ""),
		Result:   results(ts...),
		Notes:    fmt.Sprintf("%d snapshots never reached the stream, all counted (bmcstream_poller_snapshots_dropped_total = %v, which includes publishes whose ack was lost) and logged; nothing else lost", missing, dropped),
	})
}

// TestScenarioBadBMCs black-holes 10 % of the fleet, makes 5 % answer
// malformed JSON and 1 % (at least one) flap up and down: every other BMC
// is polled on schedule and delivered on time, and each bad BMC is reported
// with its error class.
func TestScenarioBadBMCs(t *testing.T) {
	t.Parallel()
	b := newBed(t, bedOptions{Block: 127, Sinks: []string{"prom"}})
	f := b.sim.Fleet
	all := make([]string, 0, len(f.Members))
	for _, m := range f.Members {
		all = append(all, m.BMC.ID)
	}
	sort.Strings(all)
	n := len(all)
	nHole, nBad, nFlap := max(1, n/10), max(1, n/20), max(1, n/100)
	hole, bad, flap := all[:nHole], all[nHole:nHole+nBad], all[nHole+nBad:nHole+nBad+nFlap]
	healthy := all[nHole+nBad+nFlap:]
	_, err := f.Apply(fleet.FaultRequest{IDs: hole, Faults: model.Faults{BlackHole: true}})
	require.NoError(t, err)
	_, err = f.Apply(fleet.FaultRequest{IDs: bad, Faults: model.Faults{MalformedJSON: true}})
	require.NoError(t, err)

	b.start()
	stopFlap := make(chan struct{})
	flapped := make(chan int)
	go func() {
		toggles := 0
		down := false
		tick := time.NewTicker(b.sc.Interval * 3 / 2)
		defer tick.Stop()
		for {
			select {
			case <-stopFlap:
				flapped <- toggles
				return
			case <-tick.C:
			}
			down = !down
			_, _ = f.Apply(fleet.FaultRequest{IDs: flap, Faults: model.Faults{Down: down}})
			toggles++
		}
	}()
	// The faults last this long, and until each flapping BMC has been
	// down and up again.
	b.hold(2*b.sc.Run+2*b.sc.Interval, func() bool {
		return metricSum(scrape(t, b.pollers["poller-0"]), "bmcstream_poller_polls_total", `class="unreachable"`) > 0
	}, "the flapping BMCs were polled while down")
	close(stopFlap)
	toggles := <-flapped
	pollerMetrics := scrape(t, b.pollers["poller-0"])
	end := b.finish()

	p := readPublished(t, b)
	require.Zero(t, p.missingSequences())
	// Every BMC, bad ones included, is accounted: a bad poll still writes
	// bmc_up 0 and its error.
	ts := b.settle(p, end, b.started, end.Add(-lateAfter), "prom")
	requireClean(t, ts[0])
	// The healthy ones: polled every interval, on time.
	late, polls, p50, worst := b.arrivals.lateness(p, "prom", healthy, b.started, end.Add(-lateAfter))
	t.Logf("healthy BMCs: %d of %d polls late, delay p50 %s, max %s", late, polls, p50, worst)
	require.Zero(t, late)
	first, last := b.started.Add(2*b.sc.Interval), end.Add(-2*b.sc.Interval)
	wantPolls := int(last.Sub(first) / b.sc.Interval)
	for _, id := range healthy {
		got := 0
		for _, pl := range p.polls[id] {
			if pl.t >= first.UnixMilli() && pl.t < last.UnixMilli() {
				got++
				require.True(t, pl.up, "healthy BMC %s down at %d: %s", id, pl.t, pl.class)
			}
		}
		require.InDelta(t, wantPolls, got, 1, "polls of healthy BMC %s", id)
	}
	// Each bad BMC is reported with its class.
	classOf := func(ids []string) map[string]int {
		out := map[string]int{}
		for _, id := range ids {
			for class, perBMC := range p.classes {
				if perBMC[id] > 0 {
					out[class]++
				}
			}
		}
		return out
	}
	holeClasses, badClasses, flapClasses := classOf(hole), classOf(bad), classOf(flap)
	t.Logf("error classes: black-holed %v, malformed %v, flapping %v (%d toggles)", holeClasses, badClasses, flapClasses, toggles)
	require.Equal(t, len(hole), holeClasses["timeout"], "black-holed BMCs time out")
	require.Equal(t, len(bad), badClasses["decode"], "malformed BMCs fail to decode")
	require.Equal(t, len(flap), flapClasses["unreachable"], "flapping BMCs are unreachable while down")
	for _, class := range []string{"timeout", "decode", "unreachable"} {
		require.Positive(t, metricSum(pollerMetrics, "bmcstream_poller_polls_total", `class="`+class+`"`), "poller metric for class %s", class)
	}
	report(t, row{
		Scenario: fmt.Sprintf("6. %d black-holed, %d malformed JSON, %d flapping BMCs", len(hole), len(bad), len(flap)),
		Load:     loadOf(b, ""),
		Result:   results(ts...),
		Notes: fmt.Sprintf("%d healthy BMCs: every interval polled, %d of %d polls late (p50 %s, max %s); classes: black-holed %v, malformed %v, flapping %v",
			len(healthy), late, polls, p50.Round(time.Millisecond), worst.Round(time.Millisecond), holeClasses, badClasses, flapClasses),
	})
}

// TestScenarioReceiverFaults puts a fault injector before Prometheus: three
// requests answered 429 with Retry-After, then three 500s, then 400 for
// every request holding a sample of two chosen BMCs. 429 and 5xx are
// retried (after Retry-After for the 429s), 400 is dropped and counted, and
// the gateway's counters match what the receiver answered.
func TestScenarioReceiverFaults(t *testing.T) {
	t.Parallel()
	b := newBed(t, bedOptions{Block: 128, Sinks: []string{"prom"}, ProxyProm: true})
	const retryAfter = 2
	ids := b.fleetIDs()
	sort.Strings(ids)
	poison, healthy := ids[:2], ids[2:]
	b.start()
	b.waitPolls(b.started, 2, ids, "prom")
	b.proxy.inject(3, retryAfter, 3, poison)
	injected := time.Now()
	// Every fault answered, and the batches they refused accepted since:
	// the healthy BMCs' polls made after the faults are queryable.
	testbed.Eventually(t, time.Minute, func() bool {
		var n429, n500, n400 int
		for _, r := range b.proxy.requests() {
			switch r.status {
			case http.StatusTooManyRequests:
				n429++
			case http.StatusInternalServerError:
				n500++
			case http.StatusBadRequest:
				n400++
			}
		}
		return n429 == 3 && n500 == 3 && n400 > 0
	}, "every injected fault answered")
	b.waitPolls(injected.Add(retryAfter*time.Second), 2, healthy, "prom")
	end := b.finish()

	reqs := b.proxy.requests()
	var n429, n500, n400, retriedSamples int
	// A request answered 400 is split and its halves sent again, so a
	// sample is dropped when it was refused and never accepted.
	rejected, accepted := map[sampleKey]bool{}, map[sampleKey]bool{}
	for i, r := range reqs {
		switch r.status {
		case http.StatusTooManyRequests, http.StatusInternalServerError:
			if r.status == http.StatusTooManyRequests {
				n429++
			} else {
				n500++
			}
			retriedSamples += r.samples
			// The same batch comes again, and after a 429 not before
			// Retry-After.
			again := -1
			for j := i + 1; j < len(reqs); j++ {
				if reqs[j].batch == r.batch {
					again = j
					break
				}
			}
			require.NotEqual(t, -1, again, "batch answered %d never retried", r.status)
			if r.status == http.StatusTooManyRequests {
				require.GreaterOrEqual(t, reqs[again].at.Sub(r.at), retryAfter*time.Second-50*time.Millisecond, "Retry-After honoured")
			}
		case http.StatusBadRequest:
			n400++
			for _, k := range r.keys {
				rejected[k] = true
			}
		case http.StatusNoContent, http.StatusOK:
			for _, k := range r.keys {
				accepted[k] = true
			}
		}
	}
	dropped := map[sampleKey]bool{}
	for k := range rejected {
		if !accepted[k] {
			dropped[k] = true
		}
	}
	droppedSamples := len(dropped)
	require.Equal(t, 3, n429)
	require.Equal(t, 3, n500)
	require.Positive(t, n400)
	m := b.final
	require.Equal(t, float64(n429), metricSum(m, "bmcstream_remote_write_requests_total", `code="429"`))
	require.Equal(t, float64(n500), metricSum(m, "bmcstream_remote_write_requests_total", `code="5xx"`))
	require.Equal(t, float64(n400), metricSum(m, "bmcstream_remote_write_requests_total", `code="4xx"`))
	require.Equal(t, float64(retriedSamples), metricSum(m, "bmcstream_remote_write_samples_retried_total"))
	require.Equal(t, float64(droppedSamples), metricSum(m, "bmcstream_remote_write_samples_dropped_total", `reason="http_400"`))
	require.Equal(t, float64(droppedSamples), metricSum(m, "bmcstream_remote_write_samples_dropped_total"), "no other drops")
	splits := metricSum(m, "bmcstream_remote_write_request_splits_total")
	require.Positive(t, splits, "batches refused for 2 BMCs are split, so the other BMCs' samples get through")

	p := readPublished(t, b)
	require.Zero(t, p.missingSequences())
	ts := b.settle(p, end, b.started, b.started, "prom")
	tl := ts[0]
	// Lost in Prometheus: exactly the BMC samples refused and never
	// accepted (the parts refused also held roll-ups, not accounted).
	rejectedBMC := 0
	for k := range dropped {
		for _, want := range p.want {
			if _, ok := want[k]; ok {
				rejectedBMC++
				break
			}
		}
	}
	require.Equal(t, rejectedBMC, tl.Lost, "%s", tl)
	for k := range tl.lost {
		require.True(t, dropped[k], "lost sample %s @%d was never rejected", p.names[k.series], k.t)
	}
	require.Zero(t, tl.Duplicated)
	require.Zero(t, tl.Spurious)
	report(t, row{
		Scenario: "7. receiver answers 3× 429 (Retry-After 2 s), 3× 500, then 400 for batches with 2 chosen BMCs",
		Load:     loadOf(b, "fault injector before Prometheus"),
		Result:   results(ts...),
		Notes: fmt.Sprintf("%d + %d requests retried (%d samples, Retry-After honoured); %d requests answered 400, split %.0f times; %d samples dropped and counted as http_400 (of %d refused at first); lost = exactly those",
			n429, n500, retriedSamples, n400, splits, droppedSamples, len(rejected)),
	})
}

func contains(ss []string, s string) bool {
	for _, x := range ss {
		if x == s {
			return true
		}
	}
	return false
}
