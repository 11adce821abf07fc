package broker

import (
	"context"
	"errors"
	"sort"
	"time"

	"github.com/eddy-streams/eddy/internal/acl"
	"github.com/eddy-streams/eddy/internal/store"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// DescribeAcls v0-v3, CreateAcls v0-v3, DeleteAcls v0-v3.
//
// ACLs belong to the connection's virtual cluster: these APIs read and
// change only its ACLs, and the grants they make or refuse apply only in
// it, whatever principal or resource they name. DescribeAcls needs
// DESCRIBE on the cluster, the other two ALTER (CLUSTER_AUTHORIZATION_FAILED
// otherwise). Deviations: principals are User:<service-account-id> or
// User:*, hosts * or an IP address, and resource types topic, group,
// cluster and transactional id (INVALID_REQUEST otherwise; filters on
// delegation tokens or users match nothing). Brokers apply changes within
// moments, on open connections too (authz.go).

func handleDescribeACLs(s *Server, c *conn, req *kmsg.DescribeACLsRequest) kmsg.Response {
	resp := req.ResponseKind().(*kmsg.DescribeACLsResponse)
	if !c.may(acl.Cluster, acl.ClusterName, acl.Describe) {
		resp.ErrorCode, resp.ErrorMessage = kerr.ClusterAuthorizationFailed.Code, strp("not authorized to describe ACLs")
		return resp
	}
	f, none, ok := acl.FilterFromKafka(req.ResourceType, req.ResourceName, req.ResourcePatternType, req.Principal, req.Host, req.Operation, req.PermissionType)
	if !ok {
		resp.ErrorCode, resp.ErrorMessage = kerr.InvalidRequest.Code, strp("the filter holds an unknown resource type, pattern type, operation or permission")
		return resp
	}
	if none {
		return resp
	}
	ctx, cancel := context.WithTimeout(c.ctx, 10*time.Second)
	defer cancel()
	all, err := s.store.ClusterACLs(ctx, c.cluster)
	if err != nil {
		resp.ErrorCode, _ = errCode(err)
		resp.ErrorMessage = strp("ACLs could not be read; try again")
		return resp
	}
	// One entry per resource pattern, as Kafka groups them.
	type pattern struct {
		rt   acl.ResourceType
		name string
		pt   acl.PatternType
	}
	idx := map[pattern]int{}
	for i := range all {
		a := &all[i].ACL
		if !f.Matches(a) {
			continue
		}
		rt, pt, op, perm := a.Kafka()
		k := pattern{a.ResourceType, a.ResourceName, a.PatternType}
		n, seen := idx[k]
		if !seen {
			r := kmsg.NewDescribeACLsResponseResource()
			r.ResourceType, r.ResourceName, r.ResourcePatternType = rt, a.ResourceName, pt
			resp.Resources = append(resp.Resources, r)
			n = len(resp.Resources) - 1
			idx[k] = n
		}
		ra := kmsg.NewDescribeACLsResponseResourceACL()
		ra.Principal, ra.Host, ra.Operation, ra.PermissionType = a.Principal, a.Host, op, perm
		resp.Resources[n].ACLs = append(resp.Resources[n].ACLs, ra)
	}
	sort.SliceStable(resp.Resources, func(i, j int) bool {
		a, b := resp.Resources[i], resp.Resources[j]
		if a.ResourceType != b.ResourceType {
			return a.ResourceType < b.ResourceType
		}
		return a.ResourceName < b.ResourceName
	})
	return resp
}

func handleCreateACLs(s *Server, c *conn, req *kmsg.CreateACLsRequest) kmsg.Response {
	resp := req.ResponseKind().(*kmsg.CreateACLsResponse)
	allowed := c.may(acl.Cluster, acl.ClusterName, acl.Alter)
	ctx, cancel := context.WithTimeout(c.ctx, 30*time.Second)
	defer cancel()
	for _, cr := range req.Creations {
		r := kmsg.NewCreateACLsResponseResult()
		if !allowed {
			r.ErrorCode, r.ErrorMessage = kerr.ClusterAuthorizationFailed.Code, strp("not authorized to create ACLs")
			resp.Results = append(resp.Results, r)
			continue
		}
		rt, pt, op, perm, ok := acl.FromKafka(cr.ResourceType, cr.ResourcePatternType, cr.Operation, cr.PermissionType)
		if !ok {
			r.ErrorCode, r.ErrorMessage = kerr.InvalidRequest.Code, strp("resource type, pattern type, operation and permission must be concrete values (topic, group, cluster or transactional id; literal or prefixed)")
			resp.Results = append(resp.Results, r)
			continue
		}
		a := acl.ACL{Cluster: c.cluster, Principal: cr.Principal, ResourceType: rt, ResourceName: cr.ResourceName,
			PatternType: pt, Operation: op, Permission: perm, Host: cr.Host}
		if err := a.Validate(); err != nil {
			var fe *acl.FieldError
			msg := err.Error()
			if errors.As(err, &fe) {
				msg = fe.Field + " " + fe.Message
			}
			r.ErrorCode, r.ErrorMessage = kerr.InvalidRequest.Code, strp(msg)
			resp.Results = append(resp.Results, r)
			continue
		}
		// An identical ACL exists: success, as in Kafka.
		if _, err := s.store.CreateACL(ctx, store.AnyOrg, a); err != nil && !errors.Is(err, store.ErrExists) {
			r.ErrorCode, _ = errCode(err)
			r.ErrorMessage = strp(err.Error())
			if r.ErrorCode == kerr.UnknownServerError.Code {
				s.log.Warn("create acl failed", "cluster", c.cluster, "err", err)
				r.ErrorMessage = strp("the ACL could not be stored; try again")
			}
		}
		resp.Results = append(resp.Results, r)
	}
	return resp
}

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
