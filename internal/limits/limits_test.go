package limits_test

import (
	"encoding/json"
	"errors"
	"slices"
	"testing"

	"github.com/eddy-streams/eddy/internal/limits"
)

func TestValidate(t *testing.T) {
	for _, tc := range []struct {
		name   string
		change func(*limits.Limits)
		fields []string // out of range, in order
	}{
		{"defaults", func(*limits.Limits) {}, nil},
		{"lowest", func(l *limits.Limits) {
			*l = limits.Limits{IngressMBps: 1, EgressMBps: 1, MaxRequestsPerSec: 1, MaxConnections: 1, MaxPartitions: 1, MaxStorageGB: 1}
		}, nil},
		{"highest", func(l *limits.Limits) {
			*l = limits.Limits{IngressMBps: 10_000, EgressMBps: 10_000, MaxRequestsPerSec: 1_000_000, MaxConnections: 100_000, MaxPartitions: 100_000, MaxStorageGB: 1_000_000}
		}, nil},
		{"zero ingress", func(l *limits.Limits) { l.IngressMBps = 0 }, []string{"ingress_mbps"}},
		{"egress too high", func(l *limits.Limits) { l.EgressMBps = 10_001 }, []string{"egress_mbps"}},
		{"negative requests", func(l *limits.Limits) { l.MaxRequestsPerSec = -1 }, []string{"max_requests_per_sec"}},
		{"connections too high", func(l *limits.Limits) { l.MaxConnections = 100_001 }, []string{"max_connections"}},
		{"partitions too high", func(l *limits.Limits) { l.MaxPartitions = 100_001 }, []string{"max_partitions"}},
		{"storage too high", func(l *limits.Limits) { l.MaxStorageGB = 1_000_001 }, []string{"max_storage_gb"}},
		{"zero value", func(l *limits.Limits) { *l = limits.Limits{} },
			[]string{"ingress_mbps", "egress_mbps", "max_requests_per_sec", "max_connections", "max_partitions", "max_storage_gb"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			l := limits.Defaults()
			tc.change(&l)
			err := l.Validate()
			var fe limits.FieldErrors
			if err != nil && !errors.As(err, &fe) {
				t.Fatalf("Validate() = %v, not FieldErrors", err)
			}
			var got []string
			for _, e := range fe {
				got = append(got, e.Field)
				if e.Msg == "" {
					t.Errorf("%s: no message", e.Field)
				}
			}
			if !slices.Equal(got, tc.fields) {
				t.Errorf("fields out of range %v, want %v (%v)", got, tc.fields, err)
			}
		})
	}
}

func TestValidateChange(t *testing.T) {
	stored := limits.Defaults()
	stored.IngressMBps = 20_000 // out of range, set by hand
	l := stored
	l.MaxConnections = 5
	if err := l.ValidateChange(stored); err != nil {
		t.Errorf("changing max_connections of a cluster with ingress out of range: %v", err)
	}
	l.MaxRequestsPerSec = 0
	var fe limits.FieldErrors
	if err := l.ValidateChange(stored); !errors.As(err, &fe) || len(fe) != 1 || fe[0].Field != "max_requests_per_sec" {
		t.Errorf("ValidateChange = %v, want only max_requests_per_sec", err)
	}
}

func TestBoundOf(t *testing.T) {
	if b := limits.BoundOf("max_connections"); b.Min != 1 || b.Max != 100_000 || b.Default != 1000 {
		t.Errorf("BoundOf(max_connections) = %+v", b)
	}
	defer func() {
		if recover() == nil {
			t.Error("BoundOf of no limit did not panic")
		}
	}()
	limits.BoundOf("max_topics")
}

// TestJSONPatch: the wire format leaves unset (zero) limits out, and a
// body decoded onto current limits changes only the fields it carries.
func TestJSONPatch(t *testing.T) {
	b, err := json.Marshal(limits.Limits{MaxConnections: 5})
	if err != nil || string(b) != `{"max_connections":5}` {
		t.Fatalf("Marshal = %s, %v", b, err)
	}
	l := limits.Defaults()
	if err := json.Unmarshal([]byte(`{"max_requests_per_sec":7,"max_connections":5}`), &l); err != nil {
		t.Fatal(err)
	}
	want := limits.Defaults()
	want.MaxRequestsPerSec, want.MaxConnections = 7, 5
	if l != want {
		t.Errorf("decoded onto the defaults: %+v, want %+v", l, want)
	}
}

func TestOverrides(t *testing.T) {
	o := limits.NewOverrides()
	if got := o.ProduceBytesPerSec("vc-a"); got != 0 {
		t.Errorf("unknown cluster's produce rate %v, want 0 (unlimited)", got)
	}
	o.Set(map[string]limits.Limits{"vc-a": {IngressMBps: 2, EgressMBps: 3, MaxRequestsPerSec: 4, MaxConnections: 5, MaxStorageGB: 6}})
	if got := []float64{o.ProduceBytesPerSec("vc-a"), o.FetchBytesPerSec("vc-a"), o.RequestsPerSec("vc-a"),
		float64(o.Connections("vc-a")), float64(o.StorageBytes("vc-a"))}; !slices.Equal(got, []float64{2e6, 3e6, 4, 5, 6e9}) {
		t.Errorf("getters = %v", got)
	}
	if got := o.Clusters(); !slices.Equal(got, []string{"vc-a"}) {
		t.Errorf("Clusters() = %v", got)
	}
}
