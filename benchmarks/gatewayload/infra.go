package main

import (
	"bufio"
	"context"
	"encoding/binary"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/golang/snappy"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/prometheus/prompb"

	"github.com/bmcstream/bmcstream/benchmarks/internal/gwfleet"
	"github.com/bmcstream/bmcstream/pkg/bus"
	"github.com/bmcstream/bmcstream/pkg/bus/embedded"
)

// roleEnv, set to "infra", makes the harness's executable run the
// infrastructure process instead: the embedded NATS server holding the
// pre-loaded stream, and the loopback receiver. They run apart from the
// gateway so that the gateway process's CPU time, allocations and RSS are
// the gateway's alone. Set to "replica", it runs one gateway replica
// (replica.go).
const roleEnv = "GATEWAYLOAD_ROLE"

// infraReady is the infrastructure process's one line on stdout once the
// stream is loaded.
type infraReady struct {
	NATS      string `json:"nats"`
	Receiver  string `json:"receiver"`
	Stats     string `json:"stats"`
	Bodies    string `json:"bodies"`
	Snapshots int    `json:"snapshots"`
	Bytes     int64  `json:"bytes"`
	Readings  int64  `json:"readings"`
	LoadSecs  float64
	// PartitionBMCs is, on a partitioned stream, how many BMCs each
	// partition holds (the server's subject transform hashes them).
	PartitionBMCs []int `json:"partition_bmcs,omitempty"`
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
// process's, not the gateway's. It keeps a uniform sample of the
// uncompressed request bodies (reservoir sampling, keep of them), which
// the harness compresses again after the run: the snappy-only ceiling.
type receiver struct {
	requests, bytes, samples, series, errors atomic.Int64

	keep   int
	mu     sync.Mutex
	seen   int64
	kept   []keptBody
	random *rand.Rand
}

// keptBody is one request the gateway sent: its body before compression,
// its samples and the size it was sent at (compressed).
type keptBody struct {
	raw     []byte
	samples int
	sent    int
}

// sample offers one decoded request to the reservoir.
func (rc *receiver) sample(b keptBody) {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	rc.seen++
	if len(rc.kept) < rc.keep {
		rc.kept = append(rc.kept, b)
		return
	}
	if j := rc.random.Int64N(rc.seen); j < int64(rc.keep) {
		rc.kept[j] = b
	}
}

// writeBodies writes the kept bodies: for each, its samples, its sent
// size and its length as uvarints, then the body.
func (rc *receiver) writeBodies(w io.Writer) error {
	rc.mu.Lock()
	kept := slices.Clone(rc.kept)
	rc.mu.Unlock()
	bw := bufio.NewWriter(w)
	var hdr []byte
	for _, b := range kept {
		hdr = binary.AppendUvarint(hdr[:0], uint64(b.samples))
		hdr = binary.AppendUvarint(hdr, uint64(b.sent))
		hdr = binary.AppendUvarint(hdr, uint64(len(b.raw)))
		if _, err := bw.Write(hdr); err != nil {
			return err
		}
		if _, err := bw.Write(b.raw); err != nil {
			return err
		}
	}
	return bw.Flush()
}

// readBodies reads what writeBodies wrote.
func readBodies(r io.Reader) ([]keptBody, error) {
	br := bufio.NewReader(r)
	var out []keptBody
	for {
		samples, err := binary.ReadUvarint(br)
		if err == io.EOF {
			return out, nil
		}
		if err != nil {
			return nil, err
		}
		sent, err := binary.ReadUvarint(br)
		if err != nil {
			return nil, err
		}
		n, err := binary.ReadUvarint(br)
		if err != nil {
			return nil, err
		}
		if n > 1<<30 {
			return nil, fmt.Errorf("kept body of %d bytes", n)
		}
		raw := make([]byte, n)
		if _, err := io.ReadFull(br, raw); err != nil {
			return nil, err
		}
		out = append(out, keptBody{raw: raw, samples: int(samples), sent: int(sent)})
	}
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
	if rc.keep > 0 {
		rc.sample(keptBody{raw: raw, samples: n, sent: len(body)})
	}
	w.WriteHeader(http.StatusNoContent)
}

func (rc *receiver) stats() receiverStats {
	return receiverStats{Requests: rc.requests.Load(), Bytes: rc.bytes.Load(), Samples: rc.samples.Load(),
		Series: rc.series.Load(), Errors: rc.errors.Load()}
}

// infraMain is the infrastructure process: it loads the stream, serves the
// receiver, prints infraReady and runs until its stdin closes. With
// --wait-load it first creates the stream empty, prints infraReady (the
// addresses only) and loads the stream when a line arrives on stdin.
func infraMain(args []string) error {
	fs := flag.NewFlagSet("infra", flag.ContinueOnError)
	bmcs := fs.Int("bmcs", 10000, "")
	polls := fs.Int("polls", 3, "")
	dir := fs.String("dir", "", "")
	partitions := fs.Int("partitions", 0, "")
	waitLoad := fs.Bool("wait-load", false, "")
	keep := fs.Int("keep-bodies", 0, "")
	if err := fs.Parse(args); err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	srv, err := embedded.Start(bus.EmbeddedConfig{Listen: "127.0.0.1:0", StoreDir: filepath.Join(*dir, "nats")}, true)
	if err != nil {
		return err
	}
	defer func() { srv.Shutdown(); srv.WaitForShutdown() }()

	rc := &receiver{keep: *keep, random: rand.New(rand.NewPCG(1, 2))}
	mux := http.NewServeMux()
	mux.Handle("/api/v1/write", rc)
	mux.HandleFunc("/stats", func(w http.ResponseWriter, _ *http.Request) {
		_ = json.NewEncoder(w).Encode(rc.stats()) // the harness reading the stats went away; nobody to tell
	})
	mux.HandleFunc("/bodies", func(w http.ResponseWriter, _ *http.Request) {
		_ = rc.writeBodies(w) // the harness reading the bodies went away; readBodies reports a short read
	})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	hs := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = hs.Serve(ln) }()  // returns when Close, below, shuts the server
	defer func() { _ = hs.Close() }() // the receiver process is exiting

	stdin := bufio.NewReader(os.Stdin)
	var ready infraReady
	ready.NATS = srv.ClientURL()
	ready.Receiver = "http://" + ln.Addr().String() + "/api/v1/write"
	ready.Stats = "http://" + ln.Addr().String() + "/stats"
	ready.Bodies = "http://" + ln.Addr().String() + "/bodies"
	if *waitLoad {
		// The stream first, empty; the load when the harness says.
		if err := ensureStream(ctx, ready.NATS, *partitions); err != nil {
			return err
		}
		if err := printLine(ready); err != nil {
			return err
		}
		if _, err := stdin.ReadString('\n'); err != nil {
			return fmt.Errorf("waiting for the word to load: %w", err)
		}
	}
	t0 := time.Now()
	loaded, err := load(ctx, ready.NATS, *bmcs, *polls, *partitions)
	if err != nil {
		return err
	}
	loaded.LoadSecs = time.Since(t0).Seconds()
	loaded.NATS, loaded.Receiver, loaded.Stats, loaded.Bodies = ready.NATS, ready.Receiver, ready.Stats, ready.Bodies
	if err := printLine(loaded); err != nil {
		return err
	}
	// Run until the harness closes stdin (or dies).
	_, _ = io.Copy(io.Discard, stdin)
	return nil
}

func printLine(r infraReady) error {
	line, err := json.Marshal(r)
	if err != nil {
		return err
	}
	_, err = fmt.Println(string(line))
	return err
}

// ensureStream creates the stream (partitioned when partitions > 0), empty.
func ensureStream(ctx context.Context, url string, partitions int) error {
	nc, err := nats.Connect(url)
	if err != nil {
		return err
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		return err
	}
	sc := bus.DefaultStreamConfig
	sc.Partitions = partitions
	_, err = bus.EnsureStream(ctx, js, sc)
	return err
}

// load publishes polls × bmcs snapshots, poll by poll, as pollers would
// have over polls intervals ending a minute ago. With partitions above 0
// the stream is created partitioned first: the server applies the subject
// transform as it stores each snapshot.
func load(ctx context.Context, url string, bmcs, polls, partitions int) (infraReady, error) {
	var out infraReady
	f, err := loadFleet(ctx, bmcs)
	if err != nil {
		return out, err
	}
	nc, err := nats.Connect(url)
	if err != nil {
		return out, err
	}
	defer nc.Close()
	js, err := jetstream.New(nc, jetstream.WithPublishAsyncMaxPending(2048))
	if err != nil {
		return out, err
	}
	sc := bus.DefaultStreamConfig
	sc.Partitions = partitions
	if _, err := bus.EnsureStream(ctx, js, sc); err != nil {
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
			// A server busy with consumers (the replica run loads while
			// they run) acks slower: wait for room rather than fail.
			if _, err := js.PublishMsgAsync(msg, jetstream.WithStallWait(time.Minute)); err != nil {
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
	if partitions > 0 {
		out.PartitionBMCs, err = partitionBMCs(ctx, st, partitions, bmcs)
	}
	return out, err
}

// partitionBMCs counts the BMCs of each partition from the subjects the
// stream holds (bmc.v1.raw.<partition>.<bmc>).
func partitionBMCs(ctx context.Context, st jetstream.Stream, partitions, bmcs int) ([]int, error) {
	info, err := st.Info(ctx, jetstream.WithSubjectFilter(bus.RawPrefix+"*.*"))
	if err != nil {
		return nil, err
	}
	counts := make([]int, partitions)
	n := 0
	for subj := range info.State.Subjects {
		p, _, _ := strings.Cut(strings.TrimPrefix(subj, bus.RawPrefix), ".")
		k, err := strconv.Atoi(p)
		if err != nil || k < 0 || k >= partitions {
			return nil, fmt.Errorf("subject %q is not in one of %d partitions", subj, partitions)
		}
		counts[k]++
		n++
	}
	if n != bmcs {
		return nil, fmt.Errorf("partitioned stream holds %d BMC subjects, want %d", n, bmcs)
	}
	return counts, nil
}
