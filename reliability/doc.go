// Package reliability is bmcstream's fault suite. Its tests run the whole
// path as separate processes — a simulated fleet (bmcsim), poller and
// gateway binaries, NATS (embedded or the nats-server binary), and the real
// Prometheus and VictoriaMetrics — inject one fault per scenario, and
// account for every sample: what the pollers published against what the
// receivers hold, reported as lost, duplicated and late.
//
// `go test ./reliability` runs the short form (tens of BMCs, seconds of
// outage), four scenarios at a time unless -parallel says otherwise;
// `make reliability` runs the long form and writes the results
// table that docs/reliability.md publishes. See docs/reliability.md for the
// scenarios, the definitions and the figures.
package reliability
