package clusterconfig

import (
	"errors"
	"maps"
	"strings"
	"testing"

	"github.com/eddy-streams/eddy/internal/limits"
)

func TestValidate(t *testing.T) {
	for _, tc := range []struct {
		name, config, value string
		ok                  bool
	}{
		{"partitions", "num.partitions", "6", true},
		{"zero partitions", "num.partitions", "0", false},
		{"too many partitions", "num.partitions", "10001", false},
		{"replication factor", "default.replication.factor", "3", true},
		{"auto create off", "auto.create.topics.enable", "false", true},
		{"auto create not a bool", "auto.create.topics.enable", "no", false},
		{"retention", "log.retention.ms", "-1", true},
		{"retention not a number", "log.retention.ms", "soon", false},
		{"cleanup policy", "log.cleanup.policy", "compact,delete", true},
		{"bad cleanup policy", "log.cleanup.policy", "archive", false},
		{"message size", "message.max.bytes", "2000000", true},
		{"unknown", "log.dirs", "/tmp", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := Validate(tc.config, tc.value)
			if (err == nil) != tc.ok {
				t.Fatalf("Validate(%s, %s) = %v, want ok %v", tc.config, tc.value, err, tc.ok)
			}
			if err != nil && (!errors.Is(err, ErrInvalid) || strings.Contains(err.Error(), "topicconfig")) {
				t.Errorf("error %q: want ErrInvalid naming the broker config only", err)
			}
		})
	}
}

// TestDefs: every default passes its own check (the sorting and topic
// defaults are so by construction).
func TestDefs(t *testing.T) {
	for _, d := range defs {
		if err := Validate(d.Name, d.Default); err != nil {
			t.Errorf("default of %s: %v", d.Name, err)
		}
	}
}

func TestTopicDefaultsAndWithin(t *testing.T) {
	explicit := map[string]string{"num.partitions": "6", "log.retention.ms": "3600000", "message.max.bytes": "2000000"}
	want := map[string]string{"retention.ms": "3600000", "max.message.bytes": "2000000"}
	if got := TopicDefaults(explicit); !maps.Equal(got, want) {
		t.Errorf("TopicDefaults = %v, want %v", got, want)
	}
	if Partitions(explicit) != 6 || Partitions(nil) != 1 || !AutoCreate(nil) || AutoCreate(map[string]string{AutoCreateTopics: "false"}) {
		t.Error("Partitions or AutoCreate wrong")
	}
	l := limits.Defaults()
	if err := Within(explicit, l); err != nil {
		t.Errorf("within the defaults: %v", err)
	}
	l.MaxPartitions, l.MaxRetentionMs = 5, 60_000
	var fe limits.FieldErrors
	if !errors.As(Within(explicit, l), &fe) || len(fe) != 2 || fe[0].Field != "num.partitions" || fe[1].Field != "log.retention.ms" {
		t.Errorf("Within over max_partitions and max_retention_ms = %v", fe)
	}
}

func TestWithinChange(t *testing.T) {
	l := limits.Defaults()
	l.MaxPartitions, l.MaxRetentionMs = 5, 60_000
	cur := map[string]string{"num.partitions": "6", "log.retention.ms": "3600000"}
	// Over since the ceilings were lowered: other changes still pass.
	if err := WithinChange(cur, map[string]string{"num.partitions": "6", "log.retention.ms": "3600000", "message.max.bytes": "100"}, l); err != nil {
		t.Errorf("changing another config: %v", err)
	}
	var fe limits.FieldErrors
	if !errors.As(WithinChange(cur, map[string]string{"num.partitions": "7", "log.retention.ms": "3600000"}, l), &fe) ||
		len(fe) != 1 || fe[0].Field != "num.partitions" {
		t.Errorf("raising num.partitions = %v, want it alone named", fe)
	}
	if err := WithinChange(nil, cur, l); err == nil {
		t.Error("new configs over the limits passed")
	}
}

func TestCheckDynamic(t *testing.T) {
	cur := map[string]string{"num.partitions": "6", "log.retention.ms": "60000"}
	for _, tc := range []struct {
		name string
		next map[string]string
		ok   bool
	}{
		{"same", map[string]string{"num.partitions": "6", "log.retention.ms": "60000"}, true},
		{"dynamic changed", map[string]string{"num.partitions": "6", "message.max.bytes": "100"}, true},
		{"static changed", map[string]string{"num.partitions": "3", "log.retention.ms": "60000"}, false},
		{"static removed", map[string]string{"log.retention.ms": "60000"}, false},
		{"static added", map[string]string{"num.partitions": "6", "auto.create.topics.enable": "false"}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if err := CheckDynamic(cur, tc.next); (err == nil) != tc.ok || (err != nil && !errors.Is(err, ErrReadOnly)) {
				t.Errorf("CheckDynamic = %v, want ok %v", err, tc.ok)
			}
		})
	}
}
