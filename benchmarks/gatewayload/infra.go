package main

import (
	"bufio"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"sync/atomic"
	"time"

	"github.com/golang/snappy"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/prometheus/prompb"

	"github.com/bmcstream/bmcstream/benchmarks/internal/gwfleet"
	"github.com/bmcstream/bmcstream/pkg/bus"
)

// roleEnv, set to "infra", makes the harness's executable run the
// infrastructure process instead: the embedded NATS server holding the
// pre-loaded stream, and the loopback receiver. They run apart from the
// gateway so that the gateway process's CPU time, allocations and RSS are
// the gateway's alone.
const roleEnv = "GATEWAYLOAD_ROLE"

// infraReady is the infrastructure process's one line on stdout once the
// stream is loaded.
type infraReady struct {
	NATS      string `json:"nats"`
	Receiver  string `json:"receiver"`
	Stats     string `json:"stats"`
	Snapshots int    `json:"snapshots"`
	Bytes     int64  `json:"bytes"`
	Readings  int64  `json:"readings"`
	LoadSecs  float64
}

// receiverStats are what the receiver has counted.
type receiverStats struct {
	Requests int64 `json:"requests"`
	Bytes    int64 `json:"bytes"`   // compressed request bodies
	Samples  int64 `json:"samples"` // from decoding every request
	Series   int64 `json:"series"`
	Errors   int64 `json:"errors"`
}

// receiver accepts remote-write requests and counts them. It decodes each
// (snappy, then prompb) to count samples exactly; that work is this
// process's, not the gateway's.
type receiver struct {
	requests, bytes, samples, series, errors atomic.Int64
}

func (rc *receiver) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(r.Body)
	if err != nil {
		rc.errors.Add(1)
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	rc.requests.Add(1)
	rc.bytes.Add(int64(len(body)))
	raw, err := snappy.Decode(nil, body)
	var req prompb.WriteRequest
	if err == nil {
		err = req.Unmarshal(raw)
	}
	if err != nil {
		rc.errors.Add(1)
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	rc.series.Add(int64(len(req.Timeseries)))
	n := 0
	for i := range req.Timeseries {
		n += len(req.Timeseries[i].Samples)
	}
	rc.samples.Add(int64(n))
	w.WriteHeader(http.StatusNoContent)
}

func (rc *receiver) stats() receiverStats {
	return receiverStats{Requests: rc.requests.Load(), Bytes: rc.bytes.Load(), Samples: rc.samples.Load(),
		Series: rc.series.Load(), Errors: rc.errors.Load()}
}

// infraMain is the infrastructure process: it loads the stream, serves the
// receiver, prints infraReady and runs until its stdin closes.
func infraMain(args []string) error {
	fs := flag.NewFlagSet("infra", flag.ContinueOnError)
	bmcs := fs.Int("bmcs", 10000, "")
	polls := fs.Int("polls", 3, "")
	dir := fs.String("dir", "", "")
	if err := fs.Parse(args); err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	srv, err := bus.StartEmbedded(bus.EmbeddedConfig{Listen: "127.0.0.1:0", StoreDir: filepath.Join(*dir, "nats")}, true)
	if err != nil {
		return err
	}
	defer func() { srv.Shutdown(); srv.WaitForShutdown() }()

	rc := &receiver{}
	mux := http.NewServeMux()
	mux.Handle("/api/v1/write", rc)
	mux.HandleFunc("/stats", func(w http.ResponseWriter, _ *http.Request) {
		_ = json.NewEncoder(w).Encode(rc.stats())
	})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	hs := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = hs.Serve(ln) }()
	defer func() { _ = hs.Close() }()

	t0 := time.Now()
	ready, err := load(ctx, srv.ClientURL(), *bmcs, *polls)
	if err != nil {
		return err
	}
	ready.LoadSecs = time.Since(t0).Seconds()
	ready.NATS = srv.ClientURL()
	ready.Receiver = "http://" + ln.Addr().String() + "/api/v1/write"
	ready.Stats = "http://" + ln.Addr().String() + "/stats"
	line, err := json.Marshal(ready)
	if err != nil {
		return err
	}
	fmt.Println(string(line))
	// Run until the harness closes stdin (or dies).
	_, _ = io.Copy(io.Discard, bufio.NewReader(os.Stdin))
	return nil
}

// load publishes polls × bmcs snapshots, poll by poll, as pollers would
// have over polls intervals ending a minute ago.
func load(ctx context.Context, url string, bmcs, polls int) (infraReady, error) {
	var out infraReady
	ts, err := gwfleet.Templates(ctx)
	if err != nil {
		return out, err
	}
	f := gwfleet.New(bmcs, ts)
	nc, err := nats.Connect(url)
	if err != nil {
		return out, err
	}
	defer nc.Close()
	js, err := jetstream.New(nc, jetstream.WithPublishAsyncMaxPending(2048))
	if err != nil {
		return out, err
	}
	if _, err := bus.EnsureStream(ctx, js, bus.DefaultStreamConfig); err != nil {
		return out, err
	}
	start := time.Now().Add(-time.Minute - time.Duration(polls)*gwfleet.Interval)
	for p := range polls {
		for i := range bmcs {
			s := f.Snapshot(i, p, start)
			data, err := s.Marshal()
			if err != nil {
				return out, err
			}
			msg := &nats.Msg{Subject: bus.RawSubject(s.BmcId), Data: data,
				Header: nats.Header{nats.MsgIdHdr: []string{bus.MsgID(s.PollerId, s.PollerEpoch, s.BmcId, s.Sequence)}}}
			if _, err := js.PublishMsgAsync(msg); err != nil {
				return out, fmt.Errorf("publish %s: %w", s.BmcId, err)
			}
			out.Snapshots++
			out.Bytes += int64(len(data))
			out.Readings += int64(len(s.Readings))
		}
	}
	select {
	case <-js.PublishAsyncComplete():
	case <-ctx.Done():
		return out, fmt.Errorf("load the stream: %w", ctx.Err())
	}
	st, err := js.Stream(ctx, bus.DefaultStreamConfig.Name)
	if err != nil {
		return out, err
	}
	info, err := st.Info(ctx)
	if err != nil {
		return out, err
	}
	if int(info.State.Msgs) != out.Snapshots {
		return out, fmt.Errorf("stream holds %d messages, published %d", info.State.Msgs, out.Snapshots)
	}
	return out, nil
}
