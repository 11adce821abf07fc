package group

import (
	"context"

	"github.com/twmb/franz-go/pkg/kerr"
)

// DefaultMaxGroups is the pool-wide cap on the groups of one virtual
// cluster (Config.MaxGroups), a safety net over each cluster's own limit
// (its plan's, GroupLimiter): at the top of limits' range for max_groups,
// so by default only the cluster's limit binds.
const DefaultMaxGroups = 100_000

// GroupCounter is what an OffsetStore also implements for the groups of a
// cluster to be capped: how many groups cluster has (with committed
// offsets or persisted membership), and whether group is one of them.
type GroupCounter interface {
	GroupCount(ctx context.Context, cluster, group string) (n int, known bool, err error)
}

// GroupLimiter is what an OffsetStore also implements to cap each
// cluster's groups at its own limit (limits.Overrides.Groups); 0 means
// none known, leaving Config.MaxGroups.
type GroupLimiter interface {
	MaxGroups(cluster string) int
}

// maxGroups is the cap on cluster's groups: its own limit, within
// Config.MaxGroups.
func (c *Coordinator) maxGroups(cluster string) int {
	limit := c.cfg.MaxGroups
	if l, ok := c.store.(GroupLimiter); ok {
		if n := l.MaxGroups(cluster); n > 0 && n < limit {
			limit = n
		}
	}
	return limit
}

// admitGroup refuses a join or a simple commit that would create a group
// past the cluster's cap (maxGroups). Groups are counted in the store,
// across coordinators, so it costs a query, made only for a group this
// coordinator does not hold. Kafka has no such limit; the error is
// POLICY_VIOLATION, which Kafka answers when a request breaks a limit the
// operator set (topic creation policies) and which clients do not retry:
// GROUP_MAX_SIZE_REACHED would wrongly blame the group's members, and
// THROTTLING_QUOTA_EXCEEDED would have clients retry a limit that does not
// lift with time. Concurrent requests for new groups may overshoot by a few.
func (c *Coordinator) admitGroup(ctx context.Context, cluster, id string) int16 {
	counter, ok := c.store.(GroupCounter)
	if !ok {
		return 0
	}
	held := false
	if err := c.do(ctx, func() { held = c.get(key{cluster, id}) != nil }); err != nil {
		return kerr.CoordinatorNotAvailable.Code
	}
	if held {
		return 0
	}
	n, known, err := counter.GroupCount(ctx, cluster, id)
	switch max := c.maxGroups(cluster); {
	case err != nil:
		c.log.Warn("counting groups failed", "cluster", cluster, "err", err)
		return kerr.CoordinatorNotAvailable.Code
	case !known && n >= max:
		c.log.Info("group refused: the cluster has reached its maximum number of groups", "cluster", cluster, "group", id, "max", max)
		return kerr.PolicyViolation.Code
	}
	return 0
}

// full reports whether a classic group can take no new member: its members
// and the ids issued with MEMBER_ID_REQUIRED count, as in Kafka.
func (c *Coordinator) full(g *group) bool {
	return len(g.members)+len(g.pending) >= c.cfg.MaxSize
}
