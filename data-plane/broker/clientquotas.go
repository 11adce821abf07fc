package broker

import (
	"fmt"
	"math"

	"github.com/eddy-streams/eddy/internal/limits"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// Client quotas as DescribeClientQuotas and AlterClientQuotas describe and
// alter them: Kafka's quotas mapped onto the virtual cluster's limits.
//
// Eddy's quotas are the cluster's, shared by all its clients across the
// pool, not per user or client id. They are the quotas of one entity, the
// default user ({user: <default>}, `kafka-configs --entity-type users
// --entity-default`), and only those that are rates Eddy keeps:
//
//	producer_byte_rate   ingress_mbps × 1,000,000 (bytes/s)
//	consumer_byte_rate   egress_mbps × 1,000,000
//
// Rates are whole MB/s: a value is rounded down to one, and must be at
// least 1,000,000. Removing a quota sets the limit's default (capped by
// the plan). request_percentage (a share of a broker's threads) and
// connection_creation_rate (per IP) have no counterpart in Eddy's limits
// (max_requests_per_sec, max_connections), so they are neither described
// nor accepted: INVALID_REQUEST with a message. Other entities describe as
// having no quotas and cannot be altered (INVALID_REQUEST).

const quotaEntityUser = "user"

// clientQuota is one Kafka quota key and the limit it is.
type clientQuota struct {
	key  string
	mbps func(*limits.Limits) *int32
}

var clientQuotas = []clientQuota{
	{"consumer_byte_rate", func(l *limits.Limits) *int32 { return &l.EgressMBps }},
	{"producer_byte_rate", func(l *limits.Limits) *int32 { return &l.IngressMBps }},
}

func lookupClientQuota(key string) (clientQuota, bool) {
	for _, q := range clientQuotas {
		if q.key == key {
			return q, true
		}
	}
	return clientQuota{}, false
}

// quotaValues are the cluster's quotas given its effective limits.
func quotaValues(eff limits.Limits) []kmsg.DescribeClientQuotasResponseEntryValue {
	var out []kmsg.DescribeClientQuotasResponseEntryValue
	for _, q := range clientQuotas {
		v := kmsg.NewDescribeClientQuotasResponseEntryValue()
		v.Key, v.Value = q.key, float64(*q.mbps(&eff))*1e6
		out = append(out, v)
	}
	return out
}

// applyQuota sets (or with remove, resets to the default capped by
// ceilings) the limit quota key is.
func applyQuota(l *limits.Limits, ceilings limits.Limits, key string, value float64, remove bool) error {
	q, ok := lookupClientQuota(key)
	if !ok {
		return fmt.Errorf("quota %s is not supported; Eddy's client quotas are producer_byte_rate and consumer_byte_rate", key)
	}
	if remove {
		d := limits.Defaults().Capped(ceilings)
		*q.mbps(l) = *q.mbps(&d)
		return nil
	}
	if math.IsNaN(value) || value < 1e6 || value/1e6 > math.MaxInt32 {
		return fmt.Errorf("%s %v: Eddy's rates are whole MB/s, at least 1000000 bytes/s", key, value)
	}
	*q.mbps(l) = int32(value / 1e6)
	return nil
}

// isClusterEntity reports whether an entity is the one Eddy's quotas
// belong to, the default user.
func isClusterEntity(entity []kmsg.AlterClientQuotasRequestEntryEntity) bool {
	return len(entity) == 1 && entity[0].Type == quotaEntityUser && entity[0].Name == nil
}

// Match types of a DescribeClientQuotas filter component.
const (
	quotaMatchExact     = 0 // the entity named by Match
	quotaMatchDefault   = 1 // the default entity of the type
	quotaMatchSpecified = 2 // any entity of the type
)

// matchesClusterEntity checks a DescribeClientQuotas filter, an error
// (INVALID_REQUEST) for a malformed one rather than no match: an exact
// match without a name, a default one with a name, an unknown match type,
// an entity type filtered twice. Then it reports whether the filter
// matches the default user entity.
func matchesClusterEntity(components []kmsg.DescribeClientQuotasRequestComponent, strict bool) (bool, error) {
	seen := make(map[string]bool, len(components))
	for _, c := range components {
		if seen[c.EntityType] {
			return false, fmt.Errorf("entity type %q filtered more than once", c.EntityType)
		}
		seen[c.EntityType] = true
		switch c.MatchType {
		case quotaMatchExact:
			if c.Match == nil {
				return false, fmt.Errorf("an exact match on %q needs a name to match", c.EntityType)
			}
		case quotaMatchDefault:
			if c.Match != nil {
				return false, fmt.Errorf("a match on the default %q takes no name", c.EntityType)
			}
		case quotaMatchSpecified: // a name is ignored, as Kafka
		default:
			return false, fmt.Errorf("unknown match type %d", c.MatchType)
		}
	}
	if len(components) == 0 {
		return !strict, nil
	}
	for _, c := range components {
		// Only the default user (or any user) matches: Eddy has no
		// per-user quotas nor quotas of other entity types.
		if c.EntityType != quotaEntityUser || c.MatchType == quotaMatchExact {
			return false, nil
		}
	}
	return true, nil
}

// duplicateQuotaKey returns a quota key ops name more than once, or "":
// Kafka refuses such an entry as ambiguous.
func duplicateQuotaKey(ops []kmsg.AlterClientQuotasRequestEntryOp) string {
	seen := make(map[string]bool, len(ops))
	for _, op := range ops {
		if seen[op.Key] {
			return op.Key
		}
		seen[op.Key] = true
	}
	return ""
}
