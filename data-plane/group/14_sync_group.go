package group

import (
	"context"
	"strings"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// SyncGroup: versions 0-5.
//
//   - v3+: InstanceID is validated (FENCED_INSTANCE_ID for a stale member id).
//   - v5+: ProtocolType and Protocol are required and must match the group's,
//     else INCONSISTENT_GROUP_PROTOCOL; the response carries both.
//
// Followers park until the leader's assignment arrives; members the leader
// leaves out get an empty assignment. Members that do not SyncGroup within
// the rebalance timeout after the join phase are removed and the group
// rebalances (Kafka's pending-sync expiry).
//
// Deliberate deviations from Kafka:
//   - A parked SyncGroup whose ctx ends is withdrawn; the member keeps its
//     place and can SyncGroup again.
//   - A member removed while parked (it left, or its session expired) gets
//     UNKNOWN_MEMBER_ID instead of no answer.
//
// With a StateStore the leader's assignment is written before any member
// receives it (persist.go); a failed write answers every parked SyncGroup
// of the generation with the error and the group rebalances.
func (c *Coordinator) SyncGroup(ctx context.Context, cluster string, req *kmsg.SyncGroupRequest) *kmsg.SyncGroupResponse {
	r := c.syncGroup(ctx, cluster, req)
	resp := kmsg.NewPtrSyncGroupResponse()
	resp.Version = req.Version
	resp.ErrorCode = r.code
	if r.code == 0 {
		protocolType, protocol := r.protocolType, r.protocol
		resp.ProtocolType = &protocolType
		resp.Protocol = &protocol
		resp.MemberAssignment = r.assignment
	}
	return resp
}

type syncArgs struct {
	generation   int32
	memberID     string
	instanceID   *string
	protocolType *string
	protocol     *string
	assignments  map[string][]byte // from the leader; copied
}

func (c *Coordinator) syncGroup(ctx context.Context, cluster string, req *kmsg.SyncGroupRequest) syncResult {
	if req.Group == "" {
		return syncResult{code: kerr.InvalidGroupID.Code}
	}
	if req.Version >= 5 && (req.ProtocolType == nil || req.Protocol == nil) {
		return syncResult{code: kerr.InconsistentGroupProtocol.Code}
	}
	a := syncArgs{
		generation: req.Generation,
		memberID:   req.MemberID,
	}
	if req.Version >= 3 {
		a.instanceID = req.InstanceID
	}
	if req.Version >= 5 {
		a.protocolType, a.protocol = req.ProtocolType, req.Protocol
	}
	if len(req.GroupAssignment) > 0 {
		a.assignments = make(map[string][]byte, len(req.GroupAssignment))
		for _, ga := range req.GroupAssignment {
			a.assignments[strings.Clone(ga.MemberID)] = append([]byte(nil), ga.MemberAssignment...)
		}
	}

	var (
		res  syncResult
		m    *member
		wait chan syncResult
	)
	if err := c.do(ctx, func() { res, m, wait = c.sync(key{cluster, req.Group}, a) }); err != nil {
		return syncResult{code: kerr.CoordinatorNotAvailable.Code}
	}
	if wait == nil {
		return res
	}
	select {
	case res = <-wait:
		return res
	case <-ctx.Done():
	}
	_ = c.do(context.WithoutCancel(ctx), func() {
		if m.sync == wait {
			m.sync = nil
		}
	})
	select {
	case res = <-wait:
		return res
	default:
		return syncResult{code: kerr.CoordinatorNotAvailable.Code}
	}
}

// sync runs a SyncGroup on the loop: an immediate result, or the member and
// the channel its parked request will be answered on.
func (c *Coordinator) sync(k key, a syncArgs) (syncResult, *member, chan syncResult) {
	fail := func(code int16) (syncResult, *member, chan syncResult) {
		return syncResult{code: code}, nil, nil
	}
	g := c.get(k)
	if g == nil {
		return fail(kerr.UnknownMemberID.Code)
	}
	if g.state == stateDead {
		return fail(kerr.CoordinatorNotAvailable.Code)
	}
	if g.cg != nil {
		return c.syncConsumer(g, a), nil, nil
	}
	if code := g.validateMember(a.memberID, a.instanceID); code != 0 {
		return fail(code)
	}
	if a.generation != g.generation {
		return fail(kerr.IllegalGeneration.Code)
	}
	if a.protocolType != nil && *a.protocolType != g.protocolType || a.protocol != nil && *a.protocol != g.protocol {
		return fail(kerr.InconsistentGroupProtocol.Code)
	}
	m := g.members[a.memberID]
	switch g.state {
	case stateEmpty:
		return fail(kerr.UnknownMemberID.Code)
	case statePreparingRebalance:
		return fail(kerr.RebalanceInProgress.Code)
	case stateCompletingRebalance:
		// One SyncGroup per member is in flight; an older parked one was
		// abandoned by the client.
		m.finishSync(syncResult{code: kerr.RebalanceInProgress.Code})
		m.sync = make(chan syncResult, 1)
		wait := m.sync
		c.removePendingSync(g, m.id)
		if m.id == g.leader {
			g.proposal = make(map[string][]byte, len(g.members))
			for id := range g.members {
				g.proposal[id] = a.assignments[id] // absent: empty assignment
			}
			gen := g.generation
			c.mark(g, func(code int16) { c.applyProposal(g, gen, code) })
		}
		return syncResult{}, m, wait
	case stateStable:
		c.removePendingSync(g, m.id)
		c.arm(m.expiry, m.sessionTimeout)
		return syncResult{protocolType: g.protocolType, protocol: g.protocol, assignment: m.assignment}, nil, nil
	default:
		return fail(kerr.CoordinatorNotAvailable.Code)
	}
}

// applyProposal makes the leader's assignment of generation gen the
// group's once it is written (code 0), on the loop: the group becomes
// Stable and every parked SyncGroup gets its member's assignment. If the
// write failed, the parked SyncGroups fail with code and the group
// rebalances. Nothing happens if the group moved on meanwhile.
func (c *Coordinator) applyProposal(g *group, gen int32, code int16) {
	if !c.live(g) || g.state != stateCompletingRebalance || g.generation != gen || g.proposal == nil {
		return
	}
	if code != 0 {
		c.logger(g).Warn("group assignment could not be written; rebalancing", "generation", gen, "code", code)
		c.resetAssignments(g, code)
		c.prepareRebalance(g, "the assignment could not be written")
		return
	}
	for _, m := range g.members {
		m.assignment = g.proposal[m.id]
	}
	g.proposal = nil
	g.state = stateStable
	c.logger(g).Info("group stable", "generation", g.generation, "members", len(g.members))
	c.propagateAssignment(g)
}
