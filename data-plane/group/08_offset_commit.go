package group

import (
	"context"
	"errors"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// OffsetCommit: versions 0-9.
//
//   - v0 carries no generation or member: it is a simple commit (generation
//     -1). v1's per-partition timestamp and v2-4's retention time are
//     ignored: offsets expire by Config.OffsetsRetention (ExpireOffsets).
//   - For a KIP-848 group the generation is the member epoch: the member's
//     current epoch is accepted, an older one only for partitions the
//     member still owns; otherwise STALE_MEMBER_EPOCH (v9+;
//     ILLEGAL_GENERATION before).
//   - v6+ LeaderEpoch (else -1). v7+ InstanceID is validated.
//   - v10+ names topics by id; the coordinator has no topic ids, so every
//     partition fails with UNSUPPORTED_VERSION. The broker must advertise at
//     most v9.
//
// A commit with generation >= 0 (or a member id or instance id) must come
// from a current member of the current generation: UNKNOWN_MEMBER_ID,
// FENCED_INSTANCE_ID or ILLEGAL_GENERATION otherwise, and
// REBALANCE_IN_PROGRESS while the group awaits its leader's assignment. It is
// accepted while the join phase runs, as in Kafka, and counts as a
// heartbeat. A simple commit (generation -1, no member) is accepted only
// while the group has no members, else UNKNOWN_MEMBER_ID; it creates the
// group if needed, within the cluster's groups (POLICY_VIOLATION past it, as
// for JoinGroup). For a group that does not exist, a commit with generation
// >= 0 gets ILLEGAL_GENERATION.
//
// Partitions whose metadata exceeds Config.MaxOffsetMetadataBytes fail with
// OFFSET_METADATA_TOO_LARGE; the rest are written with one
// OffsetStore.CommitOffsets call. A store error fails them with
// COORDINATOR_NOT_AVAILABLE, which clients retry.
//
// The broker checks that topics exist and are authorized, and answers for
// the partitions it filtered out, before calling OffsetCommit.
//
// Deliberate deviation from Kafka: an empty group id fails with
// INVALID_GROUP_ID (Kafka accepts it for this API for compatibility with
// pre-0.9 clients).
func (c *Coordinator) OffsetCommit(ctx context.Context, cluster string, req *kmsg.OffsetCommitRequest) *kmsg.OffsetCommitResponse {
	resp := kmsg.NewPtrOffsetCommitResponse()
	resp.Version = req.Version
	codes := make([][]int16, len(req.Topics))
	for i, t := range req.Topics {
		codes[i] = make([]int16, len(t.Partitions))
	}
	c.offsetCommit(ctx, cluster, req, codes)
	for i, t := range req.Topics {
		rt := kmsg.NewOffsetCommitResponseTopic()
		rt.Topic = t.Topic
		rt.TopicID = t.TopicID
		for j, p := range t.Partitions {
			rp := kmsg.NewOffsetCommitResponseTopicPartition()
			rp.Partition = p.Partition
			rp.ErrorCode = codes[i][j]
			rt.Partitions = append(rt.Partitions, rp)
		}
		resp.Topics = append(resp.Topics, rt)
	}
	return resp
}

// offsetCommit fills codes, shaped like req.Topics[i].Partitions[j].
func (c *Coordinator) offsetCommit(ctx context.Context, cluster string, req *kmsg.OffsetCommitRequest, codes [][]int16) {
	// A group-level error applies to every partition; a store error only to
	// the partitions that were to be written.
	fill := func(code int16, onlyOK bool) {
		for i := range codes {
			for j := range codes[i] {
				if !onlyOK || codes[i][j] == 0 {
					codes[i][j] = code
				}
			}
		}
	}
	failAll := func(code int16) { fill(code, false) }
	switch {
	case req.Version >= 10:
		failAll(kerr.UnsupportedVersion.Code)
		return
	case req.Group == "":
		failAll(kerr.InvalidGroupID.Code)
		return
	}
	generation, memberID := req.Generation, req.MemberID
	if req.Version == 0 {
		generation, memberID = -1, ""
	}
	var instanceID *string
	if req.Version >= 7 {
		instanceID = req.InstanceID
	}

	var offs []Offset
	for i, t := range req.Topics {
		for j, p := range t.Partitions {
			o := Offset{Topic: t.Topic, Partition: p.Partition, Offset: p.Offset, LeaderEpoch: -1}
			if req.Version >= 6 {
				o.LeaderEpoch = p.LeaderEpoch
			}
			if p.Metadata != nil {
				o.Metadata = *p.Metadata
			}
			if len(o.Metadata) > c.cfg.MaxOffsetMetadataBytes {
				codes[i][j] = kerr.OffsetMetadataTooLarge.Code
				continue
			}
			offs = append(offs, cloneOffset(o))
		}
	}
	offs = dedupe(offs)

	k := key{cluster, req.Group}
	// Kafka creates a group for a simple commit, and rejects a
	// generation-aware commit to a group it does not know. A group a
	// commit creates counts against the cluster's groups as a joined one
	// does (limits.go).
	create := generation < 0
	if create {
		if code := c.admitGroup(ctx, cluster, req.Group); code != 0 {
			failAll(code)
			return
		}
	}
	g, release, code := c.acquireIO(ctx, k, create)
	if code == 0 && g == nil {
		code = kerr.IllegalGeneration.Code
	}
	if code != 0 {
		failAll(code)
		return
	}
	defer release()

	if err := c.do(ctx, func() {
		if c.live(g) && g.cg != nil {
			code = c.validateConsumerCommit(g, req.Version, generation, memberID, offs)
			return
		}
		code = c.validateCommit(g, generation, memberID, instanceID)
	}); err != nil {
		code = kerr.CoordinatorNotAvailable.Code
	}
	if code != 0 {
		failAll(code)
		return
	}
	if len(offs) == 0 {
		return
	}
	if err := c.store.CommitOffsets(ctx, g.cluster, g.group, offs); err != nil {
		if errors.Is(err, ErrNotCoordinator) {
			// The slot moved while the commit was in flight; the group
			// is forgotten when the routing view catches up.
			c.log.Info("offset commit fenced: slot moved", "cluster", g.cluster, "group", g.group, "err", err)
			fill(kerr.NotCoordinator.Code, true)
			return
		}
		c.log.Error("committing offsets", "cluster", g.cluster, "group", g.group, "err", err)
		fill(kerr.CoordinatorNotAvailable.Code, true)
		return
	}
	// The write is durable; the cache update must not be skipped because
	// the client went away, or the cache would lag the store.
	_ = c.do(context.WithoutCancel(ctx), func() {
		if c.live(g) && g.offsets != nil {
			for _, o := range offs {
				putOffset(g.offsets, o)
			}
		}
	})
}

// validateCommit is Kafka's validateOffsetCommit, run on the loop.
func (c *Coordinator) validateCommit(g *group, generation int32, memberID string, instanceID *string) int16 {
	if !c.live(g) {
		return staleCode(g)
	}
	if g.state == stateDead {
		return kerr.CoordinatorNotAvailable.Code
	}
	if generation >= 0 && !g.exists() {
		// Only bookkeeping (a concurrent load): to clients there is no
		// group, as when acquireIO finds none.
		return kerr.IllegalGeneration.Code
	}
	if generation < 0 && g.state == stateEmpty {
		// The admin client, or a consumer that assigns itself partitions.
		return 0
	}
	if generation >= 0 || memberID != "" || instanceID != nil {
		if code := g.validateMember(memberID, instanceID); code != 0 {
			return code
		}
		if generation != g.generation {
			return kerr.IllegalGeneration.Code
		}
	} else if g.state != stateEmpty {
		// Only members may commit to a group that has members.
		return kerr.UnknownMemberID.Code
	}
	switch g.state {
	case stateCompletingRebalance:
		// The member knows the new generation but has not got its
		// assignment; have it finish the rebalance first.
		return kerr.RebalanceInProgress.Code
	case stateStable, statePreparingRebalance:
		if m := g.members[memberID]; m != nil {
			c.arm(m.expiry, m.sessionTimeout)
		}
	}
	return 0
}

// dedupe keeps the last commit of any partition listed twice, so the store
// sees distinct partitions.
func dedupe(offs []Offset) []Offset {
	type tp struct {
		topic     string
		partition int32
	}
	seen := make(map[tp]int, len(offs))
	out := offs[:0]
	for _, o := range offs {
		k := tp{o.Topic, o.Partition}
		if i, ok := seen[k]; ok {
			out[i] = o
			continue
		}
		seen[k] = len(out)
		out = append(out, o)
	}
	return out
}
