package broker

import (
	"github.com/eddy-streams/eddy/internal/acl"
	"github.com/eddy-streams/eddy/internal/store"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// OffsetCommit (API key 8).
// Versions: 0-8.
//
// Commits are fenced by the coordinator slot's leader epoch in Postgres
// (store.CommitOffsetsBatch, batched across requests by commitbatch.go), so
// a commit in flight while the slot moves fails with NOT_COORDINATOR
// instead of landing behind the new coordinator's back (groups.go).
// Partitions of topics that do not exist are refused here. The protocol,
// with its deviations, is data-plane/group's 08_offset_commit.go.
//
// Authorization: READ on the group, then READ on each topic named.

func handleOffsetCommit(s *Server, c *conn, req *kmsg.OffsetCommitRequest) kmsg.Response {
	code := int16(0)
	fence, ok := s.slotFence(c.cluster, req.Group)
	if !c.may(acl.Group, req.Group, acl.Read) {
		code = kerr.GroupAuthorizationFailed.Code
	} else if !ok {
		code = kerr.NotCoordinator.Code
	}
	if code != 0 {
		resp := req.ResponseKind().(*kmsg.OffsetCommitResponse)
		for _, rt := range req.Topics {
			st := kmsg.NewOffsetCommitResponseTopic()
			st.Topic = rt.Topic
			for _, rp := range rt.Partitions {
				sp := kmsg.NewOffsetCommitResponseTopicPartition()
				sp.Partition, sp.ErrorCode = rp.Partition, code
				st.Partitions = append(st.Partitions, sp)
			}
			resp.Topics = append(resp.Topics, st)
		}
		return resp
	}
	// Partitions of topics the principal may not read, or that do not
	// exist, are refused here; the coordinator only sees commits for
	// partitions that exist in the connection's cluster.
	var unknown []kmsg.OffsetCommitResponseTopic
	known := req.Topics[:0:0]
	for _, rt := range req.Topics {
		denied := !c.may(acl.Topic, rt.Topic, acl.Read)
		var t *store.Topic
		if !denied {
			_, t = s.topic(c, rt.Topic)
		}
		kt := rt
		kt.Partitions = nil
		var ut *kmsg.OffsetCommitResponseTopic
		for _, rp := range rt.Partitions {
			if partitionOf(t, rp.Partition) != nil {
				kt.Partitions = append(kt.Partitions, rp)
				continue
			}
			if ut == nil {
				nt := kmsg.NewOffsetCommitResponseTopic()
				nt.Topic = rt.Topic
				ut = &nt
			}
			sp := kmsg.NewOffsetCommitResponseTopicPartition()
			sp.Partition, sp.ErrorCode = rp.Partition, kerr.UnknownTopicOrPartition.Code
			if denied {
				sp.ErrorCode = kerr.TopicAuthorizationFailed.Code
			}
			ut.Partitions = append(ut.Partitions, sp)
		}
		if len(kt.Partitions) > 0 {
			known = append(known, kt)
		}
		if ut != nil {
			unknown = append(unknown, *ut)
		}
	}
	req.Topics = known
	resp := s.groups.OffsetCommit(c.fencedCtx(fence), c.cluster, req)
	resp.Topics = append(resp.Topics, unknown...)
	return resp
}
