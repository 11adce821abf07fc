package broker

import (
	"github.com/eddy-streams/eddy/data-plane/share"
	"github.com/eddy-streams/eddy/internal/acl"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// ShareGroupHeartbeat (API key 76).
// Versions: 0-1.
//
// KIP-932 share groups. The group's coordinator is the broker owning its
// slot, as for consumer groups (groups.go); membership and assignment,
// with their deviations, are data-plane/share's groups.go. Subscribed
// topics resolve through this broker's view of the connection's virtual
// cluster only.
//
// Authorization: READ on the group; subscribed topics the member may not
// DESCRIBE are treated as missing.

func handleShareGroupHeartbeat(s *Server, c *conn, req *kmsg.ShareGroupHeartbeatRequest) kmsg.Response {
	if code := s.groupCheck(c, req.GroupID, acl.Read); code != 0 {
		resp := req.ResponseKind().(*kmsg.ShareGroupHeartbeatResponse)
		resp.ErrorCode = code
		return resp
	}
	v := s.view.Load()
	lookup := func(name string) (share.Topic, bool) {
		t := subscribable(v, c, name)
		if t == nil {
			return share.Topic{}, false
		}
		return share.Topic{ID: t.ID, Name: t.Name, Partitions: int32(len(t.Partitions))}, true
	}
	cl := c.client()
	return s.shareGroups.Heartbeat(c.cluster, share.Client{ID: cl.ID, Host: cl.Host}, req, lookup)
}
