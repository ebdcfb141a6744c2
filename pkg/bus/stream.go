package bus

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"strconv"
	"strings"
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

// CheckServerURLs checks a comma-separated list of NATS server URLs the
// way nats.go reads it (a bare host:port means nats://host:port): a known
// scheme, a host, a port in range. A typo is then a configuration error at
// start rather than a client retrying an impossible address forever. A URL
// that does not parse at all is left to Config.Validate, which reports it.
// Errors never repeat a URL: it may hold a password.
func CheckServerURLs(urls string) error {
	n := 0
	for i, s := range strings.Split(urls, ",") {
		s = strings.TrimSpace(s)
		if s == "" {
			continue
		}
		n++
		if !strings.Contains(s, "://") {
			s = "nats://" + s
		}
		u, err := url.Parse(s)
		if err != nil {
			continue
		}
		switch u.Scheme {
		case "nats", "tls", "ws", "wss":
		default:
			return fmt.Errorf("server %d: scheme %q is not one of nats, tls, ws, wss", i+1, u.Scheme)
		}
		if u.Hostname() == "" {
			return fmt.Errorf("server %d has no host", i+1)
		}
		if p := u.Port(); p != "" {
			if port, err := strconv.Atoi(p); err != nil || port < 1 || port > 65535 {
				return fmt.Errorf("server %d: port %q is not a port", i+1, p)
			}
		}
	}
	if n == 0 {
		return errors.New("no server")
	}
	return nil
}
