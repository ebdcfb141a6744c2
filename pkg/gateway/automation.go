package gateway

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/nats-io/nats.go"

	"github.com/bmcstream/bmcstream/pkg/bus"
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
	a.evBuf = a.events.Observe(a.evBuf[:0], s, labels)
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

func (a *automation) flush(ctx context.Context) error {
	return a.nc.FlushWithContext(ctx)
}
