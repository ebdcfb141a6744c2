package bus

import (
	"context"
	"fmt"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// JetStreamConfig returns the stream configuration for raw snapshots:
// limits retention (every consumer reads independently, so one sink's
// outage does not delete data another sink still needs), oldest discarded
// first, and a Nats-Msg-Id duplicate window.
func (c StreamConfig) JetStreamConfig() jetstream.StreamConfig {
	storage := jetstream.FileStorage
	if c.Storage == "memory" {
		storage = jetstream.MemoryStorage
	}
	return jetstream.StreamConfig{
		Name:        c.Name,
		Description: "bmcstream raw BMC snapshots (schema bmcstream.v1.Snapshot)",
		Subjects:    []string{RawWildcard},
		Retention:   jetstream.LimitsPolicy,
		Discard:     jetstream.DiscardOld,
		MaxAge:      time.Duration(c.MaxAge),
		MaxBytes:    orUnlimited(c.MaxBytes),
		MaxMsgSize:  c.MaxMsgSize,
		Duplicates:  time.Duration(c.DuplicateWindow),
		Replicas:    c.Replicas,
		Storage:     storage,
	}
}

func orUnlimited(n int64) int64 {
	if n <= 0 {
		return -1
	}
	return n
}

// EnsureStream creates the raw snapshot stream, or updates it to match the
// configuration when it exists (an operator changing max_age takes effect on
// the next start). Storage type cannot change on a live stream; that error is
// returned as is.
func EnsureStream(ctx context.Context, js jetstream.JetStream, c StreamConfig) (jetstream.Stream, error) {
	s, err := js.CreateOrUpdateStream(ctx, c.JetStreamConfig())
	if err != nil {
		return nil, fmt.Errorf("create or update stream %s: %w", c.Name, err)
	}
	return s, nil
}

// ConsumerConfig shapes one durable pull consumer of the raw stream.
type ConsumerConfig struct {
	// Durable is the consumer's name; it survives restarts.
	Durable string
	// AckWait is how long the server waits for an ack before redelivering.
	AckWait time.Duration
	// MaxAckPending bounds the snapshots in flight, unacknowledged.
	MaxAckPending int
	// DeliverNew starts a newly created consumer at new messages instead of
	// the start of the stream.
	DeliverNew bool
}

// EnsureConsumer creates or updates a durable pull consumer on the raw
// stream with explicit acks and unlimited redeliveries: a snapshot leaves
// the stream's pending set only when it was delivered (acked) or found
// poison (terminated).
func EnsureConsumer(ctx context.Context, s jetstream.Stream, c ConsumerConfig) (jetstream.Consumer, error) {
	deliver := jetstream.DeliverAllPolicy
	if c.DeliverNew {
		deliver = jetstream.DeliverNewPolicy
	}
	cons, err := s.CreateOrUpdateConsumer(ctx, jetstream.ConsumerConfig{
		Durable:       c.Durable,
		Description:   "bmcstream gateway",
		AckPolicy:     jetstream.AckExplicitPolicy,
		AckWait:       c.AckWait,
		MaxAckPending: c.MaxAckPending,
		MaxDeliver:    -1,
		DeliverPolicy: deliver,
		FilterSubject: RawWildcard,
	})
	if err != nil {
		return nil, fmt.Errorf("create or update consumer %s: %w", c.Durable, err)
	}
	return cons, nil
}
