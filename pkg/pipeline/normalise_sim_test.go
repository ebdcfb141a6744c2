package pipeline

import (
	"context"
	"errors"
	"net"
	"net/http/httptest"
	"net/url"
	"strconv"
	"testing"
	"time"

	"github.com/prometheus/prometheus/prompb"
	"github.com/stretchr/testify/require"

	simipmi "github.com/bmcstream/bmcstream/pkg/bmcsim/ipmi"
	"github.com/bmcstream/bmcstream/pkg/bmcsim/model"
	simredfish "github.com/bmcstream/bmcstream/pkg/bmcsim/redfish"
	"github.com/bmcstream/bmcstream/pkg/secret"
	"github.com/bmcstream/bmcstream/pkg/sources"
	ipmisource "github.com/bmcstream/bmcstream/pkg/sources/ipmi"
	rfsource "github.com/bmcstream/bmcstream/pkg/sources/redfish"
	v1 "github.com/bmcstream/bmcstream/proto/bmcstream/v1"
)

// simInstant is the frozen instant every simulated poll reads: the one the
// sources' and bmcsim's own golden tests use.
func simInstant() time.Time { return time.Date(2026, 11, 21, 12, 0, 0, 0, time.UTC) }

const (
	simUser     = "operator"
	simPassword = "normalise-test-pw"
)

// simPoll is one virtual BMC polled over both protocols at simInstant.
type simPoll struct {
	bmc     *model.BMC
	redfish *v1.Snapshot
	ipmi    *v1.Snapshot
}

// simPersonalities lists bmcsim's built-in personalities.
func simPersonalities(t testing.TB) map[string]*model.Personality {
	t.Helper()
	ps, err := model.Builtin()
	require.NoError(t, err)
	return ps
}

// pollSim serves one virtual BMC of personality name over Redfish (HTTP on
// loopback) and IPMI (RMCP+ on loopback UDP) with a frozen clock, and polls
// it once over each with the real sources, as a poller does. Both views
// read the same model at the same instant.
func pollSim(t *testing.T, name string) simPoll {
	t.Helper()
	p, ok := simPersonalities(t)[name]
	require.True(t, ok, name)
	b := model.NewBMC("bmc-1", "r01", p, model.Room{Seed: 7}, simUser, simPassword)
	at := simInstant()
	now := func() time.Time { return at }
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	out := simPoll{bmc: b}

	// Redfish.
	h := simredfish.NewHandler(b, simredfish.Options{Now: now, IgnoreSensorLatency: true})
	srv := httptest.NewServer(h)
	u, err := url.Parse(srv.URL)
	require.NoError(t, err)
	host, port, err := net.SplitHostPort(u.Host)
	require.NoError(t, err)
	portN, err := strconv.Atoi(port)
	require.NoError(t, err)
	tg := sources.Target{Host: host, Port: portN, Scheme: "http", Username: simUser, Password: secret.Secret(simPassword)}
	tr, err := rfsource.NewTransport(tg)
	require.NoError(t, err)
	rf := rfsource.New(tg, rfsource.Options{Now: now, Transport: tr})
	out.redfish = &v1.Snapshot{}
	require.NoError(t, rf.Collect(ctx, out.redfish), "redfish poll of %s", name)
	require.NoError(t, rf.Close(ctx))
	tr.CloseIdleConnections()
	srv.Close()
	require.NoError(t, h.Close())

	// IPMI.
	is, err := simipmi.New(b, simipmi.Options{Now: now})
	require.NoError(t, err)
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	require.NoError(t, err)
	served := make(chan error, 1)
	go func() { served <- is.Serve(context.Background(), pc) }()
	itg := sources.Target{Host: "127.0.0.1", Port: pc.LocalAddr().(*net.UDPAddr).Port, Username: simUser, Password: secret.Secret(simPassword)}
	ip := ipmisource.New(itg, ipmisource.Options{Now: now})
	out.ipmi = &v1.Snapshot{}
	require.NoError(t, ip.Collect(ctx, out.ipmi), "ipmi poll of %s", name)
	require.NoError(t, ip.Close(ctx))
	require.NoError(t, is.Close())
	if err := <-served; !errors.Is(err, simipmi.ErrClosed) {
		require.NoError(t, err)
	}

	for _, s := range []*v1.Snapshot{out.redfish, out.ipmi} {
		s.BmcId = "bmc-1"
		s.PollerId = "poller-a"
		s.PollStartMs = at.UnixMilli()
		s.PollEndMs = at.UnixMilli() + 250
	}
	return out
}

// simBase is the base label set the simulated BMC's series carry.
func simBase(bmc string) []prompb.Label {
	return []prompb.Label{{Name: "bmc", Value: bmc}, {Name: "rack", Value: "r01"}, {Name: "site", Value: "lab"}}
}
