package broker

import (
	"github.com/eddy-streams/eddy/internal/acl"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// SyncGroup (API key 14).
// Versions: 0-5.
//
// The protocol, with its deviations, is data-plane/group's 14_sync_group.go.
//
// Authorization: READ on the group.

func handleSyncGroup(s *Server, c *conn, req *kmsg.SyncGroupRequest) kmsg.Response {
	if code := s.groupCheck(c, req.Group, acl.Read); code != 0 {
		resp := req.ResponseKind().(*kmsg.SyncGroupResponse)
		resp.ErrorCode = code
		return resp
	}
	return s.groups.SyncGroup(c.groupCtx(), c.cluster, req)
}
