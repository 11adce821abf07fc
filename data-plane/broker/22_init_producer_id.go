package broker

import (
	"time"

	"github.com/eddy-streams/eddy/internal/acl"
	"github.com/eddy-streams/eddy/internal/store"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// InitProducerId (API key 22).
// Versions: 0-5.
//
// Producer ids come from a Postgres sequence, so they are unique across
// the pool and restarts, and are rationed per cluster (bounds.go): over
// the rate the answer is THROTTLING_QUOTA_EXCEEDED with throttle_time_ms
// (Kafka has no such quota; this is how it answers its one other rate
// quota, KIP-599).
//
// With a transactional id the transaction coordinator answers (txn.go,
// store.InitTxnProducer): NOT_COORDINATOR from a broker that does not
// lead the id's slot; INVALID_TRANSACTION_TIMEOUT for a timeout that is
// not positive or above --transaction-max-timeout; a new id gets a
// producer id at epoch 0, an existing one the next epoch, which fences
// every older instance (PRODUCER_FENCED from v4, INVALID_PRODUCER_EPOCH
// before). An ongoing transaction is aborted first and, while its markers
// are written, the answer is CONCURRENT_TRANSACTIONS (retriable), as while
// any last transaction completes. v3+ (KIP-360) may name the producer id
// and epoch the client had, which must be the current ones (or those of a
// bump whose answer was lost): PRODUCER_FENCED otherwise. An exhausted
// epoch gives the id a new producer id.
//
// Authorization, as Kafka 3+: a transactional producer needs WRITE on its
// transactional id (TRANSACTIONAL_ID_AUTHORIZATION_FAILED); an idempotent
// one IDEMPOTENT_WRITE on the cluster or WRITE on some topic
// (CLUSTER_AUTHORIZATION_FAILED otherwise).

func handleInitProducerID(s *Server, c *conn, req *kmsg.InitProducerIDRequest) kmsg.Response {
	resp := req.ResponseKind().(*kmsg.InitProducerIDResponse)
	resp.ProducerID, resp.ProducerEpoch = -1, -1
	if req.TransactionalID != nil {
		resp.ErrorCode, resp.ThrottleMillis = s.initTxnProducer(c, req, resp)
		s.txnMet.observe("InitProducerId", resp.ErrorCode)
		return resp
	}
	if !c.decide(acl.Cluster, acl.ClusterName, acl.IdempotentWrite) && !c.mayAny(acl.Topic, acl.Write) {
		c.denied(acl.Cluster, acl.ClusterName, acl.IdempotentWrite)
		resp.ErrorCode = kerr.ClusterAuthorizationFailed.Code
		return resp
	}
	id, code, throttle := s.allocateProducerID(c)
	resp.ErrorCode, resp.ThrottleMillis = code, throttle
	if code == 0 {
		resp.ProducerID, resp.ProducerEpoch = id, 0
	}
	return resp
}

func (s *Server) initTxnProducer(c *conn, req *kmsg.InitProducerIDRequest, resp *kmsg.InitProducerIDResponse) (code int16, throttle int32) {
	txid := *req.TransactionalID
	if !c.may(acl.TransactionalID, txid, acl.Write) {
		return kerr.TransactionalIDAuthorizationFailed.Code, 0
	}
	if txid == "" {
		return kerr.InvalidRequest.Code, 0
	}
	if req.TransactionTimeoutMillis <= 0 || time.Duration(req.TransactionTimeoutMillis)*time.Millisecond > s.cfg.TransactionMaxTimeout {
		return kerr.InvalidTransactionTimeout.Code, 0
	}
	fence, ok := s.slotFence(c.cluster, txid)
	if !ok {
		return kerr.NotCoordinator.Code, 0
	}
	r := store.InitTxn{
		TxnKey:        store.TxnKey{ClusterID: c.cluster, TransactionalID: txid},
		Fence:         fence,
		TimeoutMs:     req.TransactionTimeoutMillis,
		ProducerID:    -1,
		ProducerEpoch: -1,
		Budget:        s.txnBudget(c.cluster),
	}
	if req.Version >= 3 {
		r.ProducerID, r.ProducerEpoch = req.ProducerID, req.ProducerEpoch
	}
	ctx, cancel := c.txnCtx()
	defer cancel()
	t, wait, err := s.store.InitTxnProducer(ctx, r)
	if err == nil {
		resp.ProducerID, resp.ProducerEpoch = t.ProducerID, t.ProducerEpoch
	}
	return s.txnAnswer(err, wait, fencedCode(req.Version, 4))
}
