package broker

import (
	"github.com/eddy-streams/eddy/internal/acl"
	"github.com/twmb/franz-go/pkg/kmsg"
)

func handleHeartbeat(s *Server, c *conn, req *kmsg.HeartbeatRequest) kmsg.Response {
	if code := s.groupCheck(c, req.Group, acl.Read); code != 0 {
		resp := req.ResponseKind().(*kmsg.HeartbeatResponse)
		resp.ErrorCode = code
		return resp
	}
	return s.groups.Heartbeat(c.groupCtx(), c.cluster, req)
}
