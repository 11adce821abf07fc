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
	// CleanBytes and DirtyBytes are the sizes of the index rows below and
	// at or above CleanOffset, OldestDirty the least largest timestamp of
	// the dirty rows (math.MaxInt64 if none): what decides whether the
	// partition is due, known before its rows are read.
	CleanBytes, DirtyBytes, OldestDirty int64
}

// KeyCompactionCandidates returns up to limit partitions of the shard
// whose topic's cleanup.policy includes compact and that have index rows
// at or above their clean offset, a delete horizon at or before now (Unix
// ms) or markers kept for their age, with their clean and dirty sizes
// (CleanBytes, DirtyBytes, OldestDirty) over all their rows. Those whose
// delete horizon has come go first, then the dirtiest (by dirty ratio),
// so that partitions with many dirty bytes are not starved by the limit
// whatever their ids. Which of them are due (min.cleanable.dirty.ratio,
// the compaction lags, delete.retention.ms) is the caller's decision.
func (s *Store) KeyCompactionCandidates(ctx context.Context, sh Shard, now int64, limit int) ([]KeyCompaction, error) {
	i, n := sh.args()
	// The key-compacted topics first (OFFSET 0 keeps the planner from
	// flattening the subquery), then their partitions by topic: a pass
	// reads the topics and the partitions of compacted topics, not every
	// partition of the pool.
	rows, err := s.pool.Query(ctx, `
		SELECT p.id, t.configs, coalesce(c.clean_offset, 0), coalesce(c.delete_horizon, -1), coalesce(c.marker_timestamp, -1),
			d.clean_bytes, d.dirty_bytes, d.oldest_dirty
		FROM (SELECT * FROM topics t WHERE `+keyCompactedSQL+` OFFSET 0) t
		JOIN partitions p ON p.topic_id = t.id
		LEFT JOIN compaction_state c ON c.partition_id = p.id
		CROSS JOIN LATERAL (
			SELECT coalesce(sum(s.length) FILTER (WHERE s.base_offset < coalesce(c.clean_offset, 0)), 0) AS clean_bytes,
				coalesce(sum(s.length) FILTER (WHERE s.base_offset >= coalesce(c.clean_offset, 0)), 0) AS dirty_bytes,
				coalesce(min(s.max_timestamp) FILTER (WHERE s.base_offset >= coalesce(c.clean_offset, 0)), `+maxInt64SQL+`) AS oldest_dirty
			FROM segments s WHERE s.partition_id = p.id) d
		WHERE p.id % $2 = $3
			AND (c.delete_horizon BETWEEN 0 AND $4 OR c.marker_timestamp >= 0 OR d.dirty_bytes > 0)
		ORDER BY coalesce(c.delete_horizon BETWEEN 0 AND $4, false) DESC,
			d.dirty_bytes::float8 / greatest(d.clean_bytes + d.dirty_bytes, 1) DESC, p.id
		LIMIT $1`, limit, n, i, now)
	if err != nil {
		return nil, fmt.Errorf("store: key compaction candidates: %w", err)
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (KeyCompaction, error) {
		var (
			k   KeyCompaction
			raw []byte
		)
		if err := r.Scan(&k.PartitionID, &raw, &k.CleanOffset, &k.DeleteHorizon, &k.MarkerTimestamp,
			&k.CleanBytes, &k.DirtyBytes, &k.OldestDirty); err != nil {
			return k, err
		}
		return k, json.Unmarshal(raw, &k.Configs)
	})
	if err != nil {
		return nil, fmt.Errorf("store: key compaction candidates: %w", err)
	}
	return out, nil
}

// keyCompactedSQL is true for a row of topics t whose cleanup.policy
// includes compact: key compaction's partitions, which merging pieces
// leaves alone.
const keyCompactedSQL = `'compact' = ANY (string_to_array(replace(coalesce(t.configs->>'cleanup.policy', 'delete'), ' ', ''), ','))`

// maxInt64SQL stands for "no dirty row" in OldestDirty.
const maxInt64SQL = `9223372036854775807`

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
