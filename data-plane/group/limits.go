package group

import (
	"context"

	"github.com/twmb/franz-go/pkg/kerr"
)

// DefaultMaxGroups is how many groups one virtual cluster may have by
// default (Config.MaxGroups): far more than an application needs, few
// enough that one tenant cannot fill the coordinators' memory. The plans
// work reads it as the default ceiling.
const DefaultMaxGroups = 10_000

// GroupCounter is what an OffsetStore also implements for Config.MaxGroups
// to be enforced: how many groups cluster has (with committed offsets or
// persisted membership), and whether group is one of them.
type GroupCounter interface {
	GroupCount(ctx context.Context, cluster, group string) (n int, known bool, err error)
}

// admitGroup refuses a join that would create a group past
// Config.MaxGroups. Groups are counted in the store, across coordinators,
// so it costs a query, made only for a group this coordinator does not
// hold. Kafka has no such limit; the error is POLICY_VIOLATION, which
// Kafka answers when a request breaks a limit the operator set (topic
// creation policies) and which clients do not retry:
// GROUP_MAX_SIZE_REACHED would wrongly blame the group's members, and
// THROTTLING_QUOTA_EXCEEDED would have clients retry a limit that does not
// lift with time. Concurrent joins of new groups may overshoot by a few.
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
	switch {
	case err != nil:
		c.log.Warn("counting groups failed", "cluster", cluster, "err", err)
		return kerr.CoordinatorNotAvailable.Code
	case !known && n >= c.cfg.MaxGroups:
		c.log.Info("group refused: the cluster has reached its maximum number of groups", "cluster", cluster, "group", id, "max", c.cfg.MaxGroups)
		return kerr.PolicyViolation.Code
	}
	return 0
}

// full reports whether a classic group can take no new member: its members
// and the ids issued with MEMBER_ID_REQUIRED count, as in Kafka.
func (c *Coordinator) full(g *group) bool {
	return len(g.members)+len(g.pending) >= c.cfg.MaxSize
}
