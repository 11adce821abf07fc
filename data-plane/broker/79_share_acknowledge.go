package broker

import (
	"github.com/eddy-streams/eddy/data-plane/share"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// ShareAcknowledge (API key 79).
// Versions: 0-2.
//
// KIP-932 share groups, on each partition's leader. The request must carry
// the member's current share-session epoch (it cannot open a session:
// epoch 0 is INVALID_SHARE_SESSION_EPOCH) and advances it; -1 closes the
// session after applying the acknowledgements. Each partition's batches
// are applied whole or not at all (INVALID_RECORD_STATE for a record the
// member does not hold) and written to Postgres before the response, so
// an acknowledged record is never delivered again. v2 IsRenewAck renews
// locks (acknowledge type 4).
//
// Authorization: READ on the group, READ on each topic.

func handleShareAcknowledge(s *Server, c *conn, req *kmsg.ShareAcknowledgeRequest) kmsg.Response {
	resp := req.ResponseKind().(*kmsg.ShareAcknowledgeResponse)
	resp.AcquisitionLockTimeoutMillis = int32(s.cfg.Share.RecordLockDuration.Milliseconds())
	group, member, code := shareMember(c, req.GroupID, req.MemberID)
	if code != 0 {
		resp.ErrorCode = code
		return resp
	}
	sk := share.SessionKey{Cluster: c.cluster, Group: group, Member: member}
	if _, _, err := s.shares.Session(sk, req.ShareSessionEpoch, nil, nil, false); err != nil {
		resp.ErrorCode = shareCode(err)
		return resp
	}
	for _, rt := range req.Topics {
		st := kmsg.NewShareAcknowledgeResponseTopic()
		st.TopicID = rt.TopicID
		for _, rp := range rt.Partitions {
			acks := make([]share.Ack, len(rp.AcknowledgementBatches))
			for i, b := range rp.AcknowledgementBatches {
				acks[i] = share.Ack{First: b.FirstOffset, Last: b.LastOffset, Types: b.AcknowledgeTypes}
			}
			sp := kmsg.NewShareAcknowledgeResponseTopicPartition()
			sp.Partition = rp.Partition
			sp.CurrentLeader.LeaderID, sp.CurrentLeader.LeaderEpoch = -1, -1
			sp.ErrorCode = s.shareAck(c, group, member, rt.TopicID, rp.Partition, acks)
			st.Partitions = append(st.Partitions, sp)
		}
		resp.Topics = append(resp.Topics, st)
	}
	if req.ShareSessionEpoch == -1 {
		s.shares.Close(sk)
		delete(c.shareSessions, sk)
	}
	return resp
}
