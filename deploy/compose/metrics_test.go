package compose_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/bmcstream/bmcstream/internal/testbed"
	"github.com/bmcstream/bmcstream/pkg/bus"
	"github.com/bmcstream/bmcstream/pkg/bus/embedded"
	"github.com/bmcstream/bmcstream/pkg/gateway"
	"github.com/bmcstream/bmcstream/pkg/inventory"
	"github.com/bmcstream/bmcstream/pkg/poller"
)

// produced is every metric name bmcstream's pipeline produces, and where
// each comes from.
type produced map[string]string

// has reports whether name is produced; a histogram's _bucket, _sum and
// _count series count as its own.
// TestMain fails the package when a goroutine its tests started (the
// gateway, the poller and the embedded NATS server selfMetrics runs) is
// still running at the end.
func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func (p produced) has(name string) bool {
	if _, ok := p[name]; ok {
		return true
	}
	for _, suffix := range []string{"_bucket", "_sum", "_count"} {
		if base, ok := strings.CutSuffix(name, suffix); ok {
			if _, ok := p[base]; ok {
				return true
			}
		}
	}
	return false
}

var (
	producedOnce sync.Once
	producedSet  produced
	producedErr  error
)

// producedMetrics gathers what the pipeline produces: the data series
// documented in docs/metrics.md (with the threshold series its naming rule
// makes), the series the Prometheus rules record, the self-metrics the
// gateway and a poller register when they run, the process and Go
// metrics their commands register, and Prometheus' own up.
func producedMetrics(t *testing.T) produced {
	t.Helper()
	producedOnce.Do(func() {
		producedSet = produced{"up": "Prometheus"}
		producedErr = docMetrics(producedSet)
		if producedErr == nil {
			producedErr = recordedMetrics(producedSet)
		}
		if producedErr == nil {
			producedErr = selfMetrics(producedSet)
		}
	})
	require.NoError(t, producedErr)
	return producedSet
}

var (
	docNameRE = regexp.MustCompile("`(bmc_[a-z0-9_]+)(?:\\{[^`]*\\})?`")
	// Units of the value series whose thresholds are series too.
	thresholdUnits = []string{"celsius", "rpm", "ratio", "watts", "volts", "amperes", "hertz", "pascals", "cubic_meters_per_second"}
)

// docMetrics reads the series of docs/metrics.md: every `bmc_...` it names,
// and for each value series bmc_<quantity>_<unit> its thresholds
// bmc_<quantity>_<lower|upper>_<caution|critical|fatal>_<unit>.
func docMetrics(p produced) error {
	b, err := os.ReadFile("../../docs/metrics.md")
	if err != nil {
		return err
	}
	for _, m := range docNameRE.FindAllStringSubmatch(string(b), -1) {
		name := m[1]
		p[name] = "docs/metrics.md"
		for _, unit := range thresholdUnits {
			q, ok := strings.CutSuffix(name, "_"+unit)
			if !ok || strings.Contains(q, "_lower_") || strings.Contains(q, "_upper_") {
				continue
			}
			for _, side := range []string{"lower", "upper"} {
				for _, level := range []string{"caution", "critical", "fatal"} {
					p[fmt.Sprintf("%s_%s_%s_%s", q, side, level, unit)] = "docs/metrics.md (threshold of " + name + ")"
				}
			}
			break
		}
	}
	if len(p) < 40 {
		return fmt.Errorf("docs/metrics.md: found only %d series names", len(p))
	}
	return nil
}

var recordRE = regexp.MustCompile(`(?m)^\s*-?\s*record:\s*([A-Za-z_:][A-Za-z0-9_:]*)\s*$`)

// recordedMetrics reads the names the rule files record.
func recordedMetrics(p produced) error {
	files, err := filepath.Glob("prometheus/rules/*.rules.yml")
	if err != nil {
		return err
	}
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			return err
		}
		for _, m := range recordRE.FindAllStringSubmatch(string(b), -1) {
			p[m[1]] = f
		}
	}
	return nil
}

// recordingRegisterer notes the name of every metric registered through it,
// children or not: a counter vector that has counted nothing yet is still
// something the program produces.
type recordingRegisterer struct {
	prometheus.Registerer
	names *nameSet
}

// nameSet is a set of metric names, safe for concurrent use.
type nameSet struct {
	mu    sync.Mutex
	names map[string]bool
}

var fqNameRE = regexp.MustCompile(`fqName: "([^"]+)"`)

func (r *recordingRegisterer) Register(c prometheus.Collector) error {
	ch := make(chan *prometheus.Desc, 64)
	go func() { c.Describe(ch); close(ch) }()
	r.names.mu.Lock()
	for d := range ch {
		if m := fqNameRE.FindStringSubmatch(d.String()); m != nil {
			r.names.names[m[1]] = true
		}
	}
	r.names.mu.Unlock()
	return r.Registerer.Register(c)
}

func (r *recordingRegisterer) MustRegister(cs ...prometheus.Collector) {
	for _, c := range cs {
		if err := r.Register(c); err != nil {
			panic(err)
		}
	}
}

// selfMetrics runs a gateway and a poller against an embedded NATS server
// until both are ready, and records the metrics they register: the
// gateway's, its remote-write queue's, the poller's and its publisher's.
// Like their commands, they also get the Go and process collectors.
func selfMetrics(p produced) error {
	dir, err := os.MkdirTemp("", "bmcstream-selfmetrics")
	if err != nil {
		return err
	}
	defer func() { _ = os.RemoveAll(dir) }()
	ns, err := embedded.Start(bus.EmbeddedConfig{Enabled: true, Listen: "127.0.0.1:0", StoreDir: filepath.Join(dir, "nats")}, true)
	if err != nil {
		return err
	}
	defer ns.Shutdown()
	sink := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		w.WriteHeader(http.StatusNoContent)
	}))
	defer sink.Close()

	// One BMC that answers nothing, with credentials (a made-up password
	// in a temporary file).
	inv, err := inventory.Marshal([]inventory.BMC{{ID: "bmc-1", Address: "127.0.0.1", Protocol: inventory.Redfish, RedfishPort: 1, Credentials: "lab", Labels: map[string]string{"rack": "r1"}}})
	if err != nil {
		return err
	}
	invFile, credFile := filepath.Join(dir, "inventory.yml"), filepath.Join(dir, "credentials.yml")
	if err := os.WriteFile(invFile, inv, 0o600); err != nil {
		return err
	}
	if err := os.WriteFile(credFile, []byte("lab: {username: u, password: not-a-secret}\n"), 0o600); err != nil {
		return err
	}

	names := &nameSet{names: map[string]bool{}}
	reg := &recordingRegisterer{Registerer: prometheus.NewRegistry(), names: names}
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	logger := slog.New(slog.DiscardHandler)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var wg sync.WaitGroup
	defer wg.Wait()
	defer cancel()

	gcfg, err := gateway.ParseConfig(fmt.Appendf(nil, "nats: {url: %q}\ninventory: {files: [%q]}\nremote_write: [{name: prometheus, url: %q}]\n",
		ns.ClientURL(), invFile, sink.URL))
	if err != nil {
		return err
	}
	gw, err := gateway.New(gcfg, gateway.Options{Logger: logger, Registerer: reg, ShutdownTimeout: time.Second})
	if err != nil {
		return err
	}
	wg.Add(1)
	go func() { defer wg.Done(); _ = gw.Run(ctx) }() // ends with ctx; the test reads the metrics registered, not how Run ends

	preg := &recordingRegisterer{Registerer: prometheus.NewRegistry(), names: names}
	pcfg, err := poller.ParseConfig(fmt.Appendf(nil, "poller_id: p1\nnats: {url: %q}\ninventory: {files: [%q], credentials_file: %q}\nsharding: {mode: dynamic}\n",
		ns.ClientURL(), invFile, credFile))
	if err != nil {
		return err
	}
	pl, err := poller.New(pcfg, poller.Options{Logger: logger, Registerer: preg, NewSource: poller.DefaultSources(pcfg, logger), ShutdownTimeout: time.Second})
	if err != nil {
		return err
	}
	wg.Add(1)
	go func() { defer wg.Done(); _ = pl.Run(ctx) }() // likewise

	readyCtx, cancelReady := context.WithTimeout(ctx, 20*time.Second)
	defer cancelReady()
	if testbed.Until(readyCtx, func() bool { return gw.Ready() && pl.Ready() }) != nil {
		return fmt.Errorf("gateway ready %v, poller ready %v after 20s", gw.Ready(), pl.Ready())
	}
	names.mu.Lock()
	defer names.mu.Unlock()
	for name := range names.names {
		p[name] = "registered by the gateway or a poller"
	}
	return nil
}
