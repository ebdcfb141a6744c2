package sinks

import (
	"errors"
	"fmt"
	"io/fs"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestErrorMarks(t *testing.T) {
	base := fmt.Errorf("publish: %w", fs.ErrClosed)

	p := Permanent(base)
	require.Equal(t, base.Error(), p.Error(), "the text is the error's own: log lines stay as they were")
	require.True(t, IsPermanent(p))
	require.False(t, IsRetry(p))
	require.ErrorIs(t, p, fs.ErrClosed)

	r := Retry(base)
	require.Equal(t, base.Error(), r.Error())
	require.True(t, IsRetry(r))
	require.False(t, IsPermanent(r))
	require.ErrorIs(t, r, fs.ErrClosed)

	// Wrapped further, the mark is still found.
	require.True(t, IsPermanent(fmt.Errorf("sink a: %w", p)))
	// Unmarked: neither (the consumer leaves the snapshot for redelivery).
	require.False(t, IsPermanent(base))
	require.False(t, IsRetry(errors.New("stopped")))
}
