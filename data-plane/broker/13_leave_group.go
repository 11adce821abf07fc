package broker

import (
	"github.com/eddy-streams/eddy/internal/acl"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// LeaveGroup (API key 13).
// Versions: 0-5.
//
// The protocol, with its deviations, is data-plane/group's 13_leave_group.go.
//
// Authorization: READ on the group.

func handleLeaveGroup(s *Server, c *conn, req *kmsg.LeaveGroupRequest) kmsg.Response {
	if code := s.groupCheck(c, req.Group, acl.Read); code != 0 {
		resp := req.ResponseKind().(*kmsg.LeaveGroupResponse)
		resp.ErrorCode = code
		return resp
	}
	return s.groups.LeaveGroup(c.groupCtx(), c.cluster, req)
}
