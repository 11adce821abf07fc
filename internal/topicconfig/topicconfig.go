// Package topicconfig knows the topic configs Eddy accepts, their defaults
// and how to validate a value, with Kafka's names and semantics, and the
// rules for topic names and partition counts that REST and the Kafka API
// share. Topics store only the configs set explicitly; everything else is
// the default.
package topicconfig

import (
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
)

// ErrInvalid is returned for unknown names and bad values (Kafka's
// INVALID_CONFIG).
var ErrInvalid = errors.New("topicconfig: invalid config")

// Kind is the Kafka config type reported by DescribeConfigs.
type Kind int8

// Kafka's config types (DescribeConfigs v3+ ConfigType).
const (
	Boolean Kind = 1
	String  Kind = 2
	Int     Kind = 3
	Short   Kind = 4
	Long    Kind = 5
	Double  Kind = 6
	List    Kind = 7
)

// Def describes one config.
type Def struct {
	Name    string
	Default string
	Kind    Kind
	Doc     string
	check   func(string) error
}

func intRange(lo, hi int64) func(string) error {
	return func(v string) error {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil {
			return fmt.Errorf("%q is not an integer", v)
		}
		if n < lo || n > hi {
			return fmt.Errorf("%d is outside [%d, %d]", n, lo, hi)
		}
		return nil
	}
}

func oneOf(vals ...string) func(string) error {
	return func(v string) error {
		for _, part := range strings.Split(v, ",") {
			if !slices.Contains(vals, strings.TrimSpace(part)) {
				return fmt.Errorf("%q is not one of %s", v, strings.Join(vals, ", "))
			}
		}
		return nil
	}
}

func floatRange(lo, hi float64) func(string) error {
	return func(v string) error {
		f, err := strconv.ParseFloat(v, 64)
		if err != nil {
			return fmt.Errorf("%q is not a number", v)
		}
		if f < lo || f > hi {
			return fmt.Errorf("%v is outside [%v, %v]", f, lo, hi)
		}
		return nil
	}
}

func boolean(v string) error {
	if v != "true" && v != "false" {
		return fmt.Errorf("%q is not true or false", v)
	}
	return nil
}

const maxInt64 = 1<<63 - 1

var defs = []Def{
	{"cleanup.policy", "delete", List, "delete (retention), compact (the last record of each key is kept), or both: compact,delete", oneOf("delete", "compact")},
	{"compression.type", "producer", String, "codec batches are stored with; producer keeps them as sent", oneOf("producer", "uncompressed", "gzip", "snappy", "lz4", "zstd")},
	{"delete.retention.ms", "86400000", Long, "how long a tombstone is kept after the compaction that first kept it (its delete horizon, KIP-534); a transaction marker with no data left is kept this long after its timestamp", intRange(0, maxInt64)},
	{"file.delete.delay.ms", "60000", Long, "grace period before deleted data is removed", intRange(0, maxInt64)},
	{"max.compaction.lag.ms", strconv.FormatInt(maxInt64, 10), Long, "longest a record stays uncompacted: a partition with older dirty data is compacted whatever its dirty ratio", intRange(1, maxInt64)},
	{"max.message.bytes", "1048588", Int, "largest record batch accepted", intRange(0, 1<<31-1)},
	{"message.timestamp.type", "CreateTime", String, "CreateTime or LogAppendTime", oneOf("CreateTime", "LogAppendTime")},
	{"min.cleanable.dirty.ratio", "0.5", Double, "share of a compacted partition's cleanable bytes not yet compacted above which it is compacted", floatRange(0, 1)},
	{"min.compaction.lag.ms", "0", Long, "shortest a record stays uncompacted (an index row holding a newer record is not compacted)", intRange(0, maxInt64)},
	{"min.insync.replicas", "1", Int, "accepted for compatibility; durability comes from object storage", intRange(1, 1<<31-1)},
	{"retention.bytes", "-1", Long, "bytes kept per partition; -1 is unlimited", intRange(-1, maxInt64)},
	{"retention.ms", "604800000", Long, "how long data is kept; -1 is forever", intRange(-1, maxInt64)},
	{"segment.bytes", "1073741824", Int, "target size of compacted segment objects", intRange(14, 1<<31-1)},
	{"segment.ms", "604800000", Long, "longest a segment stays open", intRange(1, maxInt64)},
	{"unclean.leader.election.enable", "false", Boolean, "accepted for compatibility", boolean},
}

// Defs returns every known config, sorted by name.
func Defs() []Def { return defs }

// Lookup returns the definition of name.
func Lookup(name string) (Def, bool) {
	i, ok := slices.BinarySearchFunc(defs, name, func(d Def, n string) int { return strings.Compare(d.Name, n) })
	if !ok {
		return Def{}, false
	}
	return defs[i], true
}

// Validate checks one name and value.
func Validate(name, value string) error {
	d, ok := Lookup(name)
	if !ok {
		return fmt.Errorf("%w: unknown topic config %q", ErrInvalid, name)
	}
	if d.check != nil {
		if err := d.check(value); err != nil {
			return fmt.Errorf("%w: %s: %v", ErrInvalid, name, err)
		}
	} else if _, err := strconv.ParseFloat(value, 64); err != nil && d.Kind == Double {
		return fmt.Errorf("%w: %s: %q is not a number", ErrInvalid, name, value)
	}
	return nil
}

// ValidateAll checks a whole set.
func ValidateAll(configs map[string]string) error {
	names := make([]string, 0, len(configs))
	for n := range configs {
		names = append(names, n)
	}
	slices.Sort(names)
	for _, n := range names {
		if err := Validate(n, configs[n]); err != nil {
			return err
		}
	}
	return nil
}

// Value returns the effective value of name given the explicit set.
func Value(explicit map[string]string, name string) string {
	if v, ok := explicit[name]; ok {
		return v
	}
	d, _ := Lookup(name)
	return d.Default
}

// Int64 returns the effective value of an integer config.
func Int64(explicit map[string]string, name string) int64 {
	n, _ := strconv.ParseInt(Value(explicit, name), 10, 64)
	return n
}
