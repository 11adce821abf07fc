package broker

import (
	"github.com/eddy-streams/eddy/internal/acl"
	"github.com/eddy-streams/eddy/internal/store"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// AddOffsetsToTxn (API key 25).
// Versions: 0-4.
//
// The consumer group joins the producer's transaction, which becomes
// Ongoing (store.AddTxnGroup): the offsets the producer then commits for
// it with TxnOffsetCommit are committed or dropped with the transaction.
// Errors as AddPartitionsToTxn's; a fenced producer gets PRODUCER_FENCED
// from v2, INVALID_PRODUCER_EPOCH before.
//
// Authorization: WRITE on the transactional id
// (TRANSACTIONAL_ID_AUTHORIZATION_FAILED), READ on the group
// (GROUP_AUTHORIZATION_FAILED).

func handleAddOffsetsToTxn(s *Server, c *conn, req *kmsg.AddOffsetsToTxnRequest) kmsg.Response {
	resp := req.ResponseKind().(*kmsg.AddOffsetsToTxnResponse)
	resp.ErrorCode = s.addOffsetsToTxn(c, req)
	s.txnMet.observe("AddOffsetsToTxn", resp.ErrorCode)
	return resp
}

func (s *Server) addOffsetsToTxn(c *conn, req *kmsg.AddOffsetsToTxnRequest) int16 {
	if !c.may(acl.TransactionalID, req.TransactionalID, acl.Write) {
		return kerr.TransactionalIDAuthorizationFailed.Code
	}
	if !c.may(acl.Group, req.Group, acl.Read) {
		return kerr.GroupAuthorizationFailed.Code
	}
	if req.Group == "" {
		return kerr.InvalidGroupID.Code
	}
	fence, ok := s.slotFence(c.cluster, req.TransactionalID)
	if !ok {
		return kerr.NotCoordinator.Code
	}
	ctx, cancel := c.txnCtx()
	defer cancel()
	err := s.store.AddTxnGroup(ctx, store.TxnChange{
		TxnKey: store.TxnKey{ClusterID: c.cluster, TransactionalID: req.TransactionalID},
		Fence:  fence, ProducerID: req.ProducerID, ProducerEpoch: req.ProducerEpoch,
	}, req.Group)
	return s.txnCode(err, fencedCode(req.Version, 2))
}
