// Package remotewrite is a Prometheus remote-write 1.0 client for
// bmcstream's gateway: one sharded, bounded, batching, retrying Queue per
// configured sink, sending snappy-compressed prompb.WriteRequests through a
// WriteClient.
//
// Delivery is at least once. A caller hands a group of samples to
// Queue.Append together with a done callback; done runs once every sample of
// the group was accepted by the receiver (2xx) or permanently rejected
// (counted in bmcstream_remote_write_samples_dropped_total with its reason).
// Only then may the caller acknowledge the input the samples came from. If
// the queue is stopped first, done never runs and the caller redelivers.
//
// Samples are sharded by a key, never round robin: with Queue.AppendKey by
// the caller's key for the whole call (the gateway keys a snapshot's samples
// by their BMC), with Queue.Append by each sample's series hash. Each shard
// has at most one request in flight, so the samples of one series, always
// appended with the same key, reach the receiver in the order they were
// appended. Remote-write receivers reject out-of-order samples, so this is a
// correctness property, not a performance one. Which key is a performance
// choice: a request whose series come one source at a time encoded about
// twice as fast as one holding a slice of every source when the encoder
// marshalled each sample's label slice. The encoder now copies pre-encoded
// labels, and BenchmarkEncode measures the order's effect again (its
// scattered- variants): within the noise on its synthetic fleet.
//
// Requests are written as bytes, not marshalled. A series' labels do not
// change from poll to poll, and series.Labels holds them already encoded,
// as the TimeSeries.labels fields of a request (the BMC's shared labels and
// the series' own, merged in name order). Each sample becomes one
// TimeSeries: its tag and length, those label bytes, then the Sample
// message as gogo's proto3 marshaller writes it (a value or time equal to
// zero is left out, -0 included; NaN and the staleness marker are written;
// a negative time is a 10-byte varint). Lengths are computed first, so the
// request is written front to back once into a reused buffer, then
// compressed with snappy (block format) into another: once the buffers have
// grown, encoding allocates nothing. The body is byte for byte gogo's
// marshal of the same prompb.WriteRequest (a fuzz test checks it), so
// receivers get the Remote-Write 1.0 message they always got.
//
// A full shard queue blocks Append, so back-pressure reaches the caller (the
// gateway's NATS consumer stops fetching and JetStream holds the data) rather
// than the queue growing or dropping. Blocking is visible in
// bmcstream_remote_write_append_blocked_seconds_total and
// bmcstream_remote_write_queue_samples.
//
// Errors are classified once, by the WriteClient: network errors, timeouts,
// 5xx and (with retry_on_http_429, the default) 429 are retried forever with
// capped, jittered exponential backoff, waiting at least any Retry-After;
// 400 and 413 split the batch (see sendPart); every other answer drops the
// batch and counts its samples with the reason http_<status>, except 409
// Conflict, counted with the reason conflict: Thanos Receive answers 409
// when some samples conflict with what it holds (out of order, out of
// bounds, a duplicate timestamp with another value) after storing all the
// others, so resending or splitting could only add conflicts. Nothing is dropped for being retried too long: when the
// receiver stays down, the queue fills, Append blocks and the stream keeps
// the data.
//
// A sink in the gateway's configuration (one entry of remote_write):
//
//	remote_write:
//	  - name: mimir                 # remote_name label of the self-metrics
//	    url: https://mimir:9009/api/v1/push
//	    remote_timeout: 30s
//	    org_id: team-a              # X-Scope-OrgID (thanos_tenant: THANOS-TENANT)
//	    headers: {X-Source: bmcstream}
//	    basic_auth: {username: bmc, password_file: /run/secrets/mimir}
//	    tls_config: {ca_file: /etc/bmcstream/mimir-ca.pem}
//	    queue_config:
//	      capacity: 10000           # samples per shard before Append blocks
//	      shards: 4
//	      max_samples_per_send: 2000
//	      batch_send_deadline: 1s
//	      min_backoff: 30ms
//	      max_backoff: 5s
//	      retry_on_http_429: true
//
// Every request carries the headers of the remote-write 1.0 specification
// (Content-Encoding: snappy, Content-Type: application/x-protobuf,
// X-Prometheus-Remote-Write-Version: 0.1.0) and User-Agent:
// bmcstream/<version>; retries also carry Retry-Attempt, which Mimir uses.
package remotewrite
