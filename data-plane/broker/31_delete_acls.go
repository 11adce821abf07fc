package broker

import (
	"context"
	"time"

	"github.com/eddy-streams/eddy/internal/acl"
	"github.com/eddy-streams/eddy/internal/store"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// DeleteAcls (API key 31).
// Versions: 0-3.
//
// ACLs belong to the connection's virtual cluster: only its ACLs are
// deleted. Brokers apply changes within moments, on open connections too
// (authz.go).
//
// Deviations: filters on resource types other than topic, group, cluster
// and transactional id are INVALID_REQUEST, except that filters on
// delegation tokens or users match nothing.
//
// Authorization: ALTER on the cluster (CLUSTER_AUTHORIZATION_FAILED
// otherwise).

func handleDeleteACLs(s *Server, c *conn, req *kmsg.DeleteACLsRequest) kmsg.Response {
	resp := req.ResponseKind().(*kmsg.DeleteACLsResponse)
	fail := func(code int16, msg string) {
		for range req.Filters {
			r := kmsg.NewDeleteACLsResponseResult()
			r.ErrorCode, r.ErrorMessage = code, strp(msg)
			resp.Results = append(resp.Results, r)
		}
	}
	if !c.may(acl.Cluster, acl.ClusterName, acl.Alter) {
		fail(kerr.ClusterAuthorizationFailed.Code, "not authorized to delete ACLs")
		return resp
	}
	ctx, cancel := context.WithTimeout(c.ctx, 30*time.Second)
	defer cancel()
	all, err := s.store.ClusterACLs(ctx, c.cluster)
	if err != nil {
		code, _ := errCode(err)
		fail(code, "ACLs could not be read; try again")
		return resp
	}
	// Match every filter against the same set, delete the union once, and
	// report under each filter what it matched and was deleted.
	matched := make([][]*acl.ACL, len(req.Filters))
	bad := make([]bool, len(req.Filters))
	var ids []string
	seen := map[string]bool{}
	for i, rf := range req.Filters {
		f, none, ok := acl.FilterFromKafka(rf.ResourceType, rf.ResourceName, rf.ResourcePatternType, rf.Principal, rf.Host, rf.Operation, rf.PermissionType)
		if !ok {
			bad[i] = true
			continue
		}
		if none {
			continue
		}
		for j := range all {
			if a := &all[j].ACL; f.Matches(a) {
				matched[i] = append(matched[i], a)
				if !seen[a.ID] {
					seen[a.ID] = true
					ids = append(ids, a.ID)
				}
			}
		}
	}
	deleted := map[string]bool{}
	if len(ids) > 0 {
		gone, err := s.store.DeleteACLs(ctx, store.AnyOrg, c.cluster, ids)
		if err != nil {
			code, _ := errCode(err)
			resp.Results = nil
			fail(code, "ACLs could not be deleted; try again")
			return resp
		}
		for _, a := range gone {
			deleted[a.ID] = true
		}
	}
	for i := range req.Filters {
		r := kmsg.NewDeleteACLsResponseResult()
		if bad[i] {
			r.ErrorCode, r.ErrorMessage = kerr.InvalidRequest.Code, strp("the filter holds an unknown resource type, pattern type, operation or permission")
		}
		for _, a := range matched[i] {
			if !deleted[a.ID] {
				continue // deleted meanwhile by someone else
			}
			m := kmsg.NewDeleteACLsResponseResultMatchingACL()
			m.ResourceType, m.ResourcePatternType, m.Operation, m.PermissionType = a.Kafka()
			m.ResourceName, m.Principal, m.Host = a.ResourceName, a.Principal, a.Host
			r.MatchingACLs = append(r.MatchingACLs, m)
		}
		resp.Results = append(resp.Results, r)
	}
	return resp
}
