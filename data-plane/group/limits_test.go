package group

import (
	"context"
	"testing"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// TestGroupMaxSize: a classic group takes MaxSize members; the next new
// member gets GROUP_MAX_SIZE_REACHED, at its first join (v0) and at the
// join with the id MEMBER_ID_REQUIRED gave it (v4+), and so does a new
// member of a full KIP-848 group (ConsumerMaxSize).
func TestGroupMaxSize(t *testing.T) {
	cfg := scenarioConfig()
	cfg.MaxSize, cfg.ConsumerMaxSize = 2, 1
	c := newTestCoordinator(t, cfg, nil)
	ctx := testCtx(t)
	formGroup(t, c, "c1", "classic", 2, nil)

	old := newConsumer(c, "c1", "classic", "old-client")
	old.version = 0
	wantCode(t, "v0 join of a third member", old.joinOnce(ctx).ErrorCode, kerr.GroupMaxSizeReached.Code)
	third := newConsumer(c, "c1", "classic", "third")
	wantCode(t, "v9 join of a third member", third.join(ctx).ErrorCode, kerr.GroupMaxSizeReached.Code)

	a := &cgMember{id: "a"}
	a.heartbeat(t, ctx, c, "") // group "g" of cluster "c1"
	req := kmsg.NewPtrConsumerGroupHeartbeatRequest()
	req.Group, req.MemberID, req.RebalanceTimeoutMillis, req.SubscribedTopicNames = "g", "b", 30000, []string{"t"}
	req.Topics = []kmsg.ConsumerGroupHeartbeatRequestTopic{}
	wantCode(t, "KIP-848 join of a second member", c.ConsumerGroupHeartbeat(ctx, "c1", req, Topics{Lookup: lookupT}).ErrorCode, kerr.GroupMaxSizeReached.Code)
	a.heartbeat(t, ctx, c, "") // the member in the group carries on
}

// countingStore is a memStore that counts the groups its offsets name.
type countingStore struct {
	*memStore
}

func (s countingStore) GroupCount(ctx context.Context, cluster, group string) (int, bool, error) {
	names, err := s.ListGroupsWithOffsets(ctx, cluster)
	known := false
	for _, n := range names {
		known = known || n == group
	}
	return len(names), known, err
}

// TestMaxGroups: past MaxGroups a join that would create a group gets
// POLICY_VIOLATION; groups that exist still take members.
func TestMaxGroups(t *testing.T) {
	cfg := testConfig()
	cfg.MaxGroups = 2
	st := countingStore{newMemStore()}
	c := newTestCoordinator(t, cfg, st)
	ctx := testCtx(t)
	for _, g := range []string{"g1", "g2"} {
		if err := st.CommitOffsets(ctx, "c1", g, []Offset{{Topic: "t", Offset: 1}}); err != nil {
			t.Fatal(err)
		}
	}
	wantCode(t, "join of a third group", newConsumer(c, "c1", "g3", "x").joinOnce(ctx).ErrorCode, kerr.PolicyViolation.Code)
	formGroup(t, c, "c1", "g1", 1, nil)
	formGroup(t, c, "c2", "g3", 1, nil) // another cluster's count
}

// TestRemoveEmptyGroups: an Empty group without offsets is removed from
// memory; one with offsets, or with members, stays.
func TestRemoveEmptyGroups(t *testing.T) {
	st := newMemStore()
	c := newTestCoordinator(t, testConfig(), st)
	ctx := testCtx(t)
	for _, g := range []string{"left", "committed", "active"} {
		ms := formGroup(t, c, "c1", g, 1, nil)
		if g == "committed" {
			wantCode(t, "commit", ms[0].commit(ctx, "t", 0, 5), 0)
		}
		if g != "active" {
			wantCode(t, "leave", ms[0].leave(ctx), 0)
		}
	}
	n, err := c.RemoveEmptyGroups(ctx)
	if err != nil || n != 1 {
		t.Fatalf("RemoveEmptyGroups = %d, %v; want 1 (the group that left without offsets)", n, err)
	}
	for g, want := range map[string]string{"left": "Dead", "committed": "Empty", "active": "Stable"} {
		if d := describe(t, c, "c1", g); d.State != want {
			t.Errorf("group %s: %s, want %s", g, d.State, want)
		}
	}
}

// limitedStore caps each cluster's groups at its own limit (GroupLimiter).
type limitedStore struct {
	countingStore
	max map[string]int
}

func (s limitedStore) MaxGroups(cluster string) int { return s.max[cluster] }

// TestClusterMaxGroups: each cluster's own limit (its plan's) caps its
// groups within the pool-wide MaxGroups, and a simple OffsetCommit that
// would create a group past it gets POLICY_VIOLATION like a join; commits
// to groups that exist still go through.
func TestClusterMaxGroups(t *testing.T) {
	cfg := testConfig()
	cfg.MaxGroups = 3
	st := limitedStore{countingStore{newMemStore()}, map[string]int{"c1": 1, "c2": 10}}
	c := newTestCoordinator(t, cfg, st)
	ctx := testCtx(t)
	commit := func(cluster, group string) int16 {
		req := kmsg.NewPtrOffsetCommitRequest()
		req.Version, req.Group, req.Generation = 8, group, -1
		rt := kmsg.NewOffsetCommitRequestTopic()
		rt.Topic = "t"
		rp := kmsg.NewOffsetCommitRequestTopicPartition()
		rp.Offset = 1
		rt.Partitions = append(rt.Partitions, rp)
		req.Topics = append(req.Topics, rt)
		return c.OffsetCommit(ctx, cluster, req).Topics[0].Partitions[0].ErrorCode
	}
	wantCode(t, "c1's first group by a commit", commit("c1", "g1"), 0)
	wantCode(t, "c1's second group by a commit", commit("c1", "g2"), kerr.PolicyViolation.Code)
	wantCode(t, "c1's second group by a join", newConsumer(c, "c1", "g2", "x").joinOnce(ctx).ErrorCode, kerr.PolicyViolation.Code)
	wantCode(t, "commit to c1's group", commit("c1", "g1"), 0)
	for _, g := range []string{"g1", "g2", "g3"} {
		wantCode(t, "c2's group "+g, commit("c2", g), 0)
	}
	wantCode(t, "c2's fourth group, past the pool-wide cap", commit("c2", "g4"), kerr.PolicyViolation.Code)
}
