package group

import (
	"context"
	"slices"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// subscription is a classic consumer's JoinGroup metadata for topic t.
func subscription(owned []int32) string {
	meta := kmsg.NewConsumerMemberMetadata()
	meta.Version, meta.Topics = 1, []string{"t"}
	if len(owned) > 0 {
		op := kmsg.NewConsumerMemberMetadataOwnedPartition()
		op.Topic, op.Partitions = "t", owned
		meta.OwnedPartitions = []kmsg.ConsumerMemberMetadataOwnedPartition{op}
	}
	return string(meta.AppendTo(nil))
}

func assignmentOf(ps ...int32) []byte {
	a := kmsg.NewConsumerMemberAssignment()
	at := kmsg.NewConsumerMemberAssignmentTopic()
	at.Topic, at.Partitions = "t", ps
	a.Topics = []kmsg.ConsumerMemberAssignmentTopic{at}
	return a.AppendTo(nil)
}

// ownedOf decodes a classic member's SyncGroup assignment.
func ownedOf(t *testing.T, assignment string) []int32 {
	t.Helper()
	var a kmsg.ConsumerMemberAssignment
	if err := a.ReadFrom([]byte(assignment)); err != nil {
		t.Fatalf("assignment: %v", err)
	}
	var out []int32
	for _, at := range a.Topics {
		out = append(out, at.Partitions...)
	}
	slices.Sort(out)
	return out
}

// TestMigrationUpgradeAndDowngrade: a KIP-848 member joins a Stable classic
// group of two cooperative members, which becomes a consumer group with
// the classic members owning what they owned. The classic members are told
// to rejoin, give up partitions by omission and the group converges to two
// partitions each, never assigning a partition twice; their commits are
// fenced as a classic member's. When the KIP-848 member leaves, the group
// is a classic group again, rebalancing.
func TestMigrationUpgradeAndDowngrade(t *testing.T) {
	bubble(t, scenarioConfig(), func(t *testing.T, c *Coordinator, _ *memStore) { testMigration(t, c) })
}

func testMigration(t *testing.T, c *Coordinator) {
	ctx := WithTopics(testCtx(t), Topics{Lookup: lookupT})
	ms := joinGroup(t, c, "c1", "g", 2, func(_ int, m *consumer) {
		m.protocols = protocols("cooperative-sticky", subscription(nil))
		m.session = 10 * time.Second // no expiry while the test runs
	})
	leader, follower := ms[0], ms[1]
	if !leader.isLeader() {
		leader, follower = follower, leader
	}
	sync := kmsg.NewPtrSyncGroupRequest()
	sync.Group, sync.MemberID, sync.Generation = "g", leader.id, leader.generation
	for id, ps := range map[string][]int32{leader.id: {0, 1, 2}, follower.id: {3, 4, 5}} {
		a := kmsg.NewSyncGroupRequestGroupAssignment()
		a.MemberID, a.MemberAssignment = id, assignmentOf(ps...)
		sync.GroupAssignment = append(sync.GroupAssignment, a)
	}
	if code := c.SyncGroup(ctx, "c1", sync).ErrorCode; code != 0 {
		t.Fatalf("leader sync: %v", codeName(code))
	}
	owned := map[*consumer][]int32{}
	for _, m := range ms {
		wantCode(t, "sync", m.sync(ctx).ErrorCode, 0)
		owned[m] = ownedOf(t, m.assignment)
	}
	gen := leader.generation

	n := &cgMember{id: "n"}
	n.heartbeat(t, ctx, c, "")
	if n.epoch <= gen || len(n.owned) != 0 {
		t.Fatalf("KIP-848 member joined at epoch %d (classic generation %d) owning %v; want a later epoch and nothing yet", n.epoch, gen, n.owned)
	}
	d := kmsg.NewPtrConsumerGroupDescribeRequest()
	d.Groups = []string{"g"}
	dg := c.ConsumerGroupDescribe(ctx, "c1", d).Groups[0]
	var types []int8
	for _, m := range dg.Members {
		types = append(types, m.MemberType)
	}
	slices.Sort(types)
	if dg.ErrorCode != 0 || !slices.Equal(types, []int8{0, 0, 1}) {
		t.Fatalf("described %v members of types %v, want two classic and one consumer", kerr.ErrorForCode(dg.ErrorCode), types)
	}

	check := func() {
		t.Helper()
		seen := map[int32]string{}
		all := map[string][]int32{leader.id: owned[leader], follower.id: owned[follower]}
		for p := range n.owned {
			all["n"] = append(all["n"], p)
		}
		for id, ps := range all {
			for _, p := range ps {
				if o, dup := seen[p]; dup {
					t.Fatalf("partition %d owned by %s and %s", p, o, id)
				}
				seen[p] = id
			}
		}
	}
	// Classic members act as cooperative clients: a heartbeat that says
	// REBALANCE_IN_PROGRESS makes them rejoin reporting what they own;
	// what the SyncGroup leaves out they give up, and rejoin.
	step := func(m *consumer) {
		t.Helper()
		code := m.heartbeat(ctx)
		if code == 0 {
			return
		}
		wantCode(t, "classic heartbeat", code, kerr.RebalanceInProgress.Code)
		for {
			m.protocols = protocols("cooperative-sticky", subscription(owned[m]))
			resp := m.join(ctx)
			wantCode(t, "classic rejoin", resp.ErrorCode, 0)
			if resp.LeaderID == m.id {
				t.Fatalf("a classic member of a consumer group was made leader")
			}
			wantCode(t, "classic sync", m.sync(ctx).ErrorCode, 0)
			now := ownedOf(t, m.assignment)
			lost := len(now) < len(owned[m])
			owned[m] = now
			check()
			if !lost {
				return
			}
		}
	}
	for round := 0; round < 6; round++ {
		step(leader)
		step(follower)
		n.heartbeat(t, ctx, c, "")
		check()
	}
	if len(owned[leader]) != 2 || len(owned[follower]) != 2 || len(n.owned) != 2 {
		t.Fatalf("owned: %v, %v and %v; want two partitions each", owned[leader], owned[follower], n.owned)
	}
	wantCode(t, "classic heartbeat when settled", leader.heartbeat(ctx), 0)
	wantCode(t, "classic commit of an owned partition", leader.commit(ctx, "t", owned[leader][0], 7), 0)
	wantCode(t, "classic commit of another's partition", leader.commit(ctx, "t", owned[follower][0], 7), kerr.IllegalGeneration.Code)

	// The KIP-848 member leaves: only classic members remain.
	req := kmsg.NewPtrConsumerGroupHeartbeatRequest()
	req.Group, req.MemberID, req.MemberEpoch = "g", "n", -1
	wantCode(t, "leave", c.ConsumerGroupHeartbeat(ctx, "c1", req, Topics{Lookup: lookupT}).ErrorCode, 0)
	if g := describe(t, c, "c1", "g"); g.State != "PreparingRebalance" || g.ProtocolType != "consumer" || len(g.Members) != 2 {
		t.Fatalf("after the downgrade: state %s protocol type %s, %d members", g.State, g.ProtocolType, len(g.Members))
	}
	wantCode(t, "describe as consumer group", c.ConsumerGroupDescribe(ctx, "c1", d).Groups[0].ErrorCode, kerr.GroupIDNotFound.Code)
	for _, m := range ms {
		m.protocols = protocols("cooperative-sticky", subscription(owned[m]))
	}
	rejoinAll(t, ms)
}

// TestMigrationPolicy: with the policy "disabled" a KIP-848 member cannot
// join a classic group with members, nor a classic member a consumer group
// with members; "upgrade" converts but never back.
func TestMigrationPolicy(t *testing.T) {
	join848 := func(ctx context.Context, c *Coordinator, id string) int16 {
		req := kmsg.NewPtrConsumerGroupHeartbeatRequest()
		req.Group, req.MemberID, req.RebalanceTimeoutMillis = "g", id, 30000
		req.SubscribedTopicNames, req.Topics = []string{"t"}, []kmsg.ConsumerGroupHeartbeatRequestTopic{}
		return c.ConsumerGroupHeartbeat(ctx, "c1", req, Topics{Lookup: lookupT}).ErrorCode
	}
	configure := func(_ int, m *consumer) { m.protocols = protocols("range", subscription(nil)) }

	cfg := testConfig()
	cfg.ConsumerMigrationPolicy = "disabled"
	c := newTestCoordinator(t, cfg, newMemStore())
	ctx := testCtx(t)
	formGroup(t, c, "c1", "g", 1, configure)
	wantCode(t, "KIP-848 join of a classic group", join848(ctx, c, "n"), kerr.GroupIDNotFound.Code)
	c2 := newTestCoordinator(t, cfg, newMemStore())
	wantCode(t, "KIP-848 join of a new group", join848(ctx, c2, "n"), 0)
	m := newConsumer(c2, "c1", "g", "classic")
	configure(0, m)
	wantCode(t, "classic join of a consumer group", m.join(ctx).ErrorCode, kerr.InconsistentGroupProtocol.Code)

	cfg.ConsumerMigrationPolicy = "upgrade"
	c3 := newTestCoordinator(t, cfg, newMemStore())
	formGroup(t, c3, "c1", "g", 1, configure)
	wantCode(t, "KIP-848 join of a classic group", join848(ctx, c3, "n"), 0)
	req := kmsg.NewPtrConsumerGroupHeartbeatRequest()
	req.Group, req.MemberID, req.MemberEpoch = "g", "n", -1
	wantCode(t, "leave", c3.ConsumerGroupHeartbeat(ctx, "c1", req, Topics{Lookup: lookupT}).ErrorCode, 0)
	d := kmsg.NewPtrConsumerGroupDescribeRequest()
	d.Groups = []string{"g"}
	if g := c3.ConsumerGroupDescribe(ctx, "c1", d).Groups[0]; g.ErrorCode != 0 || len(g.Members) != 1 || g.Members[0].MemberType != 0 {
		t.Fatalf("without downgrades the classic member stays in the consumer group: %v, %d members", kerr.ErrorForCode(g.ErrorCode), len(g.Members))
	}
}

// TestMigratedGroupSurvivesFailover: a consumer group holding a classic
// member (upgraded online) and a member subscribed by regex resumes on a
// new coordinator: the classic member heartbeats at its generation, the
// regex is still the member's, and each keeps its kind.
func TestMigratedGroupSurvivesFailover(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		st := newStateStore()
		cfg := scenarioConfig()
		c := New(cfg, st, nil)
		defer c.Close()
		ctx := testCtx(t)
		f := &fakeTopics{topics: map[string]TopicInfo{"t": topicT}, version: 1}
		cl := formGroup(t, c, "c1", "g", 1, func(_ int, m *consumer) {
			m.protocols = protocols("cooperative-sticky", subscription(nil))
			m.session = 10 * time.Second
		})[0]
		if resp := regexHeartbeat(t, c, f, "n", 0, "t|u"); resp.ErrorCode != 0 || len(resp.Assignment.Topics) != 1 {
			t.Fatalf("regex member join: %v %+v", kerr.ErrorForCode(resp.ErrorCode), resp.Assignment)
		}

		c2 := failover(t, cfg, st)
		cl.c = c2
		// Known at its generation; it is not at its target yet (it owned
		// nothing), so it is asked to rejoin.
		wantCode(t, "classic heartbeat on the new coordinator", cl.heartbeat(ctx), kerr.RebalanceInProgress.Code)
		d := kmsg.NewPtrConsumerGroupDescribeRequest()
		d.Groups = []string{"g"}
		g := c2.ConsumerGroupDescribe(ctx, "c1", d).Groups[0]
		kinds := map[int8]string{}
		for _, m := range g.Members {
			re := ""
			if m.SubscribedTopicRegex != nil {
				re = *m.SubscribedTopicRegex
			}
			kinds[m.MemberType] = m.MemberID + " " + re + " " + strings.Join(m.SubscribedTopics, ",")
		}
		if g.ErrorCode != 0 || kinds[0] != cl.id+"  t" || kinds[1] != "n t|u t" {
			t.Fatalf("after failover: %v %v", kerr.ErrorForCode(g.ErrorCode), kinds)
		}
	})
}
