package remotewrite

import (
	"errors"
	"net/http"
	"strconv"

	"github.com/prometheus/client_golang/prometheus"
)

const (
	namespace = "bmcstream"
	subsystem = "remote_write"
)

// Values of the code label of bmcstream_remote_write_requests_total. The set
// is closed so the label stays bounded whatever a receiver answers.
const (
	code2xx      = "2xx"
	code3xx      = "3xx"
	code4xx      = "4xx"
	code429      = "429"
	code5xx      = "5xx"
	codeOther    = "other"    // A status outside 200-599.
	codeNetwork  = "network"  // No HTTP answer: connection error or timeout.
	codeError    = "error"    // A permanent error without an HTTP answer.
	codeCanceled = "canceled" // Stop gave up on the request.
)

// Reasons of bmcstream_remote_write_samples_dropped_total besides
// "http_<status>".
const (
	reasonEncode = "encode" // The batch could not be encoded.
	reasonError  = "error"  // A permanent error without an HTTP status.
	// reasonConflict: the receiver answered 409 Conflict. Thanos Receive
	// does so when some samples of a request conflict with what it holds
	// (out of order, out of bounds, or a duplicate timestamp with another
	// value) and it has stored all the others, so the request's samples
	// are counted here as an upper bound of what was lost, apart from the
	// http_<status> reasons that mean nothing of the request was stored.
	reasonConflict = "conflict"
)

// metrics are one queue's self-metrics. Every one carries the queue's
// remote_name as a constant label, so several queues share one registry.
type metrics struct {
	samplesSent          prometheus.Counter
	samplesDropped       *prometheus.CounterVec
	samplesRetried       prometheus.Counter
	requests             *prometheus.CounterVec
	requestDuration      prometheus.Histogram
	sentBytes            prometheus.Counter
	queueSamples         prometheus.GaugeFunc
	queueCapacity        prometheus.Gauge
	appendBlocked        prometheus.Counter
	appendBlockedSeconds prometheus.Counter
	splits               prometheus.Counter

	reg        prometheus.Registerer
	registered []prometheus.Collector
}

func newMetrics(name string, queued func() float64) *metrics {
	labels := prometheus.Labels{"remote_name": name}
	opts := func(n, help string) prometheus.Opts {
		return prometheus.Opts{Namespace: namespace, Subsystem: subsystem, Name: n, Help: help, ConstLabels: labels}
	}
	m := &metrics{
		samplesSent: prometheus.NewCounter(prometheus.CounterOpts(opts("samples_sent_total",
			"Samples accepted by the receiver (2xx)."))),
		samplesDropped: prometheus.NewCounterVec(prometheus.CounterOpts(opts("samples_dropped_total",
			"Samples dropped for good, by reason: http_<status> for a permanent HTTP error, conflict for a 409 after which the receiver (Thanos Receive) stored the request's other samples, encode, error.")), []string{"reason"}),
		samplesRetried: prometheus.NewCounter(prometheus.CounterOpts(opts("samples_retried_total",
			"Samples sent again after a recoverable error, counted once per retry."))),
		requests: prometheus.NewCounterVec(prometheus.CounterOpts(opts("requests_total",
			"Remote-write requests by outcome: status class, 429, network, error or canceled.")), []string{"code"}),
		requestDuration: prometheus.NewHistogram(prometheus.HistogramOpts{
			Namespace: namespace, Subsystem: subsystem, Name: "request_duration_seconds",
			Help:        "Duration of remote-write requests, whatever their outcome.",
			ConstLabels: labels,
			Buckets:     []float64{.005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60},
		}),
		sentBytes: prometheus.NewCounter(prometheus.CounterOpts(opts("sent_bytes_total",
			"Compressed request bytes accepted by the receiver."))),
		queueSamples: prometheus.NewGaugeFunc(prometheus.GaugeOpts(opts("queue_samples",
			"Samples appended and not yet sent or dropped: queued, batched or in flight.")), queued),
		queueCapacity: prometheus.NewGauge(prometheus.GaugeOpts(opts("queue_capacity_samples",
			"Samples the shard queues hold before Append blocks (capacity times shards)."))),
		appendBlocked: prometheus.NewCounter(prometheus.CounterOpts(opts("append_blocked_total",
			"Samples whose Append had to wait for room in a full shard queue."))),
		appendBlockedSeconds: prometheus.NewCounter(prometheus.CounterOpts(opts("append_blocked_seconds_total",
			"Time Append spent waiting for room in a full shard queue."))),
		splits: prometheus.NewCounter(prometheus.CounterOpts(opts("request_splits_total",
			"Requests refused for their content (400, 413) that were split in two, each half sent on its own."))),
	}
	// Start the common outcomes at zero so rate() works from the first scrape.
	for _, c := range []string{code2xx, code4xx, code429, code5xx, codeNetwork} {
		m.requests.WithLabelValues(c)
	}
	return m
}

func (m *metrics) collectors() []prometheus.Collector {
	return []prometheus.Collector{
		m.samplesSent, m.samplesDropped, m.samplesRetried, m.requests, m.requestDuration,
		m.sentBytes, m.queueSamples, m.queueCapacity, m.appendBlocked, m.appendBlockedSeconds, m.splits,
	}
}

// register registers every metric with reg, or none of them. A nil reg
// registers nothing.
func (m *metrics) register(reg prometheus.Registerer) error {
	if reg == nil {
		return nil
	}
	m.reg = reg
	for _, c := range m.collectors() {
		if err := reg.Register(c); err != nil {
			m.unregister()
			return err
		}
		m.registered = append(m.registered, c)
	}
	return nil
}

func (m *metrics) unregister() {
	for _, c := range m.registered {
		m.reg.Unregister(c)
	}
	m.registered = nil
}

// requestCode returns the code label for the outcome of one Store call.
func requestCode(err error, canceled bool) string {
	if err == nil {
		return code2xx
	}
	var serr *StatusError
	switch {
	case errors.As(err, &serr):
		return statusClass(serr.StatusCode)
	case canceled:
		return codeCanceled
	case errors.As(err, &RecoverableError{}):
		return codeNetwork
	default:
		return codeError
	}
}

func statusClass(code int) string {
	switch {
	case code == http.StatusTooManyRequests:
		return code429
	case code >= 200 && code < 300:
		return code2xx
	case code >= 300 && code < 400:
		return code3xx
	case code >= 400 && code < 500:
		return code4xx
	case code >= 500 && code < 600:
		return code5xx
	default:
		return codeOther
	}
}

// dropReason returns the reason label for a permanent error.
func dropReason(err error) string {
	var serr *StatusError
	if errors.As(err, &serr) {
		if serr.StatusCode == http.StatusConflict {
			return reasonConflict
		}
		if serr.StatusCode >= 100 && serr.StatusCode < 600 {
			return "http_" + strconv.Itoa(serr.StatusCode)
		}
		return "http_" + codeOther
	}
	return reasonError
}
