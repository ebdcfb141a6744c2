package poller

import (
	"context"
	"fmt"
	"log/slog"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/stretchr/testify/require"

	"github.com/bmcstream/bmcstream/pkg/sources"
)

// TestReadingsDroppedRealSource runs the poller with its production
// sources over a simulated iLO, which lists an empty DIMM bank and fan bay
// as Absent: bmcstream_poller_readings_dropped_total{reason="absent"}
// counts them, two a poll, from the Redfish source itself.
func TestReadingsDroppedRealSource(t *testing.T) {
	t.Parallel()
	if testing.Short() {
		t.Skip("polls a simulated BMC for several intervals")
	}
	sim, _ := explainFleet(t, "ilo", "redfish", "")
	srv := startJetStream(t)
	cfg, err := ParseConfig([]byte(fmt.Sprintf("poller_id: p1\nnats:\n  url: %s\ninventory:\n  files: [%s]\n  credentials_file: %s\n",
		srv.ClientURL(), sim.InvFile, sim.CredFile)))
	require.NoError(t, err)
	logger := slog.New(slog.DiscardHandler)
	p, err := New(cfg, Options{ShutdownTimeout: 5 * time.Second, Registerer: prometheus.NewRegistry(), NewSource: DefaultSources(cfg, logger), Logger: logger})
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- p.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })

	absent := func() float64 {
		return testutil.ToFloat64(p.metrics.readingsDropped.WithLabelValues(sources.DropAbsent))
	}
	require.Eventually(t, func() bool { return absent() >= 4 }, 40*time.Second, 100*time.Millisecond,
		"the iLO's absent DIMM bank and fan bay, counted over two polls")
	require.Zero(t, testutil.ToFloat64(p.metrics.readingsDropped.WithLabelValues(sources.DropNotANumber)))
}
