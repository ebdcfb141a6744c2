// Command rackwatch is an example automation consumer: it follows the
// normalised readings of one site (or one rack) on NATS and warns when a
// rack's hottest intake passes a limit, before servers protect themselves
// by shutting down. It also prints every event the gateway publishes for
// those racks. Build your own automation the same way: subscribe to
// bmc.v1.norm.<site>.<rack>.> and bmc.v1.events.<site>.<rack>.> and decode
// the JSON documented in docs/automation.md.
//
//	go run ./examples/rackwatch --nats.url=nats://127.0.0.1:4222 --site=sim --limit=30
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"sync"
	"syscall"

	"github.com/nats-io/nats.go"

	"github.com/bmcstream/bmcstream/pkg/bus"
	"github.com/bmcstream/bmcstream/pkg/pipeline"
)

func main() {
	url := flag.String("nats.url", nats.DefaultURL, "NATS server")
	site := flag.String("site", "*", "site to follow (a subject token, * for all)")
	rack := flag.String("rack", "*", "rack to follow (* for all)")
	limit := flag.Float64("limit", 35, "warn when a rack's hottest intake reaches this many °C")
	flag.Parse()
	nc, err := nats.Connect(*url, nats.Name("bmcstream-rackwatch"))
	if err != nil {
		fmt.Fprintln(os.Stderr, "rackwatch:", err)
		os.Exit(1)
	}
	defer nc.Close()
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	if err := watch(ctx, nc, *site, *rack, *limit, os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "rackwatch:", err)
		os.Exit(1)
	}
}

// watcher keeps each rack's intake temperatures, per BMC.
type watcher struct {
	mu      sync.Mutex
	limit   float64
	out     io.Writer
	intake  map[string]map[string]float64 // rack → bmc → hottest intake
	warning map[string]bool               // rack → currently over the limit
}

func token(s string) string {
	if s == "*" {
		return "*"
	}
	return bus.EscapeToken(s)
}

// watch subscribes and reports until ctx ends.
func watch(ctx context.Context, nc *nats.Conn, site, rack string, limit float64, out io.Writer) error {
	w := &watcher{limit: limit, out: out, intake: map[string]map[string]float64{}, warning: map[string]bool{}}
	norm, err := nc.Subscribe(bus.NormPrefix+token(site)+"."+token(rack)+".>", w.onReadings)
	if err != nil {
		return fmt.Errorf("subscribe to readings: %w", err)
	}
	defer norm.Unsubscribe() // fails only on a subscription or connection closed already: nothing left to end
	events, err := nc.Subscribe(bus.EventPrefix+token(site)+"."+token(rack)+".>", w.onEvent)
	if err != nil {
		return fmt.Errorf("subscribe to events: %w", err)
	}
	defer events.Unsubscribe() // fails only on a subscription or connection closed already: nothing left to end
	if err := nc.Flush(); err != nil {
		return err
	}
	<-ctx.Done()
	return nil
}

func (w *watcher) onReadings(m *nats.Msg) {
	var msg pipeline.NormMessage
	if err := json.Unmarshal(m.Data, &msg); err != nil || msg.Version != pipeline.SchemaVersion {
		return // not for us: a newer schema, or garbage
	}
	hottest, seen := 0.0, false
	for _, s := range msg.Samples {
		if s.Name == "bmc_temperature_celsius" && s.Labels["context"] == "intake" && (!seen || s.Value > hottest) {
			hottest, seen = s.Value, true
		}
	}
	if !seen {
		return
	}
	rack := msg.Labels["site"] + "/" + msg.Labels["rack"]
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.intake[rack] == nil {
		w.intake[rack] = map[string]float64{}
	}
	w.intake[rack][msg.BMC] = hottest
	max, at := 0.0, ""
	for bmc, v := range w.intake[rack] {
		if at == "" || v > max {
			max, at = v, bmc
		}
	}
	switch over := max >= w.limit; {
	case over && !w.warning[rack]:
		// out is the terminal: a line it cannot take has no one else to go to
		fmt.Fprintf(w.out, "WARNING rack %s intake %.1f °C at %s reached the %.1f °C limit\n", rack, max, at, w.limit)
		w.warning[rack] = true
	case !over && w.warning[rack]:
		fmt.Fprintf(w.out, "OK rack %s intake back to %.1f °C\n", rack, max) // out is the terminal, as above
		w.warning[rack] = false
	}
}

func (w *watcher) onEvent(m *nats.Msg) {
	var e pipeline.Event
	if err := json.Unmarshal(m.Data, &e); err != nil {
		return
	}
	keys := make([]string, 0, 4)
	for _, k := range []string{e.Sensor, e.Threshold, e.Previous, e.Current} {
		if k != "" {
			keys = append(keys, k)
		}
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	// out is the terminal, as above
	fmt.Fprintf(w.out, "EVENT %s %s rack %s %v\n", e.Kind, e.BMC, e.Rack, keys)
}
