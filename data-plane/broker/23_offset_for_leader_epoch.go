package broker

import (
	"github.com/eddy-streams/eddy/internal/acl"
	"github.com/eddy-streams/eddy/internal/store"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// OffsetForLeaderEpoch (API key 23).
// Versions: 2-4.
//
// KIP-320. Committed data is never truncated — a new leader starts at the
// committed high watermark — so the end offset of any epoch a consumer asks
// about is the high watermark: consumers never detect a truncation, because
// none can happen below it.
//
// Authorization: DESCRIBE on each topic.

func handleOffsetForLeaderEpoch(s *Server, c *conn, req *kmsg.OffsetForLeaderEpochRequest) kmsg.Response {
	resp := req.ResponseKind().(*kmsg.OffsetForLeaderEpochResponse)
	for _, rt := range req.Topics {
		st := kmsg.NewOffsetForLeaderEpochResponseTopic()
		st.Topic = rt.Topic
		denied := !c.may(acl.Topic, rt.Topic, acl.Describe)
		var t *store.Topic
		if !denied {
			_, t = s.topic(c, rt.Topic)
		}
		for _, rp := range rt.Partitions {
			sp := kmsg.NewOffsetForLeaderEpochResponseTopicPartition()
			sp.Partition, sp.LeaderEpoch, sp.EndOffset = rp.Partition, -1, -1
			if denied {
				sp.ErrorCode = kerr.TopicAuthorizationFailed.Code
			} else if p, code := s.ledFor(t, rp.Partition, rp.CurrentLeaderEpoch); code != 0 {
				sp.ErrorCode = code
			} else {
				_, hw := p.Offsets()
				sp.LeaderEpoch, sp.EndOffset = min(rp.LeaderEpoch, p.Epoch), hw
			}
			st.Partitions = append(st.Partitions, sp)
		}
		resp.Topics = append(resp.Topics, st)
	}
	return resp
}
