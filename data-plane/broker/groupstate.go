package broker

import (
	"context"

	"github.com/eddy-streams/eddy/data-plane/group"
	"github.com/eddy-streams/eddy/data-plane/store"
)

// groupStore adds the persistence of group membership (group.StateStore)
// to the offset store. Each state is written under the slot fence this
// broker holds for its group at the time of the write; a group whose slot
// this broker does not lead is refused without asking Postgres.
type groupStore struct {
	offsetStore
	s *Server
}

func (g groupStore) SaveGroups(ctx context.Context, states []group.GroupState) ([]bool, error) {
	refused := make([]bool, len(states))
	rows := make([]store.GroupStateWrite, 0, len(states))
	idx := make([]int, 0, len(states))
	for i, st := range states {
		f, ok := g.s.slotFence(st.Cluster, st.Group)
		if !ok {
			refused[i] = true
			continue
		}
		rows = append(rows, store.GroupStateWrite{ClusterID: st.Cluster, Group: st.Group, Fence: f, State: st.Data})
		idx = append(idx, i)
	}
	out, err := g.st.SaveGroupStates(ctx, rows)
	if err != nil {
		return nil, err
	}
	for j, r := range out {
		refused[idx[j]] = r
	}
	return refused, nil
}

// gainedSlots returns the coordinator slots this broker leads in slots but
// did not lead, at the same epoch, in old (nil: none).
func gainedSlots(old *view, slots []store.Slot, me int32) []int32 {
	var out []int32
	for i, sl := range slots {
		if sl.LeaderID != me {
			continue
		}
		if old != nil && len(old.slots) == len(slots) && old.slots[i].LeaderID == me && old.slots[i].LeaderEpoch == sl.LeaderEpoch {
			continue
		}
		out = append(out, sl.Slot)
	}
	return out
}

// loadGroups installs the stored groups of newly led slots in the
// coordinator; reload calls it before it publishes the view that routes
// those groups here, so no request sees a slot before its groups are back.
func (s *Server) loadGroups(ctx context.Context, slots []int32, n int) error {
	set := make(map[int]bool, len(slots))
	for _, sl := range slots {
		set[int(sl)] = true
	}
	match := func(cluster, grp string) bool { return set[slotFor(cluster, grp, n)] }
	return s.groups.Load(ctx, match, func(ctx context.Context) ([]group.GroupState, error) {
		rows, err := s.store.LoadGroupStates(ctx, slots)
		if err != nil {
			return nil, err
		}
		out := make([]group.GroupState, len(rows))
		for i, r := range rows {
			out[i] = group.GroupState{Cluster: r.ClusterID, Group: r.Group, Data: r.State}
		}
		return out, nil
	})
}
