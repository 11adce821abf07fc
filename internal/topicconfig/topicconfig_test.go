package topicconfig

import (
	"errors"
	"slices"
	"strings"
	"testing"
)

func TestDefsSorted(t *testing.T) {
	if !slices.IsSortedFunc(defs, func(a, b Def) int { return strings.Compare(a.Name, b.Name) }) {
		t.Fatal("defs must be sorted by name for Lookup")
	}
	for _, d := range defs {
		if err := Validate(d.Name, d.Default); err != nil {
			t.Errorf("default of %s does not validate: %v", d.Name, err)
		}
	}
}

func TestValidate(t *testing.T) {
	for _, tc := range []struct {
		name, key, value string
		ok               bool
	}{
		{"retention", "retention.ms", "1000", true},
		{"forever", "retention.ms", "-1", true},
		{"negative retention", "retention.ms", "-2", false},
		{"not a number", "retention.bytes", "lots", false},
		{"policy both", "cleanup.policy", "compact,delete", true},
		{"policy bad", "cleanup.policy", "shred", false},
		{"timestamp type", "message.timestamp.type", "LogAppendTime", true},
		{"timestamp type bad", "message.timestamp.type", "Now", false},
		{"unknown", "retention.weeks", "1", false},
		{"bool", "unclean.leader.election.enable", "yes", false},
		{"double", "min.cleanable.dirty.ratio", "0.7", true},
		{"double bad", "min.cleanable.dirty.ratio", "x", false},
		{"ratio over 1", "min.cleanable.dirty.ratio", "1.5", false},
		{"ratio 0", "min.cleanable.dirty.ratio", "0", true},
		{"ratio NaN", "min.cleanable.dirty.ratio", "NaN", false},
		{"ratio nan", "min.cleanable.dirty.ratio", "nan", false},
		{"ratio Inf", "min.cleanable.dirty.ratio", "-Inf", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := Validate(tc.key, tc.value)
			if tc.ok && err != nil {
				t.Fatalf("unexpected error: %v", err)
			}
			if !tc.ok && !errors.Is(err, ErrInvalid) {
				t.Fatalf("want ErrInvalid, got %v", err)
			}
		})
	}
}

func TestValue(t *testing.T) {
	ex := map[string]string{"retention.ms": "5"}
	if Int64(ex, "retention.ms") != 5 || Value(ex, "cleanup.policy") != "delete" {
		t.Fatal("explicit values must win over defaults")
	}
}

func TestTimestampsCheck(t *testing.T) {
	const now = 1_700_000_000_000
	window := TimestampsOf(map[string]string{"message.timestamp.before.max.ms": "60000", "message.timestamp.after.max.ms": "1000"})
	for _, tc := range []struct {
		name       string
		ts         Timestamps
		first, max int64
		ok         bool
	}{
		{"inside", window, now - 60000, now + 1000, true},
		{"first too old", window, now - 60001, now, false},
		{"max too new", window, now, now + 1001, false},
		{"max too old", window, -1, now - 60001, false},
		{"no timestamp", window, -1, -1, true},
		{"defaults: an hour ahead", TimestampsOf(nil), now, now + 3600000, true},
		{"defaults: past an hour ahead", TimestampsOf(nil), now, now + 3600001, false},
		{"defaults: 1970", TimestampsOf(nil), 0, 2000, true},
		{"after saturates", TimestampsOf(map[string]string{"message.timestamp.after.max.ms": "9223372036854775807"}), now, 1<<63 - 1, true},
		{"log append time", TimestampsOf(map[string]string{"message.timestamp.type": "LogAppendTime", "message.timestamp.after.max.ms": "0"}), now, now + 1e9, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.ts.Check(tc.first, tc.max, now)
			if tc.ok && err != nil {
				t.Fatalf("unexpected error: %v", err)
			}
			if !tc.ok && !errors.Is(err, ErrTimestamp) {
				t.Fatalf("want ErrTimestamp, got %v", err)
			}
		})
	}
}
