package group

import (
	"context"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// OffsetDelete: version 0.
//
// Deletes committed offsets of a group: of any partition while the group is
// Empty; while a consumer group ("consumer" protocol type) has members, only
// of topics none of its members subscribe to (GROUP_SUBSCRIBED_TO_TOPIC for
// the others; if a member's subscription cannot be parsed, every topic
// counts as subscribed). Other groups with members get NON_EMPTY_GROUP, and
// unknown groups GROUP_ID_NOT_FOUND. With a group-level error no partitions
// are listed, as in Kafka. The broker checks topic existence beforehand.
func (c *Coordinator) OffsetDelete(ctx context.Context, cluster string, req *kmsg.OffsetDeleteRequest) *kmsg.OffsetDeleteResponse {
	resp := kmsg.NewPtrOffsetDeleteResponse()
	resp.Version = req.Version
	codes := make([][]int16, len(req.Topics))
	for i, t := range req.Topics {
		codes[i] = make([]int16, len(t.Partitions))
	}
	resp.ErrorCode = c.offsetDelete(ctx, cluster, req, codes)
	if resp.ErrorCode != 0 {
		return resp
	}
	for i, t := range req.Topics {
		rt := kmsg.NewOffsetDeleteResponseTopic()
		rt.Topic = t.Topic
		for j, p := range t.Partitions {
			rp := kmsg.NewOffsetDeleteResponseTopicPartition()
			rp.Partition = p.Partition
			rp.ErrorCode = codes[i][j]
			rt.Partitions = append(rt.Partitions, rp)
		}
		resp.Topics = append(resp.Topics, rt)
	}
	return resp
}

func (c *Coordinator) offsetDelete(ctx context.Context, cluster string, req *kmsg.OffsetDeleteRequest, codes [][]int16) int16 {
	if req.Group == "" {
		return kerr.InvalidGroupID.Code
	}
	g, release, code := c.acquireIO(ctx, key{cluster, req.Group}, true)
	if code != 0 {
		return code
	}
	defer release()
	if code := c.loadOffsets(ctx, g, nil); code != 0 {
		return code
	}
	var eligible map[string][]int32
	if err := c.do(ctx, func() {
		switch {
		case !c.live(g):
			code = staleCode(g)
			return
		case g.state == stateDead || !g.exists():
			code = kerr.GroupIDNotFound.Code
			return
		case g.state != stateEmpty && g.protocolType != "consumer":
			code = kerr.NonEmptyGroup.Code
			return
		}
		subscribed, known := g.subscribedTopics()
		active := g.state != stateEmpty
		if g.cg != nil && len(g.cg.members) > 0 {
			// A KIP-848 group: its members' subscriptions are known.
			active, known, subscribed = true, true, map[string]bool{}
			for _, m := range g.cg.members {
				for _, name := range m.subscribed {
					subscribed[name] = true
				}
			}
		}
		eligible = make(map[string][]int32)
		for i, t := range req.Topics {
			if active && (!known || subscribed[t.Topic]) {
				for j := range t.Partitions {
					codes[i][j] = kerr.GroupSubscribedToTopic.Code
				}
				continue
			}
			for _, p := range t.Partitions {
				eligible[t.Topic] = append(eligible[t.Topic], p.Partition)
			}
		}
	}); err != nil {
		return kerr.CoordinatorNotAvailable.Code
	}
	if code != 0 || len(eligible) == 0 {
		return code
	}
	if err := c.store.DeleteGroupOffsets(ctx, cluster, req.Group, eligible); err != nil {
		c.log.Error("deleting offsets", "cluster", cluster, "group", req.Group, "err", err)
		return kerr.CoordinatorNotAvailable.Code
	}
	_ = c.do(context.WithoutCancel(ctx), func() {
		if !c.live(g) || g.offsets == nil {
			return
		}
		for topic, parts := range eligible {
			for _, p := range parts {
				delete(g.offsets[topic], p)
			}
			if len(g.offsets[topic]) == 0 {
				delete(g.offsets, topic)
			}
		}
	})
	return 0
}

// subscribedTopics returns the topics a consumer group's members subscribe
// to, parsed from their metadata for the group's protocol; known is false
// when that is not possible (not a consumer group, or metadata that does not
// parse).
func (g *group) subscribedTopics() (topics map[string]bool, known bool) {
	if g.protocolType != "consumer" || g.protocol == "" {
		return nil, false
	}
	topics = make(map[string]bool)
	for _, m := range g.members {
		var md kmsg.ConsumerMemberMetadata
		if err := md.ReadFrom(m.metadata(g.protocol)); err != nil {
			return nil, false
		}
		for _, t := range md.Topics {
			topics[t] = true
		}
	}
	return topics, true
}
