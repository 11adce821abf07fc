package broker

import (
	"context"
	"time"

	"github.com/eddy-streams/eddy/internal/acl"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// InitProducerId (API key 22).
// Versions: 0-4.
//
// For idempotent producers. Producer ids come from a Postgres sequence, so
// they are unique across the pool and restarts.
//
// Deviation: transactional ids are refused with
// TRANSACTIONAL_ID_AUTHORIZATION_FAILED until transactions exist.
//
// Authorization, as Kafka 3+: an idempotent producer needs IDEMPOTENT_WRITE
// on the cluster or WRITE on some topic (CLUSTER_AUTHORIZATION_FAILED
// otherwise).

func handleInitProducerID(s *Server, c *conn, req *kmsg.InitProducerIDRequest) kmsg.Response {
	resp := req.ResponseKind().(*kmsg.InitProducerIDResponse)
	resp.ProducerID, resp.ProducerEpoch = -1, -1
	if req.TransactionalID != nil {
		c.may(acl.TransactionalID, *req.TransactionalID, acl.Write) // audited either way
		resp.ErrorCode = kerr.TransactionalIDAuthorizationFailed.Code
		return resp
	}
	if !c.decide(acl.Cluster, acl.ClusterName, acl.IdempotentWrite) && !c.mayAny(acl.Topic, acl.Write) {
		c.denied(acl.Cluster, acl.ClusterName, acl.IdempotentWrite)
		resp.ErrorCode = kerr.ClusterAuthorizationFailed.Code
		return resp
	}
	ctx, cancel := context.WithTimeout(c.ctx, 10*time.Second)
	defer cancel()
	id, err := s.store.NextProducerID(ctx)
	if err != nil {
		s.log.Warn("producer id allocation failed", "err", err)
		resp.ErrorCode = kerr.CoordinatorNotAvailable.Code
		return resp
	}
	resp.ProducerID, resp.ProducerEpoch = id, 0
	return resp
}
