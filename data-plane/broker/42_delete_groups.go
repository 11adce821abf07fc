package broker

import (
	"github.com/eddy-streams/eddy/internal/acl"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// DeleteGroups (API key 42).
// Versions: 0-2.
//
// The protocol, with its deviations, is data-plane/group's 42_delete_groups.go.
//
// Authorization: DELETE on each group.

func handleDeleteGroups(s *Server, c *conn, req *kmsg.DeleteGroupsRequest) kmsg.Response {
	resp := req.ResponseKind().(*kmsg.DeleteGroupsResponse)
	allowed := s.splitGroups(c, req.Groups, acl.Delete, func(g string, code int16) {
		rg := kmsg.NewDeleteGroupsResponseGroup()
		rg.Group, rg.ErrorCode = g, code
		resp.Groups = append(resp.Groups, rg)
	})
	if len(allowed) > 0 {
		some := *req
		some.Groups = allowed
		resp.Groups = append(resp.Groups, s.groups.DeleteGroups(c.groupCtx(), c.cluster, &some).Groups...)
	}
	return resp
}
