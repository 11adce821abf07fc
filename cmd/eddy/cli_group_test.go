package main

import (
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
)

// reset-offsets refuses a bad --topic or --to-datetime before it asks the
// API (or a broker) anything.
func TestResetOffsetsChecksFlagsFirst(t *testing.T) {
	t.Setenv("EDDY_CLI_CONFIG", filepath.Join(t.TempDir(), "config.json"))
	var hits atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		http.Error(w, "no", http.StatusInternalServerError)
	}))
	defer srv.Close()
	for _, tc := range []struct {
		flags []string
		want  string
	}{
		{[]string{"--topic", "orders:x", "--to-earliest"}, "--topic"},
		{[]string{"--topic", "orders", "--to-datetime", "yesterday"}, "--to-datetime"},
	} {
		root := newRoot()
		root.SetArgs(append([]string{"group", "reset-offsets", "g", "--url", srv.URL, "--token", "t", "--cluster", "c"}, tc.flags...))
		root.SetOut(&strings.Builder{})
		root.SetErr(&strings.Builder{})
		err := root.Execute()
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%v: err %v, want the flag's error", tc.flags, err)
		}
		if n := hits.Load(); n != 0 {
			t.Errorf("%v: %d API requests before the flags were checked", tc.flags, n)
		}
	}
}
