package sinks

import (
	"context"

	"github.com/bmcstream/bmcstream/pkg/sinks/remotewrite"
)

// RemoteWrite is a remote-write queue as a Sink. The queue's own life
// (Start, Stop) stays with its owner; several consumers (one per stream
// partition held) may share one queue.
type RemoteWrite struct {
	Queue *remotewrite.Queue
}

// Append queues b's samples on the shard of b.Source
// (remotewrite.ShardKey), so a BMC's series share a shard, stay in order
// and travel together in requests. Its errors (the queue stopped, ctx
// ended) are neither permanent nor passing: the snapshot waits for the
// next gateway.
func (r RemoteWrite) Append(ctx context.Context, b Batch, done func()) error {
	return r.Queue.AppendKey(ctx, remotewrite.ShardKey(b.Source), b.Samples, done)
}

// FlushNow sends what the queue holds without waiting for its deadline.
func (r RemoteWrite) FlushNow() { r.Queue.FlushNow() }
