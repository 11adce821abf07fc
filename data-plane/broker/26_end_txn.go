package broker

import (
	"github.com/eddy-streams/eddy/internal/acl"
	"github.com/eddy-streams/eddy/internal/store"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// EndTxn (API key 26).
// Versions: 0-5.
//
// Commits or aborts the producer's transaction (store.EndTxn): one
// Postgres transaction moves it to PrepareCommit or PrepareAbort, queues
// one marker per partition and group and empties its lists; the answer
// follows at once, and the markers are written asynchronously (partition
// leaders; group markers by the groups' coordinators, txn.go). Until they
// are, a new transaction of the id gets CONCURRENT_TRANSACTIONS.
//
// v5 is transaction version 2 (KIP-890 part 2): every end bumps the
// producer epoch (the markers carry the new one) and answers the producer
// id and epoch to use next; a retried v5 end (at the epoch before the
// bump) answers as the first did, and an abort without a transaction is
// allowed (a fresh epoch). Before v5 a repeated end of a completed
// transaction succeeds and any other end outside a transaction is
// INVALID_TXN_STATE. A fenced producer gets PRODUCER_FENCED from v2,
// INVALID_PRODUCER_EPOCH before.
//
// Authorization: WRITE on the transactional id
// (TRANSACTIONAL_ID_AUTHORIZATION_FAILED).

func handleEndTxn(s *Server, c *conn, req *kmsg.EndTxnRequest) kmsg.Response {
	resp := req.ResponseKind().(*kmsg.EndTxnResponse)
	resp.ProducerID, resp.ProducerEpoch = -1, -1
	resp.ErrorCode, resp.ThrottleMillis = s.endTxn(c, req, resp)
	s.txnMet.observe("EndTxn", resp.ErrorCode)
	return resp
}

func (s *Server) endTxn(c *conn, req *kmsg.EndTxnRequest, resp *kmsg.EndTxnResponse) (int16, int32) {
	if !c.may(acl.TransactionalID, req.TransactionalID, acl.Write) {
		return kerr.TransactionalIDAuthorizationFailed.Code, 0
	}
	fence, ok := s.slotFence(c.cluster, req.TransactionalID)
	if !ok {
		return kerr.NotCoordinator.Code, 0
	}
	ctx, cancel := c.txnCtx()
	defer cancel()
	t, wait, err := s.store.EndTxn(ctx, store.EndTxnRequest{
		TxnChange: store.TxnChange{
			TxnKey: store.TxnKey{ClusterID: c.cluster, TransactionalID: req.TransactionalID},
			Fence:  fence, ProducerID: req.ProducerID, ProducerEpoch: req.ProducerEpoch,
		},
		Commit: req.Commit,
		Bump:   req.Version >= 5,
		Budget: s.txnBudget(c.cluster),
	})
	if err == nil && req.Version >= 5 {
		resp.ProducerID, resp.ProducerEpoch = t.ProducerID, t.ProducerEpoch
	}
	return s.txnAnswer(err, wait, fencedCode(req.Version, 2))
}
