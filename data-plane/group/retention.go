package group

import (
	"context"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
)

// ExpireOffsets applies Kafka's offsets.retention.minutes to one group: if
// the group has no members, its committed offsets are deleted unless one
// was committed at or after now minus Config.OffsetsRetention (the store
// re-checks this in the delete, so a racing commit survives). It reports
// whether the group had offsets expired. The broker calls it, off any
// request, for the stale groups of the slots it coordinates.
func (c *Coordinator) ExpireOffsets(ctx context.Context, cluster, id string) (bool, error) {
	g, release, code := c.acquireIO(ctx, key{cluster, id}, true)
	if code != 0 {
		return false, kerr.ErrorForCode(code)
	}
	defer release()
	active := false
	if err := c.do(ctx, func() {
		active = !c.live(g) || g.state != stateEmpty || len(g.members) > 0 ||
			g.cg != nil && len(g.cg.members) > 0
	}); err != nil {
		return false, err
	}
	if active {
		return false, nil
	}
	before := time.Now().Add(-c.cfg.OffsetsRetention)
	n, err := c.store.ExpireGroupOffsets(ctx, cluster, id, before)
	if err != nil || n == 0 {
		return false, err
	}
	// Drop the cache: it is reloaded from the store on next use.
	_ = c.do(context.WithoutCancel(ctx), func() {
		if c.live(g) {
			g.offsets = nil
		}
	})
	c.logger(g).Info("expired committed offsets of empty group", "offsets", n, "retention", c.cfg.OffsetsRetention)
	return true, nil
}
