package group

import (
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
)

// Group membership is persisted so that a coordinator that dies or moves
// does not turn the members of its groups into zombies. Without it, a new
// coordinator knows nothing of a group: its members learn that only at
// their next heartbeat (UNKNOWN_MEMBER_ID), while a member that joined in
// the meantime is handed every partition, so two members consume the same
// partitions and the old owner's records are processed twice. With it, the
// new coordinator resumes the group where the old one left it: members keep
// their ids, generation (or epoch) and assignment, heartbeat on as if
// nothing happened, and a rebalance runs only if one was due.
//
// What is written, like Kafka's group metadata records:
//
//   - A classic group when it becomes Stable: the leader's assignment is
//     written before any member receives it (Kafka's storeGroup), so a
//     generation's assignment is never handed out unless it survives a
//     coordinator failure. A write that fails answers every SyncGroup of the
//     generation with the error and the group rebalances.
//   - A classic group when it becomes Empty (its generation and protocol
//     type stay), and when a static member is replaced in a Stable group.
//     A rebalance in progress is not written: after a failover the group
//     resumes its last Stable generation and members that had rejoined
//     rejoin again.
//   - A KIP-848 group on every change of its epoch, target assignment or a
//     member's epoch or assignment. A heartbeat that changed the group is
//     answered only once the change is written, so a member is never told
//     an epoch or partition a new coordinator would not know.
//   - A deleted group as a tombstone.
//
// Writes are made by one writer goroutine (see writeLoop) that batches the
// states of every group changed since its last round into one StateStore
// call; a group changed several times meanwhile is written once, in its
// latest state. The loop never waits for it: handlers that need a change
// durable register a callback (mark) that the loop runs once the write is
// done. Load installs the stored groups of newly owned slots; the broker
// calls it before it starts answering for them.

// StateStore persists group state. An OffsetStore that also implements it
// turns persistence on (New); without it membership is held in memory only.
type StateStore interface {
	// SaveGroups writes states in one atomic write: Data replaces the stored
	// state, nil Data deletes it. It reports, per state, whether it was
	// refused because this broker no longer coordinates the group (those are
	// not written); an error means nothing was written. The broker fences
	// writes like offset commits, by the coordinator slot's leader epoch.
	SaveGroups(ctx context.Context, states []GroupState) (refused []bool, err error)
}

// GroupState is the stored form of one group: Data is an opaque encoding
// that only this package reads (JSON, so an operator can read it). JSON
// holds text: an id that is not valid UTF-8 (Kafka's client.id may be any
// bytes, and member ids start with it) comes back changed, and that member
// rejoins after a failover.
type GroupState struct {
	Cluster, Group string
	Data           []byte
}

// Load installs stored groups. It drops every in-memory group for which
// match returns true (as Forget does), then reads states with read and
// installs those that match; the broker calls it when it gains coordinator
// slots, before it answers for them. Members of loaded groups get a full
// session timeout from now to send their next heartbeat. States that do not
// decode are logged and skipped: their members rejoin. Load waits for a
// write in flight to finish first, so a state written before the slot was
// lost is read back rather than lost.
func (c *Coordinator) Load(ctx context.Context, match func(cluster, group string) bool, read func(context.Context) ([]GroupState, error)) error {
	c.writeMu.Lock()
	defer c.writeMu.Unlock()
	if err := c.do(ctx, func() { c.forget(match) }); err != nil {
		return err
	}
	states, err := read(ctx)
	if err != nil {
		return err
	}
	return c.do(ctx, func() {
		n := 0
		for _, st := range states {
			if !match(st.Cluster, st.Group) || len(st.Data) == 0 {
				continue
			}
			if err := c.install(st); err != nil {
				c.log.Warn("skipping undecodable group state; its members will rejoin", "cluster", st.Cluster, "group", st.Group, "err", err)
				continue
			}
			n++
		}
		if n > 0 {
			c.log.Info("loaded groups", "groups", n)
		}
	})
}

// stored is the persisted form of a group.
type stored struct {
	Generation   int32           `json:"generation"`
	ProtocolType string          `json:"protocol_type,omitempty"`
	Protocol     string          `json:"protocol,omitempty"`
	Leader       string          `json:"leader,omitempty"`
	Members      []storedMember  `json:"members,omitempty"`
	Consumer     *storedConsumer `json:"consumer,omitempty"` // KIP-848 groups
}

type storedMember struct {
	ID               string           `json:"id"`
	InstanceID       *string          `json:"instance_id,omitempty"`
	ClientID         string           `json:"client_id"`
	ClientHost       string           `json:"client_host"`
	RebalanceTimeout int64            `json:"rebalance_timeout_ms"`
	SessionTimeout   int64            `json:"session_timeout_ms"`
	ProtocolType     string           `json:"protocol_type"`
	Protocols        []storedProtocol `json:"protocols"`
	Assignment       []byte           `json:"assignment"`
}

type storedProtocol struct {
	Name     string `json:"name"`
	Metadata []byte `json:"metadata"`
}

type storedConsumer struct {
	Epoch       int32                    `json:"epoch"`
	TargetEpoch int32                    `json:"target_epoch"`
	Assignor    string                   `json:"assignor,omitempty"`
	Members     []storedCMember          `json:"members,omitempty"`
	Target      map[string][]storedTopic `json:"target,omitempty"` // member id → partitions
	Topics      []storedTopicInfo        `json:"topics,omitempty"`
}

type storedCMember struct {
	ID               string         `json:"id"`
	InstanceID       *string        `json:"instance_id,omitempty"`
	RackID           *string        `json:"rack_id,omitempty"`
	ClientID         string         `json:"client_id"`
	ClientHost       string         `json:"client_host"`
	Subscribed       []string       `json:"subscribed"` // by name
	Regex            string         `json:"regex,omitempty"`
	Matched          []string       `json:"matched,omitempty"` // by Regex, at its last resolution
	Assignor         string         `json:"assignor,omitempty"`
	RebalanceTimeout int64          `json:"rebalance_timeout_ms"`
	Epoch            int32          `json:"epoch"`
	PrevEpoch        int32          `json:"prev_epoch"`
	Assigned         []storedTopic  `json:"assigned,omitempty"`
	Revoking         []storedTopic  `json:"revoking,omitempty"`
	Classic          *storedClassic `json:"classic,omitempty"` // a member using the classic protocol
}

type storedClassic struct {
	SessionTimeout int64            `json:"session_timeout_ms"`
	Protocols      []storedProtocol `json:"protocols"`
}

type storedTopic struct {
	ID         string  `json:"id"` // hex topic id
	Partitions []int32 `json:"partitions"`
}

type storedTopicInfo struct {
	Name       string `json:"name"`
	ID         string `json:"id"`
	Partitions int32  `json:"partitions"`
}

// snapshot encodes g's persistent state, run on the loop. It reports false
// when there is nothing to write: a classic group in the middle of a
// rebalance keeps its last written generation.
func (c *Coordinator) snapshot(g *group) ([]byte, bool) {
	s := stored{Generation: g.generation, ProtocolType: g.protocolType}
	switch {
	case g.cg != nil:
		s.Consumer = snapshotConsumer(g.cg)
	case g.state == stateEmpty:
		// The generation and protocol type are all an Empty group keeps.
	case g.state == stateStable, g.state == stateCompletingRebalance && g.proposal != nil:
		s.Protocol, s.Leader = g.protocol, g.leader
		for _, m := range g.members {
			a := m.assignment
			if g.state == stateCompletingRebalance {
				a = g.proposal[m.id]
			}
			sm := storedMember{
				ID: m.id, InstanceID: m.instanceID, ClientID: m.clientID, ClientHost: m.clientHost,
				RebalanceTimeout: m.rebalanceTimeout.Milliseconds(), SessionTimeout: m.sessionTimeout.Milliseconds(),
				ProtocolType: m.protocolType, Assignment: a,
			}
			// Every protocol, not only the selected one as Kafka keeps: a
			// member that rejoins with unchanged metadata then does not
			// start a rebalance.
			sm.Protocols = storeProtocols(m.protocols)
			s.Members = append(s.Members, sm)
		}
		slices.SortFunc(s.Members, func(a, b storedMember) int { return strings.Compare(a.ID, b.ID) })
	default:
		return nil, false
	}
	b, err := json.Marshal(s)
	if err != nil {
		// Only plain values are marshalled; this cannot happen.
		panic(fmt.Sprintf("group: encoding state: %v", err))
	}
	return b, true
}

func snapshotConsumer(cg *consumerGroup) *storedConsumer {
	s := &storedConsumer{Epoch: cg.epoch, TargetEpoch: cg.targetEpoch, Assignor: cg.assignor}
	for _, m := range cg.members {
		sm := storedCMember{
			ID: m.id, InstanceID: m.instanceID, RackID: m.rackID, ClientID: m.clientID, ClientHost: m.clientHost,
			Subscribed: m.names, Regex: m.regex, Matched: m.matched,
			Assignor: m.assignor, RebalanceTimeout: m.rebalance.Milliseconds(),
			Epoch: m.epoch, PrevEpoch: m.prevEpoch,
			Assigned: storeSet(m.assigned), Revoking: storeSet(m.revoking),
		}
		if m.classic != nil {
			sm.Classic = &storedClassic{SessionTimeout: m.classic.sessionTimeout.Milliseconds(), Protocols: storeProtocols(m.classic.protocols)}
		}
		s.Members = append(s.Members, sm)
	}
	slices.SortFunc(s.Members, func(a, b storedCMember) int { return strings.Compare(a.ID, b.ID) })
	if len(cg.target) > 0 {
		s.Target = make(map[string][]storedTopic, len(cg.target))
		for id, set := range cg.target {
			s.Target[id] = storeSet(set)
		}
	}
	for _, ti := range cg.topics {
		s.Topics = append(s.Topics, storedTopicInfo{Name: ti.Name, ID: hex.EncodeToString(ti.ID[:]), Partitions: ti.Partitions})
	}
	slices.SortFunc(s.Topics, func(a, b storedTopicInfo) int { return strings.Compare(a.Name, b.Name) })
	return s
}

func storeProtocols(ps []protocol) []storedProtocol {
	out := make([]storedProtocol, 0, len(ps))
	for _, p := range ps {
		out = append(out, storedProtocol{Name: p.name, Metadata: p.metadata})
	}
	return out
}

func loadProtocols(ps []storedProtocol) []protocol {
	out := make([]protocol, 0, len(ps))
	for _, p := range ps {
		out = append(out, protocol{name: p.Name, metadata: p.Metadata})
	}
	return out
}

func storeSet(set tpSet) []storedTopic {
	by := map[[16]byte][]int32{}
	for k := range set {
		by[k.topic] = append(by[k.topic], k.partition)
	}
	out := make([]storedTopic, 0, len(by))
	for id, ps := range by {
		slices.Sort(ps)
		out = append(out, storedTopic{ID: hex.EncodeToString(id[:]), Partitions: ps})
	}
	slices.SortFunc(out, func(a, b storedTopic) int { return strings.Compare(a.ID, b.ID) })
	return out
}

func loadSet(ts []storedTopic) (tpSet, error) {
	out := tpSet{}
	for _, t := range ts {
		id, err := topicID(t.ID)
		if err != nil {
			return nil, err
		}
		for _, p := range t.Partitions {
			out[tp{id, p}] = struct{}{}
		}
	}
	return out, nil
}

func topicID(s string) ([16]byte, error) {
	var id [16]byte
	b, err := hex.DecodeString(s)
	if err != nil || len(b) != 16 {
		return id, fmt.Errorf("bad topic id %q", s)
	}
	copy(id[:], b)
	return id, nil
}

// install builds a group from its stored state, on the loop, replacing any
// in-memory group of the same key.
func (c *Coordinator) install(st GroupState) error {
	var s stored
	if err := json.Unmarshal(st.Data, &s); err != nil {
		return err
	}
	var cg *consumerGroup
	if s.Consumer != nil {
		var err error
		if cg, err = decodeConsumer(s.Consumer); err != nil {
			return err
		}
	}
	k := key{st.Cluster, st.Group}
	if old := c.get(k); old != nil {
		c.unload(old, kerr.NotCoordinator.Code)
	}
	g := c.newGroup(k)
	g.generation, g.protocolType = s.Generation, s.ProtocolType
	if cg != nil {
		g.cg = cg
		for _, m := range cg.members {
			if m.classic != nil {
				c.armClassic(g, m)
			} else {
				c.armConsumer(g, m)
			}
			if len(m.revoking) > 0 {
				c.arm(m.revoke, max(m.rebalance, time.Second))
			}
		}
		return nil
	}
	if len(s.Members) == 0 {
		return nil // Empty
	}
	g.state, g.protocol = stateStable, s.Protocol
	for _, sm := range s.Members {
		m := &member{
			id: sm.ID, instanceID: sm.InstanceID, clientID: sm.ClientID, clientHost: sm.ClientHost,
			rebalanceTimeout: time.Duration(sm.RebalanceTimeout) * time.Millisecond,
			sessionTimeout:   time.Duration(sm.SessionTimeout) * time.Millisecond,
			protocolType:     sm.ProtocolType,
			assignment:       sm.Assignment,
		}
		m.protocols = loadProtocols(sm.Protocols)
		m.expiry = newTimer(func() { c.onMemberExpiry(g, m) })
		g.add(m)
		c.arm(m.expiry, m.sessionTimeout)
	}
	g.leader = s.Leader
	if g.members[g.leader] == nil {
		return errors.New("leader is not a member")
	}
	return nil
}

func decodeConsumer(s *storedConsumer) (*consumerGroup, error) {
	cg := newConsumerGroup()
	cg.epoch, cg.targetEpoch, cg.assignor = s.Epoch, s.TargetEpoch, s.Assignor
	for _, ti := range s.Topics {
		id, err := topicID(ti.ID)
		if err != nil {
			return nil, err
		}
		cg.topics[ti.Name] = TopicInfo{ID: id, Name: ti.Name, Partitions: ti.Partitions}
		cg.names[id] = ti.Name
	}
	for id, ts := range s.Target {
		set, err := loadSet(ts)
		if err != nil {
			return nil, err
		}
		cg.target[id] = set
	}
	for _, sm := range s.Members {
		assigned, err := loadSet(sm.Assigned)
		if err != nil {
			return nil, err
		}
		revoking, err := loadSet(sm.Revoking)
		if err != nil {
			return nil, err
		}
		m := &cmember{
			id: sm.ID, instanceID: sm.InstanceID, rackID: sm.RackID, clientID: sm.ClientID, clientHost: sm.ClientHost,
			names: sm.Subscribed, regex: sm.Regex, matched: sm.Matched, assignor: sm.Assignor,
			rebalance: time.Duration(sm.RebalanceTimeout) * time.Millisecond,
			epoch:     sm.Epoch, prevEpoch: sm.PrevEpoch,
			assigned: assigned, revoking: revoking,
		}
		m.updateSubscribed()
		if sm.Classic != nil {
			m.classic = &classicMember{
				sessionTimeout: time.Duration(sm.Classic.SessionTimeout) * time.Millisecond,
				protocols:      loadProtocols(sm.Classic.Protocols),
			}
		}
		cg.members[m.id] = m
		if m.instanceID != nil {
			cg.static[*m.instanceID] = m.id
		}
	}
	return cg, nil
}

// armConsumer creates a loaded KIP-848 member's timers and starts its
// session.
func (c *Coordinator) armConsumer(g *group, m *cmember) {
	m.expiry = newTimer(func() { c.onConsumerExpiry(g, m, "session timeout") })
	m.revoke = newTimer(func() { c.onConsumerExpiry(g, m, "revocation timeout") })
	c.arm(m.expiry, c.cfg.ConsumerSessionTimeout)
}

// saveWaiter is a callback of mark, run on the loop once the group's state
// as of seq is written (code 0) or failed to be.
type saveWaiter struct {
	seq  int64
	done func(code int16)
}

// mark records on the loop that g's persistent state changed, and queues
// it for the writer. done, if not nil, runs on the loop once the change is
// written (code 0) or could not be (NOT_COORDINATOR,
// COORDINATOR_NOT_AVAILABLE); without a StateStore it runs at once.
func (c *Coordinator) mark(g *group, done func(code int16)) {
	if c.states == nil {
		if done != nil {
			done(0)
		}
		return
	}
	g.seq++
	if done != nil {
		g.waiters = append(g.waiters, saveWaiter{g.seq, done})
	}
	c.dirty[g] = struct{}{}
	select {
	case c.wake <- struct{}{}:
	default:
	}
}

// markDeleted queues a tombstone for g, which DeleteGroups dropped.
func (c *Coordinator) markDeleted(g *group) {
	g.deleted = true
	c.mark(g, nil)
}

// pendingSave is one group of a writer round.
type pendingSave struct {
	g   *group
	seq int64
	st  GroupState
}

// writeLoop is the writer goroutine: each round it takes every group
// changed since the last round and writes their states in one call. It
// stops when the coordinator closes, after one last round so that changes
// made before Close are not lost.
func (c *Coordinator) writeLoop() {
	defer close(c.writerDone)
	backoff := time.Duration(0)
	for {
		select {
		case <-c.wake:
		case <-c.closing:
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			c.writeRound(ctx)
			cancel()
			return
		}
		if backoff > 0 {
			select {
			case <-time.After(backoff):
			case <-c.closing:
				continue
			}
		}
		// A round is bounded so that a hung store cannot hold writeMu, and
		// with it the broker's metadata loop (Load), for ever.
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		ok := c.writeRound(ctx)
		cancel()
		if ok {
			backoff = 0
		} else {
			backoff = min(max(2*backoff, 50*time.Millisecond), 2*time.Second)
			select { // retry the groups that were put back
			case c.wake <- struct{}{}:
			default:
			}
		}
	}
}

// writeRound writes the states of the dirty groups; it reports false if
// the store failed (the groups are dirty again and are retried).
func (c *Coordinator) writeRound(ctx context.Context) bool {
	c.writeMu.Lock()
	defer c.writeMu.Unlock()
	var batch []pendingSave
	if err := c.do(ctx, func() {
		// Live groups first: a group deleted and created again since the
		// last round is written in its new state, and its tombstone only
		// if that state is not written.
		written := map[key]bool{}
		var deleted []*group
		for g := range c.dirty {
			delete(c.dirty, g)
			if g.deleted {
				deleted = append(deleted, g)
				continue
			}
			if g.unloaded || !c.live(g) {
				// Forgotten (unload answered its waiters) or dropped:
				// nothing to write, and nobody may wait for it for ever.
				c.failWaiters(g, kerr.CoordinatorNotAvailable.Code)
				continue
			}
			data, ok := c.snapshot(g)
			if !ok {
				c.saved(g, g.seq, 0) // superseded by a rebalance
				continue
			}
			written[g.key] = true
			batch = append(batch, pendingSave{g: g, seq: g.seq, st: GroupState{Cluster: g.cluster, Group: g.group, Data: data}})
		}
		for _, g := range deleted {
			if written[g.key] {
				c.saved(g, g.seq, 0)
				continue
			}
			written[g.key] = true
			batch = append(batch, pendingSave{g: g, seq: g.seq, st: GroupState{Cluster: g.cluster, Group: g.group}})
		}
	}); err != nil {
		return true
	}
	if len(batch) == 0 {
		return true
	}
	states := make([]GroupState, len(batch))
	for i, p := range batch {
		states[i] = p.st
	}
	start := time.Now()
	refused, err := c.states.SaveGroups(ctx, states)
	if err != nil {
		c.log.Error("writing group state", "groups", len(batch), "err", err)
	} else {
		c.log.Debug("wrote group state", "groups", len(batch), "took", time.Since(start))
	}
	_ = c.do(context.WithoutCancel(ctx), func() {
		for i, p := range batch {
			switch {
			case err != nil:
				c.saved(p.g, p.seq, kerr.CoordinatorNotAvailable.Code)
				if !p.g.unloaded && (p.g.deleted || c.live(p.g)) {
					c.dirty[p.g] = struct{}{} // retried
				}
			case refused[i]:
				c.saved(p.g, p.seq, kerr.NotCoordinator.Code)
			default:
				c.saved(p.g, p.seq, 0)
			}
		}
	})
	return err == nil
}

// saved answers g's waiters up to seq with code, on the loop.
func (c *Coordinator) saved(g *group, seq int64, code int16) {
	n := 0
	for _, w := range g.waiters {
		if w.seq <= seq {
			w.done(code)
			continue
		}
		g.waiters[n] = w
		n++
	}
	clear(g.waiters[n:])
	g.waiters = g.waiters[:n]
}

// failWaiters answers every waiter of g with code; unload calls it.
func (c *Coordinator) failWaiters(g *group, code int16) {
	ws := g.waiters
	g.waiters = nil
	for _, w := range ws {
		w.done(code)
	}
}

// forget drops the groups for which match returns true, on the loop.
func (c *Coordinator) forget(match func(cluster, group string) bool) {
	for cluster, groups := range c.clusters {
		for id, g := range groups {
			if match(cluster, id) {
				c.unload(g, kerr.NotCoordinator.Code)
			}
		}
	}
}

// awaitSaved waits for a mark callback's code, or for ctx.
func awaitSaved(ctx context.Context, ch <-chan int16) int16 {
	select {
	case code := <-ch:
		return code
	case <-ctx.Done():
		return kerr.CoordinatorNotAvailable.Code
	}
}
