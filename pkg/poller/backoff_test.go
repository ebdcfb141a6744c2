package poller

import (
	"context"
	"errors"
	"log/slog"
	"os"
	"testing"
	"testing/synctest"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/common/model"
	"github.com/stretchr/testify/require"

	"github.com/bmcstream/bmcstream/internal/testbed"
	bmcmodel "github.com/bmcstream/bmcstream/pkg/bmcsim/model"
	"github.com/bmcstream/bmcstream/pkg/inventory"
	"github.com/bmcstream/bmcstream/pkg/sources"
	v1 "github.com/bmcstream/bmcstream/proto/bmcstream/v1"
)

// TestBackoff checks the poller is gentle with BMCs that push back: a BMC
// answering 503 with Retry-After is not asked again before it, a BMC that
// refuses our credentials is probed less and less often (failed logins
// lock accounts on some BMCs), a dead BMC likewise, and healthy BMCs keep
// their rhythm.
func TestBackoff(t *testing.T) {
	t.Parallel()
	tb := newTestbed(t, 4, "redfish", time.Second)
	ids := []string{"bmc-00001", "bmc-00002", "bmc-00003", "bmc-00004"}
	busy, _ := tb.fleet.Get(ids[0])
	busy.BMC.SetFaults(bmcmodel.Faults{HTTPStatus: 503, RetryAfterSeconds: 3})
	dead, _ := tb.fleet.Get(ids[2])
	dead.BMC.SetFaults(bmcmodel.Faults{Down: true})
	// ids[1] gets credentials the BMC refuses.
	inv, err := inventory.Load(tb.invFile)
	require.NoError(t, err)
	entries := inv.All()
	entries[1].Credentials = "wrong"
	b, err := inventory.Marshal(entries)
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(tb.invFile, b, 0o600))
	require.NoError(t, os.WriteFile(tb.credFile, []byte("bmcsim:\n  username: admin\n  password: bmcsim-password\nwrong:\n  username: admin\n  password: not-it\n"), 0o600))

	rec := testbed.Record(t, tb.nats.ClientURL())
	start := time.Now()
	runPoller(t, tb.config(t, "gentle", "polling:\n  max_backoff: 8s\n"))
	// Count the polls that started in the 9 s from start, once the healthy
	// BMC has published one started after them (so every poll of the
	// window has been published).
	end := start.Add(9 * time.Second)
	testbed.Eventually(t, 20*time.Second, func() bool { return rec.PolledSince(ids[3:], end) }, "the healthy BMC polled past the window")
	got := rec.Pollers(start, end)
	n := func(id string) int { return got[id]["gentle"] }
	t.Logf("polls in 9 s at a 1 s interval: busy(503, Retry-After 3) %d, refused %d, dead %d, healthy %d", n(ids[0]), n(ids[1]), n(ids[2]), n(ids[3]))
	require.GreaterOrEqual(t, n(ids[3]), 8, "healthy BMC keeps its rhythm")
	require.LessOrEqual(t, n(ids[0]), 4, "Retry-After honoured")
	require.LessOrEqual(t, n(ids[1]), 5, "refused credentials back off")
	require.LessOrEqual(t, n(ids[2]), 5, "dead BMC backs off")
	require.Positive(t, n(ids[0]))
	require.Positive(t, n(ids[1]))
	require.Positive(t, n(ids[2]))
}

// TestBackoffSchedule drives one worker per kind of answer over fake time
// (a synctest bubble: the source and the stream are in memory) and checks
// the exact gaps between its polls: a healthy BMC every interval, a BMC
// that asks for Retry-After not before it, a BMC that refuses our
// credentials or does not answer doubling its gap up to
// polling.max_backoff, and one that recovers back on its rhythm.
func TestBackoffSchedule(t *testing.T) {
	const interval, maxBackoff = time.Second, 8 * time.Second
	busy := &sources.Error{Class: sources.ClassRateLimited, RetryAfter: 3 * time.Second, Err: errors.New("503")}
	refused := sources.Errorf(sources.ClassAuth, "401")
	dead := sources.Errorf(sources.ClassUnreachable, "connection refused")
	for _, tc := range []struct {
		name string
		// answer is the error of the nth poll (from 0); nil: a good poll.
		answer func(n int) error
		gaps   []time.Duration
	}{
		{"healthy", func(int) error { return nil }, []time.Duration{1, 1, 1, 1, 1, 1, 1}},
		{"retry-after", func(int) error { return busy }, []time.Duration{3, 3, 3, 3}},
		{"refused", func(int) error { return refused }, []time.Duration{1, 2, 4, 8, 8, 8}},
		{"dead", func(int) error { return dead }, []time.Duration{1, 2, 4, 8, 8, 8}},
		{"recovers", func(n int) error {
			if n < 4 {
				return dead
			}
			return nil
		}, []time.Duration{1, 2, 4, 8, 1, 1, 1}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				src := &scriptedSource{answer: tc.answer}
				p := bubblePoller(t, maxBackoff)
				w := &worker{p: p, bmc: inventory.BMC{ID: "bmc-" + tc.name, Interval: model.Duration(interval)}, done: make(chan struct{}),
					sources: []protoSource{{proto: v1.Protocol_PROTOCOL_REDFISH, src: src}}}
				ctx, cancel := context.WithCancel(t.Context())
				go w.run(ctx)
				var total time.Duration
				for _, g := range tc.gaps {
					total += g * interval
				}
				// The first poll comes within an interval (the BMC's slot).
				time.Sleep(total + interval)
				cancel()
				<-w.done
				require.GreaterOrEqual(t, len(src.polls), len(tc.gaps)+1, "polls at %v", src.polls)
				var gaps []time.Duration
				for i := 1; i <= len(tc.gaps); i++ {
					gaps = append(gaps, src.polls[i].Sub(src.polls[i-1])/interval)
				}
				require.Equal(t, tc.gaps, gaps, "gaps between polls, in intervals")
			})
		})
	}
}

// scriptedSource answers its nth poll with answer(n) and notes when each
// poll began.
type scriptedSource struct {
	answer func(n int) error
	polls  []time.Time
}

func (s *scriptedSource) Collect(_ context.Context, dst *v1.Snapshot) error {
	err := s.answer(len(s.polls))
	s.polls = append(s.polls, time.Now())
	dst.Up = err == nil
	return err
}

func (s *scriptedSource) Close(context.Context) error { return nil }

// bubblePoller is the part of a Poller a worker uses, its snapshots
// acknowledged by an in-memory stream.
func bubblePoller(t *testing.T, maxBackoff time.Duration) *Poller {
	t.Helper()
	logger := slog.New(slog.DiscardHandler)
	cfg := &Config{PollerID: "sched"}
	cfg.Polling.MaxBackoff = model.Duration(maxBackoff)
	p := &Poller{cfg: cfg, logger: logger, id: cfg.PollerID, epoch: 1, now: time.Now, stateLog: newStateLog(time.Now), sem: make(chan struct{}, 1)}
	reg := prometheus.NewRegistry()
	var err error
	p.metrics, err = newMetrics(reg, p)
	require.NoError(t, err)
	p.pub, err = NewPublisher(nil, ackingStream{}, 0, reg, logger)
	require.NoError(t, err)
	t.Cleanup(p.pub.Close)
	return p
}

// ackingStream acknowledges every message at once.
type ackingStream struct{ jetstream.JetStream }

func (ackingStream) PublishMsgAsync(m *nats.Msg, _ ...jetstream.PublishOpt) (jetstream.PubAckFuture, error) {
	ok := make(chan *jetstream.PubAck, 1)
	ok <- &jetstream.PubAck{Stream: "BMC_RAW"}
	return ackedFuture{msg: m, ok: ok}, nil
}

type ackedFuture struct {
	msg *nats.Msg
	ok  chan *jetstream.PubAck
}

func (f ackedFuture) Ok() <-chan *jetstream.PubAck { return f.ok }
func (f ackedFuture) Err() <-chan error            { return nil }
func (f ackedFuture) Msg() *nats.Msg               { return f.msg }
