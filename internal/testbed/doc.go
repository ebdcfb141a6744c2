// Package testbed runs real remote-write receivers — the Debian prometheus
// and victoria-metrics binaries — as subprocesses on 127.0.0.1 for
// end-to-end tests, writes to them, and reads back what they stored through
// their HTTP query APIs.
//
// Starters take a testing.TB: they keep the receiver's data in t.TempDir(),
// print the receiver's output when the test fails, and stop the process in
// t.Cleanup. Methods that take no testing.TB return errors instead of failing
// the test, so they are safe to call from any goroutine.
//
// The test bed imports none of the data path's packages (poller, gateway,
// pipeline, sinks, sources; internal/archtest checks it), so the tests
// inside any of them can use it. Starting a poller or a gateway in process
// is left to the tests that need one.
//
// A typical test:
//
//	prom := testbed.StartPrometheus(t)
//	// ... run the gateway with prom.WriteURL() as a sink ...
//	prom.WaitFor(ctx, t, `count(bmc_up)`, func(s []testbed.Series) bool { return len(s) == 1 })
//	got, err := prom.RawSamples(ctx, `bmc_up{bmc="10.0.0.5"}`, 5*time.Minute, time.Now())
//
// StartNATS starts the project's embedded NATS server (JetStream on) in
// the test process, for tests that need a real bus but no receiver;
// Record subscribes a Recorder to every published snapshot. Eventually,
// Until and Never wait on a condition instead of a fixed sleep;
// MetricValue reads a registered metric; ReadWriteRequest decodes what a
// test receiver was sent; StartSimFleet runs simulated BMCs.
//
// A sink outage: NewPrometheus (or StartPrometheus then Stop) fixes the URL
// with nothing listening on it; Start brings the sink up on the same port
// with the same data.
//
// # How the receivers answer remote write
//
// Measured with Prometheus 2.42 (Debian 2.42.0+ds-5+deb12u1) and
// VictoriaMetrics 1.79.5. TestOutOfOrderAnswers pins the out-of-order
// answers; the others were measured once by hand.
//
//   - Prometheus answers 400 "out of order sample" to a sample older than
//     its series' newest, and rolls back the whole request: the other,
//     valid series of that request are not stored either.
//   - VictoriaMetrics accepts out-of-order samples and duplicates (same
//     timestamp) and stores them all, duplicates included, unless started
//     with -dedup.minScrapeInterval (pass it WithArgs); then it keeps one
//     sample per timestamp (the last written in one trial, not the largest).
//   - Prometheus accepts an exact duplicate (same timestamp and value) with
//     204 and answers 400 "duplicate sample for timestamp" to one with
//     another value.
//   - Within one request, Prometheus silently drops (204) a sample older
//     than an earlier sample of the same series in that request.
//   - Prometheus answers 400 "out of bounds" to samples more than about an
//     hour older than the newest sample it holds, of any series: one sample
//     an hour in the future makes it reject every current sample.
//   - Prometheus answers 500 to a series with a repeated label name: a
//     client that retries 5xx retries that request forever.
//   - Neither rejects invalid metric names, unsorted labels, or empty label
//     values (both store the series without the empty label).
//   - VictoriaMetrics makes a sample searchable only after Flush or ~1 s
//     (~10 s for a new series), and durable only ~5 s later (see Kill).
//   - WithPrometheusConfig with storage.tsdb.out_of_order_time_window makes
//     Prometheus accept older samples; a duplicate there is dropped with 204.
package testbed
