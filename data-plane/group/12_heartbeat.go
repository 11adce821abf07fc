package group

import (
	"context"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// Heartbeat: versions 0-4; v3+ validates InstanceID (FENCED_INSTANCE_ID for a
// stale member id of a static instance).
//
// A valid heartbeat restarts the member's session. During a join phase it
// answers REBALANCE_IN_PROGRESS, which tells the member to rejoin; between
// the join phase and the leader's SyncGroup it answers normally, as Kafka
// does. A heartbeat for an older generation gets ILLEGAL_GENERATION.
func (c *Coordinator) Heartbeat(ctx context.Context, cluster string, req *kmsg.HeartbeatRequest) *kmsg.HeartbeatResponse {
	resp := kmsg.NewPtrHeartbeatResponse()
	resp.Version = req.Version
	if req.Group == "" {
		resp.ErrorCode = kerr.InvalidGroupID.Code
		return resp
	}
	var instanceID *string
	if req.Version >= 3 {
		instanceID = req.InstanceID
	}
	code := kerr.CoordinatorNotAvailable.Code
	_ = c.do(ctx, func() { code = c.heartbeat(key{cluster, req.Group}, req.Generation, req.MemberID, instanceID) })
	resp.ErrorCode = code
	return resp
}

func (c *Coordinator) heartbeat(k key, generation int32, memberID string, instanceID *string) int16 {
	g := c.get(k)
	if g == nil {
		return kerr.UnknownMemberID.Code
	}
	if g.state == stateDead {
		return kerr.CoordinatorNotAvailable.Code
	}
	if g.cg != nil {
		return c.heartbeatConsumer(g, generation, memberID, instanceID)
	}
	if code := g.validateMember(memberID, instanceID); code != 0 {
		return code
	}
	if generation != g.generation {
		return kerr.IllegalGeneration.Code
	}
	m := g.members[memberID]
	switch g.state {
	case stateEmpty:
		return kerr.UnknownMemberID.Code
	case statePreparingRebalance:
		c.arm(m.expiry, m.sessionTimeout)
		return kerr.RebalanceInProgress.Code
	default: // CompletingRebalance, Stable
		c.arm(m.expiry, m.sessionTimeout)
		return 0
	}
}
