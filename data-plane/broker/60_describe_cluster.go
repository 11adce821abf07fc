package broker

import (
	"github.com/eddy-streams/eddy/internal/acl"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// DescribeCluster (API key 60).
// Versions: 0-1.
//
// The shared broker pool, the connection's virtual cluster id as the
// cluster id. The cluster's authorized operations are reported when asked
// for.
//
// No authorization (nothing in it belongs to the tenant but its own cluster
// id), as in Kafka.

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
