package poller

import (
	"github.com/prometheus/client_golang/prometheus"
)

type metrics struct {
	polls             *prometheus.CounterVec
	duration          *prometheus.HistogramVec
	lag               prometheus.Histogram
	reloads           *prometheus.CounterVec
	sourceErrors      prometheus.Counter
	publishFailures   prometheus.Counter
	membershipChanges prometheus.Counter
	// readingsDropped is the sum over the poller's sources of their
	// DropCounter totals, by reason.
	readingsDropped     *prometheus.CounterVec
	malformedDocuments  prometheus.Counter
	stateLogsSuppressed prometheus.Counter
}

func newMetrics(reg prometheus.Registerer, p *Poller) (*metrics, error) {
	m := &metrics{
		polls: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "bmcstream_poller_polls_total",
			Help: "Polls by protocol, result (ok, partial, error) and error class.",
		}, []string{"protocol", "result", "class"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "bmcstream_poller_poll_duration_seconds",
			Help:    "Duration of one poll of one BMC.",
			Buckets: []float64{0.01, 0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 20, 30},
		}, []string{"protocol"}),
		lag: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "bmcstream_poller_schedule_lag_seconds",
			Help:    "How late a poll started after its slot (waiting for a concurrency slot or a busy machine).",
			Buckets: []float64{0.001, 0.005, 0.01, 0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10},
		}),
		reloads: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "bmcstream_poller_inventory_reloads_total",
			Help: "Inventory reloads by result.",
		}, []string{"result"}),
		sourceErrors: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "bmcstream_poller_source_errors_total",
			Help: "Owned BMCs that could not be polled at all (missing credentials, bad address).",
		}),
		publishFailures: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "bmcstream_poller_publish_failures_total",
			Help: "Snapshots that could not be handed to the publisher.",
		}),
		membershipChanges: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "bmcstream_poller_membership_changes_total",
			Help: "Changes of the set of live pollers (dynamic sharding).",
		}),
		readingsDropped: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "bmcstream_poller_readings_dropped_total",
			Help: "Readings the BMCs listed that the sources left out of the snapshots, by reason (absent, disabled, null, not_a_number, malformed, unsupported_layout, merged; see docs/metrics.md).",
		}, []string{"reason"}),
		malformedDocuments: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "bmcstream_poller_malformed_documents_total",
			Help: "Documents BMCs served that the sources could not decode and went on without (Redfish discovery: a system, chassis or power document that is not JSON).",
		}),
		stateLogsSuppressed: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "bmcstream_poller_state_changes_not_logged_total",
			Help: "Changes of a BMC's state (stopped answering, answering again, failing differently) not logged because too many came at once.",
		}),
	}
	for _, r := range dropReasons {
		m.readingsDropped.WithLabelValues(r)
	}
	owned := prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "bmcstream_poller_owned_bmcs",
		Help: "BMCs this poller owns and polls.",
	}, func() float64 { return float64(p.owned()) })
	members := prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "bmcstream_poller_members",
		Help: "Pollers sharing the inventory (static shards or live dynamic members).",
	}, func() float64 { return float64(len(p.Members())) })
	sessions := prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "bmcstream_poller_sessions_open",
		Help: "Sessions this poller holds on BMCs (one per BMC and protocol whose last poll was answered and authenticated).",
	}, func() float64 { return float64(p.sessions()) })
	for _, c := range []prometheus.Collector{m.polls, m.duration, m.lag, m.reloads, m.sourceErrors, m.publishFailures, m.membershipChanges, m.readingsDropped, m.malformedDocuments, m.stateLogsSuppressed, owned, members, sessions} {
		if err := reg.Register(c); err != nil {
			return nil, err
		}
	}
	return m, nil
}
