package group

import (
	"context"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

var topicT = TopicInfo{ID: [16]byte{1}, Name: "t", Partitions: 6}

func lookupT(name string) (TopicInfo, bool) {
	if name == "t" {
		return topicT, true
	}
	return TopicInfo{}, false
}

// cgMember drives one KIP-848 member the way a client does: it reports
// what it owns, and gives up revoked partitions on its next heartbeat.
type cgMember struct {
	id    string
	epoch int32
	owned map[int32]bool
}

func (m *cgMember) heartbeat(t *testing.T, ctx context.Context, c *Coordinator, assignor string) *kmsg.ConsumerGroupHeartbeatResponse {
	t.Helper()
	req := kmsg.NewPtrConsumerGroupHeartbeatRequest()
	req.Group, req.MemberID, req.MemberEpoch = "g", m.id, m.epoch
	req.RebalanceTimeoutMillis = 30000
	req.SubscribedTopicNames = []string{"t"}
	if assignor != "" {
		req.ServerAssignor = &assignor
	}
	req.Topics = []kmsg.ConsumerGroupHeartbeatRequestTopic{}
	if len(m.owned) > 0 {
		rt := kmsg.NewConsumerGroupHeartbeatRequestTopic()
		rt.TopicID = topicT.ID
		for p := range m.owned {
			rt.Partitions = append(rt.Partitions, p)
		}
		req.Topics = append(req.Topics, rt)
	}
	resp := c.ConsumerGroupHeartbeat(ctx, "c1", req, Topics{Lookup: lookupT})
	if resp.ErrorCode != 0 {
		t.Fatalf("member %s heartbeat: %v", m.id, kerr.ErrorForCode(resp.ErrorCode))
	}
	m.epoch = resp.MemberEpoch
	if resp.Assignment != nil {
		m.owned = map[int32]bool{}
		for _, at := range resp.Assignment.Topics {
			for _, p := range at.Partitions {
				m.owned[p] = true
			}
		}
	}
	return resp
}

// TestConsumerGroupReconcile: members join and leave a KIP-848 group; at
// no point do two members own a partition, and the group converges to a
// balanced assignment covering every partition.
func TestConsumerGroupReconcile(t *testing.T) {
	for _, assignor := range []string{"uniform", "range"} {
		t.Run(assignor, func(t *testing.T) {
			c := newTestCoordinator(t, testConfig(), newMemStore())
			ctx := testCtx(t)
			ms := []*cgMember{{id: "a"}, {id: "b"}, {id: "c"}}
			check := func() {
				t.Helper()
				owner := map[int32]string{}
				for _, m := range ms {
					for p := range m.owned {
						if o, dup := owner[p]; dup {
							t.Fatalf("partition %d owned by %s and %s", p, o, m.id)
						}
						owner[p] = m.id
					}
				}
			}
			settle := func(active []*cgMember) {
				t.Helper()
				for round := 0; round < 10; round++ {
					for _, m := range active {
						m.heartbeat(t, ctx, c, assignor)
						check()
					}
				}
				total := 0
				for _, m := range active {
					if n := len(m.owned); n != 6/len(active) {
						t.Fatalf("member %s owns %d partitions, want %d", m.id, n, 6/len(active))
					}
					total += len(m.owned)
				}
				if total != 6 {
					t.Fatalf("%d partitions owned, want 6", total)
				}
			}
			ms[0].heartbeat(t, ctx, c, assignor)
			settle(ms[:1])
			ms[1].heartbeat(t, ctx, c, assignor)
			settle(ms[:2])
			ms[2].heartbeat(t, ctx, c, assignor)
			settle(ms)

			// b leaves: its partitions go to the others at once.
			req := kmsg.NewPtrConsumerGroupHeartbeatRequest()
			req.Group, req.MemberID, req.MemberEpoch = "g", "b", -1
			if resp := c.ConsumerGroupHeartbeat(ctx, "c1", req, Topics{Lookup: lookupT}); resp.ErrorCode != 0 || resp.MemberEpoch != -1 {
				t.Fatalf("leave: %+v", resp)
			}
			ms[1].owned = nil
			ms = []*cgMember{ms[0], ms[2]}
			settle(ms)

			desc := c.ConsumerGroupDescribe(ctx, "c1", &kmsg.ConsumerGroupDescribeRequest{Groups: []string{"g"}})
			if g := desc.Groups[0]; g.ErrorCode != 0 || g.State != "Stable" || len(g.Members) != 2 || g.AssignorName != assignor {
				t.Fatalf("describe: %+v", g)
			}
		})
	}
}

// TestConsumerGroupFencing: stale and future epochs, unknown members and
// commits by epoch.
func TestConsumerGroupFencing(t *testing.T) {
	c := newTestCoordinator(t, testConfig(), newMemStore())
	ctx := testCtx(t)
	a := &cgMember{id: "a"}
	a.heartbeat(t, ctx, c, "")
	hb := func(id string, epoch int32) int16 {
		req := kmsg.NewPtrConsumerGroupHeartbeatRequest()
		req.Group, req.MemberID, req.MemberEpoch = "g", id, epoch
		return c.ConsumerGroupHeartbeat(ctx, "c1", req, Topics{Lookup: lookupT}).ErrorCode
	}
	commitP := func(id string, epoch int32, version int16, partition int32) int16 {
		req := kmsg.NewPtrOffsetCommitRequest()
		req.Version = version
		req.Group, req.MemberID, req.Generation = "g", id, epoch
		rt := kmsg.NewOffsetCommitRequestTopic()
		rt.Topic = "t"
		rp := kmsg.NewOffsetCommitRequestTopicPartition()
		rp.Partition = partition
		rt.Partitions = append(rt.Partitions, rp)
		req.Topics = append(req.Topics, rt)
		return c.OffsetCommit(ctx, "c1", req).Topics[0].Partitions[0].ErrorCode
	}
	commit := func(id string, epoch int32, version int16) int16 { return commitP(id, epoch, version, 0) }
	for _, tc := range []struct {
		name string
		got  int16
		want int16
	}{
		{"future epoch", hb("a", a.epoch+1), kerr.FencedMemberEpoch.Code},
		{"old epoch", hb("a", a.epoch-1), kerr.FencedMemberEpoch.Code},
		{"epoch below -2", hb("a", -3), kerr.InvalidRequest.Code},
		{"unknown member", hb("zz", 3), kerr.UnknownMemberID.Code},
		{"commit current epoch", commit("a", a.epoch, 9), 0},
		{"commit stale epoch v9", commit("a", a.epoch+3, 9), kerr.StaleMemberEpoch.Code},
		{"commit stale epoch v8", commit("a", a.epoch+3, 8), kerr.IllegalGeneration.Code},
		{"commit unknown member", commit("zz", a.epoch, 9), kerr.UnknownMemberID.Code},
		{"commit older epoch, owned partition", commitP("a", a.epoch-1, 9, 5), 0},
		{"commit older epoch, partition not owned", commitP("a", a.epoch-1, 9, 6), kerr.StaleMemberEpoch.Code},
		{"commit current epoch, partition not owned", commitP("a", a.epoch, 9, 6), kerr.StaleMemberEpoch.Code},
		{"simple commit to a group with members", commit("", -1, 9), kerr.UnknownMemberID.Code},
	} {
		if tc.got != tc.want {
			t.Errorf("%s: %v, want %v", tc.name, kerr.ErrorForCode(tc.got), kerr.ErrorForCode(tc.want))
		}
	}
	// A classic JoinGroup whose metadata is no consumer subscription cannot
	// join a consumer group with members (valid ones do: migration_test.go).
	join := kmsg.NewPtrJoinGroupRequest()
	join.Group, join.ProtocolType, join.SessionTimeoutMillis, join.RebalanceTimeoutMillis = "g", "consumer", 10000, 10000
	join.Protocols = protocols("range", "")
	if code := c.JoinGroup(ctx, "c1", join).ErrorCode; code != kerr.InconsistentGroupProtocol.Code {
		t.Fatalf("classic join of a consumer group: %v", kerr.ErrorForCode(code))
	}
}

// TestConsumerGroupSessionExpiry: a member that stops heartbeating is
// removed after the session timeout and its partitions reassigned. It runs
// in a synctest bubble: with a 200ms session in real time, a busy machine
// pausing the test between two heartbeats could expire the live members.
func TestConsumerGroupSessionExpiry(t *testing.T) {
	cfg := testConfig()
	cfg.ConsumerSessionTimeout = 200 * time.Millisecond
	cfg.ConsumerHeartbeatInterval = 50 * time.Millisecond
	bubble(t, cfg, func(t *testing.T, c *Coordinator, _ *memStore) {
		ctx := testCtx(t)
		a, b := &cgMember{id: "a"}, &cgMember{id: "b"}
		for i := 0; i < 3; i++ {
			a.heartbeat(t, ctx, c, "")
			b.heartbeat(t, ctx, c, "")
		}
		if len(a.owned) != 3 || len(b.owned) != 3 {
			t.Fatalf("a owns %d, b %d partitions; want 3 each", len(a.owned), len(b.owned))
		}
		deadline := time.Now().Add(30 * time.Second)
		for len(a.owned) != 6 {
			if time.Now().After(deadline) {
				t.Fatalf("a owns %d partitions after b's session should have expired", len(a.owned))
			}
			time.Sleep(20 * time.Millisecond)
			a.heartbeat(t, ctx, c, "")
		}
		req := kmsg.NewPtrConsumerGroupHeartbeatRequest()
		req.Group, req.MemberID, req.MemberEpoch = "g", "b", b.epoch
		if code := c.ConsumerGroupHeartbeat(ctx, "c1", req, Topics{Lookup: lookupT}).ErrorCode; code != kerr.UnknownMemberID.Code {
			t.Fatalf("expired member heartbeat: %v", kerr.ErrorForCode(code))
		}
	})
}

// TestExpireOffsets: offsets of a group with members are kept; of an
// empty group expired.
func TestExpireOffsets(t *testing.T) {
	store := newMemStore()
	c := newTestCoordinator(t, testConfig(), store)
	ctx := testCtx(t)
	if err := store.CommitOffsets(ctx, "c1", "g", []Offset{{Topic: "t", Offset: 5}}); err != nil {
		t.Fatal(err)
	}
	a := &cgMember{id: "a"}
	a.heartbeat(t, ctx, c, "")
	if expired, err := c.ExpireOffsets(ctx, "c1", "g"); err != nil || expired {
		t.Fatalf("active group: expired %v, %v", expired, err)
	}
	req := kmsg.NewPtrConsumerGroupHeartbeatRequest()
	req.Group, req.MemberID, req.MemberEpoch = "g", "a", -1
	c.ConsumerGroupHeartbeat(ctx, "c1", req, Topics{Lookup: lookupT})
	if expired, err := c.ExpireOffsets(ctx, "c1", "g"); err != nil || !expired {
		t.Fatalf("empty group: expired %v, %v", expired, err)
	}
	if _, ok := store.stored("c1", "g", "t", 0); ok {
		t.Fatal("offset still stored")
	}
}
