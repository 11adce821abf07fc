// Package limits defines what one virtual cluster may use: one Limits type
// with its defaults (Defaults) and its bounds (Validate), written once for
// the store, the REST API and its clients, the broker and `eddy dev`.
//
// A cluster's limits hold for the pool as a whole; the broker divides the
// rates and connections among its brokers (data-plane/quota) and the store
// enforces partitions. Brokers read every cluster's limits through an
// Overrides, a snapshot swapped atomically as a whole, so the connection
// loop reads them without a lock. Consumers declare, in their own package,
// an interface with only the getters of Overrides they read.
//
// Plans with ceilings (an operator caps what a tenant may set) slot in
// beside Limits without a new type: a plan's ceiling is itself a Limits, and
// Validate's bounds (bounds below) are the widest a plan may allow, with a
// plan's check narrowing the upper end field by field. Limits that plans
// add (topics, consumer groups, producer-id rate) become fields here, with
// a default in Defaults, a row in bounds and a getter on Overrides.
package limits

import (
	"fmt"
	"strings"
)

// Limits bound what one virtual cluster may use. The JSON tags are the
// REST wire format (api/openapi.yaml, ClusterLimits).
//
// No limit can be zero (Validate), so zero means unset: a zero field is
// left out of JSON, and a request that carries some fields changes only
// those when the server decodes it onto the cluster's current limits
// (or onto Defaults for a new cluster). For the broker a cluster it has
// no limits for yet (zero Limits) is unlimited.
type Limits struct {
	IngressMBps       int32 `json:"ingress_mbps,omitempty"`         // produce bytes, MB/s
	EgressMBps        int32 `json:"egress_mbps,omitempty"`          // fetch bytes, MB/s
	MaxRequestsPerSec int32 `json:"max_requests_per_sec,omitempty"` // requests of every kind
	MaxConnections    int32 `json:"max_connections,omitempty"`      // open at once
	MaxPartitions     int32 `json:"max_partitions,omitempty"`       // over all topics
	MaxStorageGB      int64 `json:"max_storage_gb,omitempty"`       // committed record bytes
}

// Defaults are the limits of a cluster created without any, and of the
// brokers' anonymous development cluster.
func Defaults() Limits {
	return Limits{
		IngressMBps:       100,
		EgressMBps:        300,
		MaxRequestsPerSec: 10_000,
		MaxConnections:    1000,
		MaxPartitions:     1000,
		MaxStorageGB:      1024,
	}
}

// Bound is the range a limit may take.
type Bound struct {
	Field    string // the JSON name
	Min, Max int64
	Default  int64 // in Defaults; filled by BoundOf
}

// bounds is every limit's range, in the order of Limits' fields.
var bounds = []struct {
	Bound
	get func(Limits) int64
}{
	{Bound{Field: "ingress_mbps", Min: 1, Max: 10_000}, func(l Limits) int64 { return int64(l.IngressMBps) }},
	{Bound{Field: "egress_mbps", Min: 1, Max: 10_000}, func(l Limits) int64 { return int64(l.EgressMBps) }},
	{Bound{Field: "max_requests_per_sec", Min: 1, Max: 1_000_000}, func(l Limits) int64 { return int64(l.MaxRequestsPerSec) }},
	{Bound{Field: "max_connections", Min: 1, Max: 100_000}, func(l Limits) int64 { return int64(l.MaxConnections) }},
	{Bound{Field: "max_partitions", Min: 1, Max: 100_000}, func(l Limits) int64 { return int64(l.MaxPartitions) }},
	{Bound{Field: "max_storage_gb", Min: 1, Max: 1_000_000}, func(l Limits) int64 { return l.MaxStorageGB }},
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
