package broker

import (
	"github.com/eddy-streams/eddy/internal/acl"
	"github.com/twmb/franz-go/pkg/kmsg"
)

func handleSyncGroup(s *Server, c *conn, req *kmsg.SyncGroupRequest) kmsg.Response {
	if code := s.groupCheck(c, req.Group, acl.Read); code != 0 {
		resp := req.ResponseKind().(*kmsg.SyncGroupResponse)
		resp.ErrorCode = code
		return resp
	}
	return s.groups.SyncGroup(c.groupCtx(), c.cluster, req)
}
