package sources

import (
	"context"
	"errors"
	"fmt"
	"testing"

	"github.com/stretchr/testify/require"

	v1 "github.com/bmcstream/bmcstream/proto/bmcstream/v1"
)

func TestClassOf(t *testing.T) {
	require.Equal(t, ClassAuth, ClassOf(fmt.Errorf("poll: %w", Errorf(ClassAuth, "401"))))
	require.Equal(t, ClassTimeout, ClassOf(fmt.Errorf("x: %w", context.DeadlineExceeded)))
	require.Equal(t, ClassProtocol, ClassOf(errors.New("odd")))
	var s v1.Snapshot
	err := Fail(&s, Errorf(ClassSessionLimit, "maximum number of user sessions"))
	require.Error(t, err)
	require.Equal(t, "session_limit", s.ErrorClass)
	require.Contains(t, s.Error, "maximum number")
}
