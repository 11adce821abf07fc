package broker

import (
	"cmp"
	"slices"
	"strings"

	"github.com/eddy-streams/eddy/internal/acl"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// ListGroups (API key 16).
// Versions: 0-4.
//
// The protocol, with its deviations, is data-plane/group's 16_list_groups.go.
// Share groups (KIP-932) are listed too, as Kafka lists them, with
// ProtocolType "share": Stable while they have members, Empty when only
// their share-partitions' state is stored.
//
// Authorization: principals that may DESCRIBE the cluster see every
// group, others those they may DESCRIBE.

// ListGroups lists the groups this broker coordinates, as Kafka does;
// admin clients ask every broker and merge.
func handleListGroups(s *Server, c *conn, req *kmsg.ListGroupsRequest) kmsg.Response {
	resp := s.groups.ListGroups(c.groupCtx(), c.cluster, req)
	resp.Groups = append(resp.Groups, s.listShareGroups(c, req)...)
	slices.SortFunc(resp.Groups, func(a, b kmsg.ListGroupsResponseGroup) int { return cmp.Compare(a.Group, b.Group) })
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

// listShareGroups lists the share groups of the connection's cluster,
// live here or stored, passing the request's state filter.
func (s *Server) listShareGroups(c *conn, req *kmsg.ListGroupsRequest) []kmsg.ListGroupsResponseGroup {
	states := map[string]string{}
	for _, g := range s.shareGroups.List(c.cluster) {
		states[g.Group] = g.State
	}
	stored, err := s.store.ShareGroups(c.ctx, c.cluster)
	if err != nil {
		s.log.Warn("listing share groups", "err", err)
	}
	for _, g := range stored {
		if _, ok := states[g]; !ok {
			states[g] = "Empty"
		}
	}
	var out []kmsg.ListGroupsResponseGroup
	for g, st := range states {
		if req.Version >= 4 && len(req.StatesFilter) > 0 && !slices.ContainsFunc(req.StatesFilter, func(f string) bool { return strings.EqualFold(f, st) }) {
			continue
		}
		lg := kmsg.NewListGroupsResponseGroup()
		lg.Group, lg.ProtocolType, lg.GroupState, lg.GroupType = g, "share", st, "share"
		out = append(out, lg)
	}
	return out
}
