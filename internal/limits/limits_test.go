package limits_test

import (
	"encoding/json"
	"errors"
	"slices"
	"strings"
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
			*l = limits.Limits{IngressMBps: 1, EgressMBps: 1, MaxRequestsPerSec: 1, MaxConnections: 1, MaxPartitions: 1, MaxStorageGB: 1,
				MaxTopics: 1, MaxGroups: 1, ProducerIDsPerHour: 1, ProducerIDBurst: 1, MaxRetentionMs: 1, MaxRetentionBytes: 1}
		}, nil},
		{"highest", func(l *limits.Limits) {
			*l = limits.Limits{IngressMBps: 10_000, EgressMBps: 10_000, MaxRequestsPerSec: 1_000_000, MaxConnections: 100_000, MaxPartitions: 100_000, MaxStorageGB: 1_000_000,
				MaxTopics: 100_000, MaxGroups: 100_000, ProducerIDsPerHour: 3_600_000, ProducerIDBurst: 100_000,
				MaxRetentionMs: limits.UnlimitedRetentionMs, MaxRetentionBytes: limits.UnlimitedRetentionBytes}
		}, nil},
		{"widest", func(l *limits.Limits) { *l = limits.Widest() }, nil},
		{"zero ingress", func(l *limits.Limits) { l.IngressMBps = 0 }, []string{"ingress_mbps"}},
		{"egress too high", func(l *limits.Limits) { l.EgressMBps = 10_001 }, []string{"egress_mbps"}},
		{"negative requests", func(l *limits.Limits) { l.MaxRequestsPerSec = -1 }, []string{"max_requests_per_sec"}},
		{"connections too high", func(l *limits.Limits) { l.MaxConnections = 100_001 }, []string{"max_connections"}},
		{"partitions too high", func(l *limits.Limits) { l.MaxPartitions = 100_001 }, []string{"max_partitions"}},
		{"storage too high", func(l *limits.Limits) { l.MaxStorageGB = 1_000_001 }, []string{"max_storage_gb"}},
		{"topics too high", func(l *limits.Limits) { l.MaxTopics = 100_001 }, []string{"max_topics"}},
		{"zero groups", func(l *limits.Limits) { l.MaxGroups = 0 }, []string{"max_groups"}},
		{"producer ids too fast", func(l *limits.Limits) { l.ProducerIDsPerHour = 3_600_001 }, []string{"producer_ids_per_hour"}},
		{"negative producer burst", func(l *limits.Limits) { l.ProducerIDBurst = -1 }, []string{"producer_id_burst"}},
		{"retention beyond unlimited", func(l *limits.Limits) { l.MaxRetentionMs = limits.UnlimitedRetentionMs + 1 }, []string{"max_retention_ms"}},
		{"zero retention bytes", func(l *limits.Limits) { l.MaxRetentionBytes = 0 }, []string{"max_retention_bytes"}},
		{"zero value", func(l *limits.Limits) { *l = limits.Limits{} },
			[]string{"ingress_mbps", "egress_mbps", "max_requests_per_sec", "max_connections", "max_partitions", "max_storage_gb",
				"max_topics", "max_groups", "producer_ids_per_hour", "producer_id_burst", "max_retention_ms", "max_retention_bytes"}},
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
	limits.BoundOf("max_bananas")
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

// TestWithin: a limit above its plan's ceiling is refused naming the
// field and the ceiling; on a change only the limits that change are
// checked; the effective limits are the lower of limit and ceiling.
func TestWithin(t *testing.T) {
	ceil := limits.Widest()
	ceil.IngressMBps, ceil.MaxTopics = 50, 10
	l := limits.Defaults() // ingress 100, topics 1000
	var fe limits.FieldErrors
	if err := l.Within(ceil); !errors.As(err, &fe) || len(fe) != 2 || fe[0].Field != "ingress_mbps" || fe[1].Field != "max_topics" ||
		!strings.Contains(fe[0].Msg, "at most 50") {
		t.Fatalf("Within = %v, want ingress_mbps and max_topics naming their ceilings", err)
	}
	if err := limits.Defaults().Within(limits.Widest()); err != nil {
		t.Errorf("defaults under the widest plan: %v", err)
	}
	if err := limits.Defaults().Within(limits.Limits{}); err != nil {
		t.Errorf("no ceilings: %v", err)
	}
	changed := l
	changed.MaxConnections = 5
	if err := changed.WithinChange(l, ceil); err != nil {
		t.Errorf("changing max_connections of a cluster over a lowered ceiling: %v", err)
	}
	changed.IngressMBps = 60
	if err := changed.WithinChange(l, ceil); !errors.As(err, &fe) || len(fe) != 1 || fe[0].Field != "ingress_mbps" {
		t.Errorf("WithinChange = %v, want only ingress_mbps", err)
	}
	eff := l.Capped(ceil)
	want := l
	want.IngressMBps, want.MaxTopics = 50, 10
	if eff != want {
		t.Errorf("Capped = %+v, want %+v", eff, want)
	}
	if got := (limits.Limits{}).Capped(ceil); got != ceil {
		t.Errorf("unset limits capped: %+v, want the ceilings", got)
	}
	if got := l.Capped(limits.Limits{}); got != l {
		t.Errorf("no ceilings: %+v", got)
	}
	if got := (limits.Limits{MaxTopics: 3}).OrDefaults(); got.MaxTopics != 3 || got.MaxGroups != limits.Defaults().MaxGroups {
		t.Errorf("OrDefaults = %+v", got)
	}
}

func TestCheckTopicConfigs(t *testing.T) {
	capped := limits.Defaults()
	capped.MaxRetentionMs, capped.MaxRetentionBytes = 3_600_000, 1<<30
	for _, tc := range []struct {
		name    string
		l       limits.Limits
		configs map[string]string
		fields  []string
	}{
		{"unlimited allows forever", limits.Defaults(), map[string]string{"retention.ms": "-1", "retention.bytes": "-1"}, nil},
		{"unlimited allows any", limits.Defaults(), map[string]string{"retention.ms": "9223372036854775807"}, nil},
		{"within", capped, map[string]string{"retention.ms": "3600000", "retention.bytes": "1024"}, nil},
		{"unset", capped, map[string]string{"cleanup.policy": "compact"}, nil},
		{"ms over", capped, map[string]string{"retention.ms": "3600001"}, []string{"retention.ms"}},
		{"forever over", capped, map[string]string{"retention.ms": "-1", "retention.bytes": "-1"}, []string{"retention.ms", "retention.bytes"}},
		{"not a number", capped, map[string]string{"retention.ms": "soon"}, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.l.CheckTopicConfigs(tc.configs)
			var fe limits.FieldErrors
			if err != nil && !errors.As(err, &fe) {
				t.Fatalf("%v, not FieldErrors", err)
			}
			var got []string
			for _, e := range fe {
				got = append(got, e.Field)
			}
			if !slices.Equal(got, tc.fields) {
				t.Errorf("refused %v, want %v (%v)", got, tc.fields, err)
			}
		})
	}
}

func TestProducerIDs(t *testing.T) {
	o := limits.NewOverrides()
	if r, b := o.ProducerIDs("vc-new"); r != 1 || b != 1000 {
		t.Errorf("unknown cluster's producer ids: %v/s, burst %d; want the defaults' 1/s, 1000", r, b)
	}
	o.Set(map[string]limits.Limits{"vc-a": {ProducerIDsPerHour: 7200, ProducerIDBurst: 5, MaxGroups: 3}})
	if r, b := o.ProducerIDs("vc-a"); r != 2 || b != 5 {
		t.Errorf("producer ids %v/s, burst %d; want 2, 5", r, b)
	}
	if g := o.Groups("vc-a"); g != 3 {
		t.Errorf("groups %d, want 3", g)
	}
}
