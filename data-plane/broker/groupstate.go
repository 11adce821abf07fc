package broker

import (
	"context"
	"time"

	"github.com/eddy-streams/eddy/data-plane/group"
	"github.com/eddy-streams/eddy/internal/store"
	"github.com/prometheus/client_golang/prometheus"
)

// groupStore adds the persistence of group membership (group.StateStore)
// to the offset store. Each state is written under the slot fence this
// broker holds for its group at the time of the write; a group whose slot
// this broker does not lead is refused without asking Postgres.
type groupStore struct {
	offsetStore
	s   *Server
	met *groupStateMetrics
}

// groupStateMetrics are what an operator graphs of group persistence:
// state writes by outcome, and how long loading a gained slot's groups
// takes (members wait that long after a coordinator move).
type groupStateMetrics struct {
	writes      *prometheus.CounterVec
	loadSeconds prometheus.Histogram
	loaded      prometheus.Counter
}

func newGroupStateMetrics(reg prometheus.Registerer) *groupStateMetrics {
	m := &groupStateMetrics{
		writes: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "eddy_group_state_writes_total",
			Help: "Group states written to Postgres by outcome (written, refused: the slot moved, failed)."},
			[]string{"outcome"}),
		loadSeconds: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "eddy_group_state_load_seconds",
			Help:    "Time to load the groups of newly gained coordinator slots.",
			Buckets: prometheus.ExponentialBuckets(0.001, 2, 14)}),
		loaded: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "eddy_group_states_loaded_total", Help: "Group states loaded from Postgres."}),
	}
	if reg != nil {
		reg.MustRegister(m.writes, m.loadSeconds, m.loaded)
	}
	return m
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
		g.met.writes.WithLabelValues("failed").Add(float64(len(states)))
		return nil, err
	}
	for j, r := range out {
		refused[idx[j]] = r
	}
	n := 0
	for _, r := range refused {
		if r {
			n++
		}
	}
	g.met.writes.WithLabelValues("refused").Add(float64(n))
	g.met.writes.WithLabelValues("written").Add(float64(len(states) - n))
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
	start := time.Now()
	defer func() { s.groupMet.loadSeconds.Observe(time.Since(start).Seconds()) }()
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
		s.groupMet.loaded.Add(float64(len(rows)))
		out := make([]group.GroupState, len(rows))
		for i, r := range rows {
			out[i] = group.GroupState{Cluster: r.ClusterID, Group: r.Group, Data: r.State}
		}
		return out, nil
	})
}
