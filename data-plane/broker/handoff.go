package broker

import (
	"context"
	"errors"
	"slices"
	"sync"
	"time"

	"github.com/eddy-streams/eddy/data-plane/leader"
	"github.com/eddy-streams/eddy/internal/spread"
	"github.com/eddy-streams/eddy/internal/store"
)

// Graceful partition moves. The control plane asks for a move by setting
// a partition's moving_to; the leader notices it in its routing view and
// hands the partition off (leader.Manager.HandOff): no more appends,
// flush and commit what it accepted, then one fenced statement makes the
// target the leader at the next epoch (store.HandOff). The target picks
// the partition up at the committed high watermark on its next view —
// within milliseconds, as the statement NOTIFYs every broker. No data is
// copied: the bytes are already in object storage.

// handOffs tracks the hand-offs under way and those done; the metadata
// loop owns their goroutines and waits for them when it stops.
type handOffs struct {
	mu sync.Mutex
	// running maps a partition to a channel closed when its hand-off
	// ends, however it ends.
	running map[int64]chan struct{}
	// done remembers where partitions went (leader hints, leaderhint.go)
	// until this broker's view shows it; bounded by the partitions it
	// led, and forgotten by forgetHandOffs.
	done map[int64]hint
	wg   sync.WaitGroup
}

// handOffTimeout bounds one hand-off; the control plane forces a move its
// leader does not complete (placement's move timeout).
const handOffTimeout = 10 * time.Second

// startHandOffs starts a hand-off for every partition this broker leads
// that the snapshot says should move.
func (s *Server) startHandOffs(ctx context.Context, md *store.Metadata) {
	for _, t := range md.Topics {
		for _, p := range t.Partitions {
			if p.LeaderID != s.cfg.ID || p.MovingTo < 0 || p.MovingTo == s.cfg.ID || s.lead.Partition(p.ID) == nil {
				continue
			}
			s.goHandOff(ctx, p)
		}
	}
}

// goHandOff starts p's hand-off unless one is under way.
func (s *Server) goHandOff(ctx context.Context, p store.Partition) {
	s.handOffs.mu.Lock()
	if s.handOffs.running == nil {
		s.handOffs.running = map[int64]chan struct{}{}
	}
	if s.handOffs.running[p.ID] != nil {
		s.handOffs.mu.Unlock()
		return
	}
	done := make(chan struct{})
	s.handOffs.running[p.ID] = done
	s.handOffs.wg.Add(1)
	s.handOffs.mu.Unlock()
	go func() {
		defer s.handOffs.wg.Done()
		defer func() {
			s.handOffs.mu.Lock()
			delete(s.handOffs.running, p.ID)
			s.handOffs.mu.Unlock()
			close(done)
		}()
		s.handOff(ctx, p)
	}()
}

// handingOff returns a channel closed when the hand-off of partition id
// ends, or nil if none is under way.
func (s *Server) handingOff(id int64) <-chan struct{} {
	s.handOffs.mu.Lock()
	defer s.handOffs.mu.Unlock()
	if ch := s.handOffs.running[id]; ch != nil {
		return ch
	}
	return nil
}

func (s *Server) handOff(ctx context.Context, p store.Partition) {
	ctx, cancel := context.WithTimeout(ctx, handOffTimeout)
	defer cancel()
	start := time.Now()
	err := s.lead.HandOff(ctx, p.ID, p.LeaderEpoch, func(ctx context.Context) (bool, error) {
		return s.store.HandOff(ctx, p.ID, s.cfg.ID, p.LeaderEpoch)
	})
	switch {
	case err == nil:
		s.handOffs.mu.Lock()
		if s.handOffs.done == nil {
			s.handOffs.done = map[int64]hint{}
		}
		s.handOffs.done[p.ID] = hint{leader: p.MovingTo, epoch: p.LeaderEpoch + 1}
		s.handOffs.mu.Unlock()
		s.met.handOffs.WithLabelValues("ok").Inc()
		s.log.Info("partition moved", "partition", p.ID, "to", p.MovingTo, "took", time.Since(start))
	case errors.Is(err, leader.ErrNotLeader):
		// Lost meanwhile (fenced or reassigned): nothing to hand off.
	default:
		s.met.handOffs.WithLabelValues("failed").Inc()
		if ctx.Err() == nil || errors.Is(err, context.DeadlineExceeded) {
			s.log.Warn("partition hand-off failed; it stays here", "partition", p.ID, "to", p.MovingTo, "err", err)
		}
	}
}

// drainTimeout bounds handOffAll: what is not handed off by then moves
// when the session ends, as after a crash, only later.
const drainTimeout = 10 * time.Second

// handOffAll moves every partition this broker leads to the other live
// brokers while its connections are still served, as Kafka's controlled
// shutdown does: it marks itself draining (placement gives it nothing new
// and hand-offs never target it), asks for one move per partition — each
// to the live broker with the fewest partitions so far — and waits, at
// most drainTimeout or half of ctx's time, for the hand-offs the metadata
// loop then runs. Clients that meet a hand-off are told the new leader
// (leaderhint.go), so a rolling restart costs them a redirect per
// partition rather than a wait for a session to expire.
func (s *Server) handOffAll(ctx context.Context) {
	led := s.lead.Led()
	if len(led) == 0 {
		return
	}
	v := s.view.Load()
	var brokers []store.BrokerLoad
	for _, b := range v.brokers { // sorted by id: ties go to the lowest
		if b.ID != s.cfg.ID {
			brokers = append(brokers, store.BrokerLoad{ID: b.ID, Draining: b.Draining})
		}
	}
	for _, p := range v.byPartition {
		if i := slices.IndexFunc(brokers, func(b store.BrokerLoad) bool { return b.ID == p.LeaderID }); i >= 0 {
			brokers[i].Partitions++
		}
	}
	items := make([]store.Item, len(led))
	for i, id := range led {
		items[i] = store.Item{Kind: store.KindPartition, ID: id}
	}
	assigned := spread.Evenly(brokers, items)
	if len(assigned) == 0 {
		return // nowhere to go: the partitions wait for a new broker
	}
	budget := drainTimeout
	if dl, ok := ctx.Deadline(); ok {
		budget = min(budget, time.Until(dl)/2)
	}
	ctx, cancel := context.WithTimeout(ctx, budget)
	defer cancel()
	start := time.Now()
	if err := s.store.SetDraining(ctx, s.cfg.ID, true); err != nil {
		s.log.Warn("could not mark the broker draining; partitions move when its session ends", "err", err)
		return
	}
	moves := make([]store.Move, len(assigned))
	for i, a := range assigned {
		moves[i] = store.Move{PartitionID: a.Item.ID, To: a.Broker}
	}
	if _, err := s.store.RequestMoves(ctx, moves); err != nil {
		s.log.Warn("could not request hand-offs; partitions move when the session ends", "err", err)
		return
	}
	// A reload starts the hand-offs (startHandOffs); wait for the
	// partitions to be gone, or for no hand-off to be possible any more
	// (the targets stopped or drain too, as when a whole pool stops).
	if err := s.refreshNow(ctx); err != nil {
		return
	}
	for {
		left := s.lead.Led()
		if len(left) == 0 {
			break
		}
		if !s.mayHandOff(left) {
			s.log.Info("no broker left to hand partitions to; they move when the session ends", "left", len(left))
			return
		}
		select {
		case <-ctx.Done():
			s.log.Warn("partitions not handed off before the drain's deadline; they move when the session ends",
				"left", len(left), "moved", len(led)-len(left))
			return
		case <-time.After(20 * time.Millisecond):
		}
	}
	s.log.Info("partitions handed off", "partitions", len(led), "took", time.Since(start).Round(time.Millisecond))
	s.linger(ctx)
}

// lingerQuiet and lingerMax shape linger: the quiet spell that shows
// clients have moved, and the longest a drain waits for one.
const (
	lingerQuiet = 150 * time.Millisecond
	lingerMax   = 2 * time.Second
)

// linger keeps the connections served after the hand-offs until no
// Produce or Fetch has arrived for lingerQuiet (at most lingerMax): the
// requests clients had already sent are answered NOT_LEADER_OR_FOLLOWER
// with the new leader, rather than cut when the connections close, which
// costs a client a reconnect and its retry backoff.
func (s *Server) linger(ctx context.Context) {
	ctx, cancel := context.WithTimeout(ctx, lingerMax)
	defer cancel()
	for time.Since(time.Unix(0, s.lastData.Load())) < lingerQuiet {
		select {
		case <-ctx.Done():
			return
		case <-time.After(lingerQuiet / 3):
		}
	}
}

// mayHandOff reports whether a hand-off of one of the partitions ids is
// under way or can still succeed: its move's target is live and not
// draining in the current view.
func (s *Server) mayHandOff(ids []int64) bool {
	v := s.view.Load()
	for _, id := range ids {
		if s.handingOff(id) != nil {
			return true
		}
		if p := v.byPartition[id]; p != nil && p.MovingTo >= 0 {
			if b, ok := v.byBroker[p.MovingTo]; ok && !b.Draining {
				return true
			}
		}
	}
	return false
}
