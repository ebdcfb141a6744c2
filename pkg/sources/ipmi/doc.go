// Package ipmi reads a BMC's sensors over IPMI v2.0 RMCP+ (lanplus) for the
// poller, behind the sources.Source interface. go-ipmi's types stay inside
// it: SDR records, sensor readings and every other response are decoded
// here, and go-ipmi's client only carries the session.
//
// # Session
//
// A Source keeps one long-lived RMCP+ session per BMC on one go-ipmi
// client, used from the caller's goroutine only, one request in flight. It
// opens the session itself from go-ipmi's exported steps: a sessionless
// Get Channel Authentication Capabilities in IPMI v1.5 framing (the
// liveness probe, from a short-lived socket of its own), Open Session,
// RAKP 1/2, RAKP 3/4, and Set Session Privilege Level above USER. It does
// not use Client.Connect, which in go-ipmi v0.9.1 flattens the RMCP+ status
// codes of its errors into text and starts a goroutine sending Get Session
// Info every 30 s concurrently with the client's owner. A RAKP 2 that
// proves the password wrong is answered with RAKP 3 "invalid integrity
// check value", as ipmitool does, so the BMC frees the half-open session.
//
// A BMC forgets a session silently (idle timeout, reset): its requests just
// time out. So a request on an established session that gets no answer in
// 1+Retries attempts of RequestTimeout marks the session dead: Collect
// sends one Close Session bounded by RequestTimeout (it frees the slot if
// only packets were lost), opens a new session and polls once more,
// keeping whichever attempt read more. A session silent for longer than
// SessionTimeout (60 s, the spec's default) is presumed expired and
// replaced at the next poll without the wasted timeout. Between polls that
// are further apart than KeepAlive (30 s), the caller's loop calls
// KeepAlive, which sends one Get Device ID when the session has idled that
// long; polls more frequent than that keep the session alive by
// themselves. go-ipmi's Client.Close panics when called twice; a Source
// forgets its client before closing it.
//
// # Cost of a poll
//
// The SDR repository is read once (Reserve SDR Repository, Get SDR of
// every record, whole records when the BMC allows, else a header and
// chunks of 32, 16 or 8 bytes, re-reserving only when the BMC cancels the
// reservation), with one Get Sensor Thresholds per sensor that has
// readable thresholds, and cached across sessions. It is read again only
// when Get SDR Repository Info's record count or addition and erase
// timestamps change, which is checked on each new session and every
// InfoInterval. A read interrupted by the poll deadline resumes at the
// next poll. With the cache, a poll costs one Get Sensor Reading per
// cached sensor (a sensor the BMC said three polls in a row is not present
// is asked once per InfoInterval), one Get Chassis Status and one DCMI Get
// Power Reading;
// a BMC that refuses DCMI (C1h, or D4h, CCh, …) is not asked again until
// the next session. Device ID and System GUID are read on each new session
// and every InfoInterval.
//
// # Readings
//
// Full sensor records of threshold sensors with a linear conversion
// become readings: y = (M·x + B·10^Bexp)·10^Rexp with 10-bit two's
// complement M and B, 4-bit signed exponents and x in the record's analog
// data format (unsigned, one's or two's complement), rounded to the
// decimals the factors allow. Non-linear and OEM conversions, sensors of
// other controllers (bridging is not supported) and, with
// Options.SkipDiscrete, discrete sensors are counted in
// Stats.SkippedSensors; undecodable records in Stats.BadRecords. A reading
// the BMC flags unavailable or not scanned, or answers with CBh, CCh or
// D5h, is counted in Stats.Unavailable and never published as a zero.
// Health comes from the threshold comparison status: beyond a
// non-critical threshold is a warning, beyond a critical or
// non-recoverable one critical. Thresholds are the BMC's current ones (Get
// Sensor Thresholds), or the SDR's when fixed or refused. DCMI power is
// published as sensor type "PowerControl" (the chassis input power).
//
// Discrete sensors (generic or sensor-specific event/reading types, full
// or compact records) become KIND_DISCRETE readings: the value is the
// bitmask of the states Get Sensor Reading asserts (bytes 3-4), the state
// their names from the spec's Tables 42-2 and 42-3 in offset order
// ("presence_detected,failure_detected"), plus "absent" when the SDR's
// reading mask says the sensor reports presence and it is not asserted;
// the health is derived from the states (discrete.go, docs/metrics.md).
//
// # Drops
//
// Every sensor of the SDR that a poll leaves out is a sources.Drop, counted
// by Dropped and handed to Options.OnDrop: unsupported conversions,
// bridged owners, OEM reading types (and discrete sensors with
// SkipDiscrete) as unsupported_layout, undecodable records as malformed,
// a sensor the BMC says is not present (CBh, CCh, D5h, or not asked
// because it said so three polls in a row) as absent, a reading flagged
// unavailable as null and one with scanning disabled as disabled. Only the
// attempt whose readings a snapshot carries counts its drops.
//
// # Errors
//
// Collect's errors are *sources.Error:
//
//	no answer to the probe or the handshake   ClassTimeout      (Up false)
//	ICMP unreachable, unresolvable host        ClassUnreachable  (Up false)
//	wrong password (RAKP 2 HMAC), unknown      ClassAuth         (Up true)
//	user or role (RMCP+ status 09h-0Fh),
//	privilege refused (Set Session Privilege)
//	no session slot (RMCP+ status 01h, 0Bh)    ClassSessionLimit (Up true)
//	poll deadline passed mid-poll              ClassTimeout      (Up, Partial)
//	session silent twice                       ClassTimeout
//	completion code on a request               ClassProtocol     (Partial)
//	malformed response                         ClassDecode       (Partial)
//	invalid Options or Target                  ClassProtocol
//
// Errors name the action and the BMC ("read sensor 0x04 (CPU1 Temp) of
// 10.0.0.5:623: completion code 0xc3 (timeout)"), never the password; the
// password travels only as a secret.Secret until handed to go-ipmi.
package ipmi
