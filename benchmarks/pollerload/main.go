// Command pollerload measures one poller process against a bmcsim fleet:
// CPU cores used, resident memory per BMC, requests per second and schedule
// lag, in steady state. It runs everything on loopback: bmcsim and the
// poller as subprocesses (built from this checkout), NATS embedded here.
//
//	go run ./benchmarks/pollerload --bmcs=10000 --protocol=redfish --interval=30s --measure=90s
package main

import (
	"bufio"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"math"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/bmcstream/bmcstream/benchmarks/internal/figures"
	"github.com/bmcstream/bmcstream/pkg/bus"
	"github.com/bmcstream/bmcstream/pkg/bus/embedded"
	"github.com/bmcstream/bmcstream/pkg/inventory"
)

func main() {
	var (
		bmcs     = flag.Int("bmcs", 10000, "fleet size")
		protocol = flag.String("protocol", "redfish", "redfish or ipmi")
		interval = flag.Duration("interval", 30*time.Second, "poll interval")
		warmup   = flag.Duration("warmup", 0, "time before measuring (0: two intervals)")
		measure  = flag.Duration("measure", 90*time.Second, "measurement window")
		latency  = flag.String("latency", "50,400", "bmcsim latency median,p99 in ms (\"\" for none)")
		first    = flag.String("first-address", "127.60.0.1", "first fleet address")
		profile  = flag.String("profile", "", "write the poller's heap and CPU profiles to this prefix")
		jsonFile = flag.String("json", "", "also write the results as JSON to this file")
		memLimit = flag.String("memory-limit", "", "the poller's --memory.limit (\"\": its default, auto)")
	)
	flag.Parse()
	if *warmup == 0 {
		*warmup = 2 * *interval
	}
	r, err := run(*bmcs, *protocol, *interval, *warmup, *measure, *latency, *first, *profile, *memLimit)
	if err != nil {
		fmt.Fprintln(os.Stderr, "pollerload:", err)
		os.Exit(1)
	}
	fmt.Printf("| %s | %d | %s | %.2f | %.1f KB | %.0f | %.1f%% | ≤ %gs | ≤ %gs | %s |\n",
		r.Protocol, r.BMCs, r.Interval, r.Cores, r.RSSPerBMCKB, r.PollsPerSec, r.OKPercent, r.LagP50, r.LagP99, r.Latency)
	// The memory account and what the BMCs paid in TLS handshakes: a
	// second line, for the results table's memory and kindness columns.
	fmt.Printf("memory: rss/bmc %.1f KB, heap in use/bmc %.1f KB, goroutines/bmc %.2f, memory limit %s; "+
		"tls handshakes: full %d, resumed %d (whole run), full %d, resumed %d (window); connections %d (window)\n",
		r.RSSPerBMCKB, r.HeapPerBMCKB, r.GoroutinesPerBMC, r.MemoryLimit,
		r.TLSFull, r.TLSResumed, r.TLSFullWindow, r.TLSResumedWindow, r.ConnectionsWindow)
	// JSON has no infinity: a lag past the histogram's last bound is -1.
	for _, v := range []*float64{&r.LagP50, &r.LagP99} {
		if math.IsInf(*v, 0) {
			*v = -1
		}
	}
	if *jsonFile != "" {
		b, err := json.MarshalIndent(r, "", "  ")
		if err == nil {
			err = os.WriteFile(*jsonFile, append(b, '\n'), 0o644)
		}
		if err != nil {
			fmt.Fprintln(os.Stderr, "pollerload: json:", err)
			os.Exit(1)
		}
	}
}

// result is one run's figures, written by --json (figures.Poller holds the
// memory account and the TLS handshakes the BMCs saw too).
type result struct {
	figures.Poller
}

// traffic is bmcsim's GET /traffic.
type traffic struct {
	RedfishConnections   uint64 `json:"redfish_connections"`
	TLSFullHandshakes    uint64 `json:"tls_full_handshakes"`
	TLSResumedHandshakes uint64 `json:"tls_resumed_handshakes"`
}

func getTraffic(url string) (traffic, error) {
	var t traffic
	resp, err := http.Get(url)
	if err != nil {
		return t, err
	}
	defer resp.Body.Close() // the body is decoded below; a close error changes nothing
	return t, json.NewDecoder(resp.Body).Decode(&t)
}

func run(n int, protocol string, interval, warmup, measure time.Duration, latency, first, profile, memLimit string) (*result, error) {
	dir, err := os.MkdirTemp("", "pollerload")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir) // a temporary directory; one left behind costs only disk
	for _, c := range []string{"bmcsim", "poller"} {
		out, err := exec.Command("go", "build", "-o", filepath.Join(dir, c), "./cmd/"+c).CombinedOutput()
		if err != nil {
			return nil, fmt.Errorf("build %s: %v: %s", c, err, out)
		}
	}
	rfPort, ipmiPort, adminPort, webPort := freePort(), freePort(), freePort(), freePort()
	if rfPort*ipmiPort*adminPort*webPort == 0 {
		return nil, fmt.Errorf("no free loopback ports")
	}
	simArgs := []string{"--bmcs=" + strconv.Itoa(n), "--protocols=" + protocol, "--first-address=" + first,
		"--redfish.port=" + strconv.Itoa(rfPort), "--ipmi.port=" + strconv.Itoa(ipmiPort),
		"--admin.listen-address=127.0.0.1:" + strconv.Itoa(adminPort), "--out.dir=" + filepath.Join(dir, "sim"),
		"--ignore-sensor-latency", "--log.level=warn"}
	if latency != "" {
		parts := strings.Split(latency, ",")
		simArgs = append(simArgs, fmt.Sprintf("--fault=fraction=1,latency_median_ms=%s,latency_p99_ms=%s", parts[0], parts[1]))
	}
	sim := exec.Command(filepath.Join(dir, "bmcsim"), simArgs...)
	sim.Stderr = os.Stderr
	if err := sim.Start(); err != nil {
		return nil, err
	}
	// stopping the simulator at the end; its exit status is not a figure
	defer func() { _ = sim.Process.Kill(); _ = sim.Wait() }()
	invFile := filepath.Join(dir, "sim", "inventory.yml")
	if err := waitFile(invFile, 2*time.Minute); err != nil {
		return nil, err
	}
	// Rewrite the interval.
	inv, err := inventory.Load(invFile)
	if err != nil {
		return nil, err
	}
	entries := inv.All()
	for i := range entries {
		entries[i].Interval = model.Duration(interval)
	}
	b, err := inventory.Marshal(entries)
	if err != nil {
		return nil, err
	}
	if err := os.WriteFile(invFile, b, 0o644); err != nil {
		return nil, err
	}

	srv, err := embedded.Start(bus.EmbeddedConfig{Listen: "127.0.0.1:0", StoreDir: filepath.Join(dir, "nats")}, true)
	if err != nil {
		return nil, err
	}
	defer srv.Shutdown()
	cfgFile := filepath.Join(dir, "poller.yml")
	cfg := fmt.Sprintf("poller_id: bench\nnats:\n  url: %s\n  stream:\n    max_age: 10m\ninventory:\n  files: [%s]\n  credentials_file: %s\n",
		srv.ClientURL(), invFile, filepath.Join(dir, "sim", "credentials.yml"))
	if err := os.WriteFile(cfgFile, []byte(cfg), 0o644); err != nil {
		return nil, err
	}
	args := []string{"--config.file=" + cfgFile, "--web.listen-address=127.0.0.1:" + strconv.Itoa(webPort), "--log.level=warn"}
	if profile != "" {
		args = append(args, "--web.enable-pprof")
	}
	if memLimit != "" {
		args = append(args, "--memory.limit="+memLimit)
	}
	poller := exec.Command(filepath.Join(dir, "poller"), args...)
	poller.Stderr = os.Stderr
	if err := poller.Start(); err != nil {
		return nil, err
	}
	// stopping the poller at the end; its exit status is not a figure
	defer func() { _ = poller.Process.Kill(); _ = poller.Wait() }()
	metricsURL := fmt.Sprintf("http://127.0.0.1:%d/metrics", webPort)

	fmt.Fprintf(os.Stderr, "warming up for %s\n", warmup)
	time.Sleep(warmup)
	trafficURL := fmt.Sprintf("http://127.0.0.1:%d/traffic", adminPort)
	tr0, err := getTraffic(trafficURL)
	if err != nil {
		return nil, fmt.Errorf("bmcsim traffic: %w", err)
	}
	cpu0, err := cpuSeconds(poller.Process.Pid)
	if err != nil {
		return nil, fmt.Errorf("poller CPU: %w", err)
	}
	m0, err := scrape(metricsURL)
	if err != nil {
		return nil, err
	}
	t0 := time.Now()
	if profile != "" {
		go func() {
			if err := fetch(fmt.Sprintf("http://127.0.0.1:%d/debug/pprof/profile?seconds=30", webPort), profile+".cpu.pprof"); err != nil {
				fmt.Fprintln(os.Stderr, "pollerload: CPU profile:", err)
			}
		}()
	}
	var rssMax float64
	for time.Since(t0) < measure {
		time.Sleep(5 * time.Second)
		if rss, err := rssBytes(poller.Process.Pid); err == nil && rss > rssMax {
			rssMax = rss
		}
	}
	cpu1, err := cpuSeconds(poller.Process.Pid)
	if err != nil {
		return nil, fmt.Errorf("poller CPU: %w", err)
	}
	if profile != "" {
		if err := fetch(fmt.Sprintf("http://127.0.0.1:%d/debug/pprof/heap", webPort), profile+".heap.pprof"); err != nil {
			return nil, err
		}
	}
	m1, err := scrape(metricsURL)
	if err != nil {
		return nil, err
	}
	tr1, err := getTraffic(trafficURL)
	if err != nil {
		return nil, fmt.Errorf("bmcsim traffic: %w", err)
	}
	secs := time.Since(t0).Seconds()
	polls := sumOf(m1, "bmcstream_poller_polls_total") - sumOf(m0, "bmcstream_poller_polls_total")
	okPolls := sumWhere(m1, "bmcstream_poller_polls_total", "result", "ok") - sumWhere(m0, "bmcstream_poller_polls_total", "result", "ok")
	lagP99 := quantileDelta(m0, m1, "bmcstream_poller_schedule_lag_seconds", 0.99)
	lagP50 := quantileDelta(m0, m1, "bmcstream_poller_schedule_lag_seconds", 0.50)
	limit := "off"
	if _, ok := m1["go_gc_gomemlimit_bytes"]; !ok {
		limit = "unknown"
	} else if l := sumOf(m1, "go_gc_gomemlimit_bytes"); l > 0 && l < math.MaxInt64/2 {
		limit = fmt.Sprintf("%.0fMiB", l/(1<<20))
	}
	return &result{Poller: figures.Poller{Protocol: protocol, BMCs: n, Interval: interval.String(), Measure: time.Duration(secs * float64(time.Second)).Round(time.Second).String(),
		Cores: (cpu1 - cpu0) / secs, RSSBytes: rssMax, RSSPerBMCKB: rssMax / float64(n) / 1024, PollsPerSec: polls / secs,
		OKPercent: 100 * okPolls / max(polls, 1), LagP50: lagP50, LagP99: lagP99, Latency: latency,
		HeapPerBMCKB:     sumOf(m1, "go_memstats_heap_inuse_bytes") / float64(n) / 1024,
		GoroutinesPerBMC: sumOf(m1, "go_goroutines") / float64(n),
		MemoryLimit:      limit,
		TLSFull:          tr1.TLSFullHandshakes, TLSResumed: tr1.TLSResumedHandshakes,
		TLSFullWindow:     tr1.TLSFullHandshakes - tr0.TLSFullHandshakes,
		TLSResumedWindow:  tr1.TLSResumedHandshakes - tr0.TLSResumedHandshakes,
		ConnectionsWindow: tr1.RedfishConnections - tr0.RedfishConnections}}, nil
}

type sample struct {
	Labels map[string]string
	Value  float64
}

func scrape(url string) (map[string][]sample, error) {
	resp, err := http.Get(url)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close() // the body is parsed below; a close error changes nothing
	parser := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := parser.TextToMetricFamilies(resp.Body)
	if err != nil {
		return nil, err
	}
	out := map[string][]sample{}
	for name, f := range fams {
		for _, m := range f.GetMetric() {
			ls := map[string]string{}
			for _, l := range m.GetLabel() {
				ls[l.GetName()] = l.GetValue()
			}
			switch {
			case m.Counter != nil:
				out[name] = append(out[name], sample{ls, m.GetCounter().GetValue()})
			case m.Gauge != nil:
				out[name] = append(out[name], sample{ls, m.GetGauge().GetValue()})
			case m.Histogram != nil:
				for _, b := range m.GetHistogram().GetBucket() {
					l2 := map[string]string{"le": strconv.FormatFloat(b.GetUpperBound(), 'g', -1, 64)}
					out[name+"_bucket"] = append(out[name+"_bucket"], sample{l2, float64(b.GetCumulativeCount())})
				}
				out[name+"_count"] = append(out[name+"_count"], sample{ls, float64(m.GetHistogram().GetSampleCount())})
			}
		}
	}
	return out, nil
}

func sumOf(m map[string][]sample, name string) float64 {
	s := 0.0
	for _, x := range m[name] {
		s += x.Value
	}
	return s
}

func sumWhere(m map[string][]sample, name, label, value string) float64 {
	s := 0.0
	for _, x := range m[name] {
		if x.Labels[label] == value {
			s += x.Value
		}
	}
	return s
}

func quantileDelta(a, b map[string][]sample, name string, q float64) float64 {
	total := sumOf(b, name+"_count") - sumOf(a, name+"_count")
	prev := map[string]float64{}
	for _, s := range a[name+"_bucket"] {
		prev[s.Labels["le"]] = s.Value
	}
	for _, s := range b[name+"_bucket"] {
		if s.Value-prev[s.Labels["le"]] >= q*total {
			// le is a number Prometheus wrote ("+Inf" parses too)
			v, _ := strconv.ParseFloat(s.Labels["le"], 64)
			return v
		}
	}
	return -1
}

func cpuSeconds(pid int) (float64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, err
	}
	f := strings.Fields(string(b[strings.LastIndexByte(string(b), ')')+2:]))
	if len(f) < 13 {
		return 0, fmt.Errorf("/proc/%d/stat: %d fields after the command", pid, len(f))
	}
	ut, err := strconv.ParseFloat(f[11], 64)
	if err != nil {
		return 0, fmt.Errorf("/proc/%d/stat utime: %w", pid, err)
	}
	st, err := strconv.ParseFloat(f[12], 64)
	if err != nil {
		return 0, fmt.Errorf("/proc/%d/stat stime: %w", pid, err)
	}
	return (ut + st) / 100, nil // USER_HZ
}

func rssBytes(pid int) (float64, error) {
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, err
	}
	defer f.Close() // read only: a close error loses nothing
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if strings.HasPrefix(sc.Text(), "VmRSS:") {
			kb, err := strconv.ParseFloat(strings.Fields(sc.Text())[1], 64)
			return kb * 1024, err
		}
	}
	return 0, fmt.Errorf("no VmRSS")
}

func waitFile(p string, d time.Duration) error {
	deadline := time.Now().Add(d)
	for time.Now().Before(deadline) {
		if _, err := os.Stat(p); err == nil {
			return nil
		}
		time.Sleep(200 * time.Millisecond)
	}
	return fmt.Errorf("%s not written within %s", p, d)
}

func fetch(url, path string) error {
	resp, err := http.Get(url)
	if err != nil {
		return err
	}
	defer resp.Body.Close() // the body is copied below; its error is the one returned
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	_, err = io.Copy(f, resp.Body)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}

// freePort returns a free loopback port, 0 if none.
func freePort() int {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0
	}
	defer ln.Close() // the port was only reserved to be free; nothing was sent on it
	return ln.Addr().(*net.TCPAddr).Port
}
