package group

import (
	"cmp"
	"context"
	"slices"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// OffsetFetch: versions 0-9.
//
//   - v0-1 report group errors on every requested partition; v2-7 in the
//     top-level ErrorCode; v8+ fetch several groups at once, each with its
//     own ErrorCode.
//   - v2+: null Topics (or a null Topics of a v8+ group) fetches every
//     committed offset of the group.
//   - v5+ LeaderEpoch. v7+ RequireStable is the broker's: it knows the
//     transactional (pending) commits and answers UNSTABLE_OFFSET_COMMIT
//     for their partitions. v9's MemberID/MemberEpoch belong to the
//     KIP-848 protocol and are ignored for classic groups.
//   - v10+ names topics by id: UNSUPPORTED_VERSION. The broker must
//     advertise at most v9.
//
// Partitions without a committed offset get offset -1, leader epoch -1 and
// empty metadata. Offsets come from the group's cache, loaded from the
// OffsetStore on first use; a store error is COORDINATOR_NOT_AVAILABLE.
//
// Deliberate deviation from Kafka: an empty group id fails with
// INVALID_GROUP_ID.
func (c *Coordinator) OffsetFetch(ctx context.Context, cluster string, req *kmsg.OffsetFetchRequest) *kmsg.OffsetFetchResponse {
	resp := kmsg.NewPtrOffsetFetchResponse()
	resp.Version = req.Version

	if req.Version >= 8 {
		for _, rg := range req.Groups {
			var topics []fetchTopic
			if rg.Topics != nil {
				topics = make([]fetchTopic, 0, len(rg.Topics))
				for _, t := range rg.Topics {
					topics = append(topics, fetchTopic{t.Topic, t.Partitions})
				}
			}
			code := kerr.UnsupportedVersion.Code
			var got []fetchedTopic
			if req.Version < 10 {
				got, code = c.fetchOffsets(ctx, cluster, rg.Group, topics, rg.Topics == nil)
			}
			g := kmsg.NewOffsetFetchResponseGroup()
			g.Group = rg.Group
			g.ErrorCode = code
			for _, ft := range got {
				t := kmsg.NewOffsetFetchResponseGroupTopic()
				t.Topic = ft.topic
				for _, fp := range ft.partitions {
					p := kmsg.NewOffsetFetchResponseGroupTopicPartition()
					p.Partition = fp.o.Partition
					p.Offset = fp.o.Offset
					p.LeaderEpoch = fp.o.LeaderEpoch
					p.Metadata = &fp.o.Metadata
					t.Partitions = append(t.Partitions, p)
				}
				g.Topics = append(g.Topics, t)
			}
			resp.Groups = append(resp.Groups, g)
		}
		return resp
	}

	all := req.Version >= 2 && req.Topics == nil
	topics := make([]fetchTopic, 0, len(req.Topics))
	for _, t := range req.Topics {
		topics = append(topics, fetchTopic{t.Topic, t.Partitions})
	}
	got, code := c.fetchOffsets(ctx, cluster, req.Group, topics, all)
	if code != 0 && req.Version < 2 {
		// No top-level error field: every requested partition carries it.
		got = nil
		for _, t := range topics {
			ft := fetchedTopic{topic: t.topic}
			for _, p := range t.partitions {
				ft.partitions = append(ft.partitions, fetchedPartition{o: unknownOffset(t.topic, p), code: code})
			}
			got = append(got, ft)
		}
	}
	resp.ErrorCode = code
	for _, ft := range got {
		t := kmsg.NewOffsetFetchResponseTopic()
		t.Topic = ft.topic
		for _, fp := range ft.partitions {
			p := kmsg.NewOffsetFetchResponseTopicPartition()
			p.Partition = fp.o.Partition
			p.Offset = fp.o.Offset
			p.LeaderEpoch = fp.o.LeaderEpoch
			p.Metadata = &fp.o.Metadata
			p.ErrorCode = fp.code
			t.Partitions = append(t.Partitions, p)
		}
		resp.Topics = append(resp.Topics, t)
	}
	return resp
}

type fetchTopic struct {
	topic      string
	partitions []int32
}

type fetchedTopic struct {
	topic      string
	partitions []fetchedPartition
}

type fetchedPartition struct {
	o    Offset
	code int16
}

func unknownOffset(topic string, partition int32) Offset {
	return Offset{Topic: topic, Partition: partition, Offset: -1, LeaderEpoch: -1}
}

// fetchOffsets answers one group's fetch: the requested partitions, or with
// all set every committed partition, sorted.
func (c *Coordinator) fetchOffsets(ctx context.Context, cluster, groupID string, topics []fetchTopic, all bool) ([]fetchedTopic, int16) {
	if groupID == "" {
		return nil, kerr.InvalidGroupID.Code
	}
	var out []fetchedTopic
	code := c.withOffsets(ctx, key{cluster, groupID}, func(_ *group, offs offsetCache) {
		if all {
			for topic, parts := range offs {
				ft := fetchedTopic{topic: topic}
				for _, o := range parts {
					ft.partitions = append(ft.partitions, fetchedPartition{o: o})
				}
				slices.SortFunc(ft.partitions, func(a, b fetchedPartition) int { return cmp.Compare(a.o.Partition, b.o.Partition) })
				out = append(out, ft)
			}
			slices.SortFunc(out, func(a, b fetchedTopic) int { return cmp.Compare(a.topic, b.topic) })
			return
		}
		for _, t := range topics {
			ft := fetchedTopic{topic: t.topic}
			for _, p := range t.partitions {
				o, ok := offs[t.topic][p]
				if !ok {
					o = unknownOffset(t.topic, p)
				}
				ft.partitions = append(ft.partitions, fetchedPartition{o: o})
			}
			out = append(out, ft)
		}
	})
	if code != 0 {
		return nil, code
	}
	return out, 0
}
