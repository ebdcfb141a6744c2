package gateway

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/nats-io/nats.go"

	"github.com/bmcstream/bmcstream/pkg/bus"
	"github.com/bmcstream/bmcstream/pkg/inventory"
	"github.com/bmcstream/bmcstream/pkg/pipeline"
	"github.com/bmcstream/bmcstream/pkg/series"
	v1 "github.com/bmcstream/bmcstream/proto/bmcstream/v1"
)

// automation publishes the automation stream: each accepted snapshot's
// normalised readings on bmc.v1.norm.<site>.<rack>.<bmc> and the events it
// shows on bmc.v1.events.<site>.<rack>.<bmc>, both as JSON (see
// docs/automation.md). It runs as one more consumer of the raw stream, so
// events are detected once per gateway deployment's consumer, not once per
// sink. Messages are published on core NATS: automation subscribes live.
type automation struct {
	g      *Gateway
	nc     *nats.Conn
	events *pipeline.Events
	evBuf  []pipeline.Event
	fed    map[string]bool // fedBy's set, reused
	key    []byte          // fedBy's key buffer, reused
}

func (a *automation) publish(s *v1.Snapshot, samples []series.Sample) error {
	labels := map[string]string{}
	if e, ok := a.g.inv.Load().Get(s.BmcId); ok {
		labels = e.Labels
	}
	site, rack := labels["site"], labels["rack"]
	msg, err := json.Marshal(pipeline.NewNormMessage(s.BmcId, labels, s.PollStartMs, samples))
	if err != nil {
		return fmt.Errorf("encode normalised readings of %s: %w", s.BmcId, err)
	}
	if err := a.nc.Publish(bus.NormSubject(site, rack, s.BmcId), msg); err != nil {
		return fmt.Errorf("publish normalised readings of %s: %w", s.BmcId, err)
	}
	var fed func(string, map[string]string) bool
	if a.bothProtocols(s.BmcId) {
		fed = a.fedBy(samples)
	}
	a.evBuf = a.events.ObserveFed(a.evBuf[:0], s, labels, fed)
	for i := range a.evBuf {
		b, err := json.Marshal(&a.evBuf[i])
		if err != nil {
			return fmt.Errorf("encode event of %s: %w", s.BmcId, err)
		}
		if err := a.nc.Publish(bus.EventSubject(site, rack, s.BmcId), b); err != nil {
			return fmt.Errorf("publish event of %s: %w", s.BmcId, err)
		}
		a.g.metrics.events.WithLabelValues(string(a.evBuf[i].Kind)).Inc()
	}
	return nil
}

// bothProtocols reports whether the inventory polls the BMC over both
// protocols (an unknown BMC may be, as the sinks assume).
func (a *automation) bothProtocols(bmc string) bool {
	e, ok := a.g.enrich.Load().Inventory().Get(bmc)
	return !ok || e.Protocol == inventory.Both
}

// ownLabels are the labels a series has of its own, beside the BMC's and
// the inventory's: what Event.SeriesLabels carries.
var ownLabels = [...]string{"context", "fan", "kind", "psu", "sensor"}

// fedBy returns whether the samples one snapshot fed (after the
// one-source-per-series stage) include the series metric{labels}.
func (a *automation) fedBy(samples []series.Sample) func(string, map[string]string) bool {
	clear(a.fed)
	if a.fed == nil {
		a.fed = map[string]bool{}
	}
	var b []byte
	for i := range samples {
		b = b[:0]
		for _, l := range samples[i].Labels {
			if l.Name == "__name__" {
				b = append(b, l.Value...)
				break
			}
		}
		for _, n := range ownLabels {
			for _, l := range samples[i].Labels {
				if l.Name == n {
					b = append(append(append(append(b, 0), n...), '='), l.Value...)
				}
			}
		}
		a.fed[string(b)] = true
	}
	a.key = b
	return func(metric string, labels map[string]string) bool {
		k := append(a.key[:0], metric...)
		for _, n := range ownLabels {
			if v, ok := labels[n]; ok {
				k = append(append(append(append(k, 0), n...), '='), v...)
			}
		}
		a.key = k
		return a.fed[string(k)] // no allocation: a map index by a converted byte slice
	}
}

func (a *automation) flush(ctx context.Context) error {
	return a.nc.FlushWithContext(ctx)
}
