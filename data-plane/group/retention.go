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

// RemoveEmptyGroups deletes the groups held in memory that are Empty (no
// members, no MEMBER_ID_REQUIRED ids outstanding) and have no committed
// offsets, as Kafka's periodic cleanup deletes an Empty group once its
// offsets are gone (expired by ExpireOffsets, deleted, or never
// committed): from memory, and its persisted state with a tombstone.
// Without it such a group, which clients can make at will, would stay
// until the coordinator slot moves. It returns how many went. The broker
// calls it after expiring offsets.
func (c *Coordinator) RemoveEmptyGroups(ctx context.Context) (int, error) {
	var idle []key
	if err := c.do(ctx, func() {
		for _, groups := range c.clusters {
			for _, g := range groups {
				if g.idle() {
					idle = append(idle, g.key)
				}
			}
		}
	}); err != nil {
		return 0, err
	}
	removed := 0
	for _, k := range idle {
		ok, err := c.removeIfEmpty(ctx, k)
		if err != nil {
			return removed, err
		}
		if ok {
			removed++
		}
	}
	return removed, nil
}

func (c *Coordinator) removeIfEmpty(ctx context.Context, k key) (bool, error) {
	// The io lock keeps commits out while the offsets are looked at.
	g, release, code := c.acquireIO(ctx, k, false)
	if code != 0 {
		return false, kerr.ErrorForCode(code)
	}
	if g == nil {
		return false, nil
	}
	defer release()
	if code := c.loadOffsets(ctx, g, nil); code != 0 {
		return false, kerr.ErrorForCode(code)
	}
	removed := false
	err := c.do(ctx, func() {
		if !c.live(g) || !g.idle() || len(g.offsets) > 0 {
			return
		}
		c.discard(g)
		c.markDeleted(g)
		removed = true
		c.logger(g).Info("removed empty group without offsets")
	})
	return removed, err
}

// idle reports whether g is Empty with nobody joining, classic or KIP-848.
func (g *group) idle() bool {
	return g.state == stateEmpty && len(g.members) == 0 && len(g.pending) == 0 &&
		(g.cg == nil || len(g.cg.members) == 0)
}
