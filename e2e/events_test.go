package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/stretchr/testify/require"

	"github.com/bmcstream/bmcstream/internal/testbed"
	"github.com/bmcstream/bmcstream/pkg/bmcsim/fleet"
	bmodel "github.com/bmcstream/bmcstream/pkg/bmcsim/model"
	"github.com/bmcstream/bmcstream/pkg/pipeline"
	"github.com/bmcstream/bmcstream/pkg/poller"
)

type eventLog struct {
	mu     sync.Mutex
	events []pipeline.Event
	norm   int
}

func (l *eventLog) count(kind pipeline.EventKind, bmc string) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	n := 0
	for _, e := range l.events {
		if e.Kind == kind && e.BMC == bmc {
			n++
		}
	}
	return n
}

// TestFaultsProduceOneEventEachWay runs a simulated BMC through a poller
// and the gateway's automation stream, injects real bmcsim faults (a failed
// fan, a blocked intake, the BMC dying) and clears them: each produces
// exactly one event on bmc.v1.events.<site>.<rack>.<bmc> when it starts and
// one when it ends, and normalised readings flow on bmc.v1.norm.>.
func TestFaultsProduceOneEventEachWay(t *testing.T) {
	spansPrograms(t)
	prom := testbed.StartPrometheus(t)
	srv := testbed.StartNATS(t)
	fcfg := fleet.DefaultConfig
	fcfg.Count = 1
	fcfg.Mix = map[string]int{"idrac": 1}
	fcfg.Protocols = "redfish"
	fcfg.FirstAddress = netip.MustParseAddr("127.70.0.1")
	sim := testbed.StartSimFleet(t, fcfg, time.Second)
	fl, invFile, credFile := sim.Fleet, sim.InvFile, sim.CredFile

	// Listen before anything runs.
	nc, err := nats.Connect(srv.ClientURL())
	require.NoError(t, err)
	defer nc.Close()
	log := &eventLog{}
	_, err = nc.Subscribe("bmc.v1.events.sim.r000.>", func(m *nats.Msg) {
		var e pipeline.Event
		if json.Unmarshal(m.Data, &e) == nil {
			log.mu.Lock()
			log.events = append(log.events, e)
			log.mu.Unlock()
		}
	})
	require.NoError(t, err)
	_, err = nc.Subscribe("bmc.v1.norm.sim.r000.bmc-00001", func(*nats.Msg) {
		log.mu.Lock()
		log.norm++
		log.mu.Unlock()
	})
	require.NoError(t, err)
	require.NoError(t, nc.Flush())
	rec := testbed.Record(t, srv.ClientURL())

	startGatewayInProcess(t, srv.ClientURL(), invFile, prom.WriteURL(), "")
	pcfg, err := poller.ParseConfig([]byte(fmt.Sprintf("poller_id: ev\nnats:\n  url: %s\ninventory:\n  files: [%s]\n  credentials_file: %s\n", srv.ClientURL(), invFile, credFile)))
	require.NoError(t, err)
	p, err := poller.New(pcfg, poller.Options{NewSource: poller.DefaultSources(pcfg, slog.New(slog.DiscardHandler)), ShutdownTimeout: 5 * time.Second})
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	pdone := make(chan error, 1)
	go func() { pdone <- p.Run(ctx) }()
	defer func() { cancel(); require.NoError(t, <-pdone) }()

	const id = "bmc-00001"
	m, _ := fl.Get(id)
	require.Eventually(t, func() bool { log.mu.Lock(); defer log.mu.Unlock(); return log.norm >= 2 }, 15*time.Second, 50*time.Millisecond, "normalised readings flow")
	require.Zero(t, len(log.events), "a healthy BMC raises nothing")

	steps := []struct {
		fault      bmodel.Faults
		start, end pipeline.EventKind
	}{
		{bmodel.Faults{FanFailed: 1}, pipeline.EventHealthWorsened, pipeline.EventHealthRecovered},
		{bmodel.Faults{IntakeOffset: 30}, pipeline.EventThresholdCrossed, pipeline.EventThresholdCleared},
		{bmodel.Faults{Down: true}, pipeline.EventBMCDown, pipeline.EventBMCUp},
	}
	// morePolls waits for three more polls of the BMC (its snapshots on
	// the raw subjects: a down BMC's too).
	morePolls := func(what string) {
		t.Helper()
		since := time.Now()
		testbed.Eventually(t, 20*time.Second, func() bool { return rec.Pollers(since, time.Now().Add(time.Hour))[id]["ev"] >= 3 }, "three more polls %s", what)
	}
	for _, st := range steps {
		m.BMC.SetFaults(st.fault)
		require.Eventually(t, func() bool { return log.count(st.start, id) > 0 }, 15*time.Second, 50*time.Millisecond, "%s", st.start)
		morePolls("in the faulty state")
		m.BMC.SetFaults(bmodel.Faults{})
		require.Eventually(t, func() bool { return log.count(st.end, id) > 0 }, 20*time.Second, 50*time.Millisecond, "%s", st.end)
		morePolls("healthy")
	}
	log.mu.Lock()
	defer log.mu.Unlock()
	per := map[string]int{}
	for _, e := range log.events {
		per[fmt.Sprintf("%s/%s/%s", e.Kind, e.Sensor, e.Threshold)]++
		require.Equal(t, id, e.BMC)
		require.Equal(t, "r000", e.Rack)
	}
	t.Logf("events: %v", per)
	// A fault may pass through an intermediate state (an intake offset
	// heats a CPU past its caution, then its critical threshold, when a
	// poll falls between): each transition is reported once, each
	// sensor's events chain (every event starts where the previous one
	// ended), and every chain ends healthy once the faults are cleared.
	seen := map[string]bool{}
	last := map[string]pipeline.Event{}
	var chains []string
	for _, e := range log.events {
		tr := fmt.Sprintf("%s/%s/%s: %s → %s", e.Kind, e.Sensor, e.Threshold, e.Previous, e.Current)
		require.False(t, seen[tr], "transition %s reported twice", tr)
		seen[tr] = true
		require.NotEqual(t, e.Previous, e.Current, "%s changes nothing", tr)
		chain := eventChain(e)
		if prev, ok := last[chain]; ok {
			require.Equal(t, prev.Current, e.Previous, "%s does not start where %s/%s ended", tr, prev.Kind, prev.Sensor)
		} else {
			chains = append(chains, chain)
		}
		last[chain] = e
	}
	for _, c := range chains {
		require.Contains(t, []string{"ok", "normal", "up"}, last[c].Current, "%s ends in %s", c, last[c].Current)
	}
	for _, st := range steps {
		require.Positive(t, countKind(log.events, st.start))
		require.Positive(t, countKind(log.events, st.end))
	}
}

// eventChain names the state an event changes: a sensor's health, one
// side (upper or lower) of a sensor's thresholds, or the BMC's reachability.
func eventChain(e pipeline.Event) string {
	switch e.Kind {
	case pipeline.EventThresholdCrossed, pipeline.EventThresholdCleared:
		side, _, _ := strings.Cut(e.Threshold, "_")
		return "threshold/" + e.Sensor + "/" + side
	case pipeline.EventHealthWorsened, pipeline.EventHealthRecovered:
		return "health/" + e.Sensor
	}
	return string(e.Kind[:strings.IndexByte(string(e.Kind)+"_", '_')]) + "/" + e.Sensor
}

func countKind(es []pipeline.Event, k pipeline.EventKind) int {
	n := 0
	for _, e := range es {
		if e.Kind == k {
			n++
		}
	}
	return n
}
