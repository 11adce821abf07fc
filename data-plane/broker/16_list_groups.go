package broker

import (
	"github.com/eddy-streams/eddy/internal/acl"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// ListGroups (API key 16).
// Versions: 0-4.
//
// The protocol, with its deviations, is data-plane/group's 16_list_groups.go.
//
// Authorization: principals that may DESCRIBE the cluster see every
// group, others those they may DESCRIBE.

// ListGroups lists the groups this broker coordinates, as Kafka does;
// admin clients ask every broker and merge.
func handleListGroups(s *Server, c *conn, req *kmsg.ListGroupsRequest) kmsg.Response {
	resp := s.groups.ListGroups(c.groupCtx(), c.cluster, req)
	all := c.decide(acl.Cluster, acl.ClusterName, acl.Describe)
	kept := resp.Groups[:0]
	for _, g := range resp.Groups {
		if s.owns(c, g.Group) && (all || c.sees(acl.Group, g.Group)) {
			kept = append(kept, g)
		}
	}
	resp.Groups = kept
	return resp
}
