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
	cfg := jetstream.StreamConfig{
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
	if c.Partitions > 0 {
		cfg.SubjectTransform = partitionTransform(c.Partitions)
	}
	return cfg
}

// partitionTransform is the stream subject transform of n partitions:
// nats-server hashes the BMC token (wildcard 1) into 0..n-1.
func partitionTransform(n int) *jetstream.SubjectTransformConfig {
	return &jetstream.SubjectTransformConfig{
		Source:      RawPrefix + "*",
		Destination: RawPrefix + "{{partition(" + strconv.Itoa(n) + ",1)}}.{{wildcard(1)}}",
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
//
// Partitions of 0 keep whatever partitioning the stream has: a poller or
// gateway not configured for it must not undo the partitions other
// gateways consume (an unpartitioned consumer reads both forms). A server
// older than 2.10 ignores subject transforms; that is an error here rather
// than partitioned consumers that never receive anything.
func EnsureStream(ctx context.Context, js jetstream.JetStream, c StreamConfig) (jetstream.Stream, error) {
	cfg := c.JetStreamConfig()
	if c.Partitions == 0 {
		if s, err := js.Stream(ctx, c.Name); err == nil {
			cfg.SubjectTransform = s.CachedInfo().Config.SubjectTransform
		}
	}
	s, err := js.CreateOrUpdateStream(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("create or update stream %s: %w", c.Name, err)
	}
	if c.Partitions > 0 && s.CachedInfo().Config.SubjectTransform == nil {
		return nil, fmt.Errorf("stream %s: the NATS server ignored the subject transform that partitions it (nats.stream.partitions needs nats-server 2.10 or later)", c.Name)
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
	// Filter is the subjects the consumer reads; empty means every raw
	// subject. A partition's consumer filters on PartitionFilter.
	Filter string
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
	filter := c.Filter
	if filter == "" {
		filter = RawWildcard
	}
	cons, err := s.CreateOrUpdateConsumer(ctx, jetstream.ConsumerConfig{
		Durable:       c.Durable,
		Description:   "bmcstream gateway",
		AckPolicy:     jetstream.AckExplicitPolicy,
		AckWait:       c.AckWait,
		MaxAckPending: c.MaxAckPending,
		MaxDeliver:    -1,
		DeliverPolicy: deliver,
		FilterSubject: filter,
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
