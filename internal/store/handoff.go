package store

import (
	"context"
	"fmt"
)

// HandOff completes a graceful move: broker from, leading partitionID at
// leaderEpoch and having committed everything it accepted, gives the
// partition to the broker the control plane named in moving_to. The new
// leader gets leaderEpoch+1 and starts at the committed high watermark;
// from can never commit again. It returns false (and changes nothing) if
// from no longer leads at that epoch, no move is pending, or the target's
// session is not live or it is draining — the control plane then picks
// again.
func (s *Store) HandOff(ctx context.Context, partitionID int64, from int32, leaderEpoch int32) (bool, error) {
	tag, err := s.pool.Exec(ctx, `
		WITH h AS (
			UPDATE partitions p SET leader_id = p.moving_to, leader_epoch = p.leader_epoch + 1,
				moving_to = NULL, move_started_at = NULL
			FROM brokers b
			WHERE p.id = $1 AND p.leader_id = $2 AND p.leader_epoch = $3
				AND b.id = p.moving_to AND b.expires_at > now() AND NOT b.draining
			RETURNING 1)
		SELECT pg_notify('eddy_metadata', '') FROM h`, partitionID, from, leaderEpoch)
	if err != nil {
		return false, fmt.Errorf("store: hand off partition %d: %w", partitionID, err)
	}
	return tag.RowsAffected() > 0, nil
}
