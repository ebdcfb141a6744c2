// Package pipeline holds the gateway's stages: decode a snapshot, normalise
// its readings into bmcstream's metric schema, and join inventory labels.
// Stages are pure: no I/O, no goroutines, no logging; they report problems
// as errors and counts for the caller to act on.
package pipeline

import (
	"errors"
	"fmt"

	v1 "github.com/bmcstream/bmcstream/proto/bmcstream/v1"
)

// ErrMalformed marks a message that can never be processed: bad bytes or a
// snapshot missing what every consumer relies on. Such messages are
// terminated, not redelivered.
var ErrMalformed = errors.New("malformed snapshot")

// Decode unmarshals a snapshot into s, reusing the capacity of s.Readings,
// and checks the fields every later stage relies on.
func Decode(data []byte, s *v1.Snapshot) error {
	readings := s.Readings[:0]
	*s = v1.Snapshot{Readings: readings}
	if len(data) == 0 {
		return fmt.Errorf("%w: empty message", ErrMalformed)
	}
	if err := s.Unmarshal(data); err != nil {
		return fmt.Errorf("%w: %v", ErrMalformed, err)
	}
	if s.BmcId == "" {
		return fmt.Errorf("%w: no bmc_id", ErrMalformed)
	}
	if s.PollStartMs <= 0 {
		return fmt.Errorf("%w: bmc %q: no poll_start_ms", ErrMalformed, s.BmcId)
	}
	return nil
}
