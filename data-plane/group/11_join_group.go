package group

import (
	"context"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// JoinGroup: versions 0-9.
//
//   - v0 has no rebalance timeout; the session timeout stands in, as in Kafka.
//   - v4+: a dynamic member joining without a member id gets
//     MEMBER_ID_REQUIRED and a member id (client.id + "-" + UUID) to rejoin
//     with; the id expires after the session timeout if unused. Older
//     versions join directly.
//   - v5+: static membership (group.instance.id). A static member joins
//     without MEMBER_ID_REQUIRED and is given instanceID + "-" + UUID, as in
//     Kafka; a new incarnation replaces the old member (see replaceStatic).
//   - v8+: Reason is logged. v9: SkipAssignment for a static leader rejoining
//     a Stable group.
//
// A join that starts or joins a rebalance parks until the join phase ends:
// when every member has rejoined, or at the rebalance timeout (the largest
// of the members'), or, for an Empty group, after the initial rebalance
// delay. Dynamic members that did not rejoin are then removed. A follower
// rejoining a Stable group with unchanged metadata is answered at once with
// the current generation and disturbs nobody; the leader rejoining, or
// anyone with changed metadata, starts a rebalance. If ctx ends while
// parked, the response is COORDINATOR_NOT_AVAILABLE (it cannot be delivered
// anyway); after Close or Forget it is COORDINATOR_NOT_AVAILABLE or
// NOT_COORDINATOR.
//
// Deliberate deviations from Kafka:
//   - A parked JoinGroup whose ctx ends (the connection closed) is withdrawn:
//     the member no longer counts as rejoined and, if dynamic, is dropped when
//     the join phase ends unless it joins again. Kafka cannot observe the
//     disconnect and would include a member that will never learn its
//     assignment, costing a further rebalance after the sync timeout.
//   - A non-positive rebalance timeout (v1+) is replaced by the session
//     timeout rather than ending join phases at once.
//   - Protocol metadata over Config.MaxMetadataBytes fails with
//     INVALID_REQUEST.
//   - A new member of a group holding Config.MaxSize members gets
//     GROUP_MAX_SIZE_REACHED, as in Kafka; a join that would create a
//     group past Config.MaxGroups gets POLICY_VIOLATION (limits.go).
func (c *Coordinator) JoinGroup(ctx context.Context, cluster string, req *kmsg.JoinGroupRequest) *kmsg.JoinGroupResponse {
	r := c.joinGroup(ctx, cluster, req)
	resp := kmsg.NewPtrJoinGroupResponse()
	resp.Version = req.Version
	resp.ErrorCode = r.code
	resp.Generation = r.generation
	resp.MemberID = r.memberID
	if r.code == 0 {
		protocolType, protocol := r.protocolType, r.protocol
		resp.ProtocolType = &protocolType
		resp.Protocol = &protocol
		resp.LeaderID = r.leader
		resp.SkipAssignment = r.skipAssignment
		resp.Members = r.members
	}
	return resp
}

// joinArgs is a JoinGroup request with everything the group keeps copied
// out of the request.
type joinArgs struct {
	memberID         string
	instanceID       *string
	requireKnownID   bool // v4+
	skipAssignmentOK bool // v9+
	client           Client
	rebalanceTimeout time.Duration
	sessionTimeout   time.Duration
	protocolType     string
	protocols        []protocol
	reason           string
	topics           Topics // for classic members of a consumer group
}

func (c *Coordinator) joinGroup(ctx context.Context, cluster string, req *kmsg.JoinGroupRequest) joinResult {
	if req.Group == "" {
		return joinError(req.MemberID, kerr.InvalidGroupID.Code)
	}
	session := time.Duration(req.SessionTimeoutMillis) * time.Millisecond
	if session < c.cfg.MinSessionTimeout || session > c.cfg.MaxSessionTimeout {
		return joinError(req.MemberID, kerr.InvalidSessionTimeout.Code)
	}
	rebalance := time.Duration(req.RebalanceTimeoutMillis) * time.Millisecond
	if req.Version == 0 || rebalance <= 0 {
		rebalance = session
	}
	protocols, size := copyProtocols(req.Protocols)
	if size > c.cfg.MaxMetadataBytes {
		return joinError(req.MemberID, kerr.InvalidRequest.Code)
	}
	a := joinArgs{
		memberID:         strings.Clone(req.MemberID),
		requireKnownID:   req.Version >= 4,
		skipAssignmentOK: req.Version >= 9,
		client:           clientFrom(ctx),
		rebalanceTimeout: rebalance,
		sessionTimeout:   session,
		protocolType:     strings.Clone(req.ProtocolType),
		protocols:        protocols,
		topics:           topicsFrom(ctx),
	}
	if req.Version >= 5 && req.InstanceID != nil {
		id := strings.Clone(*req.InstanceID)
		a.instanceID = &id
	}
	if req.Reason != nil {
		a.reason = strings.Clone(*req.Reason)
	}

	if code := c.admitGroup(ctx, cluster, req.Group); code != 0 {
		return joinError(req.MemberID, code)
	}
	var (
		res   joinResult
		m     *member
		wait  chan joinResult
		saved chan int16
	)
	if err := c.do(ctx, func() { res, m, wait, saved = c.join(key{cluster, req.Group}, a) }); err != nil {
		return joinError(req.MemberID, kerr.CoordinatorNotAvailable.Code)
	}
	if saved != nil {
		// A classic member of a consumer group: answered once its new
		// epoch and assignment are written, as a heartbeat would be.
		if code := awaitSaved(ctx, saved); code != 0 {
			return joinError(req.MemberID, code)
		}
		return res
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
		if m.join == wait {
			m.join = nil
		}
	})
	select {
	case res = <-wait: // answered before the withdrawal landed
		return res
	default:
		return joinError(req.MemberID, kerr.CoordinatorNotAvailable.Code)
	}
}

// copyProtocols copies protocols out of a request, keeping the first of any
// duplicated name, and returns the total metadata size.
func copyProtocols(in []kmsg.JoinGroupRequestProtocol) ([]protocol, int) {
	out := make([]protocol, 0, len(in))
	size := 0
	for _, p := range in {
		dup := false
		for _, q := range out {
			if q.name == p.Name {
				dup = true
				break
			}
		}
		if dup {
			continue
		}
		size += len(p.Metadata)
		out = append(out, protocol{name: strings.Clone(p.Name), metadata: append([]byte(nil), p.Metadata...)})
	}
	return out, size
}

// join runs a JoinGroup on the loop. It returns either an immediate result,
// the member and the channel its parked request will be answered on, or
// (a classic member of a consumer group) the result to send once saved
// delivers a zero code.
func (c *Coordinator) join(k key, a joinArgs) (joinResult, *member, chan joinResult, chan int16) {
	g := c.get(k)
	if g == nil {
		if a.memberID != "" {
			// A member of a group we do not know: lost with a coordinator
			// move, or the group emptied. It must join afresh.
			return joinError(a.memberID, kerr.UnknownMemberID.Code), nil, nil, nil
		}
		g = c.newGroup(k)
	}
	if g.cg != nil {
		if len(g.cg.members) > 0 {
			// A consumer group with members answers classic members
			// itself (migration.go).
			res, changed := c.joinConsumer(g, a, a.topics)
			if !changed {
				return res, nil, nil, nil
			}
			saved := make(chan int16, 1)
			c.mark(g, func(code int16) { saved <- code })
			return res, nil, nil, saved
		}
		// An empty consumer group becomes a classic group.
		g.generation = max(g.generation, g.cg.epoch)
		g.cg = nil
		g.protocolType = ""
	}
	var (
		res  joinResult
		m    *member
		wait chan joinResult
	)
	if a.memberID == "" {
		res, m, wait = c.joinNew(g, a)
	} else {
		res, m, wait = c.joinExisting(g, a)
	}
	c.tryCompleteJoin(g)
	c.gc(g)
	return res, m, wait, nil
}

func (c *Coordinator) joinNew(g *group, a joinArgs) (joinResult, *member, chan joinResult) {
	if g.state == stateDead {
		return joinError("", kerr.CoordinatorNotAvailable.Code), nil, nil
	}
	if !g.supportsProtocols(a.protocolType, a.protocols) {
		return joinError("", kerr.InconsistentGroupProtocol.Code), nil, nil
	}
	// A static member's new incarnation takes its predecessor's place.
	if replacing := a.instanceID != nil && g.static[*a.instanceID] != ""; !replacing && c.full(g) {
		return joinError("", kerr.GroupMaxSizeReached.Code), nil, nil
	}
	prefix := a.client.ID
	if a.instanceID != nil {
		prefix = *a.instanceID
	}
	id := prefix + "-" + uuid.NewString()

	if a.instanceID != nil {
		if old, ok := g.static[*a.instanceID]; ok {
			return c.replaceStatic(g, old, id, a)
		}
		m, wait := c.addMember(g, id, a)
		return joinResult{}, m, wait
	}
	if a.requireKnownID {
		t := newTimer(func() { c.onPendingExpiry(g, id) })
		g.pending[id] = t
		c.arm(t, a.sessionTimeout)
		return joinError(id, kerr.MemberIDRequired.Code), nil, nil
	}
	m, wait := c.addMember(g, id, a)
	return joinResult{}, m, wait
}

func (c *Coordinator) joinExisting(g *group, a joinArgs) (joinResult, *member, chan joinResult) {
	if g.state == stateDead {
		return joinError(a.memberID, kerr.CoordinatorNotAvailable.Code), nil, nil
	}
	if !g.supportsProtocols(a.protocolType, a.protocols) {
		return joinError(a.memberID, kerr.InconsistentGroupProtocol.Code), nil, nil
	}
	if _, ok := g.pending[a.memberID]; ok {
		if a.instanceID != nil {
			// Pending ids are only issued to dynamic members; a static
			// member must join with an empty member id.
			return joinError(a.memberID, kerr.UnknownMemberID.Code), nil, nil
		}
		c.disarm(g.pending[a.memberID])
		delete(g.pending, a.memberID)
		if c.full(g) {
			return joinError(a.memberID, kerr.GroupMaxSizeReached.Code), nil, nil
		}
		m, wait := c.addMember(g, a.memberID, a)
		return joinResult{}, m, wait
	}
	if code := g.validateMember(a.memberID, a.instanceID); code != 0 {
		return joinError(a.memberID, code), nil, nil
	}
	m := g.members[a.memberID]
	switch g.state {
	case statePreparingRebalance:
		wait := c.updateMember(g, m, a, "member "+m.id+" rejoined")
		return joinResult{}, m, wait
	case stateCompletingRebalance:
		if m.matches(a.protocols) {
			// Most likely the member missed our JoinGroup response; repeat it.
			return g.currentJoinResult(m), nil, nil
		}
		wait := c.updateMember(g, m, a, "member "+m.id+" changed metadata")
		return joinResult{}, m, wait
	case stateStable:
		if m.id == g.leader || !m.matches(a.protocols) {
			// The leader rejoins to have changes that do not show in
			// metadata (topic metadata, for consumers) reassigned.
			wait := c.updateMember(g, m, a, "member "+m.id+" rejoined a stable group")
			return joinResult{}, m, wait
		}
		// A follower with unchanged metadata just learns the generation
		// again, without disturbing the others (cooperative clients do
		// this).
		r := g.currentJoinResult(m)
		return r, nil, nil
	default:
		return joinError(a.memberID, kerr.UnknownMemberID.Code), nil, nil
	}
}

// addMember adds a new member with a parked JoinGroup and starts a
// rebalance if one is not under way.
func (c *Coordinator) addMember(g *group, id string, a joinArgs) (*member, chan joinResult) {
	m := &member{
		id:               id,
		instanceID:       a.instanceID,
		clientID:         a.client.ID,
		clientHost:       a.client.Host,
		rebalanceTimeout: a.rebalanceTimeout,
		sessionTimeout:   a.sessionTimeout,
		protocolType:     a.protocolType,
		protocols:        a.protocols,
		isNew:            true,
		join:             make(chan joinResult, 1),
	}
	m.expiry = newTimer(func() { c.onMemberExpiry(g, m) })
	if g.state == statePreparingRebalance && g.generation == 0 {
		g.newMemberAdded = true
	}
	g.add(m)
	c.arm(m.expiry, newMemberJoinTimeout)
	wait := m.join
	c.maybePrepareRebalance(g, withReason("new member "+id+" joined", a.reason))
	return m, wait
}

// updateMember records a rejoin of m and parks its JoinGroup.
func (c *Coordinator) updateMember(g *group, m *member, a joinArgs, why string) chan joinResult {
	m.protocols = a.protocols
	m.rebalanceTimeout = a.rebalanceTimeout
	m.sessionTimeout = a.sessionTimeout
	// A member has one JoinGroup in flight; an older one still parked was
	// abandoned by the client.
	m.finishJoin(joinError(m.id, kerr.RebalanceInProgress.Code))
	m.join = make(chan joinResult, 1)
	wait := m.join
	c.maybePrepareRebalance(g, withReason(why, a.reason))
	return wait
}

// replaceStatic hands the instance id of a known static member to a new
// incarnation that joined without a member id (Kafka's
// updateStaticMemberAndRebalance). In a Stable group whose protocol choice
// does not change, the new incarnation takes over the old one's assignment
// without a rebalance.
func (c *Coordinator) replaceStatic(g *group, oldID, newID string, a joinArgs) (joinResult, *member, chan joinResult) {
	oldLeader := g.leader
	m := g.members[oldID]
	// Fence the previous incarnation's parked requests, if any.
	m.finishJoin(joinError(oldID, kerr.FencedInstanceID.Code))
	m.finishSync(syncResult{code: kerr.FencedInstanceID.Code})
	delete(g.members, oldID)
	m.id = newID
	g.members[newID] = m
	g.static[*a.instanceID] = newID
	if g.leader == oldID {
		g.leader = newID
	}
	if _, ok := g.pendingSync[oldID]; ok {
		delete(g.pendingSync, oldID)
		g.pendingSync[newID] = struct{}{}
	}
	c.arm(m.expiry, m.sessionTimeout)
	c.logger(g).Info("static member replaced", "instance", *a.instanceID, "old", oldID, "new", newID)

	m.protocols = a.protocols
	m.rebalanceTimeout = a.rebalanceTimeout
	m.sessionTimeout = a.sessionTimeout
	m.join = make(chan joinResult, 1)
	wait := m.join

	switch g.state {
	case stateStable:
		if g.selectProtocol() != g.protocol {
			c.maybePrepareRebalance(g, withReason("static member "+newID+" changed the group's protocol", a.reason))
			break
		}
		r := joinResult{
			memberID:     newID,
			generation:   g.generation,
			protocolType: g.protocolType,
			protocol:     g.protocol,
		}
		if a.skipAssignmentOK {
			// v9+: tell a static leader it leads, so it keeps watching
			// metadata, but that it must not compute a new assignment: a
			// Stable group would not hand it out.
			r.leader = g.leader
			if newID == g.leader {
				r.skipAssignment = true
				r.members = g.memberList()
			}
		} else {
			// Older clients cannot skip assignment; name the old leader id
			// so a static leader does not see itself as leader.
			r.leader = oldLeader
		}
		m.finishJoin(r)
		// A failover must not bring back the old member id.
		c.mark(g, nil)
	case stateCompletingRebalance:
		// The leader may already be assigning to the old member id.
		c.prepareRebalance(g, withReason("static member "+newID+" rejoined during sync", a.reason))
	}
	return joinResult{}, m, wait
}

func withReason(why, clientReason string) string {
	if clientReason == "" {
		return why
	}
	return why + " (client: " + clientReason + ")"
}
