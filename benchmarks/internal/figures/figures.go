// Package figures declares the figures each benchmark harness writes with
// --json and benchmarks/benchall reads into its table: one declaration for
// both sides, so a renamed figure is a compile error, not a zero.
package figures

// Gateway is gatewayload's headline figures, written by --json for
// benchmarks/benchall, which puts them in the results table.
type Gateway struct {
	BMCs        int     `json:"bmcs"`
	Polls       int     `json:"polls"`
	Samples     int64   `json:"samples_received"`
	Errors      int64   `json:"receiver_errors"`
	Ceiling     float64 `json:"ceiling_samples_per_core_s"`
	CeilSharded float64 `json:"ceiling_shard_order_samples_per_core_s"`
	// Steady covers polls 2 and later; All includes the first, which
	// builds every BMC's normalisation plan.
	Steady         float64 `json:"gateway_steady_samples_per_core_s"`
	SteadyRatio    float64 `json:"gateway_steady_of_ceiling"`
	SteadyWall     float64 `json:"gateway_steady_samples_per_s_wall"`
	SteadyCores    float64 `json:"gateway_steady_cores"`
	SteadyAllocs   float64 `json:"gateway_steady_allocs_per_sample"`
	SteadyBytes    float64 `json:"gateway_steady_bytes_per_sample"`
	All            float64 `json:"gateway_all_samples_per_core_s"`
	AllRatio       float64 `json:"gateway_all_of_ceiling"`
	PeakRSSBytes   float64 `json:"gateway_peak_rss_bytes"`
	InfraCPUSecond float64 `json:"nats_receiver_cpu_s"`
	// CeilingBMCs is the BMCs whose one poll the ceilings encode (at most
	// BMCs: gatewayload's --ceiling-bmcs).
	CeilingBMCs int `json:"ceiling_bmcs"`
	// SnappyCeiling is snappy.Encode alone over a uniform sample
	// (SnappyBodies) of the uncompressed request bodies the gateway sent,
	// samples per CPU second; SteadySnappyRatio is Steady over it.
	// SnappySameBytes: compressing them again gave the sizes sent.
	SnappyCeiling     float64 `json:"ceiling_snappy_samples_per_core_s"`
	SnappyBodies      int     `json:"snappy_bodies"`
	SnappySameBytes   bool    `json:"snappy_same_bytes"`
	SteadySnappyRatio float64 `json:"gateway_steady_of_snappy_ceiling"`
	// The first poll of every BMC (plan build), derived: FirstPollCPU is
	// the gateway's CPU seconds from Run until every first poll is acked,
	// FirstPollAtSteadyCPU what the samples written meanwhile cost at the
	// steady rate, FirstPollExtraPerBMC the difference per BMC (seconds).
	FirstPollCPU         float64 `json:"first_poll_cpu_s"`
	FirstPollAtSteadyCPU float64 `json:"first_poll_at_steady_cpu_s"`
	FirstPollExtraPerBMC float64 `json:"first_poll_extra_cpu_per_bmc_s"`
	// NewCPU is gateway.New's CPU seconds (it reads the inventory).
	NewCPU float64 `json:"gateway_new_cpu_s"`
	// Replicas is the run of several replicas (--replicas of 2 or more).
	Replicas *GatewayReplicas `json:"replicas,omitempty"`
}

// GatewayReplicas is the replica run's figures, beside the one-gateway
// run's in the --json output.
type GatewayReplicas struct {
	Replicas   int   `json:"replicas"`
	Partitions int   `json:"partitions"`
	Samples    int64 `json:"samples_received"`
	Errors     int64 `json:"receiver_errors"`
	// WrittenSum is the replicas' own bmcstream_gateway_samples_total,
	// summed: the receiver's count when nothing was written twice.
	WrittenSum int64 `json:"samples_written_sum"`
	// Steady and All are the replicas' samples over their CPU seconds,
	// summed (steady: each replica's from when its own partitions' first
	// polls were acked); OfOne divides them by the one-gateway run's.
	// SteadyWall and SteadyCores are from when every partition's first
	// poll was acked.
	Steady      float64 `json:"steady_samples_per_core_s"`
	SteadyOfOne float64 `json:"steady_of_one_replica"`
	SteadyWall  float64 `json:"steady_samples_per_s_wall"`
	SteadyCores float64 `json:"steady_cores"`
	All         float64 `json:"all_samples_per_core_s"`
	AllOfOne    float64 `json:"all_of_one_replica"`
	OneWall     float64 `json:"one_replica_steady_samples_per_s_wall"`
	SpreadSecs  float64 `json:"spread_s"`
	LeasesLost  int     `json:"leases_lost"`
	// DedupRejected and OutOfOrder are the snapshots and samples the
	// replicas dropped themselves (0 in a clean run).
	DedupRejected int64     `json:"dedup_rejected"`
	OutOfOrder    int64     `json:"out_of_order_dropped"`
	InfraCPU      float64   `json:"nats_receiver_cpu_s"`
	PerReplica    []Replica `json:"per_replica"`
}

// Replica is one replica's share of the run.
type Replica struct {
	ID         string `json:"id"`
	Partitions int    `json:"partitions"`
	BMCs       int    `json:"bmcs"`
	// Samples is what it wrote over the whole run (every poll).
	Samples      int64   `json:"samples_written"`
	Share        float64 `json:"share"`
	SteadyCPU    float64 `json:"steady_cpu_s"`
	SteadyCores  float64 `json:"steady_cores"`
	Steady       float64 `json:"steady_samples_per_core_s"`
	SteadyAllocs float64 `json:"steady_allocs_per_sample"`
	AllCPU       float64 `json:"all_cpu_s"`
	All          float64 `json:"all_samples_per_core_s"`
	PeakRSSBytes float64 `json:"peak_rss_bytes"`
}

// Poller is pollerload's figures; JSON for benchmarks/benchall.
type Poller struct {
	Protocol    string  `json:"protocol"`
	BMCs        int     `json:"bmcs"`
	Interval    string  `json:"interval"`
	Measure     string  `json:"measure"`
	Cores       float64 `json:"poller_cores"` // user+system CPU seconds per second
	RSSBytes    float64 `json:"peak_rss_bytes"`
	RSSPerBMCKB float64 `json:"rss_per_bmc_kb"`
	PollsPerSec float64 `json:"polls_per_second"`
	OKPercent   float64 `json:"ok_percent"`
	// LagP50 and LagP99 are upper bounds: the histogram bucket bound that
	// holds the quantile.
	LagP50  float64 `json:"schedule_lag_p50_le_s"`
	LagP99  float64 `json:"schedule_lag_p99_le_s"`
	Latency string  `json:"bmc_latency_ms"` // bmcsim median,p99
	// HeapPerBMCKB is the poller's heap in use (go_memstats_heap_inuse_bytes)
	// at the window's end, per BMC; GoroutinesPerBMC its goroutines.
	HeapPerBMCKB     float64 `json:"heap_inuse_per_bmc_kb"`
	GoroutinesPerBMC float64 `json:"goroutines_per_bmc"`
	// MemoryLimit is the poller's Go memory limit (go_gc_gomemlimit_bytes),
	// "off" when none.
	MemoryLimit string `json:"memory_limit"`
	// TLS handshakes bmcsim completed, full and resumed, over the whole
	// run (warm-up included: the first connection to each BMC) and over
	// the window; the Redfish connections it accepted in the window.
	TLSFull           uint64 `json:"tls_full_handshakes"`
	TLSResumed        uint64 `json:"tls_resumed_handshakes"`
	TLSFullWindow     uint64 `json:"tls_full_handshakes_window"`
	TLSResumedWindow  uint64 `json:"tls_resumed_handshakes_window"`
	ConnectionsWindow uint64 `json:"redfish_connections_window"`
}

// Stats summarises delays in seconds.
type Stats struct {
	Count int     `json:"count"`
	P50   float64 `json:"p50_s"`
	P99   float64 `json:"p99_s"`
	Max   float64 `json:"max_s"`
}

// Latency is the latency harness's figures; JSON for benchmarks/benchall.
type Latency struct {
	BMCs            int     `json:"bmcs"`
	Interval        string  `json:"interval"`
	PollsPerSecond  float64 `json:"polls_per_second"`   // the fleet's nominal rate
	SeriesPerBMC    float64 `json:"series_per_bmc"`     // as stored in Prometheus
	SamplesPerSec   float64 `json:"samples_per_second"` // PollsPerSecond × SeriesPerBMC
	BMCLatency      string  `json:"bmc_latency_ms"`     // bmcsim median,p99
	Deadline        string  `json:"batch_send_deadline"`
	DeadlineDefault bool    `json:"batch_send_deadline_is_default"`
	DefaultDeadline string  `json:"default_batch_send_deadline"`
	Receiver        string  `json:"receiver"`
	Watched         int     `json:"watched_bmcs"`
	WatchEvery      string  `json:"watch_every"`
	QueryP50        float64 `json:"watch_query_p50_s"`
	Measure         string  `json:"measure"`
	// Polls of the watched BMCs that started in the window and are stored.
	Polls int `json:"polls"`
	// WithLater are stored polls that first became queryable together with
	// a later poll of their BMC (between two queries); Unseen are stored
	// polls that the watcher never saw queryable before the drain ended.
	WithLater    int   `json:"with_later_poll"`
	Unseen       int   `json:"unseen"`
	FromStart    Stats `json:"poll_start_to_queryable"`
	FromEnd      Stats `json:"poll_end_to_queryable"`
	PollDuration Stats `json:"poll_duration"`
}
