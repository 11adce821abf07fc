package broker

import (
	"context"
	"sort"
	"time"

	"github.com/eddy-streams/eddy/internal/acl"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// DescribeAcls (API key 29).
// Versions: 0-3.
//
// ACLs belong to the connection's virtual cluster: only its ACLs are
// described, one entry per resource pattern, as Kafka groups them.
//
// Deviations: filters on resource types other than topic, group, cluster
// and transactional id are INVALID_REQUEST, except that filters on
// delegation tokens or users match nothing.
//
// Authorization: DESCRIBE on the cluster (CLUSTER_AUTHORIZATION_FAILED
// otherwise).

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
