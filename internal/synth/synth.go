// Package synth makes synthetic BMC snapshots with values tests can
// recompute, and publishes them on NATS exactly as a poller does. Gateway
// tests use it to control every sample they expect.
package synth

import (
	"context"
	"fmt"
	"math"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/bmcstream/bmcstream/pkg/bus"
	"github.com/bmcstream/bmcstream/pkg/inventory"
	v1 "github.com/bmcstream/bmcstream/proto/bmcstream/v1"
)

// Fleet is a set of synthetic BMCs laid out in racks.
type Fleet struct {
	BMCs []inventory.BMC
}

// NewFleet lays out n BMCs, 20 per rack, 10 racks per row, in one site.
func NewFleet(n int) Fleet {
	f := Fleet{BMCs: make([]inventory.BMC, n)}
	for i := range n {
		rack := i / 20
		f.BMCs[i] = inventory.BMC{
			ID:       fmt.Sprintf("sim-%04d", i),
			Address:  fmt.Sprintf("127.0.0.1:%d", 20000+i),
			Protocol: inventory.Redfish,
			Interval: inventory.DefaultInterval,
			Labels: map[string]string{
				"site":     "lab",
				"room":     "r1",
				"row":      fmt.Sprintf("row%d", rack/10),
				"rack":     fmt.Sprintf("rack%02d", rack),
				"position": fmt.Sprintf("%d", i%20+1),
			},
		}
	}
	return f
}

// Snapshot returns BMC i's poll at time t. Values are a smooth function of
// the BMC and the time, so tests can recompute what they expect.
func (f Fleet) Snapshot(i int, t time.Time, pollerID string, epoch int64, seq uint64) *v1.Snapshot {
	b := f.BMCs[i]
	ms := t.UnixMilli()
	return &v1.Snapshot{
		BmcId:       b.ID,
		Address:     b.Address,
		Protocol:    v1.Protocol_PROTOCOL_REDFISH,
		PollerId:    pollerID,
		PollerEpoch: epoch,
		Sequence:    seq,
		PollStartMs: ms,
		PollEndMs:   ms + 120,
		Up:          true,
		Info:        map[string]string{"vendor": "Synthetic", "model": "S1", "serial": fmt.Sprintf("SN%04d", i), "firmware": "1.0", "power_state": "On"},
		Readings: []v1.Reading{
			{Name: "Inlet Temp", Id: "0", Kind: v1.Kind_KIND_TEMPERATURE, Unit: "Cel", Context: "Intake", Value: Inlet(i, ms), Health: v1.Health_HEALTH_OK,
				Thresholds: []v1.Threshold{{Kind: v1.ThresholdKind_THRESHOLD_UPPER_CRITICAL, Value: 42}}},
			{Name: "CPU1 Temp", Id: "1", Kind: v1.Kind_KIND_TEMPERATURE, Unit: "Cel", Context: "CPU", Value: Inlet(i, ms) + 25},
			{Name: "Fan1", Id: "2", Kind: v1.Kind_KIND_FAN, Unit: "RPM", Value: 6000 + 40*Inlet(i, ms)},
			{Name: "System Power", Id: "3", Kind: v1.Kind_KIND_POWER, Unit: "W", SensorType: "PowerControl", Value: Power(i, ms)},
			{Name: "PS1", Id: "4", Kind: v1.Kind_KIND_POWER, Unit: "W", SensorType: "PowerSupplyInput", Value: Power(i, ms) / 2},
			{Name: "12V", Id: "5", Kind: v1.Kind_KIND_VOLTAGE, Unit: "V", Value: 12.05},
		},
	}
}

// Inlet is BMC i's intake temperature at Unix ms t, rounded to 0.1 °C.
func Inlet(i int, ms int64) float64 {
	v := 22 + float64(i%7)*0.5 + 2*math.Sin(float64(ms)/600000+float64(i))
	return math.Round(v*10) / 10
}

// Power is BMC i's chassis power at Unix ms t, in whole watts.
func Power(i int, ms int64) float64 {
	return math.Round(300 + 50*math.Sin(float64(ms)/300000+float64(i)/3))
}

// Publisher publishes snapshots as a poller does: one subject per BMC,
// Nats-Msg-Id for the stream's duplicate window, JetStream acks checked.
type Publisher struct {
	NC *nats.Conn
	// JS is nil in core-NATS mode.
	JS jetstream.JetStream
}

// Publish sends one snapshot and, with JetStream, waits for the stream to
// store it.
func (p *Publisher) Publish(ctx context.Context, s *v1.Snapshot) error {
	data, err := s.Marshal()
	if err != nil {
		return fmt.Errorf("marshal snapshot %s: %w", s.BmcId, err)
	}
	msg := &nats.Msg{
		Subject: bus.RawSubject(s.BmcId),
		Data:    data,
		Header:  nats.Header{nats.MsgIdHdr: []string{bus.MsgID(s.PollerId, s.PollerEpoch, s.BmcId, s.Sequence)}},
	}
	if p.JS == nil {
		return p.NC.PublishMsg(msg)
	}
	if _, err := p.JS.PublishMsg(ctx, msg); err != nil {
		return fmt.Errorf("publish snapshot %s: %w", s.BmcId, err)
	}
	return nil
}
