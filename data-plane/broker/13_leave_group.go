package broker

import (
	"github.com/eddy-streams/eddy/internal/acl"
	"github.com/twmb/franz-go/pkg/kmsg"
)

func handleLeaveGroup(s *Server, c *conn, req *kmsg.LeaveGroupRequest) kmsg.Response {
	if code := s.groupCheck(c, req.Group, acl.Read); code != 0 {
		resp := req.ResponseKind().(*kmsg.LeaveGroupResponse)
		resp.ErrorCode = code
		return resp
	}
	return s.groups.LeaveGroup(c.groupCtx(), c.cluster, req)
}
