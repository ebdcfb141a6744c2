// Package sinks defines what the gateway's consumers hand their samples
// to: a Sink. Each consumer (one per sink and stream partition) turns
// snapshots into samples with a pipeline.Processor and appends them, one
// snapshot at a time, to its sink; the snapshot is acknowledged on the
// stream when the sink calls done.
//
// Two sinks exist: a Prometheus remote-write queue (RemoteWrite, over
// pkg/sinks/remotewrite) and the NATS automation stream
// (pkg/sinks/automation).
package sinks

import (
	"context"
	"errors"

	"github.com/bmcstream/bmcstream/pkg/pipeline"
	"github.com/bmcstream/bmcstream/pkg/series"
	v1 "github.com/bmcstream/bmcstream/proto/bmcstream/v1"
)

// Sink takes batches of samples.
//
// Append either takes b, and then calls done exactly once when every
// sample is delivered or permanently dropped (possibly before Append
// returns, from any goroutine), or refuses it with an error and never
// calls done:
//
//   - an error marked Permanent would recur on every redelivery: the
//     consumer refuses (terminates) the snapshot;
//   - an error marked Retry is passing: the snapshot is redelivered after
//     a pause;
//   - any other error (the sink is stopping, ctx ended) leaves the
//     snapshot to be redelivered to the next gateway.
//
// Append may block while the sink is full (back-pressure) until ctx ends.
// It must not keep b.Samples or b.Snapshot after it returns: the caller
// reuses them. Every sample of a series comes with the same b.Source, and
// a consumer appends a source's batches in order, the next only once the
// previous one is done.
type Sink interface {
	Append(ctx context.Context, b Batch, done func()) error
}

// Batch is what a consumer appends at a time.
type Batch struct {
	// Source is what the samples come from: a BMC id, or
	// pipeline.RollupKey for the roll-ups. A sink that spreads samples
	// over workers keeps a source's together and in order.
	Source string
	// Samples are the samples to write, in order.
	Samples []series.Sample
	// Snapshot is the snapshot the samples were made of; nil for samples
	// of no one snapshot (roll-ups, the staleness markers of a BMC
	// forgotten).
	Snapshot *v1.Snapshot
	// Change is the protocol move Snapshot made (pipeline.Processor's
	// Output.Change), with the BMC's preferred protocol.
	Change pipeline.SourceChange
	Prefer v1.Protocol
}

// Flusher is a Sink that batches: FlushNow asks it to send what it holds
// now rather than at its batch deadline. It must not block. A consumer
// waiting for a source's previous batch calls it.
type Flusher interface {
	FlushNow()
}

// Forgetter is a Sink that keeps state per source: Forget drops it when
// the consumer forgets the BMC (it left the inventory or went quiet).
// Called from the consumer's goroutine, never during Append.
type Forgetter interface {
	Forget(source string)
}

// Permanent marks err as one that would recur on every redelivery. The
// error's text is err's.
func Permanent(err error) error { return permanentError{err} }

// Retry marks err as passing: the same batch may succeed later. The
// error's text is err's.
func Retry(err error) error { return retryError{err} }

// IsPermanent and IsRetry report how an Append error is marked.
func IsPermanent(err error) bool { return errors.As(err, new(permanentError)) }
func IsRetry(err error) bool     { return errors.As(err, new(retryError)) }

type permanentError struct{ error }

func (e permanentError) Unwrap() error { return e.error }

type retryError struct{ error }

func (e retryError) Unwrap() error { return e.error }
