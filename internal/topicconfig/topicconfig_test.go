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
