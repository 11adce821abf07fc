// Package topicconfig knows the topic configs Eddy accepts, their defaults
// and how to validate a value, with Kafka's names and semantics, and the
// rules for topic names and partition counts that REST and the Kafka API
// share. Topics store only the configs set explicitly; everything else is
// the default.
package topicconfig

import (
	"errors"
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
)

// Errors of this package.
var (
	// ErrInvalid is returned for unknown names and bad values (Kafka's
	// INVALID_CONFIG).
	ErrInvalid = errors.New("topicconfig: invalid config")
	// ErrTimestamp is returned for a batch whose timestamps are outside
	// the topic's window (Kafka's INVALID_TIMESTAMP).
	ErrTimestamp = errors.New("topicconfig: timestamp outside the topic's window")
)

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

// IntRange checks that a value is an integer in [lo, hi].
func IntRange(lo, hi int64) func(string) error {
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
		// ParseFloat takes "NaN" and "Inf", which no range comparison
		// refuses (NaN compares false): a NaN dirty ratio never compacts.
		if err != nil || math.IsNaN(f) || math.IsInf(f, 0) {
			return fmt.Errorf("%q is not a number", v)
		}
		if f < lo || f > hi {
			return fmt.Errorf("%v is outside [%v, %v]", f, lo, hi)
		}
		return nil
	}
}

// CheckBool checks that a value is true or false.
func CheckBool(v string) error {
	if v != "true" && v != "false" {
		return fmt.Errorf("%q is not true or false", v)
	}
	return nil
}

const (
	maxInt64    = 1<<63 - 1
	noTimestamp = -1 // Kafka's RecordBatch.NO_TIMESTAMP
)

var defs = []Def{
	{"cleanup.policy", "delete", List, "delete (retention), compact (the last record of each key is kept), or both: compact,delete", oneOf("delete", "compact")},
	{"compression.type", "producer", String, "codec batches are stored with; producer keeps them as sent", oneOf("producer", "uncompressed", "gzip", "snappy", "lz4", "zstd")},
	{"delete.retention.ms", "86400000", Long, "how long a tombstone is kept after the compaction that first kept it (its delete horizon, KIP-534); a transaction marker with no data left is kept this long after its timestamp", IntRange(0, maxInt64)},
	{"file.delete.delay.ms", "60000", Long, "grace period before deleted data is removed", IntRange(0, maxInt64)},
	{"max.compaction.lag.ms", strconv.FormatInt(maxInt64, 10), Long, "longest a record stays uncompacted: a partition with older dirty data is compacted whatever its dirty ratio", IntRange(1, maxInt64)},
	{"max.message.bytes", "1048588", Int, "largest record batch accepted", IntRange(0, 1<<31-1)},
	{"message.timestamp.after.max.ms", "3600000", Long, "how far past the broker's clock a CreateTime timestamp may be (KIP-937; Kafka 4's default)", IntRange(0, maxInt64)},
	{"message.timestamp.before.max.ms", strconv.FormatInt(maxInt64, 10), Long, "how far behind the broker's clock a CreateTime timestamp may be (KIP-937)", IntRange(0, maxInt64)},
	{"message.timestamp.type", "CreateTime", String, "CreateTime or LogAppendTime", oneOf("CreateTime", "LogAppendTime")},
	{"min.cleanable.dirty.ratio", "0.5", Double, "share of a compacted partition's cleanable bytes not yet compacted above which it is compacted", floatRange(0, 1)},
	{"min.compaction.lag.ms", "0", Long, "shortest a record stays uncompacted (an index row holding a newer record is not compacted)", IntRange(0, maxInt64)},
	{"min.insync.replicas", "1", Int, "accepted for compatibility; durability comes from object storage", IntRange(1, 1<<31-1)},
	{"retention.bytes", "-1", Long, "bytes kept per partition; -1 is unlimited", IntRange(-1, maxInt64)},
	{"retention.ms", "604800000", Long, "how long data is kept; -1 is forever", IntRange(-1, maxInt64)},
	{"segment.bytes", "1073741824", Int, "target size of compacted segment objects", IntRange(14, 1<<31-1)},
	{"segment.ms", "604800000", Long, "longest a segment stays open", IntRange(1, maxInt64)},
	{"unclean.leader.election.enable", "false", Boolean, "accepted for compatibility", CheckBool},
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
	if err := d.check(value); err != nil {
		return fmt.Errorf("%w: %s: %v", ErrInvalid, name, err)
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

// Timestamps is how a topic treats the timestamps producers send: its
// message.timestamp.* configs.
type Timestamps struct {
	// LogAppendTime: the broker stamps each batch with its own clock
	// (message.timestamp.type=LogAppendTime) and the window does not apply.
	LogAppendTime bool
	// Before and After bound, in milliseconds, how far behind and ahead of
	// the broker's clock a CreateTime timestamp may be.
	Before, After int64
}

// TimestampsOf returns the effective timestamp configs of a topic.
func TimestampsOf(explicit map[string]string) Timestamps {
	return Timestamps{
		LogAppendTime: Value(explicit, "message.timestamp.type") == "LogAppendTime",
		Before:        Int64(explicit, "message.timestamp.before.max.ms"),
		After:         Int64(explicit, "message.timestamp.after.max.ms"),
	}
}

// Check refuses, with ErrTimestamp, a batch whose first record's timestamp
// (first) or greatest timestamp (max, from the batch header) is outside
// [now-Before, now+After]; now is the broker's clock, all in Unix
// milliseconds. A timestamp of -1 (none) passes, as in Kafka.
//
// Kafka checks every record; this reads only the batch header, so that
// produce decodes no record. The bound after now is exact (max is the
// greatest timestamp, which Kafka trusts as well); the bound before it
// sees the first record and the greatest one, so a later record older
// than the first one (producers stamp records in order, so in practice
// none) is not checked.
func (ts Timestamps) Check(first, max, now int64) error {
	if ts.LogAppendTime {
		return nil
	}
	// now-Before cannot overflow (both are non-negative); now+After
	// saturates, as the default before.max.ms is Long.MAX_VALUE.
	lo, hi := now-ts.Before, now+ts.After
	if ts.After > maxInt64-now {
		hi = maxInt64
	}
	for _, t := range [2]int64{first, max} {
		switch {
		case t == noTimestamp: // as Kafka: a record without one is not checked
		case t < lo:
			return fmt.Errorf("%w: timestamp %d is more than message.timestamp.before.max.ms=%d before the broker's time %d", ErrTimestamp, t, ts.Before, now)
		case t > hi:
			return fmt.Errorf("%w: timestamp %d is more than message.timestamp.after.max.ms=%d after the broker's time %d", ErrTimestamp, t, ts.After, now)
		}
	}
	return nil
}
