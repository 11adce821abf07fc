package group

import (
	"bytes"
	"cmp"
	"slices"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// state is a group's position in Kafka's classic state machine:
//
//	Empty ───────────────▶ PreparingRebalance ◀─────────────────┐
//	  ▲   a member joins      │          │                      │ a member joins (new,
//	  └───────────────────────┘          │ join phase ends      │ changed metadata, or
//	   join phase ends, nobody left      ▼                      │ the leader), leaves,
//	                               CompletingRebalance ─────────┤ or expires
//	                                     │ leader's SyncGroup   │
//	                                     ▼                      │
//	                                   Stable ──────────────────┘
//
// Dead marks a group being deleted, or dropped by Forget or Close; it is
// never left.
type state int8

const (
	stateEmpty state = iota
	statePreparingRebalance
	stateCompletingRebalance
	stateStable
	stateDead
)

func (s state) String() string {
	switch s {
	case stateEmpty:
		return "Empty"
	case statePreparingRebalance:
		return "PreparingRebalance"
	case stateCompletingRebalance:
		return "CompletingRebalance"
	case stateStable:
		return "Stable"
	default:
		return "Dead"
	}
}

// newMemberJoinTimeout bounds how long a member that has never completed a
// join may stay parked in JoinGroup (Kafka's NewMemberJoinTimeoutMs): a
// client that gave up on its first JoinGroup must not hold up rebalances.
const newMemberJoinTimeout = 5 * time.Minute

// group is one classic group. It is owned by the loop, except io, which
// handlers use directly.
type group struct {
	key

	state        state
	generation   int32
	protocolType string // "" until a member joins; kept while Empty
	protocol     string // selected protocol of the generation; "" when none
	leader       string

	members     map[string]*member
	static      map[string]string   // group.instance.id → member id
	pending     map[string]*timer   // ids issued with MEMBER_ID_REQUIRED, with their expiry
	pendingSync map[string]struct{} // members yet to SyncGroup this generation

	joinTimer      *timer // end of the join phase
	initialJoin    bool   // joinTimer is the initial delay, which runs out even if all have joined
	joinDelay      time.Duration
	joinRemaining  time.Duration
	newMemberAdded bool // a member joined during the initial delay of generation 0

	syncTimer *timer // end of the sync phase
	syncGen   int32  // generation syncTimer was armed for

	// Committed offsets, topic → partition → offset; nil until loaded.
	offsets map[string]map[int32]Offset
	// io serialises this group's store calls (a one-slot lock used off the
	// loop); ioRefs counts handlers holding or waiting for it, which keeps
	// the group in memory meanwhile.
	io     chan struct{}
	ioRefs int

	unloaded bool // dropped by Forget or Close

	// cg is set while the group is a KIP-848 consumer group; the classic
	// fields then stay Empty (see 68_consumer_group_heartbeat.go).
	cg *consumerGroup

	// proposal is the leader's assignment while it is being written, before
	// the group becomes Stable (persist.go).
	proposal map[string][]byte
	// Persistence: seq counts changes to write, waiters wait for them;
	// deleted marks a group DeleteGroups dropped, written as a tombstone.
	seq     int64
	waiters []saveWaiter
	deleted bool
}

type protocol struct {
	name     string
	metadata []byte
}

type member struct {
	id         string
	instanceID *string // non-nil for static members
	clientID   string
	clientHost string

	rebalanceTimeout time.Duration
	sessionTimeout   time.Duration
	protocolType     string
	protocols        []protocol // in the member's order of preference
	assignment       []byte

	isNew  bool            // has not completed a join yet
	join   chan joinResult // parked JoinGroup, buffered 1
	sync   chan syncResult // parked SyncGroup, buffered 1
	expiry *timer          // session (or new-member join) deadline
}

// joinResult is the version-independent outcome of a JoinGroup.
type joinResult struct {
	code           int16
	memberID       string
	generation     int32
	protocolType   string
	protocol       string
	leader         string
	skipAssignment bool
	members        []kmsg.JoinGroupResponseMember // leader only
}

// syncResult is the version-independent outcome of a SyncGroup.
type syncResult struct {
	code         int16
	protocolType string
	protocol     string
	assignment   []byte
}

func joinError(memberID string, code int16) joinResult {
	return joinResult{code: code, memberID: memberID, generation: -1}
}

// newGroup creates and registers an Empty group. The key is copied: callers
// may pass strings that alias a request buffer.
func (c *Coordinator) newGroup(k key) *group {
	g := &group{
		key:         key{strings.Clone(k.cluster), strings.Clone(k.group)},
		members:     make(map[string]*member),
		static:      make(map[string]string),
		pending:     make(map[string]*timer),
		pendingSync: make(map[string]struct{}),
		io:          make(chan struct{}, 1),
	}
	g.joinTimer = newTimer(func() { c.onJoinDeadline(g) })
	g.syncTimer = newTimer(func() { c.onSyncDeadline(g) })
	c.put(g)
	return g
}

// live reports whether g is still the group the coordinator holds for its
// key; a handler that kept g across loop calls must check it.
func (c *Coordinator) live(g *group) bool {
	return c.get(g.key) == g
}

// staleCode is the error for an operation on a group that is no longer live.
func staleCode(g *group) int16 {
	if g.unloaded {
		return kerr.NotCoordinator.Code
	}
	return kerr.CoordinatorNotAvailable.Code // deleted; a retry finds a new group
}

// gc drops g from memory when it is only bookkeeping: no group to clients
// (see exists), no MEMBER_ID_REQUIRED ids outstanding and no handler using
// it. Groups that have had members are kept while Empty, as in Kafka, so
// their generation keeps increasing if they re-form.
func (c *Coordinator) gc(g *group) {
	if !c.live(g) || g.exists() || len(g.pending) > 0 || g.ioRefs > 0 {
		return
	}
	c.discard(g)
}

// unload drops g from memory and fails its parked requests with code.
func (c *Coordinator) unload(g *group, code int16) {
	for _, m := range g.members {
		m.finishJoin(joinError(m.id, code))
		m.finishSync(syncResult{code: code})
	}
	g.state = stateDead
	g.unloaded = true
	c.failWaiters(g, code)
	c.discard(g)
}

// discard drops g from memory with all its deadlines.
func (c *Coordinator) discard(g *group) {
	for _, m := range g.members {
		c.disarm(m.expiry)
	}
	if g.cg != nil {
		for _, m := range g.cg.members {
			c.disarm(m.expiry)
			c.disarm(m.revoke)
		}
	}
	for _, t := range g.pending {
		c.disarm(t)
	}
	c.disarm(g.joinTimer)
	c.disarm(g.syncTimer)
	c.del(g)
}

func (m *member) finishJoin(r joinResult) {
	if m.join != nil {
		m.join <- r
		m.join = nil
	}
}

func (m *member) finishSync(r syncResult) {
	if m.sync != nil {
		m.sync <- r
		m.sync = nil
	}
}

func (m *member) metadata(name string) []byte {
	for _, p := range m.protocols {
		if p.name == name {
			return p.metadata
		}
	}
	return nil
}

func (m *member) supports(name string) bool {
	return slices.ContainsFunc(m.protocols, func(p protocol) bool { return p.name == name })
}

// matches reports whether protocols equals the member's, order included.
func (m *member) matches(protocols []protocol) bool {
	return slices.EqualFunc(m.protocols, protocols, func(a, b protocol) bool {
		return a.name == b.name && bytes.Equal(a.metadata, b.metadata)
	})
}

func (g *group) add(m *member) {
	if len(g.members) == 0 {
		g.protocolType = m.protocolType
	}
	if g.leader == "" {
		g.leader = m.id
	}
	g.members[m.id] = m
	if m.instanceID != nil {
		g.static[*m.instanceID] = m.id
	}
	delete(g.pending, m.id)
}

// removeMember drops m from g without any state transition.
func (c *Coordinator) removeMember(g *group, m *member) {
	c.disarm(m.expiry)
	delete(g.members, m.id)
	if m.instanceID != nil && g.static[*m.instanceID] == m.id {
		delete(g.static, *m.instanceID)
	}
	delete(g.pendingSync, m.id)
	if g.leader == m.id {
		// Kafka picks an arbitrary remaining member; so do we.
		g.leader = ""
		for id := range g.members {
			g.leader = id
			break
		}
	}
}

// removeMemberAndUpdate removes a member that left or failed, answering its
// parked requests, and moves the group on (Kafka's
// removeMemberAndUpdateGroup).
func (c *Coordinator) removeMemberAndUpdate(g *group, m *member, reason string) {
	m.finishJoin(joinError("", kerr.UnknownMemberID.Code))
	m.finishSync(syncResult{code: kerr.UnknownMemberID.Code})
	c.removeMember(g, m)
	switch g.state {
	case stateStable, stateCompletingRebalance:
		c.maybePrepareRebalance(g, reason)
	case statePreparingRebalance:
		c.tryCompleteJoin(g)
	}
}

func (g *group) rebalanceTimeout() time.Duration {
	var d time.Duration
	for _, m := range g.members {
		d = max(d, m.rebalanceTimeout)
	}
	return d
}

// supportsProtocols reports whether a member with the given protocol type
// and protocols may join: an Empty group takes anything non-empty; otherwise
// the type must match and one protocol must be supported by every member.
func (g *group) supportsProtocols(protocolType string, protocols []protocol) bool {
	if g.state == stateEmpty {
		return protocolType != "" && len(protocols) > 0
	}
	if protocolType != g.protocolType {
		return false
	}
	for _, p := range protocols {
		if g.supportedByAll(p.name) {
			return true
		}
	}
	return false
}

func (g *group) supportedByAll(name string) bool {
	for _, m := range g.members {
		if !m.supports(name) {
			return false
		}
	}
	return true
}

// selectProtocol picks the protocol of the next generation: among the
// protocols every member supports, each member votes for its most preferred
// and the most votes win. Kafka breaks ties arbitrarily; we pick the
// lexicographically smallest name so the choice is deterministic.
func (g *group) selectProtocol() string {
	votes := make(map[string]int)
	for _, m := range g.members {
		for _, p := range m.protocols {
			if g.supportedByAll(p.name) {
				votes[p.name]++
				break
			}
		}
	}
	var best string
	for name, n := range votes {
		if n > votes[best] || n == votes[best] && name < best {
			best = name
		}
	}
	return best
}

// allJoined reports whether the join phase may end early: every member has
// a JoinGroup parked and no MEMBER_ID_REQUIRED id is outstanding.
func (g *group) allJoined() bool {
	if len(g.pending) > 0 {
		return false
	}
	for _, m := range g.members {
		if m.join == nil {
			return false
		}
	}
	return true
}

// validateMember checks that memberID is in the group and, for a static
// member, still owns its instance id (Kafka's validateCurrentMember).
func (g *group) validateMember(memberID string, instanceID *string) int16 {
	if instanceID != nil {
		current, ok := g.static[*instanceID]
		switch {
		case !ok:
			return kerr.UnknownMemberID.Code
		case current != memberID:
			return kerr.FencedInstanceID.Code
		}
		return 0
	}
	if _, ok := g.members[memberID]; !ok {
		return kerr.UnknownMemberID.Code
	}
	return 0
}

// memberList is what the leader receives to compute assignments: every
// member with its metadata for the selected protocol, ordered by member id.
func (g *group) memberList() []kmsg.JoinGroupResponseMember {
	out := make([]kmsg.JoinGroupResponseMember, 0, len(g.members))
	for _, m := range g.members {
		jm := kmsg.NewJoinGroupResponseMember()
		jm.MemberID = m.id
		jm.InstanceID = m.instanceID
		jm.ProtocolMetadata = m.metadata(g.protocol)
		out = append(out, jm)
	}
	slices.SortFunc(out, func(a, b kmsg.JoinGroupResponseMember) int { return cmp.Compare(a.MemberID, b.MemberID) })
	return out
}

// currentJoinResult describes the current generation to member m.
func (g *group) currentJoinResult(m *member) joinResult {
	r := joinResult{
		memberID:     m.id,
		generation:   g.generation,
		protocolType: g.protocolType,
		protocol:     g.protocol,
		leader:       g.leader,
	}
	if m.id == g.leader {
		r.members = g.memberList()
	}
	return r
}

func (c *Coordinator) maybePrepareRebalance(g *group, reason string) {
	switch g.state {
	case stateStable, stateCompletingRebalance, stateEmpty:
		c.prepareRebalance(g, reason)
	}
}

// prepareRebalance starts a join phase.
func (c *Coordinator) prepareRebalance(g *group, reason string) {
	if g.state == stateCompletingRebalance {
		c.resetAssignments(g, kerr.RebalanceInProgress.Code)
	}
	c.clearPendingSync(g)
	timeout := g.rebalanceTimeout()
	if g.state == stateEmpty {
		g.initialJoin = true
		g.joinDelay = c.cfg.InitialRebalanceDelay
		g.joinRemaining = max(timeout-g.joinDelay, 0)
		c.arm(g.joinTimer, g.joinDelay)
	} else {
		g.initialJoin = false
		c.arm(g.joinTimer, timeout)
	}
	c.logger(g).Info("preparing to rebalance", "from", g.state.String(), "generation", g.generation, "reason", reason)
	g.state = statePreparingRebalance
	c.tryCompleteJoin(g)
}

// tryCompleteJoin ends the join phase early once every member has rejoined.
func (c *Coordinator) tryCompleteJoin(g *group) {
	if g.state == statePreparingRebalance && !g.initialJoin && g.allJoined() {
		c.completeJoin(g)
	}
}

func (c *Coordinator) onJoinDeadline(g *group) {
	if !c.live(g) || g.state != statePreparingRebalance {
		return
	}
	if g.initialJoin && g.newMemberAdded && g.joinRemaining > 0 {
		// Members are still arriving: wait another delay, within the
		// rebalance timeout (Kafka's InitialDelayedJoin).
		g.newMemberAdded = false
		delay := min(c.cfg.InitialRebalanceDelay, g.joinRemaining)
		g.joinRemaining = max(g.joinRemaining-g.joinDelay, 0)
		g.joinDelay = delay
		c.arm(g.joinTimer, delay)
		return
	}
	c.completeJoin(g)
}

// completeJoin ends the join phase (Kafka's onCompleteJoin): dynamic members
// that did not rejoin are dropped, a new generation starts and every parked
// JoinGroup is answered.
func (c *Coordinator) completeJoin(g *group) {
	c.disarm(g.joinTimer)
	g.initialJoin = false
	for _, m := range g.members {
		// Static members keep their place: they are expected back under
		// the same instance id and are expired by their session instead.
		if m.join == nil && m.instanceID == nil {
			c.logger(g).Info("removing member that did not rejoin", "member", m.id)
			c.removeMember(g, m)
		}
	}
	if len(g.members) > 0 && !c.electJoinedLeader(g) {
		// Nobody rejoined: give sessions another rebalance timeout to expire
		// the silent members.
		c.arm(g.joinTimer, g.rebalanceTimeout())
		return
	}
	g.generation++
	g.proposal = nil
	clear(g.pendingSync)
	if len(g.members) == 0 {
		g.protocol = ""
		g.state = stateEmpty
		c.logger(g).Info("group is empty", "generation", g.generation)
		c.mark(g, nil)
		c.gc(g)
		return
	}
	g.protocol = g.selectProtocol()
	g.state = stateCompletingRebalance
	c.logger(g).Info("join phase complete", "generation", g.generation, "members", len(g.members), "protocol", g.protocol, "leader", g.leader)
	for _, m := range g.members {
		m.finishJoin(g.currentJoinResult(m))
		c.arm(m.expiry, m.sessionTimeout)
		m.isNew = false
		g.pendingSync[m.id] = struct{}{}
	}
	g.syncGen = g.generation
	c.arm(g.syncTimer, g.rebalanceTimeout())
}

// electJoinedLeader keeps the leader if it rejoined, else promotes any member
// that did; it reports false when no member rejoined.
func (c *Coordinator) electJoinedLeader(g *group) bool {
	if m := g.members[g.leader]; m != nil && m.join != nil {
		return true
	}
	for id, m := range g.members {
		if m.join != nil {
			c.logger(g).Info("leader did not rejoin; electing another", "old", g.leader, "new", id)
			g.leader = id
			return true
		}
	}
	return false
}

// resetAssignments clears the generation's assignments and fails parked
// SyncGroups with code.
func (c *Coordinator) resetAssignments(g *group, code int16) {
	g.proposal = nil
	for _, m := range g.members {
		m.assignment = nil
		if m.sync != nil {
			m.finishSync(syncResult{code: code})
			c.arm(m.expiry, m.sessionTimeout)
		}
	}
}

// propagateAssignment hands each parked SyncGroup its member's assignment.
func (c *Coordinator) propagateAssignment(g *group) {
	for _, m := range g.members {
		if m.sync != nil {
			m.finishSync(syncResult{protocolType: g.protocolType, protocol: g.protocol, assignment: m.assignment})
			c.arm(m.expiry, m.sessionTimeout)
		}
	}
}

func (c *Coordinator) clearPendingSync(g *group) {
	clear(g.pendingSync)
	c.disarm(g.syncTimer)
}

// removePendingSync records that id sent its SyncGroup.
func (c *Coordinator) removePendingSync(g *group, id string) {
	delete(g.pendingSync, id)
	if len(g.pendingSync) == 0 {
		c.disarm(g.syncTimer)
	}
}

// onSyncDeadline removes members that did not SyncGroup within the
// rebalance timeout after the join phase, and rebalances without them.
func (c *Coordinator) onSyncDeadline(g *group) {
	if !c.live(g) || g.syncGen != g.generation || len(g.pendingSync) == 0 {
		return
	}
	if g.state != stateCompletingRebalance && g.state != stateStable {
		return
	}
	var gone []string
	for id := range g.pendingSync {
		if m := g.members[id]; m != nil {
			c.removeMember(g, m)
		}
		gone = append(gone, id)
	}
	c.prepareRebalance(g, "members did not sync in time: "+joinIDs(gone))
}

// onMemberExpiry handles a member's deadline: the session timeout, or for a
// member that never completed a join, newMemberJoinTimeout.
func (c *Coordinator) onMemberExpiry(g *group, m *member) {
	if !c.live(g) || g.members[m.id] != m {
		return
	}
	if !m.isNew && (m.join != nil || m.sync != nil) {
		// Members parked in JoinGroup or SyncGroup cannot heartbeat; their
		// parked request counts as one.
		c.arm(m.expiry, m.sessionTimeout)
		return
	}
	c.logger(g).Info("member session expired", "member", m.id)
	c.removeMemberAndUpdate(g, m, "session timeout of "+m.id)
	c.gc(g)
}

// onPendingExpiry forgets a MEMBER_ID_REQUIRED id that was not used in time.
func (c *Coordinator) onPendingExpiry(g *group, id string) {
	if !c.live(g) {
		return
	}
	c.removePending(g, id)
	c.gc(g)
}

func (c *Coordinator) removePending(g *group, id string) {
	t, ok := g.pending[id]
	if !ok {
		return
	}
	c.disarm(t)
	delete(g.pending, id)
	c.tryCompleteJoin(g)
}

func joinIDs(ids []string) string {
	slices.Sort(ids)
	return strings.Join(ids, ", ")
}
