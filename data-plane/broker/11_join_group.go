package broker

import (
	"github.com/eddy-streams/eddy/data-plane/group"
	"github.com/eddy-streams/eddy/internal/acl"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// JoinGroup (API key 11).
// Versions: 0-9.
//
// The protocol, with its deviations, is data-plane/group's 11_join_group.go.
//
// Authorization: READ on the group. A classic member of a KIP-848 group
// (after an online upgrade) is assigned only topics it may DESCRIBE, as a
// ConsumerGroupHeartbeat member is.

func handleJoinGroup(s *Server, c *conn, req *kmsg.JoinGroupRequest) kmsg.Response {
	if code := s.groupCheck(c, req.Group, acl.Read); code != 0 {
		resp := req.ResponseKind().(*kmsg.JoinGroupResponse)
		resp.ErrorCode, resp.Generation = code, -1
		return resp
	}
	ctx := group.WithTopics(c.groupCtx(), groupTopics(s.view.Load(), c))
	return s.groups.JoinGroup(ctx, c.cluster, req)
}
