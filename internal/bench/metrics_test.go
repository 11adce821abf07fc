package bench

import (
	"strings"
	"testing"
)

func TestParseText(t *testing.T) {
	in := `# HELP eddy_objstore_requests_total Object store requests.
# TYPE eddy_objstore_requests_total counter
eddy_objstore_requests_total{bucket="data",op="put",outcome="success"} 42
eddy_objstore_requests_total{bucket="data",op="get_range",outcome="success"} 7
eddy_objstore_requests_total{bucket="da\"ta",op="put",outcome="error"} 1
process_cpu_seconds_total 3.25
eddy_flush_seconds_sum 1.5e-01 1700000000000
`
	got, err := parseText(strings.NewReader(in))
	if err != nil {
		t.Fatal(err)
	}
	want := []struct {
		name, op, bucket string
		v                float64
	}{
		{"eddy_objstore_requests_total", "put", "data", 42},
		{"eddy_objstore_requests_total", "get_range", "data", 7},
		{"eddy_objstore_requests_total", "put", `da"ta`, 1},
		{"process_cpu_seconds_total", "", "", 3.25},
		{"eddy_flush_seconds_sum", "", "", 0.15},
	}
	if len(got) != len(want) {
		t.Fatalf("%d samples, want %d: %+v", len(got), len(want), got)
	}
	for i, w := range want {
		g := got[i]
		if g.name != w.name || g.labels["op"] != w.op || g.labels["bucket"] != w.bucket || g.value != w.v {
			t.Errorf("sample %d = %+v, want %+v", i, g, w)
		}
	}
	if _, err := parseText(strings.NewReader(`x{a="b} 1`)); err == nil {
		t.Error("unterminated label value parsed")
	}
}
