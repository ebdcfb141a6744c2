package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"runtime"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/bmcstream/bmcstream/internal/service"
	"github.com/bmcstream/bmcstream/pkg/gateway"
)

// replicaPoint is one replica process's counters at one instant, its
// answer to each line the harness writes on its stdin.
type replicaPoint struct {
	CPU     float64 `json:"cpu"` // user+system seconds of this process
	Mallocs uint64  `json:"mallocs"`
	// Samples is bmcstream_gateway_samples_total{sink="bench"}: samples
	// handed to the sink's queue. Once every snapshot is acked, those of
	// the snapshots have all been written; rack roll-ups are not tied to
	// a snapshot (the consumer appends them every 10 s), so they are
	// written only once Queued is 0 as well.
	Samples int64 `json:"samples"`
	// Queued is bmcstream_remote_write_queue_samples: samples in the
	// sink's queue, the batches being sent included.
	Queued     int64 `json:"queued"`
	Held       int   `json:"partitions_held"`
	Replicas   int   `json:"replicas"` // live replicas as this one sees them
	LeasesLost int   `json:"leases_lost"`
	// Snapshots the sink's loops refused as HA duplicates (stale
	// sequence, not the leader) and samples dropped as out of order.
	DedupRejected int64 `json:"dedup_rejected"`
	OutOfOrder    int64 `json:"out_of_order_dropped"`
	RSSKB         int64 `json:"peak_rss_kb"`
}

// replicaMain is one gateway replica in its own process: the gateway of the
// configuration file --config, with its metrics in a registry of its own.
// Every line on stdin asks for a replicaPoint on stdout; stdin closing
// stops the gateway (it hands its partitions over) and the process.
func replicaMain(args []string) error {
	fs := flag.NewFlagSet("replica", flag.ContinueOnError)
	configFile := fs.String("config", "", "")
	timeout := fs.Duration("timeout", 10*time.Minute, "")
	if err := fs.Parse(args); err != nil {
		return err
	}
	b, err := os.ReadFile(*configFile)
	if err != nil {
		return err
	}
	cfg, err := gateway.ParseConfig(b)
	if err != nil {
		return err
	}
	reg := prometheus.NewRegistry()
	// Warnings (a lease lost, a failed write) go to the harness's stderr.
	logger := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn})).With("replica", cfg.Replicas.ID)
	// The garbage collector's target the gateway program sets (GOGC wins).
	service.DefaultGCPercent(service.GatewayGCPercent)
	gw, err := gateway.New(cfg, gateway.Options{Logger: logger, Registerer: reg, Version: "gatewayload", ShutdownTimeout: 30 * time.Second})
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), *timeout)
	defer cancel()
	gctx, stop := context.WithCancel(ctx)
	defer stop()
	errc := make(chan error, 1)
	go func() { errc <- gw.Run(gctx) }()
	stopGateway := func() error {
		stop()
		select {
		case err := <-errc:
			return err
		case <-time.After(40 * time.Second):
			return errors.New("the gateway did not stop within 40 s")
		}
	}

	cmds := make(chan struct{})
	go func() {
		sc := bufio.NewScanner(os.Stdin)
		for sc.Scan() {
			cmds <- struct{}{}
		}
		close(cmds)
	}()
	enc := json.NewEncoder(os.Stdout)
	for {
		select {
		case <-ctx.Done():
			_ = stopGateway() // the timeout is the error to report; the gateway is stopped best effort
			return fmt.Errorf("still running after %s", *timeout)
		case err := <-errc:
			return fmt.Errorf("the gateway stopped: %v", err)
		case _, ok := <-cmds:
			if !ok {
				return stopGateway()
			}
			p, err := replicaSample(reg)
			if err != nil {
				return err
			}
			if err := enc.Encode(p); err != nil {
				return err
			}
		}
	}
}

// replicaSample reads this process's counters and the gateway's metrics.
func replicaSample(reg *prometheus.Registry) (replicaPoint, error) {
	p := replicaPoint{CPU: cpuSeconds(), RSSKB: vmHWM()}
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	p.Mallocs = ms.Mallocs
	mfs, err := reg.Gather()
	if err != nil {
		return p, err
	}
	for _, mf := range mfs {
		for _, m := range mf.GetMetric() {
			switch mf.GetName() {
			case "bmcstream_gateway_samples_total":
				if label(m, "sink") == sinkName {
					p.Samples = int64(m.GetCounter().GetValue())
				}
			case "bmcstream_remote_write_queue_samples":
				p.Queued += int64(m.GetGauge().GetValue())
			case "bmcstream_gateway_partitions_held":
				p.Held = int(m.GetGauge().GetValue())
			case "bmcstream_gateway_replicas":
				p.Replicas = int(m.GetGauge().GetValue())
			case "bmcstream_gateway_partition_leases_lost_total":
				p.LeasesLost = int(m.GetCounter().GetValue())
			case "bmcstream_gateway_dedup_snapshots_rejected_total":
				if label(m, "sink") == sinkName {
					p.DedupRejected += int64(m.GetCounter().GetValue())
				}
			case "bmcstream_gateway_out_of_order_samples_dropped_total":
				if label(m, "sink") == sinkName {
					p.OutOfOrder += int64(m.GetCounter().GetValue())
				}
			}
		}
	}
	return p, nil
}

func label(m *dto.Metric, name string) string {
	for _, l := range m.GetLabel() {
		if l.GetName() == name {
			return l.GetValue()
		}
	}
	return ""
}

// vmHWM is this process's peak resident set in KiB, from
// /proc/self/status. Not getrusage's maxrss: that survives execve, so a
// child started by the harness would report the harness's peak.
func vmHWM() int64 {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0
	}
	for _, l := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(l, "VmHWM:"); ok {
			// a VmHWM that does not parse is 0: no figure, as where /proc is missing
			n, _ := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
			return n
		}
	}
	return 0
}
