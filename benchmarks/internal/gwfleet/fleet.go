// Package gwfleet builds the load the gateway benchmarks share: snapshots
// of realistic size and shape (one real Redfish poll of each bmcsim
// personality, replayed for a large fleet with varying values), the series
// the gateway's normaliser makes of them, and the encode ceiling those
// series are measured against.
package gwfleet

import (
	"context"
	"fmt"
	"math"
	"net"
	"net/http/httptest"
	"net/url"
	"sort"
	"strconv"
	"time"

	"github.com/bmcstream/bmcstream/internal/synth"
	"github.com/bmcstream/bmcstream/pkg/bmcsim/model"
	simredfish "github.com/bmcstream/bmcstream/pkg/bmcsim/redfish"
	"github.com/bmcstream/bmcstream/pkg/inventory"
	"github.com/bmcstream/bmcstream/pkg/pipeline"
	"github.com/bmcstream/bmcstream/pkg/secret"
	"github.com/bmcstream/bmcstream/pkg/series"
	"github.com/bmcstream/bmcstream/pkg/sources"
	rfsource "github.com/bmcstream/bmcstream/pkg/sources/redfish"
	v1 "github.com/bmcstream/bmcstream/proto/bmcstream/v1"
)

// Interval is the poll interval the fleet's snapshots are spaced by.
const Interval = 30 * time.Second

const (
	simUser     = "operator"
	simPassword = "gwfleet-bench-pw"
)

// frozen is the instant the template polls read.
var frozen = time.Date(2026, 11, 21, 12, 0, 0, 0, time.UTC)

// Templates polls one virtual BMC of every built-in bmcsim personality once
// over Redfish on loopback, with the real source, as a poller does. The
// result is sorted by personality name.
func Templates(ctx context.Context) ([]*v1.Snapshot, error) {
	ps, err := model.Builtin()
	if err != nil {
		return nil, err
	}
	names := make([]string, 0, len(ps))
	for n := range ps {
		names = append(names, n)
	}
	sort.Strings(names)
	out := make([]*v1.Snapshot, 0, len(names))
	for _, n := range names {
		s, err := pollOnce(ctx, n, ps[n])
		if err != nil {
			return nil, fmt.Errorf("poll personality %s: %w", n, err)
		}
		out = append(out, s)
	}
	return out, nil
}

func pollOnce(ctx context.Context, name string, p *model.Personality) (*v1.Snapshot, error) {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	b := model.NewBMC("tmpl-"+name, "r01", p, model.Room{Seed: 7}, simUser, simPassword)
	now := func() time.Time { return frozen }
	h := simredfish.NewHandler(b, simredfish.Options{Now: now, IgnoreSensorLatency: true})
	srv := httptest.NewServer(h)
	// the handler's close releases the simulator; the templates are read already
	defer func() { srv.Close(); _ = h.Close() }()
	u, err := url.Parse(srv.URL)
	if err != nil {
		return nil, err
	}
	host, port, err := net.SplitHostPort(u.Host)
	if err != nil {
		return nil, err
	}
	portN, err := strconv.Atoi(port)
	if err != nil {
		return nil, err
	}
	tg := sources.Target{Host: host, Port: portN, Scheme: "http", Username: simUser, Password: secret.Secret(simPassword)}
	tr, err := rfsource.NewTransport(tg)
	if err != nil {
		return nil, err
	}
	defer tr.CloseIdleConnections()
	src := rfsource.New(tg, rfsource.Options{Now: now, Transport: tr})
	s := &v1.Snapshot{}
	if err := src.Collect(ctx, s); err != nil {
		return nil, err
	}
	if err := src.Close(ctx); err != nil {
		return nil, err
	}
	return s, nil
}

// Fleet is n BMCs, each replaying one personality's template, grown to
// its size.
type Fleet struct {
	// BMCs is the inventory (synth's layout: site, room, row, rack,
	// position labels).
	BMCs      []inventory.BMC
	templates []*v1.Snapshot
}

// New lays out n BMCs over the templates, round robin.
func New(n int, templates []*v1.Snapshot) *Fleet {
	return &Fleet{BMCs: synth.NewFleet(n).BMCs, templates: templates}
}

// Snapshot is BMC i's poll number poll (0, 1, ...), started at start plus
// poll intervals plus a per-BMC offset within the interval, published by
// poller "bench" with sequence poll+1. Values move from poll to poll and
// differ between BMCs, as real sensors do.
func (f *Fleet) Snapshot(i, poll int, start time.Time) *v1.Snapshot {
	t := f.templates[i%len(f.templates)]
	s := *t
	b := f.BMCs[i]
	at := start.Add(time.Duration(poll)*Interval + time.Duration(i%1000)*Interval/1000)
	ms := at.UnixMilli()
	shift := ms - frozen.UnixMilli()
	s.BmcId, s.Address = b.ID, b.Address
	s.PollerId, s.PollerEpoch, s.Sequence = "bench", 1, uint64(poll+1)
	s.PollStartMs, s.PollEndMs = ms, ms+(t.PollEndMs-t.PollStartMs)
	n := f.Readings(i)
	s.Readings = make([]v1.Reading, n)
	for k := range n {
		r := t.Readings[k%len(t.Readings)]
		if c := k / len(t.Readings); c > 0 {
			// More sensors of the same kinds, named in the vendor's style:
			// a bigger server of the same make.
			r.Name = fmt.Sprintf("%s #%d", r.Name, c)
			if r.Id != "" {
				r.Id = fmt.Sprintf("%s_%d", r.Id, c)
			}
		}
		if r.TimestampMs > 0 {
			r.TimestampMs += shift
		}
		if r.Value != 0 {
			// A drift of up to ±2 % that differs per BMC and poll,
			// rounded as BMCs report.
			d := 0.02 * math.Sin(float64(i*131+k*17+poll*7))
			r.Value = math.Round(r.Value*(1+d)*100) / 100
		}
		s.Readings[k] = r
	}
	return &s
}

// Readings is the number of readings in BMC i's snapshots: 40 to 120,
// spread evenly over the fleet (mean 80). bmcsim's personalities list
// 10-17 sensors; a snapshot repeats its personality's sensors under
// numbered names until it has its count, as a larger server of the same
// make would (more DIMMs, drives, PSUs and fans).
func (f *Fleet) Readings(i int) int { return 40 + (i*37)%81 }

// Series normalises and enriches snapshots as the gateway does (the
// built-in rules, the inventory's base labels) and returns the samples.
func (f *Fleet) Series(snaps []*v1.Snapshot) ([]series.Sample, error) {
	b, err := inventory.Marshal(f.BMCs)
	if err != nil {
		return nil, err
	}
	inv, err := inventory.Parse(b)
	if err != nil {
		return nil, err
	}
	en := pipeline.NewEnricher(inv)
	norm, err := pipeline.NewNormaliser(pipeline.NormaliserOptions{})
	if err != nil {
		return nil, err
	}
	var out []series.Sample
	var st pipeline.Stats
	for _, s := range snaps {
		base, _ := en.Labels(s.BmcId)
		out = norm.Normalise(out, s, base, &st)
	}
	return out, nil
}
