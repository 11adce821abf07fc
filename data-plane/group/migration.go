package group

import (
	"bytes"
	"context"
	"slices"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// Online migration between the classic and the consumer protocol
// (KIP-848), under Config.ConsumerMigrationPolicy as Kafka's
// group.consumer.migration.policy:
//
//   - Upgrade: a ConsumerGroupHeartbeat joining a classic group with
//     members converts it to a consumer group, if the group's protocol
//     type is "consumer", its members' subscriptions decode and they and
//     the joining member fit Config.ConsumerMaxSize. Each classic member becomes a member of the
//     consumer group at the generation as its epoch, subscribed to the
//     topics of its JoinGroup metadata, owning its current assignment
//     (nothing if the group was between generations), which is also the
//     first target. Parked JoinGroups and SyncGroups are answered
//     REBALANCE_IN_PROGRESS, as Kafka does. Committed offsets stay: they
//     are the group's, whatever its protocol.
//   - Classic members of a consumer group go on with JoinGroup, SyncGroup,
//     Heartbeat, LeaveGroup and OffsetCommit, answered from the consumer
//     group. A JoinGroup updates the member's subscription and reports
//     what it owns (its metadata's owned partitions); the coordinator
//     reconciles it towards its target as for a consumer member, except
//     that a classic member revokes by omission: the SyncGroup assignment
//     leaves out what it must give up, a cooperative client revokes it and
//     rejoins, and only then do its epoch move on and the partitions go to
//     others. JoinGroup is answered at once, with the member epoch as
//     generation and no leader. A Heartbeat answers REBALANCE_IN_PROGRESS
//     while the member is not at its target, so it rejoins.
//   - Downgrade: when the last consumer-protocol member leaves (or
//     expires) and classic members remain, the group becomes a classic
//     group at the consumer group's epoch, keeping each member's
//     assignment, and starts a rebalance.
//
// New classic members may join a consumer group with members, as in
// Kafka; its dynamic members get MEMBER_ID_REQUIRED first (v4+). With the
// policy "disabled" classic JoinGroups to a consumer group with members
// fail with INCONSISTENT_GROUP_PROTOCOL, as before KIP-848's migration.
//
// Deviations: a classic member of a consumer group is never the leader
// (the coordinator assigns), so SkipAssignment is never set; a static
// classic member that restarts under a new member id replaces its
// predecessor with a new epoch rather than resuming its assignment.

// classicMember is what a consumer group keeps of a member that uses the
// classic protocol, to answer it and to convert back.
type classicMember struct {
	sessionTimeout time.Duration
	protocols      []protocol
}

type topicsKey struct{}

// WithTopics returns a context that carries the request's view of its
// cluster's topics to JoinGroup, which needs it for classic members of a
// consumer group. Without one, such members' topics resolve to nothing new.
func WithTopics(ctx context.Context, t Topics) context.Context {
	return context.WithValue(ctx, topicsKey{}, t)
}

func topicsFrom(ctx context.Context) Topics {
	t, _ := ctx.Value(topicsKey{}).(Topics)
	if t.Lookup == nil {
		t.Lookup = func(string) (TopicInfo, bool) { return TopicInfo{}, false }
	}
	return t
}

func (c *Coordinator) mayUpgrade() bool {
	p := c.cfg.ConsumerMigrationPolicy
	return p == "bidirectional" || p == "upgrade"
}

func (c *Coordinator) mayDowngrade() bool {
	p := c.cfg.ConsumerMigrationPolicy
	return p == "bidirectional" || p == "downgrade"
}

// upgrade converts the classic group g, which has members, to a consumer
// group, on the loop. It returns why it cannot, or "".
func (c *Coordinator) upgrade(g *group, lookup TopicLookup) string {
	switch {
	case !c.mayUpgrade():
		return "group " + g.group + " is a classic group with members and the migration policy does not allow upgrades"
	case g.protocolType != "consumer":
		return "group " + g.group + " is a classic group of protocol type " + g.protocolType + ", not consumer"
	case len(g.members) >= c.cfg.ConsumerMaxSize:
		// Room for the joining member too: a conversion is not undone
		// when the heartbeat that made it fails afterwards.
		return "group " + g.group + " has as many members as a consumer group may"
	}
	cg := newConsumerGroup()
	cg.epoch, cg.targetEpoch = g.generation, g.generation
	for _, m := range g.members {
		meta := m.metadata(g.protocol)
		if meta == nil && len(m.protocols) > 0 {
			meta = m.protocols[0].metadata
		}
		var sub kmsg.ConsumerMemberMetadata
		if err := sub.ReadFrom(meta); err != nil {
			return "group " + g.group + " cannot be upgraded: a member's subscription is malformed"
		}
		cm := &cmember{
			id: m.id, instanceID: m.instanceID, clientID: m.clientID, clientHost: m.clientHost,
			names:     sortedNames(sub.Topics),
			rebalance: m.rebalanceTimeout,
			epoch:     g.generation, prevEpoch: g.generation,
			assigned: tpSet{},
			revoking: tpSet{},
			classic:  &classicMember{sessionTimeout: m.sessionTimeout, protocols: m.protocols},
		}
		cm.updateSubscribed()
		if g.state == stateStable {
			var a kmsg.ConsumerMemberAssignment
			if len(m.assignment) > 0 && a.ReadFrom(m.assignment) == nil {
				for _, t := range a.Topics {
					ti, ok := lookup(t.Topic)
					if !ok {
						continue
					}
					for _, p := range t.Partitions {
						if p >= 0 && p < ti.Partitions {
							cm.assigned[tp{ti.ID, p}] = struct{}{}
						}
					}
				}
			}
		}
		cg.members[cm.id] = cm
		if cm.instanceID != nil {
			cg.static[*cm.instanceID] = cm.id
		}
		cg.target[cm.id] = cm.assigned.clone()
	}
	c.refreshTopics(cg, lookup)

	// Drop the classic state: parked requests rejoin the consumer group.
	for _, m := range g.members {
		m.finishJoin(joinError(m.id, kerr.RebalanceInProgress.Code))
		m.finishSync(syncResult{code: kerr.RebalanceInProgress.Code})
		c.disarm(m.expiry)
	}
	for _, t := range g.pending {
		c.disarm(t)
	}
	c.disarm(g.joinTimer)
	c.disarm(g.syncTimer)
	clear(g.members)
	clear(g.static)
	clear(g.pending)
	clear(g.pendingSync)
	g.state, g.leader, g.protocol, g.proposal = stateEmpty, "", "", nil
	g.protocolType = "consumer"
	g.cg = cg
	for _, m := range cg.members {
		c.armClassic(g, m)
	}
	c.mark(g, nil)
	c.logger(g).Info("classic group upgraded to a consumer group", "epoch", cg.epoch, "members", len(cg.members))
	return ""
}

// armClassic creates a classic member's timers and starts its session.
func (c *Coordinator) armClassic(g *group, m *cmember) {
	m.expiry = newTimer(func() { c.onConsumerExpiry(g, m, "session timeout") })
	m.revoke = newTimer(func() { c.onConsumerExpiry(g, m, "revocation timeout") })
	c.arm(m.expiry, m.classic.sessionTimeout)
}

func sortedNames(in []string) []string {
	out := make([]string, len(in))
	for i, s := range in {
		out[i] = strings.Clone(s)
	}
	slices.Sort(out)
	return slices.Compact(out)
}

// joinConsumer answers a JoinGroup to a consumer group with members, on
// the loop: an immediate error, or the result to send once the member's
// state is written (see JoinGroup).
func (c *Coordinator) joinConsumer(g *group, a joinArgs, topics Topics) (res joinResult, changed bool) {
	cg := g.cg
	if c.cfg.ConsumerMigrationPolicy == "disabled" || a.protocolType != "consumer" || len(a.protocols) == 0 {
		return joinError(a.memberID, kerr.InconsistentGroupProtocol.Code), false
	}
	var sub kmsg.ConsumerMemberMetadata
	if err := sub.ReadFrom(a.protocols[0].metadata); err != nil {
		return joinError(a.memberID, kerr.InconsistentGroupProtocol.Code), false
	}
	id := a.memberID
	if a.instanceID != nil {
		if old, ok := cg.static[*a.instanceID]; ok && old != id {
			if id != "" {
				return joinError(a.memberID, kerr.FencedInstanceID.Code), false
			}
			// A restarted static member takes its predecessor's place.
			c.removeConsumer(g, cg.members[old], "static member "+*a.instanceID+" replaced")
		}
	}
	if id == "" {
		prefix := a.client.ID
		if a.instanceID != nil {
			prefix = *a.instanceID
		}
		id = prefix + "-" + uuid.NewString()
		if a.instanceID == nil && a.requireKnownID {
			return joinError(id, kerr.MemberIDRequired.Code), false
		}
	}
	epoch0, target0 := cg.epoch, cg.targetEpoch
	m := cg.members[id]
	var before memberState
	if m != nil {
		before = m.persistent()
	}
	switch {
	case m != nil && m.classic == nil:
		return joinError(a.memberID, kerr.UnknownMemberID.Code), false
	case m == nil && len(cg.members) >= c.cfg.ConsumerMaxSize:
		return joinError(a.memberID, kerr.GroupMaxSizeReached.Code), false
	case m == nil:
		m = &cmember{id: id, instanceID: a.instanceID, assigned: tpSet{}, revoking: tpSet{}, classic: &classicMember{}}
		cg.members[id] = m
		if m.instanceID != nil {
			cg.static[*m.instanceID] = id
		}
		m.expiry = newTimer(func() { c.onConsumerExpiry(g, m, "session timeout") })
		m.revoke = newTimer(func() { c.onConsumerExpiry(g, m, "revocation timeout") })
		cg.epoch++
		c.logger(g).Info("classic member joined the consumer group", "member", id)
	}
	m.clientID, m.clientHost = a.client.ID, a.client.Host
	m.rebalance = a.rebalanceTimeout
	// What a downgrade would need: written even if nothing else changed.
	classicChanged := m.classic.sessionTimeout != a.sessionTimeout || !slices.EqualFunc(m.classic.protocols, a.protocols, func(x, y protocol) bool {
		return x.name == y.name && bytes.Equal(x.metadata, y.metadata)
	})
	m.classic.sessionTimeout, m.classic.protocols = a.sessionTimeout, a.protocols
	m.names = sortedNames(sub.Topics)
	if m.updateSubscribed() {
		cg.epoch++
	}
	if c.refreshTopics(cg, topics.Lookup) {
		cg.epoch++
	}
	if cg.targetEpoch < cg.epoch {
		c.computeTarget(g)
	}
	owned := tpSet{}
	for _, t := range sub.OwnedPartitions {
		if ti, ok := cg.topics[t.Topic]; ok {
			for _, p := range t.Partitions {
				owned[tp{ti.ID, p}] = struct{}{}
			}
		}
	}
	c.reconcileClassic(g, m, owned)
	c.arm(m.expiry, m.classic.sessionTimeout)
	res = joinResult{
		memberID:     m.id,
		generation:   m.epoch,
		protocolType: "consumer",
		protocol:     a.protocols[0].name,
	}
	return res, classicChanged || cg.epoch != epoch0 || cg.targetEpoch != target0 || m.persistent() != before
}

// reconcileClassic is reconcile for a classic member, from what it reports
// owning in its JoinGroup: what it no longer owns is released; what it owns
// outside its target is to be revoked, by omission from its SyncGroup
// assignment; once nothing is left to revoke it moves to the target epoch
// and takes every target partition no other member holds.
func (c *Coordinator) reconcileClassic(g *group, m *cmember, owned tpSet) {
	cg := g.cg
	for k := range m.assigned {
		if _, ok := owned[k]; !ok {
			delete(m.assigned, k)
		}
	}
	for k := range m.revoking {
		if _, ok := owned[k]; !ok {
			delete(m.revoking, k)
		}
	}
	target := cg.target[m.id]
	for k := range m.assigned {
		if _, keep := target[k]; !keep {
			delete(m.assigned, k)
			m.revoking[k] = struct{}{}
		}
	}
	if len(m.revoking) > 0 {
		c.arm(m.revoke, max(m.rebalance, time.Second))
		return
	}
	c.disarm(m.revoke)
	if m.epoch != cg.targetEpoch {
		m.prevEpoch, m.epoch = m.epoch, cg.targetEpoch
	}
	held := cg.heldByOthers(m)
	for k := range target {
		if _, busy := held[k]; !busy {
			m.assigned[k] = struct{}{}
		}
	}
}

// classicMemberOf returns the classic member of a consumer group a
// request names, or an error code.
func (cg *consumerGroup) classicMemberOf(memberID string, instanceID *string) (*cmember, int16) {
	if instanceID != nil {
		id, ok := cg.static[*instanceID]
		switch {
		case !ok:
			return nil, kerr.UnknownMemberID.Code
		case id != memberID:
			return nil, kerr.FencedInstanceID.Code
		}
	}
	m := cg.members[memberID]
	if m == nil || m.classic == nil {
		return nil, kerr.UnknownMemberID.Code
	}
	return m, 0
}

// settled reports whether a classic member is at its target: otherwise
// its heartbeats ask it to rejoin.
func (cg *consumerGroup) settled(m *cmember) bool {
	return m.epoch == cg.targetEpoch && len(m.revoking) == 0 && m.assigned.equal(cg.target[m.id])
}

// heartbeatConsumer is a classic Heartbeat to a consumer group.
func (c *Coordinator) heartbeatConsumer(g *group, generation int32, memberID string, instanceID *string) int16 {
	m, code := g.cg.classicMemberOf(memberID, instanceID)
	if code != 0 {
		return code
	}
	if generation != m.epoch {
		return kerr.IllegalGeneration.Code
	}
	c.arm(m.expiry, m.classic.sessionTimeout)
	if !g.cg.settled(m) {
		return kerr.RebalanceInProgress.Code
	}
	return 0
}

// syncConsumer is a classic SyncGroup to a consumer group: the member's
// assignment, without what it must revoke.
func (c *Coordinator) syncConsumer(g *group, a syncArgs) syncResult {
	m, code := g.cg.classicMemberOf(a.memberID, a.instanceID)
	if code != 0 {
		return syncResult{code: code}
	}
	if a.generation != m.epoch {
		return syncResult{code: kerr.IllegalGeneration.Code}
	}
	if a.protocolType != nil && *a.protocolType != "consumer" || a.protocol != nil && !slices.ContainsFunc(m.classic.protocols, func(p protocol) bool { return p.name == *a.protocol }) {
		return syncResult{code: kerr.InconsistentGroupProtocol.Code}
	}
	c.arm(m.expiry, m.classic.sessionTimeout)
	name := m.classic.protocols[0].name
	if a.protocol != nil {
		name = *a.protocol
	}
	return syncResult{protocolType: "consumer", protocol: name, assignment: encodeAssignment(g.cg, m.assigned)}
}

// encodeAssignment is a classic consumer's assignment of set.
func encodeAssignment(cg *consumerGroup, set tpSet) []byte {
	by := map[string][]int32{}
	for k := range set {
		if name, ok := cg.names[k.topic]; ok {
			by[name] = append(by[name], k.partition)
		}
	}
	a := kmsg.NewConsumerMemberAssignment()
	for name, ps := range by {
		slices.Sort(ps)
		t := kmsg.NewConsumerMemberAssignmentTopic()
		t.Topic, t.Partitions = name, ps
		a.Topics = append(a.Topics, t)
	}
	slices.SortFunc(a.Topics, func(x, y kmsg.ConsumerMemberAssignmentTopic) int { return strings.Compare(x.Topic, y.Topic) })
	return a.AppendTo(nil)
}

// leaveConsumer is a classic LeaveGroup to a consumer group. A downgrade, if the leavers were the last consumer-protocol members,
// waits until every entry is handled: the later entries still name
// members of this consumer group.
func (c *Coordinator) leaveConsumer(g *group, leaving []kmsg.LeaveGroupRequestMember, codes []int16) {
	cg := g.cg
	if cg == nil {
		for i := range codes {
			codes[i] = kerr.UnknownMemberID.Code
		}
		return
	}
	consumerLeft := false
	for i, l := range leaving {
		var m *cmember
		if l.MemberID == "" && l.InstanceID != nil {
			m = cg.members[cg.static[*l.InstanceID]]
			if m == nil {
				codes[i] = kerr.UnknownMemberID.Code
				continue
			}
		} else {
			var code int16
			if m, code = cg.classicMemberOf(l.MemberID, l.InstanceID); code != 0 {
				codes[i] = code
				continue
			}
		}
		c.removeConsumer(g, m, "member left")
		consumerLeft = consumerLeft || m.classic == nil
	}
	if consumerLeft {
		c.maybeDowngrade(g)
	}
}

// maybeDowngrade converts a consumer group whose remaining members all use
// the classic protocol back to a classic group, if the policy allows; it
// runs after a consumer-protocol member was removed.
func (c *Coordinator) maybeDowngrade(g *group) {
	cg := g.cg
	if cg == nil || len(cg.members) == 0 || !c.mayDowngrade() {
		return
	}
	for _, m := range cg.members {
		if m.classic == nil || len(m.classic.protocols) == 0 {
			return
		}
	}
	g.cg = nil
	// The generation members are at, not the group epoch the leave just
	// bumped: a member at it is told REBALANCE_IN_PROGRESS and rejoins
	// with its partitions, rather than ILLEGAL_GENERATION.
	g.generation = 0
	for _, m := range cg.members {
		g.generation = max(g.generation, m.epoch)
	}
	g.protocolType = "consumer"
	g.leader = ""
	for _, cm := range sortedMembers(cg) {
		c.disarm(cm.expiry)
		c.disarm(cm.revoke)
		held := cm.assigned.clone()
		for k := range cm.revoking {
			held[k] = struct{}{}
		}
		m := &member{
			id: cm.id, instanceID: cm.instanceID, clientID: cm.clientID, clientHost: cm.clientHost,
			rebalanceTimeout: cm.rebalance,
			sessionTimeout:   cm.classic.sessionTimeout,
			protocolType:     "consumer",
			protocols:        cm.classic.protocols,
			assignment:       encodeAssignment(cg, held),
		}
		m.expiry = newTimer(func() { c.onMemberExpiry(g, m) })
		g.add(m)
		c.arm(m.expiry, m.sessionTimeout)
	}
	g.protocol = g.selectProtocol()
	g.state = stateStable
	c.logger(g).Info("consumer group downgraded to a classic group", "generation", g.generation, "members", len(g.members))
	c.prepareRebalance(g, "downgraded from a consumer group")
	c.mark(g, nil)
}
