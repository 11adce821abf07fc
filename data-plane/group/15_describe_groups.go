package group

import (
	"cmp"
	"context"
	"slices"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// DescribeGroups: versions 0-6.
//
// A Stable group is described with its protocol and each member's metadata
// and assignment; in other states the protocol is empty and members carry
// neither, as in Kafka. A group known only by its committed offsets is Empty.
// An unknown group is reported in state Dead: with GROUP_ID_NOT_FOUND from
// v6, without error before. AuthorizedOperations (v3+) is left for the
// broker to fill.
//
// A KIP-848 consumer group with members is not a classic group: as in
// Kafka it is reported Dead with GROUP_ID_NOT_FOUND (from every version;
// ConsumerGroupDescribe describes it).
//
// Deliberate deviation from Kafka: an empty group id fails with
// INVALID_GROUP_ID.
func (c *Coordinator) DescribeGroups(ctx context.Context, cluster string, req *kmsg.DescribeGroupsRequest) *kmsg.DescribeGroupsResponse {
	resp := kmsg.NewPtrDescribeGroupsResponse()
	resp.Version = req.Version
	for _, id := range req.Groups {
		resp.Groups = append(resp.Groups, c.describe(ctx, cluster, id, req.Version))
	}
	return resp
}

func (c *Coordinator) describe(ctx context.Context, cluster, id string, version int16) kmsg.DescribeGroupsResponseGroup {
	out := kmsg.NewDescribeGroupsResponseGroup()
	out.Group = id
	if id == "" {
		out.ErrorCode = kerr.InvalidGroupID.Code
		return out
	}
	k := key{cluster, id}
	found := false
	if err := c.do(ctx, func() {
		if g := c.get(k); g != nil && g.exists() {
			found = true
			describeInto(&out, g)
		}
	}); err != nil {
		out.ErrorCode = kerr.CoordinatorNotAvailable.Code
		return out
	}
	if !found {
		// Not in memory: it may still exist through its committed offsets.
		code := c.withOffsets(ctx, k, func(g *group, offs offsetCache) {
			switch {
			case g != nil && c.live(g) && g.exists():
				found = true
				describeInto(&out, g)
			case len(offs) > 0:
				found = true
				out.State = stateEmpty.String()
			}
		})
		if code != 0 {
			out.ErrorCode = code
			return out
		}
	}
	if !found {
		out.State = stateDead.String()
		if version >= 6 {
			out.ErrorCode = kerr.GroupIDNotFound.Code
			msg := "Group " + id + " not found."
			out.ErrorMessage = &msg
		}
	}
	return out
}

// describeInto fills out from g, on the loop.
func describeInto(out *kmsg.DescribeGroupsResponseGroup, g *group) {
	if g.cg != nil && len(g.cg.members) > 0 {
		out.State = stateDead.String()
		out.ErrorCode = kerr.GroupIDNotFound.Code
		msg := "Group " + g.group + " is not a classic group."
		out.ErrorMessage = &msg
		return
	}
	out.State = g.state.String()
	out.ProtocolType = g.protocolType
	stable := g.state == stateStable
	if stable {
		out.Protocol = g.protocol
	}
	for _, m := range g.members {
		dm := kmsg.NewDescribeGroupsResponseGroupMember()
		dm.MemberID = m.id
		dm.InstanceID = m.instanceID
		dm.ClientID = m.clientID
		dm.ClientHost = m.clientHost
		if stable {
			dm.ProtocolMetadata = m.metadata(g.protocol)
			dm.MemberAssignment = m.assignment
		}
		out.Members = append(out.Members, dm)
	}
	slices.SortFunc(out.Members, func(a, b kmsg.DescribeGroupsResponseGroupMember) int { return cmp.Compare(a.MemberID, b.MemberID) })
}

// exists reports whether g is a group to clients, rather than an entry kept
// for bookkeeping (a store load, or member ids handed out with
// MEMBER_ID_REQUIRED).
func (g *group) exists() bool {
	return g.state != stateEmpty || len(g.members) > 0 || g.protocolType != "" || len(g.offsets) > 0 ||
		g.cg != nil && (len(g.cg.members) > 0 || g.cg.epoch > 0)
}
