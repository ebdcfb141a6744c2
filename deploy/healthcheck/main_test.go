package main

import (
	"bytes"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestHealthcheck(t *testing.T) {
	mux := http.NewServeMux()
	mux.HandleFunc("/-/ready", func(w http.ResponseWriter, _ *http.Request) { _, _ = w.Write([]byte("Ready.\n")) })
	mux.HandleFunc("/-/not-ready", func(w http.ResponseWriter, _ *http.Request) {
		http.Error(w, "Not ready.", http.StatusServiceUnavailable)
	})
	mux.HandleFunc("/redirect", func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, "/-/ready", http.StatusFound)
	})
	mux.HandleFunc("/slow", func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-r.Context().Done():
		case <-time.After(5 * time.Second):
		}
	})
	srv := httptest.NewServer(mux)
	defer srv.Close()

	tests := []struct {
		name string
		args []string
		code int
		msg  string
	}{
		{name: "ready", args: []string{srv.URL + "/-/ready"}, code: 0},
		{name: "every url must answer", args: []string{srv.URL + "/-/ready", srv.URL + "/-/not-ready"}, code: 1, msg: "HTTP 503: Not ready."},
		{name: "redirects are not followed", args: []string{srv.URL + "/redirect"}, code: 1, msg: "HTTP 302"},
		{name: "timeout", args: []string{"--timeout=100ms", srv.URL + "/slow"}, code: 1, msg: "context deadline exceeded"},
		{name: "nothing listening", args: []string{"http://127.0.0.1:1/-/ready"}, code: 1, msg: "connection refused"},
		{name: "no url", args: nil, code: 2, msg: "usage"},
		{name: "bad flag", args: []string{"--nope"}, code: 2, msg: "flag provided but not defined"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var stderr bytes.Buffer
			require.Equal(t, tc.code, run(tc.args, &stderr), "stderr: %s", &stderr)
			require.Contains(t, stderr.String(), tc.msg)
		})
	}
}
