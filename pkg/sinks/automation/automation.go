// Package automation is the sink of the automation stream: each accepted
// snapshot's normalised readings on bmc.v1.norm.<site>.<rack>.<bmc> and the
// events it shows on bmc.v1.events.<site>.<rack>.<bmc>, both as JSON (see
// docs/automation.md). The gateway runs it behind one more consumer of the
// raw stream, so events are detected once per gateway deployment's
// consumer, not once per remote-write sink. Messages are published on core
// NATS: automation subscribes live.
package automation

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"

	"github.com/nats-io/nats.go"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/bmcstream/bmcstream/internal/ratelog"
	"github.com/bmcstream/bmcstream/pkg/bus"
	"github.com/bmcstream/bmcstream/pkg/inventory"
	"github.com/bmcstream/bmcstream/pkg/pipeline"
	"github.com/bmcstream/bmcstream/pkg/series"
	"github.com/bmcstream/bmcstream/pkg/sinks"
	v1 "github.com/bmcstream/bmcstream/proto/bmcstream/v1"
)

// Options are what a Publisher needs from the gateway.
type Options struct {
	Conn *nats.Conn
	// Normaliser describes readings in events, so a threshold event names
	// the series (metric and labels) and unit its samples have in
	// Prometheus: the normaliser the consumers use.
	Normaliser *pipeline.Normaliser
	// Enricher returns the inventory in force (labels, protocols).
	Enricher func() *pipeline.Enricher
	// Events counts the events published, by kind
	// (bmcstream_gateway_events_published_total).
	Events *prometheus.CounterVec
	// Logger and LogLimiter log failed publishes, at most one line per
	// LogLimiter period (shared with the consumer's own warnings).
	Logger     *slog.Logger
	LogLimiter *ratelog.Limiter
}

// Publisher publishes the automation stream. One goroutine (its
// consumer's) uses it; it keeps per-BMC event state, released by Forget.
type Publisher struct {
	opts   Options
	events *pipeline.Events
	evBuf  []pipeline.Event
	fed    map[string]bool // fedBy's set, reused
	key    []byte          // fedBy's key buffer, reused
}

var (
	_ sinks.Sink      = (*Publisher)(nil)
	_ sinks.Forgetter = (*Publisher)(nil)
)

// New makes a Publisher.
func New(opts Options) *Publisher {
	ev := pipeline.NewEvents()
	ev.Normaliser = opts.Normaliser
	return &Publisher{opts: opts, events: ev}
}

// Append publishes the readings of b.Snapshot and its events (a protocol
// move among them), then calls done. Samples of no snapshot (roll-ups,
// markers of a BMC forgotten) are not published. An error that would recur
// on every redelivery (a value JSON cannot encode, a message over the
// server's max_payload) is marked sinks.Permanent; any other is logged and
// marked sinks.Retry. A protocol move event that fails is logged, not
// retried: the move is recorded, and a redelivered snapshot would be
// refused as stale anyway.
func (p *Publisher) Append(_ context.Context, b sinks.Batch, done func()) error {
	if b.Snapshot == nil {
		done()
		return nil
	}
	if err := p.publish(b.Snapshot, b.Samples); err != nil {
		if permanent(err) {
			return sinks.Permanent(err)
		}
		p.opts.LogLimiter.Do(func() { p.opts.Logger.Warn("publish to the automation stream", "err", err) })
		return sinks.Retry(err)
	}
	if b.Change != pipeline.SourceUnchanged {
		p.publishSourceEvent(b.Snapshot, b.Prefer, b.Change)
	}
	done()
	return nil
}

// Forget drops the event state of a BMC.
func (p *Publisher) Forget(bmc string) { p.events.Forget(bmc) }

// permanent reports whether a publish error would recur on every
// redelivery: a value JSON cannot encode (an infinite threshold in base
// units) or a message over the server's max_payload.
func permanent(err error) bool {
	var unsupported *json.UnsupportedValueError
	return errors.As(err, &unsupported) || errors.Is(err, nats.ErrMaxPayload)
}

func (p *Publisher) labels(bmc string) map[string]string {
	if e, ok := p.opts.Enricher().Inventory().Get(bmc); ok {
		return e.Labels
	}
	return map[string]string{}
}

func (p *Publisher) publish(s *v1.Snapshot, samples []series.Sample) error {
	labels := p.labels(s.BmcId)
	site, rack := labels["site"], labels["rack"]
	msg, err := json.Marshal(pipeline.NewNormMessage(s.BmcId, labels, s.PollStartMs, samples))
	if err != nil {
		return fmt.Errorf("encode normalised readings of %s: %w", s.BmcId, err)
	}
	if err := p.opts.Conn.Publish(bus.NormSubject(site, rack, s.BmcId), msg); err != nil {
		return fmt.Errorf("publish normalised readings of %s: %w", s.BmcId, err)
	}
	var fed func(string, map[string]string) bool
	if p.bothProtocols(s.BmcId) {
		fed = p.fedBy(samples)
	}
	p.evBuf = p.events.ObserveFed(p.evBuf[:0], s, labels, fed)
	for i := range p.evBuf {
		b, err := json.Marshal(&p.evBuf[i])
		if err != nil {
			return fmt.Errorf("encode event of %s: %w", s.BmcId, err)
		}
		if err := p.opts.Conn.Publish(bus.EventSubject(site, rack, s.BmcId), b); err != nil {
			return fmt.Errorf("publish event of %s: %w", s.BmcId, err)
		}
		p.opts.Events.WithLabelValues(string(p.evBuf[i].Kind)).Inc()
	}
	return nil
}

// publishSourceEvent publishes the event of the protocol move a snapshot
// made.
func (p *Publisher) publishSourceEvent(s *v1.Snapshot, prefer v1.Protocol, change pipeline.SourceChange) {
	ev := pipeline.SourceEvent(s, prefer, change, p.labels(s.BmcId))
	b, err := json.Marshal(&ev)
	if err == nil {
		err = p.opts.Conn.Publish(bus.EventSubject(ev.Site, ev.Rack, ev.BMC), b)
	}
	if err != nil {
		p.opts.LogLimiter.Do(func() { p.opts.Logger.Warn("publish a protocol move event", "bmc", s.BmcId, "err", err) })
		return
	}
	p.opts.Events.WithLabelValues(string(ev.Kind)).Inc()
}

// bothProtocols reports whether the inventory polls the BMC over both
// protocols (an unknown BMC may be, as the sinks assume).
func (p *Publisher) bothProtocols(bmc string) bool {
	e, ok := p.opts.Enricher().Inventory().Get(bmc)
	return !ok || e.Protocol == inventory.Both
}

// ownLabels are the labels a series has of its own, beside the BMC's and
// the inventory's: what Event.SeriesLabels carries.
var ownLabels = [...]string{"context", "fan", "kind", "psu", "sensor"}

// fedBy returns whether the samples one snapshot fed (after the
// one-source-per-series stage) include the series metric{labels}.
func (p *Publisher) fedBy(samples []series.Sample) func(string, map[string]string) bool {
	clear(p.fed)
	if p.fed == nil {
		p.fed = map[string]bool{}
	}
	var b []byte
	for i := range samples {
		b = appendSeriesKey(b[:0], &samples[i])
		p.fed[string(b)] = true
	}
	p.key = b
	return func(metric string, labels map[string]string) bool {
		k := append(p.key[:0], metric...)
		for _, n := range ownLabels {
			if v, ok := labels[n]; ok {
				k = append(append(append(append(k, 0), n...), '='), v...)
			}
		}
		p.key = k
		return p.fed[string(k)] // no allocation: a map index by a converted byte slice
	}
}

// appendSeriesKey appends the key fedBy looks a series up by: its metric
// name, then each of its own labels as \x00name=value. The one place this
// package reads a sample's labels.
func appendSeriesKey(b []byte, s *series.Sample) []byte {
	ls := s.Series.Labels
	b = append(b, ls.Name()...)
	for _, n := range ownLabels {
		if v := ls.Get(n); v != "" {
			b = append(append(append(append(b, 0), n...), '='), v...)
		}
	}
	return b
}
