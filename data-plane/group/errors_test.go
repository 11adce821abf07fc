package group

import (
	"context"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// stage is how far the fixture group gets before a case runs.
type stage int

const (
	stable    stage = iota // three members, Stable
	joined                 // three members, CompletingRebalance (no SyncGroup yet)
	preparing              // Stable, then ms[1] left: PreparingRebalance
)

// fixture is group "g" in cluster "c1" with three members: ms[0] and ms[1]
// dynamic, ms[2] static with instance id "inst-2".
type fixture struct {
	c     *Coordinator
	store *memStore
	ms    []*consumer
}

func newFixture(t *testing.T, st stage) *fixture {
	t.Helper()
	cfg := testConfig()
	cfg.InitialRebalanceDelay = 50 * time.Millisecond
	cfg.MaxMetadataBytes = 1024
	store := newMemStore()
	c := newTestCoordinator(t, cfg, store)
	configure := func(i int, m *consumer) {
		if i == 2 {
			inst := "inst-2"
			m.instance = &inst
		}
	}
	fx := &fixture{c: c, store: store}
	if st == joined {
		fx.ms = joinGroup(t, c, "c1", "g", 3, configure)
		return fx
	}
	fx.ms = formGroup(t, c, "c1", "g", 3, configure)
	if st == preparing {
		wantCode(t, "leave", fx.ms[1].leave(testCtx(t)), 0)
	}
	return fx
}

// with returns a copy of member i, to send a request the member would not.
func (fx *fixture) with(i int, change func(m *consumer)) *consumer {
	m := *fx.ms[i]
	change(&m)
	return &m
}

func staleStatic(m *consumer) { m.id = "inst-2-stale" }

func TestErrorCodes(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name  string
		stage stage
		run   func(ctx context.Context, t *testing.T, fx *fixture) int16
		want  int16
	}{
		// JoinGroup.
		{"join/empty group id", stable, func(ctx context.Context, t *testing.T, fx *fixture) int16 {
			return fx.with(0, func(m *consumer) { m.group = "" }).joinOnce(ctx).ErrorCode
		}, kerr.InvalidGroupID.Code},
		{"join/session timeout below minimum", stable, func(ctx context.Context, t *testing.T, fx *fixture) int16 {
			return fx.with(0, func(m *consumer) { m.session = 0 }).joinOnce(ctx).ErrorCode
		}, kerr.InvalidSessionTimeout.Code},
		{"join/session timeout above maximum", stable, func(ctx context.Context, t *testing.T, fx *fixture) int16 {
			return fx.with(0, func(m *consumer) { m.session = time.Hour }).joinOnce(ctx).ErrorCode
		}, kerr.InvalidSessionTimeout.Code},
		{"join/new member v4+ needs a member id", stable, func(ctx context.Context, t *testing.T, fx *fixture) int16 {
			return newConsumer(fx.c, "c1", "g", "new").joinOnce(ctx).ErrorCode
		}, kerr.MemberIDRequired.Code},
		{"join/empty protocol type", stable, func(ctx context.Context, t *testing.T, fx *fixture) int16 {
			req := newConsumer(fx.c, "c1", "fresh", "new").joinRequest()
			req.ProtocolType = ""
			return fx.c.JoinGroup(ctx, "c1", req).ErrorCode
		}, kerr.InconsistentGroupProtocol.Code},
		{"join/no protocols", stable, func(ctx context.Context, t *testing.T, fx *fixture) int16 {
			return newConsumerWith(fx.c, "fresh", func(m *consumer) { m.protocols = nil }).joinOnce(ctx).ErrorCode
		}, kerr.InconsistentGroupProtocol.Code},
		{"join/protocol type differs from the group's", stable, func(ctx context.Context, t *testing.T, fx *fixture) int16 {
			req := newConsumer(fx.c, "c1", "g", "new").joinRequest()
			req.ProtocolType = "connect"
			return fx.c.JoinGroup(ctx, "c1", req).ErrorCode
		}, kerr.InconsistentGroupProtocol.Code},
		{"join/no protocol in common with the group", stable, func(ctx context.Context, t *testing.T, fx *fixture) int16 {
			return newConsumerWith(fx.c, "g", func(m *consumer) { m.protocols = protocols("sticky", "x") }).joinOnce(ctx).ErrorCode
		}, kerr.InconsistentGroupProtocol.Code},
		{"join/metadata above MaxMetadataBytes", stable, func(ctx context.Context, t *testing.T, fx *fixture) int16 {
			big := strings.Repeat("x", 1025)
			return newConsumerWith(fx.c, "g", func(m *consumer) { m.protocols = protocols("range", big) }).joinOnce(ctx).ErrorCode
		}, kerr.InvalidRequest.Code},
		{"join/member id of an unknown group", stable, func(ctx context.Context, t *testing.T, fx *fixture) int16 {
			return fx.with(0, func(m *consumer) { m.group = "other" }).joinOnce(ctx).ErrorCode
		}, kerr.UnknownMemberID.Code},
		{"join/unknown member id", stable, func(ctx context.Context, t *testing.T, fx *fixture) int16 {
			return fx.with(0, func(m *consumer) { m.id = "nobody" }).joinOnce(ctx).ErrorCode
		}, kerr.UnknownMemberID.Code},
		{"join/stale member id of a static instance", stable, func(ctx context.Context, t *testing.T, fx *fixture) int16 {
			return fx.with(2, staleStatic).joinOnce(ctx).ErrorCode
		}, kerr.FencedInstanceID.Code},
		{"join/member id with an unknown instance id", stable, func(ctx context.Context, t *testing.T, fx *fixture) int16 {
			inst := "inst-unknown"
			return fx.with(0, func(m *consumer) { m.instance = &inst }).joinOnce(ctx).ErrorCode
		}, kerr.UnknownMemberID.Code},
		{"join/follower with unchanged metadata in Stable", stable, func(ctx context.Context, t *testing.T, fx *fixture) int16 {
			return follower(fx).joinOnce(ctx).ErrorCode
		}, 0},

		// SyncGroup.
		{"sync/empty group id", stable, func(ctx context.Context, t *testing.T, fx *fixture) int16 {
			return fx.with(0, func(m *consumer) { m.group = "" }).sync(ctx).ErrorCode
		}, kerr.InvalidGroupID.Code},
		{"sync/unknown group", stable, func(ctx context.Context, t *testing.T, fx *fixture) int16 {
			return fx.with(0, func(m *consumer) { m.group = "other" }).sync(ctx).ErrorCode
		}, kerr.UnknownMemberID.Code},
		{"sync/unknown member", stable, func(ctx context.Context, t *testing.T, fx *fixture) int16 {
			return fx.with(0, func(m *consumer) { m.id = "nobody" }).sync(ctx).ErrorCode
		}, kerr.UnknownMemberID.Code},
		{"sync/old generation", stable, func(ctx context.Context, t *testing.T, fx *fixture) int16 {
			return fx.with(0, func(m *consumer) { m.generation-- }).sync(ctx).ErrorCode
		}, kerr.IllegalGeneration.Code},
		{"sync/stale member id of a static instance", stable, func(ctx context.Context, t *testing.T, fx *fixture) int16 {
			return fx.with(2, staleStatic).sync(ctx).ErrorCode
		}, kerr.FencedInstanceID.Code},
		{"sync/v5 protocol name differs", stable, func(ctx context.Context, t *testing.T, fx *fixture) int16 {
			return fx.with(0, func(m *consumer) { m.protocols = protocols("sticky", "") }).sync(ctx).ErrorCode
		}, kerr.InconsistentGroupProtocol.Code},
		{"sync/v5 protocol type differs", stable, func(ctx context.Context, t *testing.T, fx *fixture) int16 {
			return syncRaw(ctx, fx, func(req *kmsg.SyncGroupRequest) { pt := "connect"; req.ProtocolType = &pt })
		}, kerr.InconsistentGroupProtocol.Code},
		{"sync/v5 without protocol", stable, func(ctx context.Context, t *testing.T, fx *fixture) int16 {
			return syncRaw(ctx, fx, func(req *kmsg.SyncGroupRequest) { req.Protocol = nil })
		}, kerr.InconsistentGroupProtocol.Code},
		{"sync/v4 without protocol", stable, func(ctx context.Context, t *testing.T, fx *fixture) int16 {
			return syncRaw(ctx, fx, func(req *kmsg.SyncGroupRequest) { req.Version = 4; req.Protocol, req.ProtocolType = nil, nil })
		}, 0},
		{"sync/while rebalancing", preparing, func(ctx context.Context, t *testing.T, fx *fixture) int16 {
			return fx.ms[0].sync(ctx).ErrorCode
		}, kerr.RebalanceInProgress.Code},
		{"sync/stable group returns the assignment", stable, func(ctx context.Context, t *testing.T, fx *fixture) int16 {
			return fx.ms[1].sync(ctx).ErrorCode
		}, 0},

		// Heartbeat.
		{"heartbeat/empty group id", stable, func(ctx context.Context, t *testing.T, fx *fixture) int16 {
			return fx.with(0, func(m *consumer) { m.group = "" }).heartbeat(ctx)
		}, kerr.InvalidGroupID.Code},
		{"heartbeat/unknown group", stable, func(ctx context.Context, t *testing.T, fx *fixture) int16 {
			return fx.with(0, func(m *consumer) { m.group = "other" }).heartbeat(ctx)
		}, kerr.UnknownMemberID.Code},
		{"heartbeat/unknown member", stable, func(ctx context.Context, t *testing.T, fx *fixture) int16 {
			return fx.with(0, func(m *consumer) { m.id = "nobody" }).heartbeat(ctx)
		}, kerr.UnknownMemberID.Code},
		{"heartbeat/old generation", stable, func(ctx context.Context, t *testing.T, fx *fixture) int16 {
			return fx.with(0, func(m *consumer) { m.generation-- }).heartbeat(ctx)
		}, kerr.IllegalGeneration.Code},
		{"heartbeat/stale member id of a static instance", stable, func(ctx context.Context, t *testing.T, fx *fixture) int16 {
			return fx.with(2, staleStatic).heartbeat(ctx)
		}, kerr.FencedInstanceID.Code},
		{"heartbeat/while rebalancing", preparing, func(ctx context.Context, t *testing.T, fx *fixture) int16 {
			return fx.ms[0].heartbeat(ctx)
		}, kerr.RebalanceInProgress.Code},
		{"heartbeat/while awaiting the assignment", joined, func(ctx context.Context, t *testing.T, fx *fixture) int16 {
			return fx.ms[0].heartbeat(ctx)
		}, 0},
		{"heartbeat/stable", stable, func(ctx context.Context, t *testing.T, fx *fixture) int16 {
			return fx.ms[2].heartbeat(ctx)
		}, 0},

		// LeaveGroup.
		{"leave/empty group id", stable, func(ctx context.Context, t *testing.T, fx *fixture) int16 {
			return fx.with(0, func(m *consumer) { m.group = "" }).leave(ctx)
		}, kerr.InvalidGroupID.Code},
		{"leave/unknown group", stable, func(ctx context.Context, t *testing.T, fx *fixture) int16 {
			return fx.with(0, func(m *consumer) { m.group = "other" }).leave(ctx)
		}, kerr.UnknownMemberID.Code},
		{"leave/unknown member", stable, func(ctx context.Context, t *testing.T, fx *fixture) int16 {
			return fx.with(0, func(m *consumer) { m.id = "nobody" }).leave(ctx)
		}, kerr.UnknownMemberID.Code},
		{"leave/v0 unknown member is the top-level error", stable, func(ctx context.Context, t *testing.T, fx *fixture) int16 {
			req := kmsg.NewPtrLeaveGroupRequest()
			req.Group, req.MemberID = "g", "nobody"
			return fx.c.LeaveGroup(ctx, "c1", req).ErrorCode
		}, kerr.UnknownMemberID.Code},
		{"leave/stale member id of a static instance", stable, func(ctx context.Context, t *testing.T, fx *fixture) int16 {
			return fx.with(2, staleStatic).leave(ctx)
		}, kerr.FencedInstanceID.Code},
		{"leave/unknown instance id without member id", stable, func(ctx context.Context, t *testing.T, fx *fixture) int16 {
			inst := "inst-unknown"
			return fx.with(2, func(m *consumer) { m.id, m.instance = "", &inst }).leave(ctx)
		}, kerr.UnknownMemberID.Code},
		{"leave/instance id without member id removes the static member", stable, func(ctx context.Context, t *testing.T, fx *fixture) int16 {
			return fx.with(2, func(m *consumer) { m.id = "" }).leave(ctx)
		}, 0},

		// OffsetCommit.
		{"commit/empty group id", stable, func(ctx context.Context, t *testing.T, fx *fixture) int16 {
			return fx.with(0, func(m *consumer) { m.group = "" }).commit(ctx, "t", 0, 1)
		}, kerr.InvalidGroupID.Code},
		{"commit/generation for an unknown group", stable, func(ctx context.Context, t *testing.T, fx *fixture) int16 {
			return fx.with(0, func(m *consumer) { m.group = "other" }).commit(ctx, "t", 0, 1)
		}, kerr.IllegalGeneration.Code},
		{"commit/simple commit to an unknown group", stable, func(ctx context.Context, t *testing.T, fx *fixture) int16 {
			return fx.with(0, func(m *consumer) { m.group, m.id, m.generation = "other", "", -1 }).commit(ctx, "t", 0, 1)
		}, 0},
		{"commit/simple commit to a group with members", stable, func(ctx context.Context, t *testing.T, fx *fixture) int16 {
			return fx.with(0, func(m *consumer) { m.id, m.generation, m.instance = "", -1, nil }).commit(ctx, "t", 0, 1)
		}, kerr.UnknownMemberID.Code},
		{"commit/old generation", stable, func(ctx context.Context, t *testing.T, fx *fixture) int16 {
			return fx.with(0, func(m *consumer) { m.generation-- }).commit(ctx, "t", 0, 1)
		}, kerr.IllegalGeneration.Code},
		{"commit/unknown member", stable, func(ctx context.Context, t *testing.T, fx *fixture) int16 {
			return fx.with(0, func(m *consumer) { m.id = "nobody" }).commit(ctx, "t", 0, 1)
		}, kerr.UnknownMemberID.Code},
		{"commit/stale member id of a static instance", stable, func(ctx context.Context, t *testing.T, fx *fixture) int16 {
			return fx.with(2, staleStatic).commit(ctx, "t", 0, 1)
		}, kerr.FencedInstanceID.Code},
		{"commit/while awaiting the assignment", joined, func(ctx context.Context, t *testing.T, fx *fixture) int16 {
			return fx.ms[0].commit(ctx, "t", 0, 1)
		}, kerr.RebalanceInProgress.Code},
		{"commit/while rebalancing is accepted", preparing, func(ctx context.Context, t *testing.T, fx *fixture) int16 {
			return fx.ms[0].commit(ctx, "t", 0, 1)
		}, 0},
		{"commit/metadata too large", stable, func(ctx context.Context, t *testing.T, fx *fixture) int16 {
			req := commitRequest(fx.ms[0], commitTopic("t", 0, 1, strings.Repeat("m", 4097)))
			return fx.c.OffsetCommit(ctx, "c1", req).Topics[0].Partitions[0].ErrorCode
		}, kerr.OffsetMetadataTooLarge.Code},
		{"commit/metadata at the limit", stable, func(ctx context.Context, t *testing.T, fx *fixture) int16 {
			req := commitRequest(fx.ms[0], commitTopic("t", 0, 1, strings.Repeat("m", 4096)))
			return fx.c.OffsetCommit(ctx, "c1", req).Topics[0].Partitions[0].ErrorCode
		}, 0},
		{"commit/v10 topic ids", stable, func(ctx context.Context, t *testing.T, fx *fixture) int16 {
			req := commitRequest(fx.ms[0], commitTopic("t", 0, 1, ""))
			req.Version = 10
			return fx.c.OffsetCommit(ctx, "c1", req).Topics[0].Partitions[0].ErrorCode
		}, kerr.UnsupportedVersion.Code},
		{"commit/store down", stable, func(ctx context.Context, t *testing.T, fx *fixture) int16 {
			fx.store.setFail(errStoreDown)
			return fx.ms[0].commit(ctx, "t", 0, 1)
		}, kerr.CoordinatorNotAvailable.Code},

		// OffsetFetch.
		{"fetch/empty group id", stable, func(ctx context.Context, t *testing.T, fx *fixture) int16 {
			req := kmsg.NewPtrOffsetFetchRequest()
			req.Version = 7
			return fx.c.OffsetFetch(ctx, "c1", req).ErrorCode
		}, kerr.InvalidGroupID.Code},
		{"fetch/store down", stable, func(ctx context.Context, t *testing.T, fx *fixture) int16 {
			fx.store.setFail(errStoreDown)
			req := kmsg.NewPtrOffsetFetchRequest()
			req.Version = 7
			req.Group = "g"
			return fx.c.OffsetFetch(ctx, "c1", req).ErrorCode
		}, kerr.CoordinatorNotAvailable.Code},
		{"fetch/v1 store down is per partition", stable, func(ctx context.Context, t *testing.T, fx *fixture) int16 {
			fx.store.setFail(errStoreDown)
			req := kmsg.NewPtrOffsetFetchRequest()
			req.Version = 1
			req.Group = "g"
			req.Topics = []kmsg.OffsetFetchRequestTopic{{Topic: "t", Partitions: []int32{0}}}
			return fx.c.OffsetFetch(ctx, "c1", req).Topics[0].Partitions[0].ErrorCode
		}, kerr.CoordinatorNotAvailable.Code},
		{"fetch/v10 topic ids", stable, func(ctx context.Context, t *testing.T, fx *fixture) int16 {
			req := kmsg.NewPtrOffsetFetchRequest()
			req.Version = 10
			req.Groups = []kmsg.OffsetFetchRequestGroup{{Group: "g"}}
			return fx.c.OffsetFetch(ctx, "c1", req).Groups[0].ErrorCode
		}, kerr.UnsupportedVersion.Code},

		// DescribeGroups.
		{"describe/empty group id", stable, func(ctx context.Context, t *testing.T, fx *fixture) int16 {
			return describe(t, fx.c, "c1", "").ErrorCode
		}, kerr.InvalidGroupID.Code},
		{"describe/v6 unknown group", stable, func(ctx context.Context, t *testing.T, fx *fixture) int16 {
			return describe(t, fx.c, "c1", "other").ErrorCode
		}, kerr.GroupIDNotFound.Code},
		{"describe/v5 unknown group is Dead without error", stable, func(ctx context.Context, t *testing.T, fx *fixture) int16 {
			req := kmsg.NewPtrDescribeGroupsRequest()
			req.Version = 5
			req.Groups = []string{"other"}
			g := fx.c.DescribeGroups(ctx, "c1", req).Groups[0]
			if g.State != "Dead" {
				return -1
			}
			return g.ErrorCode
		}, 0},

		// DeleteGroups.
		{"delete/empty group id", stable, func(ctx context.Context, t *testing.T, fx *fixture) int16 {
			return deleteGroup(ctx, fx.c, "c1", "")
		}, kerr.InvalidGroupID.Code},
		{"delete/unknown group", stable, func(ctx context.Context, t *testing.T, fx *fixture) int16 {
			return deleteGroup(ctx, fx.c, "c1", "other")
		}, kerr.GroupIDNotFound.Code},
		{"delete/group with members", stable, func(ctx context.Context, t *testing.T, fx *fixture) int16 {
			return deleteGroup(ctx, fx.c, "c1", "g")
		}, kerr.NonEmptyGroup.Code},
		{"delete/group with members while rebalancing", preparing, func(ctx context.Context, t *testing.T, fx *fixture) int16 {
			return deleteGroup(ctx, fx.c, "c1", "g")
		}, kerr.NonEmptyGroup.Code},
		{"delete/group with only offsets", stable, func(ctx context.Context, t *testing.T, fx *fixture) int16 {
			wantCode(t, "simple commit", simpleCommit(ctx, fx.c, "c1", "simple", "t", 0, 5), 0)
			return deleteGroup(ctx, fx.c, "c1", "simple")
		}, 0},
		{"delete/store down", stable, func(ctx context.Context, t *testing.T, fx *fixture) int16 {
			wantCode(t, "simple commit", simpleCommit(ctx, fx.c, "c1", "simple", "t", 0, 5), 0)
			fx.store.setFail(errStoreDown)
			return deleteGroup(ctx, fx.c, "c1", "simple")
		}, kerr.CoordinatorNotAvailable.Code},

		// OffsetDelete.
		{"offset delete/empty group id", stable, func(ctx context.Context, t *testing.T, fx *fixture) int16 {
			return offsetDelete(ctx, fx.c, "c1", "", "t")
		}, kerr.InvalidGroupID.Code},
		{"offset delete/unknown group", stable, func(ctx context.Context, t *testing.T, fx *fixture) int16 {
			return offsetDelete(ctx, fx.c, "c1", "other", "t")
		}, kerr.GroupIDNotFound.Code},
		{"offset delete/unparseable subscription counts as subscribed", stable, func(ctx context.Context, t *testing.T, fx *fixture) int16 {
			return offsetDelete(ctx, fx.c, "c1", "g", "t")
		}, kerr.GroupSubscribedToTopic.Code},
		{"offset delete/empty group", stable, func(ctx context.Context, t *testing.T, fx *fixture) int16 {
			wantCode(t, "simple commit", simpleCommit(ctx, fx.c, "c1", "simple", "t", 0, 5), 0)
			return offsetDelete(ctx, fx.c, "c1", "simple", "t")
		}, 0},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			// In a bubble the fixture's concurrent joins land in one
			// generation however slow the machine is.
			synctest.Test(t, func(t *testing.T) {
				fx := newFixture(t, tc.stage)
				got := tc.run(testCtx(t), t, fx)
				wantCode(t, tc.name, got, tc.want)
			})
		})
	}
}

// TestOffsetDeleteSubscriptions checks GROUP_SUBSCRIBED_TO_TOPIC against
// real consumer subscriptions, and NON_EMPTY_GROUP for other protocol types.
func TestOffsetDeleteSubscriptions(t *testing.T) {
	t.Parallel()
	bubble(t, scenarioConfig(), testOffsetDeleteSubscriptions)
}

func testOffsetDeleteSubscriptions(t *testing.T, c *Coordinator, _ *memStore) {
	ctx := testCtx(t)

	sub := kmsg.NewConsumerMemberMetadata()
	sub.Topics = []string{"orders"}
	ms := formGroup(t, c, "c1", "consumers", 2, func(_ int, m *consumer) {
		m.protocols = []kmsg.JoinGroupRequestProtocol{{Name: "range", Metadata: sub.AppendTo(nil)}}
	})
	wantCode(t, "commit orders", ms[0].commit(ctx, "orders", 0, 10), 0)
	wantCode(t, "commit audit", ms[0].commit(ctx, "audit", 0, 10), 0)

	req := kmsg.NewPtrOffsetDeleteRequest()
	req.Group = "consumers"
	for _, topic := range []string{"orders", "audit"} {
		rt := kmsg.NewOffsetDeleteRequestTopic()
		rt.Topic = topic
		rt.Partitions = []kmsg.OffsetDeleteRequestTopicPartition{{Partition: 0}}
		req.Topics = append(req.Topics, rt)
	}
	resp := c.OffsetDelete(ctx, "c1", req)
	wantCode(t, "group", resp.ErrorCode, 0)
	wantCode(t, "subscribed topic", resp.Topics[0].Partitions[0].ErrorCode, kerr.GroupSubscribedToTopic.Code)
	wantCode(t, "other topic", resp.Topics[1].Partitions[0].ErrorCode, 0)

	offs := fetchAll(t, c, "c1", "consumers")
	if _, ok := offs["audit/0"]; ok {
		t.Errorf("audit offset still cached after OffsetDelete: %v", offs)
	}
	if _, ok := offs["orders/0"]; !ok {
		t.Errorf("orders offset gone after a refused OffsetDelete: %v", offs)
	}

	// A non-consumer group with members cannot have offsets deleted.
	formGroup(t, c, "c1", "connectors", 1, func(_ int, m *consumer) {})
	setProtocolType(t, c, "c1", "connectors", "connect")
	wantCode(t, "connect group", offsetDelete(ctx, c, "c1", "connectors", "orders"), kerr.NonEmptyGroup.Code)
}

// setProtocolType rewrites a group's protocol type, standing in for a group
// formed by a non-consumer client.
func setProtocolType(t *testing.T, c *Coordinator, cluster, group, protocolType string) {
	t.Helper()
	if err := c.do(testCtx(t), func() { c.get(key{cluster, group}).protocolType = protocolType }); err != nil {
		t.Fatal(err)
	}
}

func newConsumerWith(c *Coordinator, group string, change func(m *consumer)) *consumer {
	m := newConsumer(c, "c1", group, "new")
	change(m)
	return m
}

// follower returns a follower of the fixture group.
func follower(fx *fixture) *consumer {
	for _, m := range fx.ms {
		if !m.isLeader() {
			return m
		}
	}
	panic("no follower")
}

// syncRaw sends ms[0]'s SyncGroup after change.
func syncRaw(ctx context.Context, fx *fixture, change func(req *kmsg.SyncGroupRequest)) int16 {
	m := fx.ms[0]
	req := kmsg.NewPtrSyncGroupRequest()
	req.Version = 5
	req.Group = m.group
	req.Generation = m.generation
	req.MemberID = m.id
	pt, p := "consumer", "range"
	req.ProtocolType, req.Protocol = &pt, &p
	change(req)
	return fx.c.SyncGroup(ctx, "c1", req).ErrorCode
}

func commitRequest(m *consumer, topics ...kmsg.OffsetCommitRequestTopic) *kmsg.OffsetCommitRequest {
	req := kmsg.NewPtrOffsetCommitRequest()
	req.Version = 9
	req.Group = m.group
	req.Generation = m.generation
	req.MemberID = m.id
	req.InstanceID = m.instance
	req.Topics = topics
	return req
}

// simpleCommit commits like a consumer that assigns partitions itself.
func simpleCommit(ctx context.Context, c *Coordinator, cluster, group, topic string, partition int32, offset int64) int16 {
	req := kmsg.NewPtrOffsetCommitRequest()
	req.Version = 9
	req.Group = group
	req.Generation = -1
	req.Topics = []kmsg.OffsetCommitRequestTopic{commitTopic(topic, partition, offset, "meta")}
	return c.OffsetCommit(ctx, cluster, req).Topics[0].Partitions[0].ErrorCode
}

func deleteGroup(ctx context.Context, c *Coordinator, cluster, group string) int16 {
	req := kmsg.NewPtrDeleteGroupsRequest()
	req.Version = 2
	req.Groups = []string{group}
	return c.DeleteGroups(ctx, cluster, req).Groups[0].ErrorCode
}

// offsetDelete deletes partition 0 of topic and returns the group error, or
// else the partition's.
func offsetDelete(ctx context.Context, c *Coordinator, cluster, group, topic string) int16 {
	req := kmsg.NewPtrOffsetDeleteRequest()
	req.Group = group
	rt := kmsg.NewOffsetDeleteRequestTopic()
	rt.Topic = topic
	rt.Partitions = []kmsg.OffsetDeleteRequestTopicPartition{{Partition: 0}}
	req.Topics = []kmsg.OffsetDeleteRequestTopic{rt}
	resp := c.OffsetDelete(ctx, cluster, req)
	if resp.ErrorCode != 0 {
		return resp.ErrorCode
	}
	return resp.Topics[0].Partitions[0].ErrorCode
}

// fetchAll fetches every committed offset of a group (v8, null topics),
// keyed "topic/partition".
func fetchAll(t *testing.T, c *Coordinator, cluster, group string) map[string]Offset {
	t.Helper()
	req := kmsg.NewPtrOffsetFetchRequest()
	req.Version = 8
	req.Groups = []kmsg.OffsetFetchRequestGroup{{Group: group}}
	resp := c.OffsetFetch(testCtx(t), cluster, req)
	rg := resp.Groups[0]
	wantCode(t, "fetch "+group, rg.ErrorCode, 0)
	out := make(map[string]Offset)
	for _, rt := range rg.Topics {
		for _, rp := range rt.Partitions {
			out[rt.Topic+"/"+itoa(rp.Partition)] = Offset{Topic: rt.Topic, Partition: rp.Partition, Offset: rp.Offset, LeaderEpoch: rp.LeaderEpoch, Metadata: *rp.Metadata}
		}
	}
	return out
}
