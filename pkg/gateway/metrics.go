package gateway

import (
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/bmcstream/bmcstream/internal/ratelog"
	"github.com/bmcstream/bmcstream/pkg/pipeline"
)

type metrics struct {
	snapshots        *prometheus.CounterVec
	samples          *prometheus.CounterVec
	unknownBMC       *prometheus.CounterVec
	readingsSkipped  *prometheus.CounterVec
	fetchErrors      *prometheus.CounterVec
	ackErrors        *prometheus.CounterVec
	progressErrors   *prometheus.CounterVec
	age              *prometheus.HistogramVec
	dedupRejected    *prometheus.CounterVec
	failovers        *prometheus.CounterVec
	protoFailovers   *prometheus.CounterVec
	passedOver       *prometheus.CounterVec
	changeLogs       *prometheus.CounterVec
	changeLog        *ratelog.Burst
	outOfOrder       *prometheus.CounterVec
	staleMarkers     *prometheus.CounterVec
	events           *prometheus.CounterVec
	inventoryBMCs    prometheus.Gauge
	inventoryReloads *prometheus.CounterVec
	replicas         prometheus.Gauge
	partitionsHeld   prometheus.Gauge
	leasesLost       prometheus.Counter
	consumerRestarts *prometheus.CounterVec
	bmcsTracked      *prometheus.GaugeVec
	bmcsForgotten    *prometheus.CounterVec

	countsMu sync.Mutex
	counts   map[string]*bmcCounts // by sink: its consumer loops share them
}

func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	m := &metrics{
		snapshots: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "bmcstream_gateway_snapshots_total",
			Help: "Snapshots consumed per sink, by result: ok, duplicate (HA deduplication), and the refused ones, terminated: malformed (bad bytes, no bmc_id or poll time), oversized (over a snapshot limit), bad_timestamp (poll time far from the gateway's clock), subject_mismatch (bmc_id not the subject's), unknown_bmc (not in the inventory, with inventory.reject_unknown_bmcs), unknown_bmc_limit (not in the inventory, and inventory.max_unknown_bmcs such BMCs have state already), unpublishable (automation only: cannot be encoded or is over max_payload).",
		}, []string{"sink", "result"}),
		samples: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "bmcstream_gateway_samples_total",
			Help: "Samples handed to each sink's queue.",
		}, []string{"sink"}),
		unknownBMC: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "bmcstream_gateway_unknown_bmc_snapshots_total",
			Help: "Snapshots of BMCs missing from the inventory (delivered with only the bmc label).",
		}, []string{"sink"}),
		readingsSkipped: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "bmcstream_gateway_readings_skipped_total",
			Help: "Readings not turned into samples, by reason: unmapped (unknown unit, or kind and unit without a series), discrete_unmapped (discrete sensor with nothing to map), invalid (NaN or infinite), absent (the BMC reports the sensor absent), rule_drop (a mapping rule drops it), status_signal (a power-good or similar status line, not a measurement), duplicate (a second reading of the chassis power), bad_timestamp (the reading's own time far from the gateway's clock).",
		}, []string{"sink", "reason"}),
		fetchErrors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "bmcstream_gateway_fetch_errors_total",
			Help: "Failed pulls from the stream.",
		}, []string{"sink"}),
		ackErrors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "bmcstream_gateway_ack_errors_total",
			Help: "Acks or terminations that could not be sent (the snapshot will be redelivered).",
		}, []string{"sink"}),
		progressErrors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "bmcstream_gateway_in_progress_errors_total",
			Help: "Progress notices (a snapshot still held for a slow sink) that could not be sent; the server may redeliver the snapshot after AckWait.",
		}, []string{"sink"}),
		age: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "bmcstream_gateway_snapshot_age_seconds",
			Help:    "Time from the poll's start to the gateway consuming the snapshot.",
			Buckets: []float64{0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 3600},
		}, []string{"sink"}),
		dedupRejected: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "bmcstream_gateway_dedup_snapshots_rejected_total",
			Help: "Snapshots dropped by HA deduplication: not_leader (the other poller of an HA pair leads) or stale_sequence (redelivered or older than the last accepted).",
		}, []string{"sink", "reason"}),
		failovers: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "bmcstream_gateway_ha_failovers_total",
			Help: "Times a BMC's leading poller changed because the leader went quiet.",
		}, []string{"sink"}),
		protoFailovers: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "bmcstream_gateway_protocol_failovers_total",
			Help: "Times the series of a BMC polled over both protocols moved from one protocol to the other, by direction: takeover (the preferred protocol went down, the other feeds them) or handback (it is up again and feeds them).",
		}, []string{"sink", "direction"}),
		passedOver: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "bmcstream_gateway_protocol_samples_passed_over_total",
			Help: "Samples of a BMC polled over both protocols left out because the preferred protocol feeds their series.",
		}, []string{"sink"}),
		changeLogs: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "bmcstream_gateway_protocol_failover_logs_suppressed_total",
			Help: "Protocol failovers not logged because too many happened at once (they are counted in bmcstream_gateway_protocol_failovers_total all the same).",
		}, []string{"sink"}),
		// Enough lines for a few BMCs to be read one by one; a fleet-wide
		// outage gives one summary line instead.
		changeLog: &ratelog.Burst{Max: 10, Per: time.Second},
		outOfOrder: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "bmcstream_gateway_out_of_order_samples_dropped_total",
			Help: "Samples dropped because their series already had a sample at or after their time.",
		}, []string{"sink"}),
		staleMarkers: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "bmcstream_gateway_staleness_markers_total",
			Help: "Staleness markers written for series that stopped (sensor gone, BMC left the inventory).",
		}, []string{"sink"}),
		events: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "bmcstream_gateway_events_published_total",
			Help: "Events published on bmc.v1.events.>, by kind.",
		}, []string{"kind"}),
		inventoryBMCs: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "bmcstream_gateway_inventory_bmcs",
			Help: "BMCs in the loaded inventory.",
		}),
		inventoryReloads: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "bmcstream_gateway_inventory_reloads_total",
			Help: "Inventory reloads by result.",
		}, []string{"result"}),
		replicas: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "bmcstream_gateway_replicas",
			Help: "Live gateway replicas sharing the partitioned stream, as this replica sees them (0 when the stream is not partitioned).",
		}),
		partitionsHeld: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "bmcstream_gateway_partitions_held",
			Help: "Stream partitions whose lease this replica holds and consumes.",
		}),
		leasesLost: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "bmcstream_gateway_partition_leases_lost_total",
			Help: "Partition leases that expired before this replica renewed them (it could not reach NATS for replicas.ttl); their consumers were stopped.",
		}),
		consumerRestarts: newConsumerRestarts(),
		bmcsTracked: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "bmcstream_gateway_bmcs_tracked",
			Help: "BMCs whose state (deduplication, staleness, plans) a sink's consumer keeps, by whether the inventory lists them (known true or false); those missing from it are bounded by inventory.max_unknown_bmcs.",
		}, []string{"sink", "known"}),
		bmcsForgotten: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "bmcstream_gateway_bmcs_forgotten_total",
			Help: "BMCs whose state a sink's consumer released, by reason: inactive (no snapshot for inventory.forget_after) or removed (left the inventory). Their series end with staleness markers.",
		}, []string{"sink", "reason"}),
		counts: map[string]*bmcCounts{},
	}
	if err := reg.Register(m.consumerRestarts); err != nil {
		return nil, err
	}
	for _, c := range []prometheus.Collector{m.bmcsTracked, m.bmcsForgotten, m.snapshots, m.samples, m.unknownBMC, m.readingsSkipped, m.fetchErrors, m.ackErrors, m.progressErrors, m.age, m.dedupRejected, m.failovers, m.protoFailovers, m.passedOver, m.changeLogs, m.outOfOrder, m.staleMarkers, m.events, m.inventoryBMCs, m.inventoryReloads, m.replicas, m.partitionsHeld, m.leasesLost} {
		if err := reg.Register(c); err != nil {
			return nil, err
		}
	}
	return m, nil
}

type sinkMetrics struct {
	snapshots     *prometheus.CounterVec
	samples       prometheus.Counter
	unknownBMC    prometheus.Counter
	skipped       map[string]prometheus.Counter // by pipeline.Stats reason
	badTime       prometheus.Counter
	fetchErrors   prometheus.Counter
	ackErrors     prometheus.Counter
	progressErrs  prometheus.Counter
	age           prometheus.Observer
	dedupRejected *prometheus.CounterVec
	failovers     prometheus.Counter
	takeovers     prometheus.Counter
	handbacks     prometheus.Counter
	passedOver    prometheus.Counter
	outOfOrder    prometheus.Counter
	staleMarkers  prometheus.Counter
	logLimiter    *ratelog.Limiter

	changeLog            *ratelog.Burst
	changeLogsSuppressed prometheus.Counter

	tracked   *bmcCounts                    // shared by the sink's consumer loops
	forgotten map[string]prometheus.Counter // by reason
}

// bmcCounts counts the BMCs a sink keeps state for, over all its consumer
// loops (one per partition held): a partitioned stream gives each BMC to
// one loop, so the sum is the sink's.
type bmcCounts struct {
	known, unknown atomic.Int64
	knownG         prometheus.Gauge
	unknownG       prometheus.Gauge
}

// add moves the counts and their gauges alike (Add, not Set: loops
// updating at once never leave a stale figure behind).
func (c *bmcCounts) add(known, unknown int64) {
	if known != 0 {
		c.known.Add(known)
		c.knownG.Add(float64(known))
	}
	if unknown != 0 {
		c.unknown.Add(unknown)
		c.unknownG.Add(float64(unknown))
	}
}

func (m *metrics) forSink(name string) *sinkMetrics {
	sm := &sinkMetrics{
		snapshots:     m.snapshots.MustCurryWith(prometheus.Labels{"sink": name}),
		samples:       m.samples.WithLabelValues(name),
		unknownBMC:    m.unknownBMC.WithLabelValues(name),
		skipped:       map[string]prometheus.Counter{},
		badTime:       m.readingsSkipped.WithLabelValues(name, "bad_timestamp"),
		fetchErrors:   m.fetchErrors.WithLabelValues(name),
		ackErrors:     m.ackErrors.WithLabelValues(name),
		progressErrs:  m.progressErrors.WithLabelValues(name),
		age:           m.age.WithLabelValues(name),
		dedupRejected: m.dedupRejected.MustCurryWith(prometheus.Labels{"sink": name}),
		failovers:     m.failovers.WithLabelValues(name),
		takeovers:     m.protoFailovers.WithLabelValues(name, "takeover"),
		handbacks:     m.protoFailovers.WithLabelValues(name, "handback"),
		passedOver:    m.passedOver.WithLabelValues(name),
		outOfOrder:    m.outOfOrder.WithLabelValues(name),
		staleMarkers:  m.staleMarkers.WithLabelValues(name),
		logLimiter:    &ratelog.Limiter{Every: 10 * time.Second},

		changeLog:            m.changeLog,
		changeLogsSuppressed: m.changeLogs.WithLabelValues(name),

		forgotten: map[string]prometheus.Counter{},
	}
	for _, r := range []string{forgetInactive, forgetRemoved} {
		sm.forgotten[r] = m.bmcsForgotten.WithLabelValues(name, r)
	}
	m.countsMu.Lock()
	if m.counts[name] == nil {
		m.counts[name] = &bmcCounts{knownG: m.bmcsTracked.WithLabelValues(name, "true"), unknownG: m.bmcsTracked.WithLabelValues(name, "false")}
		m.counts[name].knownG.Set(0)
		m.counts[name].unknownG.Set(0)
	}
	sm.tracked = m.counts[name]
	m.countsMu.Unlock()
	var st pipeline.Stats
	st.Each(func(reason string, _ int) {
		sm.skipped[reason] = m.readingsSkipped.WithLabelValues(name, reason)
	})
	for _, r := range []string{"ok", "duplicate", "malformed", "oversized", "bad_timestamp", "subject_mismatch", "unknown_bmc", "unknown_bmc_limit", "unpublishable"} {
		sm.snapshots.WithLabelValues(r)
	}
	return sm
}

// addSkipped counts the readings a snapshot's normalisation made no series
// of, by reason.
func (sm *sinkMetrics) addSkipped(st *pipeline.Stats) {
	st.Each(func(reason string, n int) {
		if n > 0 {
			sm.skipped[reason].Add(float64(n))
		}
	})
}
