package main

import (
	"bufio"
	"context"
	"fmt"
	"net/http"
	"os"
	"runtime"
	"strconv"
	"strings"
	"time"

	"github.com/golang/snappy"
)

// fetchBodies reads the receiver's sample of request bodies.
func fetchBodies(ctx context.Context, url string) ([]keptBody, error) {
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return nil, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close() // the body is read by readBodies, which reports a short one
	return readBodies(resp.Body)
}

// snappyFor is the snappy-only ceiling: snappy.Encode over the request
// bodies the gateway sent (uncompressed, as the receiver kept them), over
// and over, on this goroutine, for at least d, into one reused buffer. What
// it does not do (marshalling, and everything before) is the gateway's
// share above compression. sameBytes reports whether compressing the bodies
// again gave exactly the sizes the gateway sent them at.
func snappyFor(bodies []keptBody, d time.Duration) (c ceilingRun, sameBytes bool) {
	if len(bodies) == 0 {
		return c, false
	}
	var dst []byte
	perPass, out, sent := 0, 0, 0
	for _, b := range bodies {
		if n := snappy.MaxEncodedLen(len(b.raw)); cap(dst) < n {
			dst = make([]byte, n)
		}
		out += len(snappy.Encode(dst[:cap(dst)], b.raw))
		sent += b.sent
		perPass += b.samples
	}
	runtime.GC()
	var m0, m1 runtime.MemStats
	runtime.ReadMemStats(&m0)
	cpu0, t0 := cpuSeconds(), time.Now()
	for time.Since(t0) < d || c.samples == 0 {
		for _, b := range bodies {
			snappy.Encode(dst[:cap(dst)], b.raw)
		}
		c.samples += int64(perPass)
	}
	c.cpu = cpuSeconds() - cpu0
	runtime.ReadMemStats(&m1)
	c.bytes = float64(out) / float64(perPass)
	c.allocs = float64(m1.Mallocs-m0.Mallocs) / float64(c.samples)
	return c, out == sent
}

// checkMemory fails when the machine's available memory (MemAvailable) is
// below minGB: a run too big for the machine stops before it pushes the
// machine into swapping or the OOM killer. It is quiet where
// /proc/meminfo cannot be read.
func checkMemory(minGB float64) error {
	if minGB <= 0 {
		return nil
	}
	kb, ok := memAvailableKB()
	if ok && float64(kb)*1024 < minGB*1e9 {
		return fmt.Errorf("the machine has %.2f GB of memory available, less than --min-available=%g GB: stopped (this process's peak RSS so far %.2f GB)",
			float64(kb)*1024/1e9, minGB, float64(maxRSS())*1024/1e9)
	}
	return nil
}

func memAvailableKB() (int64, bool) {
	f, err := os.Open("/proc/meminfo")
	if err != nil {
		return 0, false
	}
	defer f.Close() // read only: a close error loses nothing
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "MemAvailable:"); ok {
			n, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
			return n, err == nil
		}
	}
	return 0, false
}
