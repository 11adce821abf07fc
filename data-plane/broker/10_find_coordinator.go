package broker

import (
	"github.com/eddy-streams/eddy/internal/acl"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// FindCoordinator (API key 10).
// Versions: 0-4.
//
// Groups (key type 0) and transactional ids (key type 1) are spread over
// the same coordinator slots (hash of cluster and key); each slot is led
// by one broker like a partition, and that broker is the group's
// (groups.go) or the transactional id's (txn.go) coordinator. Other key
// types get INVALID_REQUEST.
//
// Authorization: DESCRIBE on the group (or the transactional id).

func handleFindCoordinator(s *Server, c *conn, req *kmsg.FindCoordinatorRequest) kmsg.Response {
	resp := req.ResponseKind().(*kmsg.FindCoordinatorResponse)
	v := s.view.Load()
	find := func(key string) (int32, string, int32, int16, *string) {
		switch req.CoordinatorType {
		case 0:
			if !c.may(acl.Group, key, acl.Describe) {
				return -1, "", -1, kerr.GroupAuthorizationFailed.Code, nil
			}
		case 1:
			if !c.may(acl.TransactionalID, key, acl.Describe) {
				return -1, "", -1, kerr.TransactionalIDAuthorizationFailed.Code, nil
			}
		default:
			return -1, "", -1, kerr.InvalidRequest.Code, strp("unknown coordinator type")
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
