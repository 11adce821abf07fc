package broker

import (
	"github.com/eddy-streams/eddy/internal/acl"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// FindCoordinator (API key 10).
// Versions: 0-4.
//
// Groups are spread over coordinator slots (hash of cluster and group id);
// each slot is led by one broker like a partition, and that broker is the
// group's coordinator (groups.go).
//
// Deviation: transaction coordinators (key type 1) do not exist yet:
// COORDINATOR_NOT_AVAILABLE.
//
// Authorization: DESCRIBE on the group (or the transactional id).

func handleFindCoordinator(s *Server, c *conn, req *kmsg.FindCoordinatorRequest) kmsg.Response {
	resp := req.ResponseKind().(*kmsg.FindCoordinatorResponse)
	v := s.view.Load()
	find := func(key string) (int32, string, int32, int16, *string) {
		if req.CoordinatorType != 0 {
			if !c.may(acl.TransactionalID, key, acl.Describe) {
				return -1, "", -1, kerr.TransactionalIDAuthorizationFailed.Code, nil
			}
			return -1, "", -1, kerr.CoordinatorNotAvailable.Code, strp("transactions are not supported yet")
		}
		if !c.may(acl.Group, key, acl.Describe) {
			return -1, "", -1, kerr.GroupAuthorizationFailed.Code, nil
		}
		id := v.coordinatorOf(c.cluster, key)
		b, ok := v.byBroker[id]
		if !ok {
			return -1, "", -1, kerr.CoordinatorNotAvailable.Code, strp("no coordinator is available yet")
		}
		return b.ID, b.Host, b.Port, 0, nil
	}
	if req.Version >= 4 {
		for _, key := range req.CoordinatorKeys {
			rc := kmsg.NewFindCoordinatorResponseCoordinator()
			rc.Key = key
			rc.NodeID, rc.Host, rc.Port, rc.ErrorCode, rc.ErrorMessage = find(key)
			resp.Coordinators = append(resp.Coordinators, rc)
		}
		return resp
	}
	resp.NodeID, resp.Host, resp.Port, resp.ErrorCode, resp.ErrorMessage = find(req.CoordinatorKey)
	return resp
}
