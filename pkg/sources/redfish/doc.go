// Package redfish is the Redfish source: one gentle, long-lived session to
// one BMC, read the way the BMC's vendor laid it out, turned into
// bmcstream's wire readings.
//
// # Session
//
// The first Collect reads the service root (public) and logs in with a
// Redfish session (POST SessionService/Sessions); every later request
// carries the session's X-Auth-Token over one kept-alive HTTP/1.1
// connection, one request at a time. A 401 means the session expired or
// the BMC restarted: the source ends the refused session (in case the BMC
// still holds it), logs in once more and repeats the request; a second 401
// fails the poll with sources.ClassAuth. Close logs out. Options.BasicAuth
// sends credentials with every request instead.
//
// # Discovery
//
// Once per session the source reads the chassis, systems and managers
// (expanded in one request each when the service announces $expand) and
// plans each poll. With Options.Schema SchemaAuto (the default) it reads
// every generation of sensor resources a chassis offers: Thermal and
// Power, the Sensors collection (with $expand=.($levels=1) when
// announced, member by member otherwise), and the subsystems'
// (ThermalSubsystem Fans and ThermalMetrics, PowerSubsystem PSU Metrics,
// EnvironmentMetrics) excerpts that are not copies of a Sensor it reads.
// Excerpts that are copies are read once, at discovery, to type the
// Sensors they name (PowerSupplyInput and PowerSupplyOutput with the PSU
// as parent and name, PowerControl for the chassis input, fans as fans).
// SchemaLegacy and SchemaModern read one generation where a chassis
// offers it. Discovery runs again when a resource answers 404 (after the
// plan's first poll, which instead forgets links never served, with a
// debug log and no error: the service's own inconsistency), when the
// service root's UUID changes, and when the service refuses an $expand it
// announced; not every poll.
//
// # Merging
//
// Readings read through several schemas are merged (merge.go) so that
// each physical quantity yields one reading: copies are found by links
// (DataSourceUri, RelatedItem), member ids, roles (chassis power, a PSU's
// input or output), names (values within a stated drift, or one set of
// thresholds), then names qualified by a member id; the copy carrying
// more is kept and each other is reported as a sources.Drop with reason
// merged (and logged at debug level with the rule that found it).
// The result does not depend on $expand. docs/metrics.md ("Reading
// Redfish: layouts, merging and cost") states the rules and the cost.
//
// # Polls
//
// Sensor documents are fetched with If-None-Match when the BMC sent an
// ETag; a 304 reuses the readings decoded last time, reported at this
// poll's time (the BMC says its representation is current, and a reading's
// timestamp is the snapshot's). The system facts (vendor, model, serial,
// BIOS, power state, health; firmware and model of the manager) are read at
// discovery and again every Options.InfoInterval, one document per poll, and
// travel in every snapshot's info. A legacy BMC thus costs two requests a
// poll (three when an info document is due), a modern one with $expand one
// (two), one offering both three (four). A service with no sensor
// resources is asked for its root each poll, so the poll knows it is up.
//
// # Decoding
//
// Sensor documents are decoded here with encoding/json into tolerant
// types, not gofish's: BMCs put "N/A" and "30" where numbers belong and
// fractions where integers belong, and gofish v0.26 fails the whole
// resource for one such member (and decodes ThermalSubsystem fans and
// PowerSubsystem supplies into legacy types that lose their readings). A
// bad member costs its own reading. Every reading left out is reported to
// Options.OnDrop and counted by Dropped, by reason (sources.Drop*): Absent
// or Disabled (and UnavailableOffline, StandbyOffline) states, null or
// missing values, values that are not numbers, members that are not
// objects, arrays that are not arrays (unsupported_layout, also named in
// the poll's error), copies merged. Only a document that is not JSON at
// all fails, with sources.ClassDecode.
//
// The HTTP side is net/http rather than gofish's client too: gofish drops
// the headers of error answers (Retry-After), binds one context to the
// client for its lifetime, and rewrites the transport it is given. Under
// net/http's Client is the package's own Transport (transport.go): one
// kept-alive connection per BMC holding no goroutine and no buffer while it
// idles, CA files parsed once per process, TLS sessions resumed.
//
// # Errors
//
// Failures are classified once, here: 401/403 auth; 503 naming the session
// limit session_limit; other 503s and 429 rate_limited with Retry-After;
// connection refused, unroutable, reset or closed unanswered unreachable;
// deadlines timeout; a TLS certificate that does not verify, 404 and other
// statuses protocol; a document that is not JSON decode. When the poll's
// deadline strikes after the session was up, the readings read so far are
// returned with Partial set. Neither the password nor the session token
// ever appears in an error or a log line.
package redfish
