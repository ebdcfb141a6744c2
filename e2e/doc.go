// Package e2e holds the tests that span programs: a poller and a gateway
// (in process or as built binaries) with NATS, a simulated BMC fleet and a
// remote-write receiver (a real Prometheus, or one that decodes what it
// gets), checking what only the whole pipeline shows — failover between
// pollers, HA deduplication, events, the documented NATS permissions, and
// that no credential leaks anywhere.
//
// The package has no code of its own besides this comment; its tests use
// only exported APIs and the shared helpers of internal/testbed.
//
// Every test here is skipped under -short. Run them with
//
//	go test ./e2e/
//
// (the prometheus binary must be on PATH; the binaries under test are
// built by the tests). Full CI runs them with -race.
package e2e
