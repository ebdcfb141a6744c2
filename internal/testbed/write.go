package testbed

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"

	"github.com/golang/snappy"
	"github.com/prometheus/prometheus/prompb"
)

// WriteError is a receiver's answer to a remote write other than 2xx.
type WriteError struct {
	// URL is the remote-write endpoint written to.
	URL string
	// StatusCode is the HTTP status, such as 400 for a sample Prometheus
	// rejects as out of order.
	StatusCode int
	// Message is the start of the answer's body, trimmed.
	Message string
}

// Error implements error.
func (e *WriteError) Error() string {
	return fmt.Sprintf("remote write to %s: HTTP %d: %s", e.URL, e.StatusCode, e.Message)
}

// Write sends req to the receiver as a remote-write 1.0 client does:
// protobuf, snappy block encoding, and the spec's headers. An answer other
// than 2xx is a *WriteError. Samples written to VictoriaMetrics become
// searchable after Flush.
func (r *Receiver) Write(ctx context.Context, req *prompb.WriteRequest) error {
	raw, err := req.Marshal()
	if err != nil {
		return fmt.Errorf("remote write to %s: marshal request: %w", r.kind.name, err)
	}
	u := r.WriteURL()
	hreq, err := http.NewRequestWithContext(ctx, http.MethodPost, u, bytes.NewReader(snappy.Encode(nil, raw)))
	if err != nil {
		return fmt.Errorf("remote write to %s: build request: %w", u, err)
	}
	hreq.Header.Set("Content-Encoding", "snappy")
	hreq.Header.Set("Content-Type", "application/x-protobuf")
	hreq.Header.Set("X-Prometheus-Remote-Write-Version", "0.1.0")
	hreq.Header.Set("User-Agent", "bmcstream-testbed")
	resp, err := r.client.Do(hreq)
	if err != nil {
		return fmt.Errorf("remote write to %s: %w", u, err)
	}
	body, err := readAndClose(resp.Body, 64<<10)
	if err != nil {
		return fmt.Errorf("remote write to %s: read answer: %w", u, err)
	}
	if resp.StatusCode/100 != 2 {
		return &WriteError{URL: u, StatusCode: resp.StatusCode, Message: snippet(body)}
	}
	return nil
}

// ReadWriteRequest decodes a remote-write request's body (snappy, then
// protobuf), for test receivers; it returns the protobuf bytes too.
func ReadWriteRequest(req *http.Request) (*prompb.WriteRequest, []byte, error) {
	b, err := io.ReadAll(req.Body)
	if err != nil {
		return nil, nil, err
	}
	if b, err = snappy.Decode(nil, b); err != nil {
		return nil, nil, err
	}
	var wr prompb.WriteRequest
	if err := wr.Unmarshal(b); err != nil {
		return nil, nil, err
	}
	return &wr, b, nil
}
