package broker

import (
	"github.com/eddy-streams/eddy/internal/acl"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// JoinGroup (API key 11).
// Versions: 0-9.
//
// The protocol, with its deviations, is data-plane/group's 11_join_group.go.
//
// Authorization: READ on the group.

func handleJoinGroup(s *Server, c *conn, req *kmsg.JoinGroupRequest) kmsg.Response {
	if code := s.groupCheck(c, req.Group, acl.Read); code != 0 {
		resp := req.ResponseKind().(*kmsg.JoinGroupResponse)
		resp.ErrorCode, resp.Generation = code, -1
		return resp
	}
	return s.groups.JoinGroup(c.groupCtx(), c.cluster, req)
}
