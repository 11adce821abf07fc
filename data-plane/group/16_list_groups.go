package group

import (
	"cmp"
	"context"
	"slices"
	"strings"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// ListGroups: versions 0-5.
//
//   - v4+: StatesFilter keeps groups in the named states, compared without
//     regard to case ("Empty", "PreparingRebalance", "CompletingRebalance",
//     "Stable", "Dead").
//   - v5+: TypesFilter; every group here is "classic", so a filter without
//     "classic" lists nothing. GroupType is "classic".
//
// The list is this coordinator's groups of the cluster plus the groups that
// only have committed offsets (OffsetStore.ListGroupsWithOffsets), which are
// Empty. The store lists the whole cluster: the broker must drop groups
// whose coordinator slot it does not own before answering. If the store
// fails, the in-memory groups are listed with COORDINATOR_NOT_AVAILABLE.
func (c *Coordinator) ListGroups(ctx context.Context, cluster string, req *kmsg.ListGroupsRequest) *kmsg.ListGroupsResponse {
	resp := kmsg.NewPtrListGroupsResponse()
	resp.Version = req.Version

	var states map[string]bool
	if req.Version >= 4 && len(req.StatesFilter) > 0 {
		states = make(map[string]bool, len(req.StatesFilter))
		for _, s := range req.StatesFilter {
			states[strings.ToLower(s)] = true
		}
	}
	var types map[string]bool
	if req.Version >= 5 && len(req.TypesFilter) > 0 {
		types = make(map[string]bool, len(req.TypesFilter))
		for _, t := range req.TypesFilter {
			types[strings.ToLower(t)] = true
		}
	}

	stored, err := c.store.ListGroupsWithOffsets(ctx, cluster)
	if err != nil {
		c.log.Error("listing groups with offsets", "cluster", cluster, "err", err)
		resp.ErrorCode = kerr.CoordinatorNotAvailable.Code
	}
	listed := make(map[string]kmsg.ListGroupsResponseGroup)
	if err := c.do(ctx, func() {
		for id, g := range c.clusters[cluster] {
			switch {
			case g.cg != nil && g.exists():
				lg := listEntry(id, "consumer", stateEmpty)
				lg.GroupState, lg.GroupType = g.cg.state(), "consumer"
				listed[id] = lg
			case g.exists():
				listed[id] = listEntry(id, g.protocolType, g.state)
			}
		}
	}); err != nil {
		resp.ErrorCode = kerr.CoordinatorNotAvailable.Code
		return resp
	}
	for _, id := range stored {
		if _, ok := listed[id]; !ok {
			listed[id] = listEntry(id, "", stateEmpty)
		}
	}
	for _, lg := range listed {
		if (states == nil || states[strings.ToLower(lg.GroupState)]) && (types == nil || types[lg.GroupType]) {
			resp.Groups = append(resp.Groups, lg)
		}
	}
	slices.SortFunc(resp.Groups, func(a, b kmsg.ListGroupsResponseGroup) int { return cmp.Compare(a.Group, b.Group) })
	return resp
}

func listEntry(id, protocolType string, s state) kmsg.ListGroupsResponseGroup {
	lg := kmsg.NewListGroupsResponseGroup()
	lg.Group = id
	lg.ProtocolType = protocolType
	lg.GroupState = s.String()
	lg.GroupType = "classic"
	return lg
}
