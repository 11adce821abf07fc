package group

import (
	"context"
	"fmt"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// ConsumerGroupHeartbeat (KIP-848): versions 0-1.
//
// A KIP-848 ("consumer") group shares its id space and committed offsets
// with classic groups: a group id names either a classic group or a consumer
// group. A heartbeat to a classic group that has members fails with
// GROUP_ID_NOT_FOUND, a JoinGroup to a consumer group with members with
// INCONSISTENT_GROUP_PROTOCOL; an empty group of either kind becomes the
// other on demand.
//
// The coordinator computes assignments itself with the member's
// ServerAssignor, "uniform" (sticky and balanced; the default) or "range";
// others fail with UNSUPPORTED_ASSIGNOR. Every membership, subscription or
// topic-metadata change bumps the group epoch and recomputes the target
// assignment; members then reconcile towards it as in Kafka's
// CurrentAssignmentBuilder: a member first gives up the partitions it must
// revoke (keeping its epoch), then moves to the target epoch and receives
// every target partition no other member still holds. A partition is thus
// never assigned to two members at once.
//
// Member epochs fence the member: an epoch above the member's, or below it
// other than the previous epoch of a member whose response was lost, fails
// with FENCED_MEMBER_EPOCH; an unknown member with UNKNOWN_MEMBER_ID. A
// member that does not heartbeat within Config.ConsumerSessionTimeout, or
// does not revoke within its rebalance timeout, is removed. Epoch -1 leaves;
// epoch -2 (a static member's temporary leave) is treated as a leave.
//
// Regular-expression subscriptions (v1 SubscribedTopicRegex) are resolved
// by the group (regex.go). Classic members take part in a consumer group
// after an online upgrade and a group converts back when only classic
// members remain (migration.go).
//
// Deviations: rack-aware assignment is not done. While a
// member waits for partitions others still hold, the heartbeat interval it
// is told is shortened to Config.ConsumerHeartbeatInterval/5, so handoffs
// take well under the regular interval.

// TopicInfo describes a topic of the request's virtual cluster to the
// KIP-848 assignors.
type TopicInfo struct {
	ID         [16]byte
	Name       string
	Partitions int32
}

// TopicLookup resolves a topic name of the request's cluster. It is called
// on the owner loop, so it must be quick and must not block or call the
// Coordinator; the broker implements it over its routing view.
type TopicLookup func(name string) (TopicInfo, bool)

// tp names a partition by topic id, as KIP-848 does.
type tp struct {
	topic     [16]byte
	partition int32
}

type tpSet map[tp]struct{}

func (s tpSet) clone() tpSet {
	out := make(tpSet, len(s))
	for k := range s {
		out[k] = struct{}{}
	}
	return out
}

func (s tpSet) equal(o tpSet) bool {
	if len(s) != len(o) {
		return false
	}
	for k := range s {
		if _, ok := o[k]; !ok {
			return false
		}
	}
	return true
}

// consumerGroup is the KIP-848 state of a group; owned by the loop.
type consumerGroup struct {
	epoch       int32 // group epoch
	targetEpoch int32 // epoch of target
	assignor    string
	members     map[string]*cmember
	static      map[string]string // instance id → member id
	target      map[string]tpSet  // member id → target assignment
	topics      map[string]TopicInfo
	names       map[[16]byte]string // topic id → name, for describe

	// Regex subscriptions (regex.go): each distinct regex of the members
	// with its last resolution, when and against which metadata version
	// the group last resolved them all.
	regexes      map[string]*resolvedRegex
	regexAt      time.Time
	regexVersion uint64
}

type cmember struct {
	id         string
	instanceID *string
	rackID     *string
	clientID   string
	clientHost string
	names      []string // SubscribedTopicNames, sorted
	regex      string   // SubscribedTopicRegex; "" for none
	matched    []string // topics regex matched at its last resolution, sorted
	subscribed []string // names and matched, sorted: what assignors read
	assignor   string   // "" = the group's default

	// classic is set for a member that uses the classic protocol
	// (JoinGroup, SyncGroup, Heartbeat) in a consumer group (migration.go).
	classic   *classicMember
	rebalance time.Duration

	epoch, prevEpoch int32
	assigned         tpSet // what the member may own
	revoking         tpSet // what it must give up before moving on
	lastSent         tpSet // assignment in the last response

	expiry *timer // session
	revoke *timer // revocation deadline
}

func newConsumerGroup() *consumerGroup {
	return &consumerGroup{
		members: make(map[string]*cmember),
		static:  make(map[string]string),
		target:  make(map[string]tpSet),
		topics:  make(map[string]TopicInfo),
		names:   make(map[[16]byte]string),
		regexes: make(map[string]*resolvedRegex),
	}
}

// ConsumerGroupHeartbeat handles a KIP-848 heartbeat; topics resolves the
// subscribed topics and regexes of cluster.
func (c *Coordinator) ConsumerGroupHeartbeat(ctx context.Context, cluster string, req *kmsg.ConsumerGroupHeartbeatRequest, topics Topics) *kmsg.ConsumerGroupHeartbeatResponse {
	resp := kmsg.NewPtrConsumerGroupHeartbeatResponse()
	resp.Version = req.Version
	fail := func(code int16, msg string) *kmsg.ConsumerGroupHeartbeatResponse {
		resp.ErrorCode = code
		if msg != "" {
			resp.ErrorMessage = &msg
		}
		return resp
	}
	switch {
	case req.Group == "":
		return fail(kerr.InvalidGroupID.Code, "")
	case req.MemberEpoch < -2:
		return fail(kerr.InvalidRequest.Code, "member epoch below -2")
	case req.MemberEpoch == 0 && req.SubscribedTopicNames == nil && req.SubscribedTopicRegex == nil:
		return fail(kerr.InvalidRequest.Code, "SubscribedTopicNames or SubscribedTopicRegex must be set when joining")
	case req.MemberEpoch == 0 && len(req.Topics) > 0:
		return fail(kerr.InvalidRequest.Code, "Topics must be empty when joining")
	case req.MemberEpoch == 0 && req.RebalanceTimeoutMillis <= 0:
		return fail(kerr.InvalidRequest.Code, "RebalanceTimeoutMillis must be positive when joining")
	case req.ServerAssignor != nil && *req.ServerAssignor != "" && assignorByName(*req.ServerAssignor) == nil:
		return fail(kerr.UnsupportedAssignor.Code, "supported assignors: uniform, range")
	case req.MemberEpoch != 0 && req.MemberID == "":
		return fail(kerr.UnknownMemberID.Code, "")
	}
	var compiled *regexp.Regexp
	if req.SubscribedTopicRegex != nil && *req.SubscribedTopicRegex != "" {
		var msg string
		if compiled, msg = c.compileRegex(*req.SubscribedTopicRegex); compiled == nil {
			return fail(kerr.InvalidRegularExpression.Code, msg)
		}
	}
	if req.MemberEpoch == 0 {
		if code := c.admitGroup(ctx, cluster, req.Group); code != 0 {
			return fail(code, "the cluster has reached its maximum number of groups")
		}
	}
	cl := clientFrom(ctx)
	k := key{cluster, req.Group}
	saved := make(chan int16, 1)
	changed := false
	if err := c.do(ctx, func() {
		changed = c.consumerHeartbeat(k, req, cl, topics, compiled, resp)
		if g := c.get(k); changed && g != nil {
			c.mark(g, func(code int16) { saved <- code })
		} else {
			changed = false
		}
	}); err != nil {
		return fail(kerr.CoordinatorNotAvailable.Code, "")
	}
	// A change is answered only once it is written: a member must never
	// hold an epoch or a partition that a new coordinator would not know.
	if changed {
		if code := awaitSaved(ctx, saved); code != 0 {
			out := kmsg.NewPtrConsumerGroupHeartbeatResponse()
			out.Version = req.Version
			out.ErrorCode = code
			return out
		}
	}
	return resp
}

// consumerHeartbeat runs on the loop. It reports whether the group's
// persistent state changed; the group is then live.
func (c *Coordinator) consumerHeartbeat(k key, req *kmsg.ConsumerGroupHeartbeatRequest, cl Client, topics Topics, compiled *regexp.Regexp, resp *kmsg.ConsumerGroupHeartbeatResponse) (changed bool) {
	g := c.get(k)
	if g == nil {
		if req.MemberEpoch != 0 {
			resp.ErrorCode = kerr.UnknownMemberID.Code
			return false
		}
		g = c.newGroup(k)
	}
	if g.state == stateDead {
		resp.ErrorCode = kerr.CoordinatorNotAvailable.Code
		return false
	}
	if g.cg == nil && (g.state != stateEmpty || len(g.members) > 0 || len(g.pending) > 0) {
		msg := "group " + g.group + " is a classic group with members"
		if req.MemberEpoch == 0 {
			msg = c.upgrade(g, topics.Lookup)
		}
		if msg != "" {
			resp.ErrorCode = kerr.GroupIDNotFound.Code
			resp.ErrorMessage = &msg
			return false
		}
	}
	if g.cg == nil {
		g.cg = newConsumerGroup()
		g.protocolType = "consumer"
		// Epochs continue across a conversion, as generations would.
		g.cg.epoch = g.generation
		g.cg.targetEpoch = g.generation
	}
	cg := g.cg
	defer c.gc(g)
	epoch0, target0 := cg.epoch, cg.targetEpoch
	var before memberState
	if m := cg.members[req.MemberID]; m != nil {
		before = m.persistent()
	}

	if req.MemberEpoch < 0 { // -1 leave, -2 static temporary leave
		m := cg.members[req.MemberID]
		if m == nil && req.InstanceID != nil {
			m = cg.members[cg.static[*req.InstanceID]]
		}
		if m == nil || m.classic != nil {
			// A classic member leaves with LeaveGroup, as below.
			resp.ErrorCode = kerr.UnknownMemberID.Code
			return false
		}
		c.removeConsumer(g, m, "member left")
		c.maybeDowngrade(g)
		id := m.id
		resp.MemberID = &id
		resp.MemberEpoch = req.MemberEpoch
		return true
	}

	m := cg.members[req.MemberID]
	if m != nil && m.classic != nil {
		// The id of a member using the classic protocol.
		resp.ErrorCode = kerr.UnknownMemberID.Code
		return false
	}
	if re := req.SubscribedTopicRegex; re != nil && *re != "" && (m == nil || m.regex != *re) && !c.admitRegex(cg, m, *re) {
		resp.ErrorCode = kerr.InvalidRegularExpression.Code
		msg := fmt.Sprintf("the group uses its maximum of %d distinct regular expressions", c.cfg.ConsumerMaxRegexes)
		resp.ErrorMessage = &msg
		return false
	}
	if req.MemberEpoch == 0 {
		replacing := req.InstanceID != nil && cg.static[*req.InstanceID] != ""
		if m == nil && !replacing && len(cg.members) >= c.cfg.ConsumerMaxSize {
			resp.ErrorCode = kerr.GroupMaxSizeReached.Code
			msg := fmt.Sprintf("the consumer group has reached its maximum capacity of %d members", c.cfg.ConsumerMaxSize)
			resp.ErrorMessage = &msg
			return false
		}
		if req.InstanceID != nil {
			if old, ok := cg.static[*req.InstanceID]; ok && old != req.MemberID {
				// A static member restarted under a new member id: it
				// takes its predecessor's place without a rebalance of
				// the others.
				if om := cg.members[old]; om != nil {
					c.removeConsumer(g, om, "static member "+*req.InstanceID+" replaced")
				}
			}
		}
		id := req.MemberID
		if id == "" { // v0: the coordinator names the member
			id = uuid.NewString()
		}
		if m != nil {
			// A fenced member rejoining under its id: it starts over.
			c.removeConsumer(g, m, "member rejoined")
		}
		m = &cmember{
			id:         strings.Clone(id),
			instanceID: clonePtr(req.InstanceID),
			rackID:     clonePtr(req.RackID),
			clientID:   cl.ID,
			clientHost: cl.Host,
			assigned:   tpSet{},
			revoking:   tpSet{},
		}
		m.expiry = newTimer(func() { c.onConsumerExpiry(g, m, "session timeout") })
		m.revoke = newTimer(func() { c.onConsumerExpiry(g, m, "revocation timeout") })
		cg.members[m.id] = m
		if m.instanceID != nil {
			cg.static[*m.instanceID] = m.id
		}
		cg.epoch++
	} else {
		if m == nil {
			resp.ErrorCode = kerr.UnknownMemberID.Code
			return false
		}
		if req.MemberEpoch > m.epoch || req.MemberEpoch < m.epoch && (req.MemberEpoch != m.prevEpoch || !ownsSubset(req.Topics, m.assigned)) {
			resp.ErrorCode = kerr.FencedMemberEpoch.Code
			return false
		}
	}

	// Take the member's updates.
	if req.RebalanceTimeoutMillis > 0 {
		m.rebalance = time.Duration(req.RebalanceTimeoutMillis) * time.Millisecond
	}
	if req.SubscribedTopicNames != nil {
		m.names = sortedNames(req.SubscribedTopicNames)
	}
	if req.SubscribedTopicRegex != nil && *req.SubscribedTopicRegex != m.regex {
		m.regex = strings.Clone(*req.SubscribedTopicRegex)
		m.matched = nil
	}
	if m.updateSubscribed() {
		cg.epoch++
	}
	if c.updateRegexes(cg, topics, compiled, time.Now()) {
		cg.epoch++
	}
	if req.ServerAssignor != nil && *req.ServerAssignor != m.assignor {
		m.assignor = strings.Clone(*req.ServerAssignor)
		cg.epoch++
	}
	c.arm(m.expiry, c.cfg.ConsumerSessionTimeout)

	// Topic metadata changes (a topic created, deleted or grown) also
	// start a new epoch.
	if c.refreshTopics(cg, topics.Lookup) {
		cg.epoch++
	}
	if cg.targetEpoch < cg.epoch {
		c.computeTarget(g)
	}

	var owned tpSet
	if req.Topics != nil {
		owned = tpSet{}
		for _, t := range req.Topics {
			for _, p := range t.Partitions {
				owned[tp{t.TopicID, p}] = struct{}{}
			}
		}
	}
	c.reconcile(g, m, owned)

	id := m.id
	resp.MemberID = &id
	resp.MemberEpoch = m.epoch
	resp.HeartbeatIntervalMillis = int32(c.cfg.ConsumerHeartbeatInterval.Milliseconds())
	if m.epoch != cg.targetEpoch || len(m.revoking) > 0 || !m.assigned.equal(cg.target[m.id]) {
		resp.HeartbeatIntervalMillis = max(int32(c.cfg.ConsumerHeartbeatInterval.Milliseconds()/5), 1)
	}
	if req.MemberEpoch == 0 || req.Topics != nil || m.lastSent == nil || !m.lastSent.equal(m.assigned) {
		a := kmsg.NewConsumerGroupHeartbeatResponseAssignment()
		a.Topics = assignmentTopics(m.assigned)
		resp.Assignment = &a
		m.lastSent = m.assigned.clone()
	}
	return cg.epoch != epoch0 || cg.targetEpoch != target0 || m.persistent() != before
}

// memberState is what changes of a KIP-848 member's persistent state: a
// member's assignment only grows at its epoch and shrinks into revoking,
// and revoking only shrinks, so sizes and epochs detect every change.
type memberState struct {
	epoch, prevEpoch   int32
	assigned, revoking int
	rebalance          time.Duration
	regex              string
}

func (m *cmember) persistent() memberState {
	return memberState{m.epoch, m.prevEpoch, len(m.assigned), len(m.revoking), m.rebalance, m.regex}
}

// ownsSubset reports whether the partitions a member reports are within
// what it was assigned (nil: unchanged since the last heartbeat).
func ownsSubset(topics []kmsg.ConsumerGroupHeartbeatRequestTopic, assigned tpSet) bool {
	for _, t := range topics {
		for _, p := range t.Partitions {
			if _, ok := assigned[tp{t.TopicID, p}]; !ok {
				return false
			}
		}
	}
	return true
}

func assignmentTopics(s tpSet) []kmsg.ConsumerGroupHeartbeatResponseAssignmentTopic {
	by := map[[16]byte][]int32{}
	for k := range s {
		by[k.topic] = append(by[k.topic], k.partition)
	}
	out := make([]kmsg.ConsumerGroupHeartbeatResponseAssignmentTopic, 0, len(by))
	for id, ps := range by {
		slices.Sort(ps)
		t := kmsg.NewConsumerGroupHeartbeatResponseAssignmentTopic()
		t.TopicID, t.Partitions = id, ps
		out = append(out, t)
	}
	slices.SortFunc(out, func(a, b kmsg.ConsumerGroupHeartbeatResponseAssignmentTopic) int {
		return strings.Compare(string(a.TopicID[:]), string(b.TopicID[:]))
	})
	return out
}

// refreshTopics re-resolves every subscribed topic and reports whether the
// group's view of them changed.
func (c *Coordinator) refreshTopics(cg *consumerGroup, lookup TopicLookup) bool {
	now := make(map[string]TopicInfo)
	for _, m := range cg.members {
		for _, name := range m.subscribed {
			if _, done := now[name]; done {
				continue
			}
			if ti, ok := lookup(name); ok && ti.Partitions > 0 {
				ti.Name = name
				now[name] = ti
			}
		}
	}
	changed := len(now) != len(cg.topics)
	for name, ti := range now {
		if old, ok := cg.topics[name]; !ok || old != ti {
			changed = true
		}
	}
	if changed {
		cg.topics = now
		clear(cg.names)
		for _, ti := range now {
			cg.names[ti.ID] = ti.Name
		}
	}
	return changed
}

// computeTarget computes the target assignment of the current epoch.
func (c *Coordinator) computeTarget(g *group) {
	cg := g.cg
	name := "uniform"
	// The most popular assignor among members wins, as in Kafka; ties go
	// to the smaller name.
	votes := map[string]int{}
	for _, m := range cg.members {
		if m.assignor != "" {
			votes[m.assignor]++
		}
	}
	best := 0
	for n, v := range votes {
		if v > best || v == best && n < name {
			name, best = n, v
		}
	}
	cg.assignor = name
	cg.target = assignorByName(name)(cg)
	cg.targetEpoch = cg.epoch
	c.logger(g).Info("consumer group target assignment computed", "epoch", cg.epoch, "members", len(cg.members), "assignor", name)
}

// heldByOthers returns the partitions members other than m hold: assigned
// or still being revoked.
func (cg *consumerGroup) heldByOthers(m *cmember) tpSet {
	out := tpSet{}
	for _, o := range cg.members {
		if o == m {
			continue
		}
		for k := range o.assigned {
			out[k] = struct{}{}
		}
		for k := range o.revoking {
			out[k] = struct{}{}
		}
	}
	return out
}

// reconcile moves m towards its target assignment; owned is what the
// member reported owning (nil: unchanged).
func (c *Coordinator) reconcile(g *group, m *cmember, owned tpSet) {
	cg := g.cg
	if owned != nil {
		for k := range m.revoking {
			if _, still := owned[k]; !still {
				delete(m.revoking, k)
			}
		}
	}
	if len(m.revoking) > 0 {
		return // waiting for the member to let go
	}
	c.disarm(m.revoke)
	target := cg.target[m.id]
	if m.epoch < cg.targetEpoch {
		var revoke tpSet
		for k := range m.assigned {
			if _, keep := target[k]; !keep {
				if revoke == nil {
					revoke = tpSet{}
				}
				revoke[k] = struct{}{}
			}
		}
		if len(revoke) > 0 {
			for k := range revoke {
				delete(m.assigned, k)
			}
			m.revoking = revoke
			c.arm(m.revoke, max(m.rebalance, time.Second))
			return
		}
		m.prevEpoch, m.epoch = m.epoch, cg.targetEpoch
	}
	// At the target epoch: take every target partition nobody else holds.
	held := cg.heldByOthers(m)
	for k := range target {
		if _, busy := held[k]; !busy {
			m.assigned[k] = struct{}{}
		}
	}
}

func (c *Coordinator) onConsumerExpiry(g *group, m *cmember, reason string) {
	if !c.live(g) || g.cg == nil || g.cg.members[m.id] != m {
		return
	}
	c.logger(g).Info("removing consumer group member", "member", m.id, "reason", reason)
	c.removeConsumer(g, m, reason)
	if m.classic == nil {
		c.maybeDowngrade(g)
	}
	c.gc(g)
}

// removeConsumer drops m and starts a new epoch; its partitions are free
// for the others at once.
func (c *Coordinator) removeConsumer(g *group, m *cmember, reason string) {
	cg := g.cg
	c.disarm(m.expiry)
	c.disarm(m.revoke)
	delete(cg.members, m.id)
	delete(cg.target, m.id)
	if m.instanceID != nil && cg.static[*m.instanceID] == m.id {
		delete(cg.static, *m.instanceID)
	}
	cg.epoch++
	c.mark(g, nil)
	c.logger(g).Info("consumer group member removed", "member", m.id, "reason", reason, "epoch", cg.epoch)
	if len(cg.members) == 0 {
		// Keep the epoch for a later conversion or rejoin.
		g.generation = cg.epoch
	}
}

// validateConsumerCommit is validateCommit for KIP-848 groups: generation
// carries the member epoch. The member's current or an older epoch is
// accepted only if every committed partition is still the member's
// (assigned, or being revoked): a member commits while its heartbeat moves
// it on, but must never commit a partition it has handed over, or the new
// owner's progress could be overwritten.
func (c *Coordinator) validateConsumerCommit(g *group, version int16, epoch int32, memberID string, offs []Offset) int16 {
	cg := g.cg
	if epoch < 0 && memberID == "" {
		if len(cg.members) == 0 {
			return 0
		}
		return kerr.UnknownMemberID.Code
	}
	m := cg.members[memberID]
	if m == nil {
		return kerr.UnknownMemberID.Code
	}
	stale := kerr.IllegalGeneration.Code
	// Classic members (migration.go) know only ILLEGAL_GENERATION, as in
	// Kafka.
	if version >= 9 && m.classic == nil {
		stale = kerr.StaleMemberEpoch.Code
	}
	if epoch > m.epoch {
		return stale
	}
	// Whatever the epoch, a member commits only partitions it holds (or is
	// giving up). Kafka accepts any partition at the current epoch, but a
	// member that lost its session (say its coordinator died) rejoins under
	// a new id, and a commit it makes then for records it polled under the
	// old assignment would move back the offset of a partition that has
	// since been consumed and committed further by its new owner.
	for _, o := range offs {
		ti, ok := cg.topics[o.Topic]
		if !ok {
			return stale
		}
		k := tp{ti.ID, o.Partition}
		_, assigned := m.assigned[k]
		_, revoking := m.revoking[k]
		if !assigned && !revoking {
			return stale
		}
	}
	return 0
}

func clonePtr(s *string) *string {
	if s == nil {
		return nil
	}
	v := strings.Clone(*s)
	return &v
}

// consumerState names a consumer group's state as Kafka does.
func (cg *consumerGroup) state() string {
	if len(cg.members) == 0 {
		return "Empty"
	}
	if cg.targetEpoch < cg.epoch {
		return "Assigning"
	}
	for _, m := range cg.members {
		if m.epoch != cg.targetEpoch || len(m.revoking) > 0 || !m.assigned.equal(cg.target[m.id]) {
			return "Reconciling"
		}
	}
	return "Stable"
}
