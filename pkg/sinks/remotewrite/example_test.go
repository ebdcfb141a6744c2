package remotewrite_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/prometheus/prompb"
	"go.yaml.in/yaml/v2"

	"github.com/bmcstream/bmcstream/pkg/series"
	"github.com/bmcstream/bmcstream/pkg/sinks/remotewrite"
)

// ExampleQueue wires one sink: config, HTTP client, queue; appends one
// sample and acknowledges its source once the receiver has it.
func ExampleQueue() {
	// A receiver standing in for Prometheus, Mimir or VictoriaMetrics.
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		w.WriteHeader(http.StatusNoContent)
	}))
	defer srv.Close()

	var cfg remotewrite.Config
	doc := "name: local\nurl: " + srv.URL + "/api/v1/write\norg_id: team-a\n"
	if err := yaml.UnmarshalStrict([]byte(doc), &cfg); err != nil {
		fmt.Println(err)
		return
	}
	client, err := remotewrite.NewClient(cfg, "0.1.0") // Validates cfg.
	if err != nil {
		fmt.Println(err)
		return
	}
	defer client.CloseIdleConnections()
	q, err := remotewrite.NewQueue(cfg, client, prometheus.NewRegistry(), nil)
	if err != nil {
		fmt.Println(err)
		return
	}
	q.Start()

	ls := []prompb.Label{{Name: "__name__", Value: "bmc_up"}, {Name: "bmc", Value: "10.0.0.5"}}
	acked := make(chan struct{})
	samples := []series.Sample{{Series: series.New(ls), T: 1_700_000_000_000, V: 1}}
	if err := q.Append(context.Background(), samples, func() { close(acked) }); err != nil {
		fmt.Println(err) // Not acknowledged: the source redelivers.
		return
	}

	// Stop flushes the batch without waiting for batch_send_deadline.
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := q.Stop(ctx); err != nil {
		fmt.Println(err)
		return
	}
	<-acked
	fmt.Println("acknowledged")
	// Output: acknowledged
}
