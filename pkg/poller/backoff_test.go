package poller

import (
	"os"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/bmcstream/bmcstream/internal/testbed"
	"github.com/bmcstream/bmcstream/pkg/bmcsim/model"
	"github.com/bmcstream/bmcstream/pkg/inventory"
)

// TestBackoff checks the poller is gentle with BMCs that push back: a BMC
// answering 503 with Retry-After is not asked again before it, a BMC that
// refuses our credentials is probed less and less often (failed logins
// lock accounts on some BMCs), a dead BMC likewise, and healthy BMCs keep
// their rhythm.
func TestBackoff(t *testing.T) {
	t.Parallel()
	tb := newTestbed(t, 4, "redfish", time.Second)
	ids := []string{"bmc-00001", "bmc-00002", "bmc-00003", "bmc-00004"}
	busy, _ := tb.fleet.Get(ids[0])
	busy.BMC.SetFaults(model.Faults{HTTPStatus: 503, RetryAfterSeconds: 3})
	dead, _ := tb.fleet.Get(ids[2])
	dead.BMC.SetFaults(model.Faults{Down: true})
	// ids[1] gets credentials the BMC refuses.
	inv, err := inventory.Load(tb.invFile)
	require.NoError(t, err)
	entries := inv.All()
	entries[1].Credentials = "wrong"
	b, err := inventory.Marshal(entries)
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(tb.invFile, b, 0o600))
	require.NoError(t, os.WriteFile(tb.credFile, []byte("bmcsim:\n  username: admin\n  password: bmcsim-password\nwrong:\n  username: admin\n  password: not-it\n"), 0o600))

	rec := record(t, tb.nats.ClientURL())
	start := time.Now()
	runPoller(t, tb.config(t, "gentle", "polling:\n  max_backoff: 8s\n"))
	// Count the polls that started in the 9 s from start, once the healthy
	// BMC has published one started after them (so every poll of the
	// window has been published).
	end := start.Add(9 * time.Second)
	testbed.Eventually(t, 20*time.Second, func() bool { return rec.polledSince(ids[3:], end) }, "the healthy BMC polled past the window")
	got := rec.pollers(start, end)
	n := func(id string) int { return got[id]["gentle"] }
	t.Logf("polls in 9 s at a 1 s interval: busy(503, Retry-After 3) %d, refused %d, dead %d, healthy %d", n(ids[0]), n(ids[1]), n(ids[2]), n(ids[3]))
	require.GreaterOrEqual(t, n(ids[3]), 8, "healthy BMC keeps its rhythm")
	require.LessOrEqual(t, n(ids[0]), 4, "Retry-After honoured")
	require.LessOrEqual(t, n(ids[1]), 5, "refused credentials back off")
	require.LessOrEqual(t, n(ids[2]), 5, "dead BMC backs off")
	require.Positive(t, n(ids[0]))
	require.Positive(t, n(ids[1]))
	require.Positive(t, n(ids[2]))
}
