package broker

import (
	"github.com/eddy-streams/eddy/data-plane/share"
	"github.com/eddy-streams/eddy/internal/acl"
	"github.com/eddy-streams/eddy/internal/store"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// DeleteShareGroupOffsets (API key 92).
// Versions: 0-0.
//
// KIP-932 share groups, on the group's coordinator, while the group has no
// members (NON_EMPTY_GROUP otherwise): the state of every share-partition
// of each named topic is deleted, so the group starts those partitions
// over at share.auto.offset.reset; a topic named again is INVALID_REQUEST.
// As for AlterShareGroupOffsets, leaders
// holding the old state drop it at their next write.
//
// Authorization: DELETE on the group, READ on each topic.

func handleDeleteShareGroupOffsets(s *Server, c *conn, req *kmsg.DeleteShareGroupOffsetsRequest) kmsg.Response {
	resp := req.ResponseKind().(*kmsg.DeleteShareGroupOffsetsResponse)
	if resp.ErrorCode = s.shareAdminCheck(c, req.GroupID, acl.Delete); resp.ErrorCode != 0 {
		return resp
	}
	v := s.view.Load()
	var rows []store.SharePartitionState
	var keys []share.Key
	// A topic named twice would put two rows for one key in one upsert,
	// which Postgres rejects whole: the repeat is INVALID_REQUEST.
	seen := make(map[[16]byte]bool)
	for _, qt := range req.Topics {
		rt := kmsg.NewDeleteShareGroupOffsetsResponseTopic()
		rt.Topic = qt.Topic
		t := v.topic(c.cluster, qt.Topic)
		switch {
		case !c.may(acl.Topic, qt.Topic, acl.Read):
			rt.ErrorCode = kerr.TopicAuthorizationFailed.Code
		case t == nil:
			rt.ErrorCode = kerr.UnknownTopicOrPartition.Code
		case seen[t.ID]:
			rt.TopicID = t.ID
			rt.ErrorCode = kerr.InvalidRequest.Code
		default:
			seen[t.ID] = true
			rt.TopicID = t.ID
			for _, pm := range t.Partitions {
				rows = append(rows, store.SharePartitionState{ClusterID: c.cluster, Group: req.GroupID, PartitionID: pm.ID, Start: -1})
				keys = append(keys, share.Key{Cluster: c.cluster, Group: req.GroupID, Topic: t.ID, Partition: pm.Partition})
			}
		}
		resp.Topics = append(resp.Topics, rt)
	}
	if err := s.resetShares(c, rows, keys); err != nil {
		resp.ErrorCode, _ = errCode(err)
	}
	return resp
}
