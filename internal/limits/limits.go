// Package limits defines what one virtual cluster may use: one Limits type
// with its defaults (Defaults) and its bounds (Validate), written once for
// the store, the REST API and its clients, the broker and `eddy dev`.
//
// A cluster's limits hold for the pool as a whole; the broker divides the
// rates and connections among its brokers (data-plane/quota), the store
// enforces partitions, topics, producer ids and retention, and the group
// coordinator consumer groups. Brokers read every cluster's limits through an
// Overrides, a snapshot swapped atomically as a whole, so the connection
// loop reads them without a lock. Consumers declare, in their own package,
// an interface with only the getters of Overrides they read.
//
// Plans with ceilings: an operator caps what a tenant may set through the
// plan of its organisation (billing_plans, migration 0016). A plan's
// ceilings are themselves a Limits, so every limit has a ceiling and one
// table (bounds below) describes both. Validate's bounds are the widest a
// plan may allow; Within narrows the upper end field by field for what a
// tenant sets, and Capped gives the effective limits the store and the
// brokers enforce: each the lower of the cluster's limit and its plan's
// ceiling, so lowering a ceiling below a cluster's limit takes effect
// without rewriting the cluster.
//
// The retention limits bound topic configs (CheckTopicConfigs); at the top
// of their range they mean unlimited, which admits Kafka's -1 (forever).
package limits

import (
	"fmt"
	"strconv"
	"strings"
)

// Limits bound what one virtual cluster may use. The JSON tags are the
// REST wire format (api/openapi.yaml, ClusterLimits, and PlanCeilings for
// a plan's ceilings).
//
// No limit can be zero (Validate), so zero means unset: a zero field is
// left out of JSON, and a request that carries some fields changes only
// those when the server decodes it onto the cluster's current limits
// (or onto Defaults for a new cluster). For the broker a cluster it has
// no limits for yet (zero Limits) is unlimited, except for producer ids
// (Overrides.ProducerIDs).
type Limits struct {
	IngressMBps       int32 `json:"ingress_mbps,omitempty"`         // produce bytes, MB/s
	EgressMBps        int32 `json:"egress_mbps,omitempty"`          // fetch bytes, MB/s
	MaxRequestsPerSec int32 `json:"max_requests_per_sec,omitempty"` // requests of every kind
	MaxConnections    int32 `json:"max_connections,omitempty"`      // open at once
	MaxPartitions     int32 `json:"max_partitions,omitempty"`       // over all topics
	MaxStorageGB      int64 `json:"max_storage_gb,omitempty"`       // committed record bytes
	MaxTopics         int32 `json:"max_topics,omitempty"`
	MaxGroups         int32 `json:"max_groups,omitempty"` // consumer groups, with members or offsets
	// Producer ids (InitProducerId): a token bucket of ProducerIDBurst
	// ids refilled at ProducerIDsPerHour, shared by the pool.
	ProducerIDsPerHour int32 `json:"producer_ids_per_hour,omitempty"`
	ProducerIDBurst    int32 `json:"producer_id_burst,omitempty"`
	// Ceilings of the topic configs retention.ms and retention.bytes
	// (per partition); at their Max, unlimited.
	MaxRetentionMs    int64 `json:"max_retention_ms,omitempty"`
	MaxRetentionBytes int64 `json:"max_retention_bytes,omitempty"`
}

// Unlimited retention: the Max of max_retention_ms (100 years) and of
// max_retention_bytes (1 PB per partition).
const (
	UnlimitedRetentionMs    = 100 * 365 * 24 * 3600 * 1000
	UnlimitedRetentionBytes = 1_000_000_000_000_000
)

// Defaults are the limits of a cluster created without any, and of the
// brokers' anonymous development cluster.
func Defaults() Limits {
	return Limits{
		IngressMBps:        100,
		EgressMBps:         300,
		MaxRequestsPerSec:  10_000,
		MaxConnections:     1000,
		MaxPartitions:      1000,
		MaxStorageGB:       1024,
		MaxTopics:          1000,
		MaxGroups:          10_000,
		ProducerIDsPerHour: 3600,
		ProducerIDBurst:    1000,
		MaxRetentionMs:     UnlimitedRetentionMs,
		MaxRetentionBytes:  UnlimitedRetentionBytes,
	}
}

// Widest returns every limit at the top of its range: the ceilings of
// the default plan, which leave Validate's bounds as they were before
// plans.
func Widest() Limits {
	var l Limits
	for _, b := range bounds {
		b.set(&l, b.Max)
	}
	return l
}

// Bound is the range a limit may take.
type Bound struct {
	Field    string // the JSON name
	Min, Max int64
	Default  int64 // in Defaults; filled by BoundOf
}

// field is a limit's range and how to read and write it in a Limits.
type field struct {
	Bound
	access
}

type access struct {
	get func(Limits) int64
	set func(*Limits, int64)
}

func i32(p func(*Limits) *int32) access {
	return access{func(l Limits) int64 { return int64(*p(&l)) }, func(l *Limits, v int64) { *p(l) = int32(v) }}
}

func i64(p func(*Limits) *int64) access {
	return access{func(l Limits) int64 { return *p(&l) }, func(l *Limits, v int64) { *p(l) = v }}
}

func limit(name string, lo, hi int64, a access) field {
	return field{Bound{Field: name, Min: lo, Max: hi}, a}
}

// bounds is every limit's range, in the order of Limits' fields.
var bounds = []field{
	limit("ingress_mbps", 1, 10_000, i32(func(l *Limits) *int32 { return &l.IngressMBps })),
	limit("egress_mbps", 1, 10_000, i32(func(l *Limits) *int32 { return &l.EgressMBps })),
	limit("max_requests_per_sec", 1, 1_000_000, i32(func(l *Limits) *int32 { return &l.MaxRequestsPerSec })),
	limit("max_connections", 1, 100_000, i32(func(l *Limits) *int32 { return &l.MaxConnections })),
	limit("max_partitions", 1, 100_000, i32(func(l *Limits) *int32 { return &l.MaxPartitions })),
	limit("max_storage_gb", 1, 1_000_000, i64(func(l *Limits) *int64 { return &l.MaxStorageGB })),
	limit("max_topics", 1, 100_000, i32(func(l *Limits) *int32 { return &l.MaxTopics })),
	limit("max_groups", 1, 100_000, i32(func(l *Limits) *int32 { return &l.MaxGroups })),
	limit("producer_ids_per_hour", 1, 3_600_000, i32(func(l *Limits) *int32 { return &l.ProducerIDsPerHour })),
	limit("producer_id_burst", 1, 100_000, i32(func(l *Limits) *int32 { return &l.ProducerIDBurst })),
	limit("max_retention_ms", 1, UnlimitedRetentionMs, i64(func(l *Limits) *int64 { return &l.MaxRetentionMs })),
	limit("max_retention_bytes", 1, UnlimitedRetentionBytes, i64(func(l *Limits) *int64 { return &l.MaxRetentionBytes })),
}

// BoundOf returns the range and default of the limit with JSON name
// field, for clients that check a value before sending it or document it
// (the Terraform schema, the CLI's flags). It panics for a name that is
// no limit: that is a programming error.
func BoundOf(field string) Bound {
	for _, b := range bounds {
		if b.Field == field {
			bd := b.Bound
			bd.Default = b.get(Defaults())
			return bd
		}
	}
	panic("limits: no limit " + field)
}

// FieldError is one limit out of its range.
type FieldError struct {
	Field string // the JSON name, as in Bound
	Msg   string
}

func (e FieldError) Error() string { return e.Field + ": " + e.Msg }

// FieldErrors are every limit Validate found out of range, in the order
// of Limits' fields.
type FieldErrors []FieldError

func (fe FieldErrors) Error() string {
	s := make([]string, len(fe))
	for i, e := range fe {
		s[i] = e.Error()
	}
	return "limits: " + strings.Join(s, "; ")
}

// Validate returns nil, or FieldErrors naming every limit out of its
// range.
func (l Limits) Validate() error { return l.validate(nil) }

// ValidateChange is Validate for an update from limits from: it checks only
// the limits that differ from it, so that a change of one limit is not
// refused for another that an operator set out of range by hand.
func (l Limits) ValidateChange(from Limits) error { return l.validate(&from) }

func (l Limits) validate(from *Limits) error {
	var fe FieldErrors
	for _, b := range bounds {
		v := b.get(l)
		if from != nil && v == b.get(*from) {
			continue
		}
		if v < b.Min || v > b.Max {
			fe = append(fe, FieldError{b.Field, fmt.Sprintf("must be from %d to %d, not %d", b.Min, b.Max, v)})
		}
	}
	if fe == nil {
		return nil
	}
	return fe
}

// Within returns nil, or FieldErrors naming every limit above its ceiling
// in ceilings (a plan's), with the ceiling. It checks only the upper end:
// Validate is the one place of the static ranges.
func (l Limits) Within(ceilings Limits) error { return l.within(ceilings, nil) }

// WithinChange is Within for an update from limits from: only the limits
// that differ from it are checked, so a cluster whose limit is above a
// ceiling the operator lowered since can still change its other limits
// (the effective limit is the lower one anyway, Capped).
func (l Limits) WithinChange(from, ceilings Limits) error { return l.within(ceilings, &from) }

func (l Limits) within(ceilings Limits, from *Limits) error {
	var fe FieldErrors
	for _, b := range bounds {
		v, c := b.get(l), b.get(ceilings)
		if from != nil && v == b.get(*from) {
			continue
		}
		if c != 0 && v > c {
			fe = append(fe, FieldError{b.Field, fmt.Sprintf("must be at most %d, the ceiling of the plan, not %d", c, v)})
		}
	}
	if fe == nil {
		return nil
	}
	return fe
}

// Capped returns the effective limits of a cluster with limits l under
// ceilings: each the lower of the two, a zero (unset) one giving way to
// the other.
func (l Limits) Capped(ceilings Limits) Limits {
	out := l
	for _, b := range bounds {
		if v, c := b.get(l), b.get(ceilings); c != 0 && (v == 0 || c < v) {
			b.set(&out, c)
		}
	}
	return out
}

// CheckTopicConfigs returns nil, or FieldErrors naming (by config name)
// every retention config of a topic's configs above l's retention limits:
// what Kafka's CreateTopicPolicy and AlterConfigPolicy would refuse.
// Forever (-1) is above every limit but the unlimited one; values that
// are no integers are left to topicconfig.Validate.
func (l Limits) CheckTopicConfigs(configs map[string]string) error {
	var fe FieldErrors
	for _, c := range []struct {
		name, field    string
		limit, forever int64
	}{
		{"retention.ms", "max_retention_ms", l.MaxRetentionMs, UnlimitedRetentionMs},
		{"retention.bytes", "max_retention_bytes", l.MaxRetentionBytes, UnlimitedRetentionBytes},
	} {
		s, ok := configs[c.name]
		if !ok || c.limit == 0 || c.limit >= c.forever {
			continue
		}
		v, err := strconv.ParseInt(s, 10, 64)
		if err != nil {
			continue
		}
		if v < 0 || v > c.limit {
			fe = append(fe, FieldError{c.name, fmt.Sprintf("%s exceeds the cluster's %s of %d", s, c.field, c.limit)})
		}
	}
	if fe == nil {
		return nil
	}
	return fe
}

// OrDefaults returns l with every unset (zero) limit at its default.
func (l Limits) OrDefaults() Limits {
	d := Defaults()
	for _, b := range bounds {
		if b.get(l) == 0 {
			b.set(&l, b.get(d))
		}
	}
	return l
}
