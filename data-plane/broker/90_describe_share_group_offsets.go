package broker

import (
	"github.com/eddy-streams/eddy/data-plane/share"
	"github.com/eddy-streams/eddy/internal/acl"
	"github.com/eddy-streams/eddy/internal/store"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// DescribeShareGroupOffsets (API key 90).
// Versions: 0-1.
//
// KIP-932 share groups, on the group's coordinator: each share-partition's
// start offset and (v1) lag, the records from it to the high watermark not
// yet acknowledged or archived, read from Postgres. Null Topics describes
// every share-partition of the group; a named partition without state has
// start offset -1. LeaderEpoch is -1.
//
// Authorization: DESCRIBE on each group; topics the principal may not
// DESCRIBE are left out of a full listing and refused when named.

func handleDescribeShareGroupOffsets(s *Server, c *conn, req *kmsg.DescribeShareGroupOffsetsRequest) kmsg.Response {
	resp := req.ResponseKind().(*kmsg.DescribeShareGroupOffsetsResponse)
	for _, rg := range req.Groups {
		g := kmsg.NewDescribeShareGroupOffsetsResponseGroup()
		g.GroupID = rg.GroupID
		if g.ErrorCode = s.groupCheck(c, rg.GroupID, acl.Describe); g.ErrorCode != 0 {
			resp.Groups = append(resp.Groups, g)
			continue
		}
		rows, err := s.store.ShareOffsets(c.ctx, c.cluster, rg.GroupID)
		if err != nil {
			g.ErrorCode, _ = errCode(err)
			resp.Groups = append(resp.Groups, g)
			continue
		}
		byTopic := map[string][]store.ShareOffset{}
		var order []string
		for _, r := range rows {
			if _, ok := byTopic[r.Topic]; !ok {
				order = append(order, r.Topic)
			}
			byTopic[r.Topic] = append(byTopic[r.Topic], r)
		}
		if rg.Topics == nil {
			for _, name := range order {
				if !c.sees(acl.Topic, name) {
					continue
				}
				rt := kmsg.NewDescribeShareGroupOffsetsResponseGroupTopic()
				rt.Topic, rt.TopicID = name, byTopic[name][0].TopicID
				for _, r := range byTopic[name] {
					rt.Partitions = append(rt.Partitions, shareOffsetOf(r))
				}
				g.Topics = append(g.Topics, rt)
			}
			resp.Groups = append(resp.Groups, g)
			continue
		}
		v := s.view.Load()
		for _, qt := range rg.Topics {
			rt := kmsg.NewDescribeShareGroupOffsetsResponseGroupTopic()
			rt.Topic = qt.Topic
			t := v.topic(c.cluster, qt.Topic)
			visible := t != nil && c.sees(acl.Topic, qt.Topic)
			if visible {
				rt.TopicID = t.ID
			}
			for _, p := range qt.Partitions {
				rp := kmsg.NewDescribeShareGroupOffsetsResponseGroupTopicPartition()
				rp.Partition, rp.StartOffset, rp.LeaderEpoch = p, -1, -1
				switch {
				case !c.may(acl.Topic, qt.Topic, acl.Describe):
					rp.ErrorCode = kerr.TopicAuthorizationFailed.Code
				case !visible || partitionOf(t, p) == nil:
					rp.ErrorCode = kerr.UnknownTopicOrPartition.Code
				default:
					for _, r := range byTopic[qt.Topic] {
						if r.Partition == p {
							rp = shareOffsetOf(r)
						}
					}
				}
				rt.Partitions = append(rt.Partitions, rp)
			}
			g.Topics = append(g.Topics, rt)
		}
		resp.Groups = append(resp.Groups, g)
	}
	return resp
}

func shareOffsetOf(r store.ShareOffset) kmsg.DescribeShareGroupOffsetsResponseGroupTopicPartition {
	rp := kmsg.NewDescribeShareGroupOffsetsResponseGroupTopicPartition()
	rp.Partition, rp.StartOffset, rp.LeaderEpoch = r.Partition, r.Start, -1
	rp.Lag = share.Lag(r.State, r.Start, r.HighWatermark)
	return rp
}
