package bucket_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/eddy-streams/eddy/tiered/bucket"
	"github.com/eddy-streams/eddy/tiered/buckettest"
	"github.com/eddy-streams/eddy/tiered/fsbucket"
)

func TestValidKey(t *testing.T) {
	for _, tc := range []struct {
		key string
		ok  bool
	}{
		{"a", true},
		{"t/acme/obj/000042.eddy", true},
		{"a-b_c.d~e+f=g@h", true},
		{"a.b/c..", false},
		{"ünïcödé/ok", true},
		{strings.Repeat("s", bucket.MaxSegmentLen), true},
		{strings.Repeat("s/", bucket.MaxKeyLen/2-1) + "ss", true},
		{"", false},
		{"/a", false},
		{"a/", false},
		{"a//b", false},
		{"..", false},
		{"a/../b", false},
		{"a..b", false},
		{".", false},
		{"a/.", false},
		{".a", false},
		{"a/.b", false},
		{"a\x00", false},
		{"a\tb", false},
		{"a\x7fb", false},
		{"a\u0085b", false}, // C1 control
		{"\xff", false},
		{strings.Repeat("s", bucket.MaxSegmentLen+1), false},
		{strings.Repeat("s/", bucket.MaxKeyLen/2) + "s", false},
	} {
		err := bucket.ValidKey(tc.key)
		if tc.ok && err != nil {
			t.Errorf("ValidKey(%q) = %v, want nil", tc.key, err)
		}
		if !tc.ok && !errors.Is(err, bucket.ErrInvalidKey) {
			t.Errorf("ValidKey(%q) = %v, want ErrInvalidKey", tc.key, err)
		}
	}
}

func TestValidPrefix(t *testing.T) {
	for _, tc := range []struct {
		prefix string
		ok     bool
	}{
		{"", true},
		{"a", true},
		{"a/", true},
		{"a/b", true},
		{"/", false},
		{"a//", false},
		{"../", false},
		{".x/", false},
	} {
		err := bucket.ValidPrefix(tc.prefix)
		if tc.ok != (err == nil) || (err != nil && !errors.Is(err, bucket.ErrInvalidKey)) {
			t.Errorf("ValidPrefix(%q) = %v", tc.prefix, err)
		}
	}
}

func openFS(t *testing.T) bucket.Bucket {
	t.Helper()
	b, err := fsbucket.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// The wrapper must not change behaviour.
func TestInstrumentAcceptance(t *testing.T) {
	buckettest.Run(t, func(t *testing.T) bucket.Bucket {
		return bucket.Instrument(openFS(t), prometheus.NewRegistry(), "test")
	})
}

func TestInstrumentNilRegisterer(t *testing.T) {
	b := bucket.Instrument(openFS(t), nil, "test")
	if err := b.Put(t.Context(), "k", []byte("v")); err != nil {
		t.Fatal(err)
	}
}

func TestInstrumentMetrics(t *testing.T) {
	reg := prometheus.NewRegistry()
	b := bucket.Instrument(openFS(t), reg, "data")
	// A second bucket on the same registry, and the same name again.
	other := bucket.Instrument(openFS(t), reg, "cache")
	again := bucket.Instrument(openFS(t), reg, "data")

	ctx := t.Context()
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(b.Put(ctx, "k", []byte("12345")))
	must(again.Put(ctx, "k2", []byte("123")))
	must(other.Put(ctx, "k", []byte("1")))
	_, err := b.Get(ctx, "k")
	must(err)
	_, err = b.GetRange(ctx, "k", 1, 2)
	must(err)
	_, _ = b.Get(ctx, "missing")
	_, _ = b.GetRange(ctx, "k", 4, 2)
	_ = b.Put(ctx, "/bad", nil)
	cancelled, cancel := context.WithCancel(ctx)
	cancel()
	_ = b.Delete(cancelled, "k")
	stop := errors.New("stop")
	if err := b.List(ctx, "", func(bucket.Object) error { return stop }); err != stop {
		t.Fatalf("List = %v, want fn's error unchanged", err)
	}

	families, err := reg.Gather()
	must(err)
	value := func(name string, labels ...string) float64 {
		t.Helper()
		want := map[string]string{}
		for i := 0; i < len(labels); i += 2 {
			want[labels[i]] = labels[i+1]
		}
		for _, mf := range families {
			if mf.GetName() != name {
				continue
			}
		metrics:
			for _, m := range mf.GetMetric() {
				got := map[string]string{}
				for _, lp := range m.GetLabel() {
					got[lp.GetName()] = lp.GetValue()
				}
				if len(got) != len(want) {
					continue
				}
				for k, v := range want {
					if got[k] != v {
						continue metrics
					}
				}
				return sampleValue(m)
			}
		}
		t.Fatalf("no series %s%v", name, want)
		return 0
	}
	const req, bytes, secs = "eddy_objstore_requests_total", "eddy_objstore_bytes_total", "eddy_objstore_request_seconds"
	for _, tc := range []struct {
		name   string
		labels []string
		want   float64
	}{
		{req, []string{"bucket", "data", "op", "put", "outcome", "success"}, 2},
		{req, []string{"bucket", "cache", "op", "put", "outcome", "success"}, 1},
		{req, []string{"bucket", "data", "op", "put", "outcome", "invalid_key"}, 1},
		{req, []string{"bucket", "data", "op", "get", "outcome", "success"}, 1},
		{req, []string{"bucket", "data", "op", "get", "outcome", "not_found"}, 1},
		{req, []string{"bucket", "data", "op", "get_range", "outcome", "success"}, 1},
		{req, []string{"bucket", "data", "op", "get_range", "outcome", "range"}, 1},
		{req, []string{"bucket", "data", "op", "delete", "outcome", "canceled"}, 1},
		{req, []string{"bucket", "data", "op", "delete", "outcome", "success"}, 0},
		{req, []string{"bucket", "data", "op", "list", "outcome", "success"}, 1},
		{bytes, []string{"bucket", "data", "op", "put"}, 8},
		{bytes, []string{"bucket", "data", "op", "get"}, 5},
		{bytes, []string{"bucket", "data", "op", "get_range"}, 2},
		{bytes, []string{"bucket", "cache", "op", "put"}, 1},
		{secs, []string{"bucket", "data", "op", "put"}, 3},
		{secs, []string{"bucket", "data", "op", "get"}, 2},
	} {
		if got := value(tc.name, tc.labels...); got != tc.want {
			t.Errorf("%s%v = %v, want %v", tc.name, tc.labels, got, tc.want)
		}
	}
}

// sampleValue returns a counter's value or a histogram's sample count.
func sampleValue(m *dto.Metric) float64 {
	switch {
	case m.GetCounter() != nil:
		return m.GetCounter().GetValue()
	case m.GetHistogram() != nil:
		return float64(m.GetHistogram().GetSampleCount())
	}
	panic(fmt.Sprintf("unexpected metric %v", m))
}
