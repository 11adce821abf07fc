package share

import (
	"context"
	"slices"
	"sort"
	"sync"
	"time"

	"github.com/google/uuid"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// ShareGroupHeartbeat (76) and ShareGroupDescribe (77), versions 0-1, on
// the group's coordinator. A member joins with epoch 0 (with the member id
// it generated, or none: then the coordinator makes one), heartbeats with
// the epoch it was given and leaves with -1. Every change of membership,
// subscriptions or the subscribed topics' partitions bumps the group epoch
// and recomputes the assignment (assign); a share group needs no
// revocation phase, since a partition may be read by several members at
// once, so every member gets its new assignment with its next heartbeat.

// Topic describes a topic of the request's virtual cluster.
type Topic struct {
	ID         [16]byte
	Name       string
	Partitions int32
}

// TopicLookup resolves a subscribed topic name; it must be quick and must
// not call Groups. Topics it does not know are not assigned.
type TopicLookup func(name string) (Topic, bool)

// Client is the connection a heartbeat came on, shown by describe.
type Client struct{ ID, Host string }

type gkey struct{ cluster, group string }

type member struct {
	id, clientID, host string
	rack               *string
	epoch, prev        int32    // the epoch it was last told, and the one before
	subscribed         []string // sorted
	assigned           map[[16]byte][]int32
	last               time.Time // last heartbeat
}

type sgroup struct {
	epoch   int32
	members map[string]*member
	topics  map[string]Topic // what the last assignment saw
}

// Groups is the share-group coordinator half: membership and assignment.
// Create it with NewGroups and run Run until the broker stops.
type Groups struct {
	cfg Config

	mu     sync.Mutex
	groups map[gkey]*sgroup
	counts map[string]int // groups per cluster, bounded by Config.MaxGroups
}

// NewGroups returns an empty coordinator half; cfg must Validate.
func NewGroups(cfg Config) *Groups {
	return &Groups{cfg: cfg, groups: make(map[gkey]*sgroup), counts: make(map[string]int)}
}

// Run removes members whose session timed out until ctx ends.
func (g *Groups) Run(ctx context.Context) {
	every(ctx, max(g.cfg.HeartbeatInterval/2, 50*time.Millisecond), g.expire)
}

// every calls fn with the time every d until ctx ends.
func every(ctx context.Context, d time.Duration, fn func(time.Time)) {
	t := time.NewTicker(d)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case now := <-t.C:
			fn(now)
		}
	}
}

func (g *Groups) expire(now time.Time) {
	g.mu.Lock()
	defer g.mu.Unlock()
	for k, sg := range g.groups {
		changed := false
		for id, m := range sg.members {
			if now.Sub(m.last) > g.cfg.SessionTimeout {
				delete(sg.members, id)
				changed = true
			}
		}
		if changed {
			sg.reassign(nil)
		}
		if len(sg.members) == 0 && changed {
			// An empty share group is forgotten: only the partitions'
			// state (its offsets) outlives it, as Kafka keeps it.
			g.remove(k)
		}
	}
}

// remove forgets a group; g.mu is held.
func (g *Groups) remove(k gkey) {
	if _, ok := g.groups[k]; !ok {
		return
	}
	delete(g.groups, k)
	if g.counts[k.cluster]--; g.counts[k.cluster] <= 0 {
		delete(g.counts, k.cluster)
	}
}

// Forget drops the groups for which match is true: the broker lost their
// coordinator slot. Their members get UNKNOWN_MEMBER_ID from the next
// coordinator and rejoin.
func (g *Groups) Forget(match func(cluster, group string) bool) {
	g.mu.Lock()
	defer g.mu.Unlock()
	for k := range g.groups {
		if match(k.cluster, k.group) {
			g.remove(k)
		}
	}
}

// Heartbeat handles ShareGroupHeartbeat for cluster.
func (g *Groups) Heartbeat(cluster string, cl Client, req *kmsg.ShareGroupHeartbeatRequest, lookup TopicLookup) *kmsg.ShareGroupHeartbeatResponse {
	resp := req.ResponseKind().(*kmsg.ShareGroupHeartbeatResponse)
	fail := func(err *kerr.Error, msg string) *kmsg.ShareGroupHeartbeatResponse {
		resp.ErrorCode = err.Code
		if msg != "" {
			resp.ErrorMessage = &msg
		}
		return resp
	}
	switch {
	case req.GroupID == "":
		return fail(kerr.InvalidGroupID, "")
	case req.MemberEpoch < -1:
		return fail(kerr.InvalidRequest, "member epoch below -1")
	case req.MemberEpoch == 0 && req.SubscribedTopicNames == nil:
		return fail(kerr.InvalidRequest, "SubscribedTopicNames must be set when joining")
	case req.MemberEpoch != 0 && req.MemberID == "":
		return fail(kerr.UnknownMemberID, "")
	case len(req.MemberID) > 36:
		return fail(kerr.InvalidRequest, "member id longer than 36 characters")
	}
	now := time.Now()
	g.mu.Lock()
	defer g.mu.Unlock()
	k := gkey{cluster, req.GroupID}
	sg := g.groups[k]
	var m *member
	if sg != nil {
		m = sg.members[req.MemberID]
	}
	switch {
	case req.MemberEpoch == -1:
		resp.MemberID, resp.MemberEpoch = &req.MemberID, -1
		if m != nil {
			delete(sg.members, m.id)
			if len(sg.members) == 0 {
				g.remove(k)
			} else {
				sg.reassign(lookup)
			}
		}
		return resp
	case req.MemberEpoch == 0 && m == nil:
		if sg == nil {
			if g.counts[cluster] >= g.cfg.MaxGroups {
				return fail(kerr.GroupMaxSizeReached, "the cluster has reached its maximum number of share groups")
			}
			sg = &sgroup{members: make(map[string]*member), topics: make(map[string]Topic)}
			g.groups[k] = sg
			g.counts[cluster]++
		}
		// A group just created has no member and MaxMembers is at least 1
		// (Validate), so a refusal never leaves an empty group behind.
		if len(sg.members) >= g.cfg.MaxMembers {
			return fail(kerr.GroupMaxSizeReached, "")
		}
		id := req.MemberID
		if id == "" {
			id = uuid.NewString()
		}
		m = &member{id: id}
		sg.members[id] = m
	case m == nil:
		return fail(kerr.UnknownMemberID, "")
	case req.MemberEpoch != 0 && req.MemberEpoch != m.epoch && req.MemberEpoch != m.prev:
		// The previous epoch is accepted: its response may have been lost.
		return fail(kerr.FencedMemberEpoch, "")
	}
	m.last, m.clientID, m.host = now, cl.ID, cl.Host
	if req.RackID != nil {
		r := *req.RackID
		m.rack = &r
	}
	changed := m.epoch == 0
	if req.SubscribedTopicNames != nil {
		subs := slices.Clone(req.SubscribedTopicNames)
		sort.Strings(subs)
		subs = slices.Compact(subs)
		if !slices.Equal(subs, m.subscribed) {
			m.subscribed, changed = subs, true
		}
	}
	if changed || sg.topicsChanged(lookup) {
		sg.reassign(lookup)
	}
	if m.epoch != sg.epoch {
		m.prev, m.epoch = m.epoch, sg.epoch
	}
	resp.MemberID, resp.MemberEpoch = &m.id, m.epoch
	resp.HeartbeatIntervalMillis = int32(g.cfg.HeartbeatInterval.Milliseconds())
	if req.MemberEpoch != m.epoch {
		a := kmsg.NewShareGroupHeartbeatResponseAssignment()
		for _, id := range sortedIDs(m.assigned) {
			tp := kmsg.NewShareGroupHeartbeatResponseAssignmentTopicPartition()
			tp.TopicID, tp.Partitions = id, m.assigned[id]
			a.TopicPartitions = append(a.TopicPartitions, tp)
		}
		resp.Assignment = &a
	}
	return resp
}

// topicsChanged reports whether a subscribed topic appeared, went or grew
// since the last assignment.
func (sg *sgroup) topicsChanged(lookup TopicLookup) bool {
	seen := 0
	for _, name := range sg.subscribed() {
		t, ok := lookup(name)
		old, had := sg.topics[name]
		if ok != had || t != old {
			return true
		}
		if ok {
			seen++
		}
	}
	return seen != len(sg.topics)
}

func (sg *sgroup) subscribed() []string {
	var all []string
	for _, m := range sg.members {
		all = append(all, m.subscribed...)
	}
	sort.Strings(all)
	return slices.Compact(all)
}

// reassign bumps the group epoch and gives every member its share of the
// subscribed partitions; lookup nil keeps the topics last seen.
func (sg *sgroup) reassign(lookup TopicLookup) {
	if lookup != nil {
		sg.topics = make(map[string]Topic)
		for _, name := range sg.subscribed() {
			if t, ok := lookup(name); ok {
				sg.topics[name] = t
			}
		}
	}
	sg.epoch++
	ids := make([]string, 0, len(sg.members))
	for id := range sg.members {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	subs := make([][]string, len(ids))
	for i, id := range ids {
		subs[i] = sg.members[id].subscribed
	}
	for i, a := range assign(subs, sg.topics) {
		sg.members[ids[i]].assigned = a
	}
}

func sortedIDs(m map[[16]byte][]int32) [][16]byte {
	ids := make([][16]byte, 0, len(m))
	for id := range m {
		ids = append(ids, id)
	}
	slices.SortFunc(ids, func(a, b [16]byte) int { return slices.Compare(a[:], b[:]) })
	return ids
}

// Describe handles ShareGroupDescribe for the groups of cluster that the
// broker authorized and coordinates.
func (g *Groups) Describe(cluster string, groups []string, names func(id [16]byte) string) []kmsg.ShareGroupDescribeResponseGroup {
	g.mu.Lock()
	defer g.mu.Unlock()
	var out []kmsg.ShareGroupDescribeResponseGroup
	for _, id := range groups {
		rg := kmsg.NewShareGroupDescribeResponseGroup()
		rg.GroupID, rg.Assignor = id, "simple"
		rg.AuthorizedOperations = -2147483648
		sg := g.groups[gkey{cluster, id}]
		if sg == nil {
			rg.ErrorCode = kerr.GroupIDNotFound.Code
			out = append(out, rg)
			continue
		}
		rg.GroupState, rg.GroupEpoch, rg.AssignmentEpoch = "Stable", sg.epoch, sg.epoch
		mids := make([]string, 0, len(sg.members))
		for mid := range sg.members {
			mids = append(mids, mid)
		}
		sort.Strings(mids)
		for _, mid := range mids {
			m := sg.members[mid]
			rm := kmsg.NewShareGroupDescribeResponseGroupMember()
			rm.MemberID, rm.RackID, rm.MemberEpoch = m.id, m.rack, m.epoch
			rm.ClientID, rm.ClientHost = m.clientID, m.host
			rm.SubscribedTopicNames = m.subscribed
			for _, tid := range sortedIDs(m.assigned) {
				tp := kmsg.NewShareGroupDescribeResponseGroupMemberAssignmentTopicPartition()
				tp.TopicID, tp.Topic, tp.Partitions = tid, names(tid), m.assigned[tid]
				rm.Assignment.TopicPartitions = append(rm.Assignment.TopicPartitions, tp)
			}
			rg.Members = append(rg.Members, rm)
		}
		out = append(out, rg)
	}
	return out
}

// Listed is a share group as ListGroups shows it.
type Listed struct {
	Group, State string
}

// List returns the share groups of cluster this coordinator holds.
func (g *Groups) List(cluster string) []Listed {
	g.mu.Lock()
	defer g.mu.Unlock()
	var out []Listed
	for k := range g.groups {
		if k.cluster == cluster {
			out = append(out, Listed{Group: k.group, State: "Stable"})
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Group < out[j].Group })
	return out
}

// Members reports how many members a share group has (0: unknown here).
func (g *Groups) Members(cluster, group string) int {
	g.mu.Lock()
	defer g.mu.Unlock()
	if sg := g.groups[gkey{cluster, group}]; sg != nil {
		return len(sg.members)
	}
	return 0
}
