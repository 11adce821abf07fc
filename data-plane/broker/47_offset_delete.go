package broker

import (
	"github.com/eddy-streams/eddy/internal/acl"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// OffsetDelete (API key 47).
// Versions: 0-0.
//
// The protocol, with its deviations, is data-plane/group's 47_offset_delete.go.
//
// Authorization: DELETE on the group, then READ on each topic.

func handleOffsetDelete(s *Server, c *conn, req *kmsg.OffsetDeleteRequest) kmsg.Response {
	if code := s.groupCheck(c, req.Group, acl.Delete); code != 0 {
		resp := req.ResponseKind().(*kmsg.OffsetDeleteResponse)
		resp.ErrorCode = code
		return resp
	}
	// Topics the principal may not read are refused here, the rest go to
	// the coordinator.
	var denied []kmsg.OffsetDeleteResponseTopic
	kept := req.Topics[:0:0]
	for _, rt := range req.Topics {
		if c.may(acl.Topic, rt.Topic, acl.Read) {
			kept = append(kept, rt)
			continue
		}
		st := kmsg.NewOffsetDeleteResponseTopic()
		st.Topic = rt.Topic
		for _, rp := range rt.Partitions {
			sp := kmsg.NewOffsetDeleteResponseTopicPartition()
			sp.Partition, sp.ErrorCode = rp.Partition, kerr.TopicAuthorizationFailed.Code
			st.Partitions = append(st.Partitions, sp)
		}
		denied = append(denied, st)
	}
	one := *req
	one.Topics = kept
	resp := s.groups.OffsetDelete(c.groupCtx(), c.cluster, &one)
	resp.Topics = append(resp.Topics, denied...)
	return resp
}
