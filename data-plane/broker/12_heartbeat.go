package broker

import (
	"github.com/eddy-streams/eddy/internal/acl"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// Heartbeat (API key 12).
// Versions: 0-4.
//
// The protocol, with its deviations, is data-plane/group's 12_heartbeat.go.
//
// Authorization: READ on the group.

func handleHeartbeat(s *Server, c *conn, req *kmsg.HeartbeatRequest) kmsg.Response {
	if code := s.groupCheck(c, req.Group, acl.Read); code != 0 {
		resp := req.ResponseKind().(*kmsg.HeartbeatResponse)
		resp.ErrorCode = code
		return resp
	}
	return s.groups.Heartbeat(c.groupCtx(), c.cluster, req)
}
