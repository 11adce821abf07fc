package broker

import (
	"github.com/eddy-streams/eddy/internal/acl"
	"github.com/eddy-streams/eddy/internal/store"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// DescribeCluster v0-v1: the shared broker pool, the connection's virtual
// cluster id as the cluster id. It needs no authorization (nothing in it
// belongs to the tenant but its own cluster id), as in Kafka; the
// cluster's authorized operations are reported when asked for.
func handleDescribeCluster(s *Server, c *conn, req *kmsg.DescribeClusterRequest) kmsg.Response {
	resp := req.ResponseKind().(*kmsg.DescribeClusterResponse)
	v := s.view.Load()
	if req.Version >= 1 && req.EndpointType != 1 {
		resp.ErrorCode = kerr.UnsupportedEndpointType.Code
		resp.ErrorMessage = strp("only broker endpoints are described")
		return resp
	}
	resp.ClusterID = c.cluster
	resp.ControllerID = s.controllerID(v)
	resp.EndpointType = 1
	resp.ClusterAuthorizedOperations = -2147483648
	if req.IncludeClusterAuthorizedOperations {
		resp.ClusterAuthorizedOperations = c.authorizedOps(acl.Cluster, acl.ClusterName)
	}
	for _, b := range v.brokers {
		rb := kmsg.NewDescribeClusterResponseBroker()
		rb.NodeID, rb.Host, rb.Port, rb.Rack = b.ID, b.Host, b.Port, strp(b.Rack)
		resp.Brokers = append(resp.Brokers, rb)
	}
	return resp
}

// InitProducerId v0-v4 for idempotent producers. Producer ids come from a
// Postgres sequence, so they are unique across the pool and restarts, and
// are rationed per cluster (bounds.go): over the rate the answer is
// THROTTLING_QUOTA_EXCEEDED with throttle_time_ms.
// Deviation: transactional ids are refused with
// TRANSACTIONAL_ID_AUTHORIZATION_FAILED until transactions exist.
// Authorization, as Kafka 3+: an idempotent producer needs
// IDEMPOTENT_WRITE on the cluster or WRITE on some topic
// (CLUSTER_AUTHORIZATION_FAILED otherwise).
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

// OffsetForLeaderEpoch v2-v4 (KIP-320). Committed data is never truncated
// — a new leader starts at the committed high watermark — so the end offset
// of any epoch a consumer asks about is the high watermark: consumers never
// detect a truncation, because none can happen below it. Authorization:
// DESCRIBE on each topic.
func handleOffsetForLeaderEpoch(s *Server, c *conn, req *kmsg.OffsetForLeaderEpochRequest) kmsg.Response {
	resp := req.ResponseKind().(*kmsg.OffsetForLeaderEpochResponse)
	for _, rt := range req.Topics {
		st := kmsg.NewOffsetForLeaderEpochResponseTopic()
		st.Topic = rt.Topic
		denied := !c.may(acl.Topic, rt.Topic, acl.Describe)
		var t *store.Topic
		if !denied {
			_, t = s.topic(c, rt.Topic)
		}
		for _, rp := range rt.Partitions {
			sp := kmsg.NewOffsetForLeaderEpochResponseTopicPartition()
			sp.Partition, sp.LeaderEpoch, sp.EndOffset = rp.Partition, -1, -1
			pm := partitionOf(t, rp.Partition)
			switch {
			case denied:
				sp.ErrorCode = kerr.TopicAuthorizationFailed.Code
			case pm == nil:
				sp.ErrorCode = kerr.UnknownTopicOrPartition.Code
			default:
				p, code := s.ledPartition(pm, rp.CurrentLeaderEpoch)
				switch {
				case code != 0:
					sp.ErrorCode = code
				default:
					_, hw := p.Offsets()
					sp.LeaderEpoch, sp.EndOffset = min(rp.LeaderEpoch, p.Epoch), hw
				}
			}
			st.Partitions = append(st.Partitions, sp)
		}
		resp.Topics = append(resp.Topics, st)
	}
	return resp
}
