package broker

import (
	"github.com/eddy-streams/eddy/internal/acl"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// DescribeGroups (API key 15).
// Versions: 0-5.
//
// The protocol, with its deviations, is data-plane/group's 15_describe_groups.go.
//
// Authorization: DESCRIBE on each group.

func handleDescribeGroups(s *Server, c *conn, req *kmsg.DescribeGroupsRequest) kmsg.Response {
	resp := req.ResponseKind().(*kmsg.DescribeGroupsResponse)
	allowed := s.splitGroups(c, req.Groups, acl.Describe, func(g string, code int16) {
		rg := kmsg.NewDescribeGroupsResponseGroup()
		rg.Group, rg.ErrorCode = g, code
		resp.Groups = append(resp.Groups, rg)
	})
	if len(allowed) > 0 {
		some := *req
		some.Groups = allowed
		resp.Groups = append(resp.Groups, s.groups.DescribeGroups(c.groupCtx(), c.cluster, &some).Groups...)
	}
	return resp
}
