package broker

import (
	"github.com/eddy-streams/eddy/internal/acl"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// InitProducerId (API key 22).
// Versions: 0-4.
//
// For idempotent producers. Producer ids come from a Postgres sequence, so
// they are unique across the pool and restarts, and are rationed per
// cluster (bounds.go): over the rate the answer is
// THROTTLING_QUOTA_EXCEEDED with throttle_time_ms (Kafka has no such
// quota; this is how it answers its one other rate quota, KIP-599).
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
	id, code, throttle := s.allocateProducerID(c)
	resp.ErrorCode, resp.ThrottleMillis = code, throttle
	if code == 0 {
		resp.ProducerID, resp.ProducerEpoch = id, 0
	}
	return resp
}
