// Command healthcheck is the container health check of bmcstream's images.
// The images hold nothing but static binaries (no shell, no wget, no curl),
// so docker compose runs this instead:
//
//	healthcheck http://127.0.0.1:9290/-/ready
//
// It exits 0 when every URL answers a GET with a 2xx status within the
// timeout, and 1 otherwise, printing why on standard error (which docker
// keeps in the container's health log). It follows no redirects and sends
// no credentials.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"time"
)

func main() {
	os.Exit(run(os.Args[1:], os.Stderr))
}

func run(args []string, stderr io.Writer) int {
	fs := flag.NewFlagSet("healthcheck", flag.ContinueOnError)
	fs.SetOutput(stderr)
	timeout := fs.Duration("timeout", 3*time.Second, "how long each URL may take to answer")
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: healthcheck [--timeout=3s] URL...") // to stderr: nowhere to report a failed write
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if fs.NArg() == 0 {
		fs.Usage()
		return 2
	}
	client := &http.Client{
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
	for _, u := range fs.Args() {
		if err := check(client, u, *timeout); err != nil {
			fmt.Fprintf(stderr, "healthcheck: %v\n", err) // the exit code says it; nowhere to report a failed write
			return 1
		}
	}
	return 0
}

// check GETs url and requires a 2xx answer within timeout.
func check(client *http.Client, url string, timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return fmt.Errorf("build request for %s: %w", url, err)
	}
	resp, err := client.Do(req)
	if err != nil {
		return fmt.Errorf("get %s: %w", url, err)
	}
	body, readErr := io.ReadAll(io.LimitReader(resp.Body, 512))
	closeErr := resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		return fmt.Errorf("get %s: HTTP %d: %s", url, resp.StatusCode, body)
	}
	if err := errors.Join(readErr, closeErr); err != nil {
		return fmt.Errorf("get %s: read answer: %w", url, err)
	}
	return nil
}
