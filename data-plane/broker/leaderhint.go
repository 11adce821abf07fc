package broker

import (
	"context"
	"time"

	"github.com/eddy-streams/eddy/data-plane/leader"
	"github.com/eddy-streams/eddy/internal/store"
)

// Leadership changes that clients do not wait on. A partition moves by a
// hand-off (handoff.go): the old leader flushes, one fenced statement
// names the new one, and every broker's view follows within
// milliseconds. Two things keep a client from stalling on it:
//
//   - On the old leader, a produce that meets the hand-off waits for it
//     (it takes a flush and a commit) and is answered
//     NOT_LEADER_OR_FOLLOWER with the new leader and its endpoint
//     (KIP-951's CurrentLeader and NodeEndpoints, produce v10+), so
//     clients that read them (franz-go, librdkafka, Java) move the
//     partition at once instead of waiting for a metadata refresh,
//     which clients rate-limit (franz-go's MetadataMinAge, 5s by default).
//     A fetch that finds the partition gone gets the same hint (fetch
//     v12+ carries the leader, v16+ its endpoint).
//   - On the new leader, a request that arrives before its view shows
//     the move (the client was quicker than the NOTIFY) waits, briefly,
//     for the view to catch up rather than send the client back.

// hint is a partition's leader as this broker knows it.
type hint struct{ leader, epoch int32 }

// redirectWait bounds what one produce request waits, for all its
// partitions together, on moves it races: for a hand-off it met to end
// (afterHandOff) and for a partition just given to this broker to load
// (awaitLead). Well under a produce's timeout, and spent only by the rare
// requests that race a move.
const redirectWait = time.Second

// leaderHint returns the leader of partition pm (of cluster's topic) that
// a client should go to instead of this broker: from the current view,
// or from a hand-off this broker made that the view does not show yet.
func (s *Server) leaderHint(pm *store.Partition) (hint, bool) {
	v := s.view.Load()
	if cur := v.byPartition[pm.ID]; cur != nil && cur.LeaderID != s.cfg.ID {
		if _, live := v.byBroker[cur.LeaderID]; live {
			return hint{leader: cur.LeaderID, epoch: cur.LeaderEpoch}, true
		}
	}
	s.handOffs.mu.Lock()
	h, ok := s.handOffs.done[pm.ID]
	s.handOffs.mu.Unlock()
	return h, ok
}

// leaderRedirect is leaderHint with the hinted leader's endpoint, for
// responses that carry both (KIP-951's CurrentLeader and NodeEndpoints);
// false if there is no hint or its broker is not live.
func (s *Server) leaderRedirect(pm *store.Partition) (hint, store.Broker, bool) {
	h, ok := s.leaderHint(pm)
	if !ok {
		return hint{}, store.Broker{}, false
	}
	b, live := s.view.Load().byBroker[h.leader]
	return h, b, live
}

// afterHandOff waits, until by at the latest, for a hand-off of
// partition id under way here to end.
func (s *Server) afterHandOff(ctx context.Context, id int64, by time.Time) {
	ch := s.handingOff(id)
	if ch == nil {
		return
	}
	ctx, cancel := context.WithDeadline(ctx, by)
	defer cancel()
	select {
	case <-ch:
	case <-ctx.Done():
	}
}

// awaitLead returns partition pm's leader.Partition if this broker leads
// it or is about to (the view names it as the move's target, or as the
// leader of a partition not loaded yet), refreshing the view until by at
// the latest; otherwise nil at once. A request shares one by among its
// partitions, so a partition that cannot load costs it redirectWait once.
func (s *Server) awaitLead(ctx context.Context, pm *store.Partition, by time.Time) *leader.Partition {
	if p := s.lead.Partition(pm.ID); p != nil {
		return p
	}
	if pm.MovingTo != s.cfg.ID && pm.LeaderID != s.cfg.ID {
		return nil
	}
	ctx, cancel := context.WithDeadline(ctx, by)
	defer cancel()
	for {
		if err := s.refreshNow(ctx); err != nil {
			return nil
		}
		if p := s.lead.Partition(pm.ID); p != nil {
			return p
		}
		cur := s.view.Load().byPartition[pm.ID]
		if cur == nil || (cur.MovingTo != s.cfg.ID && cur.LeaderID != s.cfg.ID) {
			return nil // moved elsewhere, or the move was called off
		}
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(10 * time.Millisecond):
		}
	}
}

// forgetHandOffs drops the hand-offs a new view shows (or supersedes).
func (s *Server) forgetHandOffs(v *view) {
	s.handOffs.mu.Lock()
	defer s.handOffs.mu.Unlock()
	for id, h := range s.handOffs.done {
		if cur := v.byPartition[id]; cur == nil || cur.LeaderEpoch >= h.epoch {
			delete(s.handOffs.done, id)
		}
	}
}
