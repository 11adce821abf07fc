package store

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/jackc/pgx/v5"
)

// KeyCompaction is a partition of a topic whose cleanup.policy includes
// compact, with key compaction's progress (the compaction_state row, or
// CleanOffset 0 and DeleteHorizon -1 before the first pass).
type KeyCompaction struct {
	PartitionID int64
	Configs     map[string]string // the topic's explicit configs
	// CleanOffset is the first dirty offset: below it, the log holds
	// each key at most once.
	CleanOffset int64
	// DeleteHorizon is the earliest delete horizon (Unix ms) of the
	// batches the last pass kept with one; -1 if none.
	DeleteHorizon int64
	// MarkerTimestamp is the earliest timestamp of the transaction
	// markers the last pass kept only for their age; -1 if none.
	MarkerTimestamp int64
}

// KeyCompactionCandidates returns up to limit partitions of the shard
// whose topic's cleanup.policy includes compact and that have index rows
// at or above their clean offset, a delete horizon at or before now (Unix
// ms) or markers kept for their age, in id order. Which of them are due
// (min.cleanable.dirty.ratio, the compaction lags, delete.retention.ms)
// is the caller's decision: it needs the rows.
func (s *Store) KeyCompactionCandidates(ctx context.Context, sh Shard, now int64, limit int) ([]KeyCompaction, error) {
	i, n := sh.args()
	rows, err := s.pool.Query(ctx, `
		SELECT p.id, t.configs, coalesce(c.clean_offset, 0), coalesce(c.delete_horizon, -1), coalesce(c.marker_timestamp, -1)
		FROM partitions p JOIN topics t ON t.id = p.topic_id
		LEFT JOIN compaction_state c ON c.partition_id = p.id
		WHERE p.id % $2 = $3
			AND 'compact' = ANY (string_to_array(replace(coalesce(t.configs->>'cleanup.policy', 'delete'), ' ', ''), ','))
			AND (c.delete_horizon BETWEEN 0 AND $4 OR c.marker_timestamp >= 0 OR EXISTS (
				SELECT 1 FROM segments s WHERE s.partition_id = p.id AND s.end_offset > coalesce(c.clean_offset, 0)))
		ORDER BY p.id LIMIT $1`, limit, n, i, now)
	if err != nil {
		return nil, fmt.Errorf("store: key compaction candidates: %w", err)
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (KeyCompaction, error) {
		var (
			k   KeyCompaction
			raw []byte
		)
		if err := r.Scan(&k.PartitionID, &raw, &k.CleanOffset, &k.DeleteHorizon, &k.MarkerTimestamp); err != nil {
			return k, err
		}
		return k, json.Unmarshal(raw, &k.Configs)
	})
	if err != nil {
		return nil, fmt.Errorf("store: key compaction candidates: %w", err)
	}
	return out, nil
}

// SetCompactionState records key compaction's progress on a partition
// (see KeyCompaction; Configs is not stored). It is written after the swaps of a pass: if it is
// lost, the next pass compacts the same data again, which changes nothing.
func (s *Store) SetCompactionState(ctx context.Context, k KeyCompaction) error {
	if _, err := s.pool.Exec(ctx, `
		INSERT INTO compaction_state (partition_id, clean_offset, delete_horizon, marker_timestamp) VALUES ($1, $2, $3, $4)
		ON CONFLICT (partition_id) DO UPDATE SET clean_offset = EXCLUDED.clean_offset,
			delete_horizon = EXCLUDED.delete_horizon, marker_timestamp = EXCLUDED.marker_timestamp`,
		k.PartitionID, k.CleanOffset, k.DeleteHorizon, k.MarkerTimestamp); err != nil {
		return fmt.Errorf("store: compaction state of %d: %w", k.PartitionID, err)
	}
	return nil
}
