package main

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// TestProbes: /livez answers while the process runs, whatever readiness
// says (a draining broker is alive); /readyz follows ready and says why.
func TestProbes(t *testing.T) {
	var notReady error = errors.New("broker: draining")
	srv := httptest.NewServer(adminHandler(newRegistry(), func(context.Context) error { return notReady }))
	defer srv.Close()
	get := func(path string) (int, string) {
		t.Helper()
		resp, err := http.Get(srv.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	if code, _ := get("/livez"); code != http.StatusOK {
		t.Errorf("/livez while not ready: %d, want 200", code)
	}
	if code, body := get("/readyz"); code != http.StatusServiceUnavailable || !strings.Contains(body, "draining") {
		t.Errorf("/readyz while draining: %d %q, want 503 naming the reason", code, body)
	}
	notReady = nil
	if code, _ := get("/readyz"); code != http.StatusOK {
		t.Errorf("/readyz when ready: %d, want 200", code)
	}
	if code, body := get("/metrics"); code != http.StatusOK || !strings.Contains(body, "go_goroutines") {
		t.Errorf("/metrics: %d", code)
	}
}

// TestPprof: the profiles are served only with --pprof, beside /metrics.
func TestPprof(t *testing.T) {
	ready := func(context.Context) error { return nil }
	for _, on := range []bool{false, true} {
		h := adminHandler(newRegistry(), ready)
		if on {
			h = withPprof(h)
		}
		srv := httptest.NewServer(h)
		for path, want := range map[string]int{"/debug/pprof/": http.StatusNotFound, "/debug/pprof/goroutine?debug=1": http.StatusNotFound, "/metrics": http.StatusOK} {
			if on {
				want = http.StatusOK
			}
			resp, err := http.Get(srv.URL + path)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != want {
				t.Errorf("pprof %v: %s answered %d, want %d", on, path, resp.StatusCode, want)
			}
		}
		srv.Close()
	}
}
