package broker

import (
	"github.com/eddy-streams/eddy/internal/acl"
	"github.com/eddy-streams/eddy/internal/store"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// TxnOffsetCommit (API key 28).
// Versions: 0-6.
//
// Sent to the group's coordinator, like OffsetCommit: the offsets wait in
// Postgres (txn_offsets, store.CommitTxnOffsets), fenced by the group's
// coordinator slot, until the transaction's group marker commits them
// into the group's offsets or drops them (txn.go). Until then OffsetFetch
// does not show them, and with require_stable answers
// UNSTABLE_OFFSET_COMMIT for their partitions.
//
// The producer must be current: INVALID_PRODUCER_ID_MAPPING,
// PRODUCER_FENCED (INVALID_PRODUCER_EPOCH before v3). Before v5 the group
// must have joined the transaction (AddOffsetsToTxn), else
// INVALID_TXN_STATE; from v5 (transaction version 2) the commit adds it,
// starting the transaction if needed. v3+ member fields are checked by the
// group coordinator (data-plane/group CheckTxnCommit). v6 names topics by
// id (UNKNOWN_TOPIC_ID for an id the cluster does not have). Metadata
// longer than --group-max-offset-metadata-bytes fails that partition with
// OFFSET_METADATA_TOO_LARGE.
//
// Authorization: WRITE on the transactional id
// (TRANSACTIONAL_ID_AUTHORIZATION_FAILED), READ on the group
// (GROUP_AUTHORIZATION_FAILED), READ on each topic
// (TOPIC_AUTHORIZATION_FAILED).

func handleTxnOffsetCommit(s *Server, c *conn, req *kmsg.TxnOffsetCommitRequest) kmsg.Response {
	resp := req.ResponseKind().(*kmsg.TxnOffsetCommitResponse)
	codes := make([][]int16, len(req.Topics))
	for i, t := range req.Topics {
		codes[i] = make([]int16, len(t.Partitions))
	}
	s.txnOffsetCommit(c, req, codes)
	for i, t := range req.Topics {
		rt := kmsg.NewTxnOffsetCommitResponseTopic()
		rt.Topic, rt.TopicID = t.Topic, t.TopicID
		for j, p := range t.Partitions {
			rp := kmsg.NewTxnOffsetCommitResponseTopicPartition()
			rp.Partition, rp.ErrorCode = p.Partition, codes[i][j]
			rt.Partitions = append(rt.Partitions, rp)
		}
		resp.Topics = append(resp.Topics, rt)
	}
	s.txnMet.observe("TxnOffsetCommit", firstCode(codes))
	return resp
}

func (s *Server) txnOffsetCommit(c *conn, req *kmsg.TxnOffsetCommitRequest, codes [][]int16) {
	fill := func(code int16, onlyOK bool) {
		for i := range codes {
			for j := range codes[i] {
				if !onlyOK || codes[i][j] == 0 {
					codes[i][j] = code
				}
			}
		}
	}
	if !c.may(acl.TransactionalID, req.TransactionalID, acl.Write) {
		fill(kerr.TransactionalIDAuthorizationFailed.Code, false)
		return
	}
	if code := s.groupCheck(c, req.Group, acl.Read); code != 0 {
		fill(code, false)
		return
	}
	fence, _ := s.slotFence(c.cluster, req.Group)
	if code := s.groups.CheckTxnCommit(c.groupCtx(), c.cluster, req.Group, req.Version, req.Generation, req.MemberID, req.InstanceID); code != 0 {
		fill(code, false)
		return
	}
	v := s.view.Load()
	var offs []store.GroupOffset
	for i, rt := range req.Topics {
		name := rt.Topic
		var tm *store.Topic
		if req.Version >= 6 {
			if tm = v.topicByID(c.cluster, rt.TopicID); tm == nil {
				for j := range codes[i] {
					codes[i][j] = kerr.UnknownTopicID.Code
				}
				continue
			}
			name = tm.Name
		}
		if !c.may(acl.Topic, name, acl.Read) {
			for j := range codes[i] {
				codes[i][j] = kerr.TopicAuthorizationFailed.Code
			}
			continue
		}
		if tm == nil {
			_, tm = s.topic(c, name)
		}
		for j, p := range rt.Partitions {
			switch {
			case partitionOf(tm, p.Partition) == nil:
				codes[i][j] = kerr.UnknownTopicOrPartition.Code
			case p.Metadata != nil && len(*p.Metadata) > s.cfg.Group.MaxOffsetMetadataBytes:
				codes[i][j] = kerr.OffsetMetadataTooLarge.Code
			default:
				o := store.GroupOffset{Topic: name, Partition: p.Partition, Offset: p.Offset, LeaderEpoch: -1}
				if req.Version >= 2 {
					o.LeaderEpoch = p.LeaderEpoch
				}
				if p.Metadata != nil {
					o.Metadata = *p.Metadata
				}
				offs = append(offs, o)
			}
		}
	}
	if len(offs) == 0 {
		return
	}
	ctx, cancel := c.txnCtx()
	defer cancel()
	err := s.store.CommitTxnOffsets(ctx, store.TxnOffsetCommit{
		TxnKey:     store.TxnKey{ClusterID: c.cluster, TransactionalID: req.TransactionalID},
		ProducerID: req.ProducerID, ProducerEpoch: req.ProducerEpoch,
		Group: req.Group, GroupFence: fence,
		AddGroup: req.Version >= 5,
		Offsets:  offs,
	})
	if err != nil {
		fill(s.txnCode(err, fencedCode(req.Version, 3)), true)
	}
}
