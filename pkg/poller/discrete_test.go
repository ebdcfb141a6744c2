package poller

import (
	"testing"

	"github.com/stretchr/testify/require"
)

// TestIPMIDiscreteDefault checks that discrete IPMI sensors are read
// unless the configuration turns them off.
func TestIPMIDiscreteDefault(t *testing.T) {
	const base = "inventory:\n  files: [x.yml]\n"
	cfg, err := ParseConfig([]byte(base))
	require.NoError(t, err)
	require.True(t, cfg.IPMI.Discrete)
	cfg, err = ParseConfig([]byte(base + "ipmi:\n  privilege: operator\n"))
	require.NoError(t, err)
	require.True(t, cfg.IPMI.Discrete, "setting another ipmi key keeps the default")
	cfg, err = ParseConfig([]byte(base + "ipmi:\n  discrete: false\n"))
	require.NoError(t, err)
	require.False(t, cfg.IPMI.Discrete)
}
