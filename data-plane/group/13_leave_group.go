package group

import (
	"context"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// LeaveGroup: versions 0-5.
//
//   - v0-2 name one member (MemberID); its outcome is the top-level error.
//   - v3+ name a batch of members, each by member id and/or instance id, with
//     a per-member error; an empty member id with an instance id removes
//     whichever member holds that instance id (administrative removal of a
//     static member). v5+: Reason is logged.
//
// A member id that was only issued with MEMBER_ID_REQUIRED is forgotten. A
// leaving member's parked requests are answered with UNKNOWN_MEMBER_ID and
// the group rebalances without it.
func (c *Coordinator) LeaveGroup(ctx context.Context, cluster string, req *kmsg.LeaveGroupRequest) *kmsg.LeaveGroupResponse {
	resp := kmsg.NewPtrLeaveGroupResponse()
	resp.Version = req.Version

	var leaving []kmsg.LeaveGroupRequestMember
	if req.Version >= 3 {
		leaving = req.Members
	} else {
		m := kmsg.NewLeaveGroupRequestMember()
		m.MemberID = req.MemberID
		leaving = []kmsg.LeaveGroupRequestMember{m}
	}

	top := int16(0)
	codes := make([]int16, len(leaving))
	switch {
	case req.Group == "":
		top = kerr.InvalidGroupID.Code
	default:
		if err := c.do(ctx, func() { top = c.leave(key{cluster, req.Group}, leaving, codes) }); err != nil {
			top = kerr.CoordinatorNotAvailable.Code
		}
	}

	if req.Version < 3 {
		resp.ErrorCode = top
		if top == 0 {
			resp.ErrorCode = codes[0]
		}
		return resp
	}
	resp.ErrorCode = top
	if top != 0 {
		return resp
	}
	for i, l := range leaving {
		rm := kmsg.NewLeaveGroupResponseMember()
		rm.MemberID = l.MemberID
		rm.InstanceID = l.InstanceID
		rm.ErrorCode = codes[i]
		resp.Members = append(resp.Members, rm)
	}
	return resp
}

// leave removes members on the loop, writing each one's outcome to codes,
// and returns the group-level error.
func (c *Coordinator) leave(k key, leaving []kmsg.LeaveGroupRequestMember, codes []int16) int16 {
	g := c.get(k)
	if g == nil {
		for i := range codes {
			codes[i] = kerr.UnknownMemberID.Code
		}
		return 0
	}
	if g.state == stateDead {
		return kerr.CoordinatorNotAvailable.Code
	}
	if g.cg != nil {
		c.leaveConsumer(g, leaving, codes)
		c.gc(g)
		return 0
	}
	for i, l := range leaving {
		reason := "member left"
		if l.Reason != nil {
			reason = withReason(reason, *l.Reason)
		}
		switch {
		case l.MemberID == "":
			id, ok := "", false
			if l.InstanceID != nil {
				id, ok = g.static[*l.InstanceID]
			}
			if !ok {
				codes[i] = kerr.UnknownMemberID.Code
				continue
			}
			c.logger(g).Info("static member removed", "member", id, "instance", *l.InstanceID, "reason", reason)
			c.removeMemberAndUpdate(g, g.members[id], reason+": "+id)
		case g.pending[l.MemberID] != nil:
			c.removePending(g, l.MemberID)
		default:
			if code := g.validateMember(l.MemberID, l.InstanceID); code != 0 {
				codes[i] = code
				continue
			}
			c.logger(g).Info("member left", "member", l.MemberID, "reason", reason)
			c.removeMemberAndUpdate(g, g.members[l.MemberID], reason+": "+l.MemberID)
		}
	}
	c.gc(g)
	return 0
}
