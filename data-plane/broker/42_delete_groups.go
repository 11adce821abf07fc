package broker

import (
	"github.com/eddy-streams/eddy/internal/acl"
	"github.com/twmb/franz-go/pkg/kmsg"
)

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
