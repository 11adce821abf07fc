package group

import (
	"context"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// DeleteGroups: versions 0-3 (v3 adds ErrorMessage, left null).
//
// Only a group without members can be deleted (NON_EMPTY_GROUP otherwise);
// deleting removes all its committed offsets through
// OffsetStore.DeleteGroupOffsets. A group that neither has members nor
// offsets (nor had members since it was loaded) is GROUP_ID_NOT_FOUND. While
// the deletion is under way the group is Dead, and joins and commits get
// COORDINATOR_NOT_AVAILABLE, which clients retry; if the store fails the
// group is kept and the error is COORDINATOR_NOT_AVAILABLE. Repeated ids are
// answered once.
//
// Deliberate deviation from Kafka: an empty group id fails with
// INVALID_GROUP_ID.
func (c *Coordinator) DeleteGroups(ctx context.Context, cluster string, req *kmsg.DeleteGroupsRequest) *kmsg.DeleteGroupsResponse {
	resp := kmsg.NewPtrDeleteGroupsResponse()
	resp.Version = req.Version
	seen := make(map[string]bool, len(req.Groups))
	for _, id := range req.Groups {
		if seen[id] {
			continue
		}
		seen[id] = true
		rg := kmsg.NewDeleteGroupsResponseGroup()
		rg.Group = id
		rg.ErrorCode = c.deleteGroup(ctx, cluster, id)
		resp.Groups = append(resp.Groups, rg)
	}
	return resp
}

func (c *Coordinator) deleteGroup(ctx context.Context, cluster, id string) int16 {
	if id == "" {
		return kerr.InvalidGroupID.Code
	}
	g, release, code := c.acquireIO(ctx, key{cluster, id}, true)
	if code != 0 {
		return code
	}
	defer release()
	// Whether an Empty group exists depends on its offsets.
	if code := c.loadOffsets(ctx, g, nil); code != 0 {
		return code
	}
	proceed := false
	if err := c.do(ctx, func() {
		switch {
		case !c.live(g):
			code = staleCode(g)
		case g.cg != nil && len(g.cg.members) > 0:
			code = kerr.NonEmptyGroup.Code
		case g.state == stateEmpty && g.exists():
			g.state = stateDead
			proceed = true
		case g.state == stateEmpty, g.state == stateDead:
			code = kerr.GroupIDNotFound.Code
		default:
			code = kerr.NonEmptyGroup.Code
		}
	}); err != nil {
		return kerr.CoordinatorNotAvailable.Code
	}
	if !proceed {
		return code
	}
	err := c.store.DeleteGroupOffsets(ctx, cluster, id, nil)
	_ = c.do(context.WithoutCancel(ctx), func() {
		if !c.live(g) {
			return
		}
		if err != nil {
			g.state = stateEmpty
			return
		}
		g.offsets = nil
		c.discard(g)
		c.markDeleted(g)
		c.logger(g).Info("group deleted")
	})
	if err != nil {
		c.log.Error("deleting group offsets", "cluster", cluster, "group", id, "err", err)
		return kerr.CoordinatorNotAvailable.Code
	}
	return 0
}
