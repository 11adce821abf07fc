package placement

import (
	"cmp"
	"context"
	"slices"
	"strconv"
	"time"

	"github.com/eddy-streams/eddy/internal/brokerload"
	"github.com/eddy-streams/eddy/internal/store"
)

// Node is a live broker as the rebalancer sees it.
type Node struct {
	ID       int32
	Draining bool
	// Partitions it leads, with the record bytes per second produced to
	// each (from its load report; 0 when unmeasured).
	Partitions map[int64]float64
	Slots      []int32
	Moving     int // moves pending away from it
	// Settling: restarted lately (a new session of an id seen before).
	// Clients may still hold idle connections to its previous process
	// that some notice are dead only when they use them, then back off;
	// so it receives no partitions until it settles, unless a draining
	// broker's partitions have nowhere else to go.
	Settling bool
}

// Rebalance plans at most maxMoves graceful partition moves, and the
// coordinator slots to release (placement then assigns them to the
// emptiest broker):
//
//   - a draining broker's partitions all go, each to the broker with the
//     least load once it is added, and its slots are released;
//   - otherwise partitions move from the most to the least loaded broker
//     while that narrows the gap. A partition weighs its measured bytes/s
//     plus a small constant, so an idle pool is balanced by counts and a
//     new broker gets work before load is measured;
//   - slots are balanced by count (group load is not measured per slot).
//
// Nothing is planned while moves from an earlier round are pending.
func Rebalance(nodes []Node, maxMoves int) (moves []store.Move, releaseSlots []int32) {
	var targets []int
	total, parts := 0.0, 0
	for i, n := range nodes {
		if n.Moving > 0 {
			return nil, nil
		}
		if !n.Draining {
			targets = append(targets, i)
		}
		for _, w := range n.Partitions {
			total += w
			parts++
		}
	}
	if len(targets) == 0 || parts == 0 && !anySlots(nodes) {
		return nil, nil
	}
	eps := max(1, total/float64(10*max(parts, 1)))
	load := make([]float64, len(nodes))
	for i, n := range nodes {
		for _, w := range n.Partitions {
			load[i] += w + eps
		}
	}
	// Partitions go to settled targets; a draining broker's go to
	// settling ones only when no target has settled.
	settled := slices.DeleteFunc(slices.Clone(targets), func(i int) bool { return nodes[i].Settling })
	evacuateTo := settled
	if len(evacuateTo) == 0 {
		evacuateTo = targets
	}
	coolest := func() int {
		return slices.MinFunc(evacuateTo, func(a, b int) int { return cmp.Or(cmp.Compare(load[a], load[b]), cmp.Compare(a, b)) })
	}
	// A round never moves partitions both into and out of one broker:
	// such a swap narrows the estimated gap but costs two moves (and two
	// rounds of client retries) for what the next round can do better
	// with measured load.
	gave, got := map[int]bool{}, map[int]bool{}
	move := func(from, to int, id int64) {
		w := nodes[from].Partitions[id] + eps
		load[from] -= w
		load[to] += w
		delete(nodes[from].Partitions, id)
		nodes[to].Partitions[id] = w - eps
		gave[from], got[to] = true, true
		moves = append(moves, store.Move{PartitionID: id, To: nodes[to].ID})
	}
	for i, n := range nodes {
		if !n.Draining {
			continue
		}
		for _, id := range sortedIDs(n.Partitions) {
			if len(moves) >= maxMoves {
				break
			}
			move(i, coolest(), id)
		}
		releaseSlots = append(releaseSlots, n.Slots...)
	}
	for len(moves) < maxMoves {
		var srcs, dsts []int
		for _, i := range targets {
			if !got[i] {
				srcs = append(srcs, i)
			}
			if !gave[i] && !nodes[i].Settling {
				dsts = append(dsts, i)
			}
		}
		if len(srcs) == 0 || len(dsts) == 0 {
			break
		}
		h := slices.MaxFunc(srcs, func(a, b int) int { return cmp.Or(cmp.Compare(load[a], load[b]), cmp.Compare(b, a)) })
		c := slices.MinFunc(dsts, func(a, b int) int { return cmp.Or(cmp.Compare(load[a], load[b]), cmp.Compare(a, b)) })
		if h == c {
			break
		}
		gap := load[h] - load[c]
		// The partition whose move best halves the gap, if any narrows it.
		best, bestScore := int64(-1), 0.0
		for _, id := range sortedIDs(nodes[h].Partitions) {
			w := nodes[h].Partitions[id] + eps
			if score := min(w, gap-w); score > bestScore+1e-9 {
				best, bestScore = id, score
			}
		}
		if best < 0 {
			break
		}
		move(h, c, best)
	}
	// Slots by count: release from the fullest while it has two more than
	// the emptiest target.
	counts := map[int]int{}
	for _, i := range targets {
		counts[i] = len(nodes[i].Slots)
	}
	for {
		h := slices.MaxFunc(targets, func(a, b int) int { return cmp.Compare(counts[a], counts[b]) })
		c := slices.MinFunc(targets, func(a, b int) int { return cmp.Compare(counts[a], counts[b]) })
		if counts[h]-counts[c] < 2 {
			break
		}
		counts[h]--
		counts[c]++
		releaseSlots = append(releaseSlots, nodes[h].Slots[counts[h]])
	}
	return moves, releaseSlots
}

func anySlots(nodes []Node) bool {
	for _, n := range nodes {
		if len(n.Slots) > 0 {
			return true
		}
	}
	return false
}

func sortedIDs(m map[int64]float64) []int64 {
	ids := make([]int64, 0, len(m))
	for id := range m {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	return ids
}

// sessions remembers, per broker id, the session the rebalancer last saw
// and when a new session of an id it had seen before appeared: a restart.
// Only the rebalancer's goroutine uses it. What it saw before this process
// led the pool is unknown, so brokers count as settled then.
type sessions map[int32]sessionSeen

type sessionSeen struct {
	epoch     int64
	restarted time.Time // zero: not seen restarting
}

// settling reports whether broker b restarted less than settle ago, and
// records its session.
func (ss sessions) settling(b store.PoolBroker, now time.Time, settle time.Duration) bool {
	seen, ok := ss[b.ID]
	switch {
	case !ok:
		seen = sessionSeen{epoch: b.SessionEpoch}
	case seen.epoch != b.SessionEpoch:
		seen = sessionSeen{epoch: b.SessionEpoch, restarted: now}
	}
	ss[b.ID] = seen
	return !seen.restarted.IsZero() && now.Sub(seen.restarted) < settle
}

// nodes reads the pool for Rebalance.
func (l *Loop) nodes(pool []store.PoolBroker) []Node {
	out := make([]Node, 0, len(pool))
	now := time.Now()
	for _, b := range pool {
		r, _ := brokerload.Parse(b.Load) // an unreadable report weighs as unmeasured
		n := Node{ID: b.ID, Draining: b.Draining, Slots: b.Slots, Moving: b.Moving, Partitions: map[int64]float64{},
			Settling: l.sessions.settling(b, now, l.cfg.Settle)}
		for _, id := range b.Partitions {
			n.Partitions[id] = r.PartitionBytesIn[strconv.FormatInt(id, 10)]
		}
		out = append(out, n)
	}
	return out
}

// rebalance runs one rebalancing round.
func (l *Loop) rebalance(ctx context.Context) {
	if c, f, err := l.store.ExpireMoves(ctx, l.cfg.MoveTimeout); err != nil {
		l.log.Warn("expiring moves failed", "err", err)
	} else if c+f > 0 {
		l.log.Warn("moves expired", "cancelled", c, "forced", f)
		l.moved.WithLabelValues("move_cancelled").Add(float64(c))
		l.moved.WithLabelValues("move_forced").Add(float64(f))
	}
	pool, err := l.store.Pool(ctx)
	if err != nil {
		if ctx.Err() == nil {
			l.log.Warn("rebalance: reading the pool failed", "err", err)
		}
		return
	}
	moves, slots := Rebalance(l.nodes(pool), l.cfg.MaxMoves)
	if len(slots) > 0 {
		if err := l.store.ReleaseSlots(ctx, slots); err != nil {
			l.log.Warn("rebalance: releasing slots failed", "err", err)
		} else {
			l.moved.WithLabelValues("slot_released").Add(float64(len(slots)))
		}
	}
	if len(moves) == 0 {
		return
	}
	n, err := l.store.RequestMoves(ctx, moves)
	if err != nil {
		l.log.Warn("rebalance: requesting moves failed", "err", err)
		return
	}
	l.moved.WithLabelValues("move_requested").Add(float64(n))
	l.log.Info("rebalance", "moves", n, "slots_released", len(slots))
}
