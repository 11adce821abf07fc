package broker

import (
	"errors"

	"github.com/eddy-streams/eddy/internal/acl"
	"github.com/eddy-streams/eddy/internal/store"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// DescribeTransactions (API key 65).
// Versions: 0-0.
//
// Answered by each transactional id's coordinator (NOT_COORDINATOR
// elsewhere) from Postgres (store.Txn): state (a Prepare* state whose
// markers are all written shows as Complete*), timeout, start time (-1
// when none), producer id and epoch, and the partitions of the ongoing
// transaction; TRANSACTIONAL_ID_NOT_FOUND for an id the cluster does not
// have.
//
// Authorization: DESCRIBE on the transactional id
// (TRANSACTIONAL_ID_AUTHORIZATION_FAILED); partitions of topics the
// principal may not describe are left out.

func handleDescribeTransactions(s *Server, c *conn, req *kmsg.DescribeTransactionsRequest) kmsg.Response {
	resp := req.ResponseKind().(*kmsg.DescribeTransactionsResponse)
	for _, id := range req.TransactionalIDs {
		st := kmsg.NewDescribeTransactionsResponseTransactionState()
		st.TransactionalID, st.StartTimestamp, st.ProducerID, st.ProducerEpoch = id, -1, -1, -1
		st.ErrorCode = s.describeTxn(c, id, &st)
		resp.TransactionStates = append(resp.TransactionStates, st)
	}
	return resp
}

func (s *Server) describeTxn(c *conn, id string, st *kmsg.DescribeTransactionsResponseTransactionState) int16 {
	if !c.may(acl.TransactionalID, id, acl.Describe) {
		return kerr.TransactionalIDAuthorizationFailed.Code
	}
	if !s.owns(c, id) {
		return kerr.NotCoordinator.Code
	}
	ctx, cancel := c.txnCtx()
	defer cancel()
	t, err := s.store.Txn(ctx, store.TxnKey{ClusterID: c.cluster, TransactionalID: id})
	if errors.Is(err, store.ErrNotFound) {
		return kerr.TransactionalIDNotFound.Code
	}
	if err != nil {
		return s.txnCode(err, kerr.ProducerFenced.Code)
	}
	st.State, st.TimeoutMillis = string(t.State), t.TimeoutMs
	st.ProducerID, st.ProducerEpoch = t.ProducerID, t.ProducerEpoch
	if !t.StartedAt.IsZero() {
		st.StartTimestamp = t.StartedAt.UnixMilli()
	}
	for _, p := range t.Partitions {
		if !c.sees(acl.Topic, p.Topic) {
			continue
		}
		if n := len(st.Topics); n == 0 || st.Topics[n-1].Topic != p.Topic {
			tt := kmsg.NewDescribeTransactionsResponseTransactionStateTopic()
			tt.Topic = p.Topic
			st.Topics = append(st.Topics, tt)
		}
		tt := &st.Topics[len(st.Topics)-1]
		tt.Partitions = append(tt.Partitions, p.Partition)
	}
	return 0
}
