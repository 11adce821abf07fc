package broker

import (
	"context"
	"errors"
	"sync"
	"time"

	"github.com/eddy-streams/eddy/data-plane/leader"
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

// handOffs tracks the hand-offs under way; the metadata loop owns their
// goroutines and waits for them when it stops.
type handOffs struct {
	mu      sync.Mutex
	running map[int64]bool
	wg      sync.WaitGroup
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
			s.handOffs.mu.Lock()
			if s.handOffs.running == nil {
				s.handOffs.running = map[int64]bool{}
			}
			if s.handOffs.running[p.ID] {
				s.handOffs.mu.Unlock()
				continue
			}
			s.handOffs.running[p.ID] = true
			s.handOffs.wg.Add(1)
			s.handOffs.mu.Unlock()
			go func() {
				defer s.handOffs.wg.Done()
				defer func() {
					s.handOffs.mu.Lock()
					delete(s.handOffs.running, p.ID)
					s.handOffs.mu.Unlock()
				}()
				s.handOff(ctx, p)
			}()
		}
	}
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
