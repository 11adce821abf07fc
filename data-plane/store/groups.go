package store

import (
	"context"
	"fmt"
	"time"
)

// GroupOffset is a committed consumer-group offset.
type GroupOffset struct {
	Topic       string
	Partition   int32
	Offset      int64
	LeaderEpoch int32
	Metadata    string
}

// SlotFence names the coordinator slot a commit is made under: the slot
// and the leader epoch at which the committing broker owns it.
type SlotFence struct {
	Slot        int32
	BrokerID    int32
	LeaderEpoch int32
}

// CommitOffsets upserts a group's offsets in one statement, fenced by the
// coordinator slot: the write happens only if the slot is still led by
// fence.BrokerID at fence.LeaderEpoch, and the slot row is share-locked for
// the statement, so a slot move either waits for the commit or makes it
// fail with ErrFenced. A coordinator that lost the slot can therefore never
// write after the new coordinator has loaded the group's offsets.
func (s *Store) CommitOffsets(ctx context.Context, clusterID, group string, fence SlotFence, offs []GroupOffset) error {
	if len(offs) == 0 {
		return nil
	}
	topics := make([]string, len(offs))
	parts := make([]int32, len(offs))
	offsets := make([]int64, len(offs))
	epochs := make([]int32, len(offs))
	metas := make([]string, len(offs))
	for i, o := range offs {
		topics[i], parts[i], offsets[i], epochs[i], metas[i] = o.Topic, o.Partition, o.Offset, o.LeaderEpoch, o.Metadata
	}
	var owned bool
	err := s.pool.QueryRow(ctx, `
		WITH fence AS (
			SELECT 1 FROM coordinator_slots
			WHERE slot = $8 AND leader_id = $9 AND leader_epoch = $10
			FOR SHARE
		), ins AS (
			INSERT INTO group_offsets (cluster_id, group_id, topic, partition, committed, leader_epoch, metadata)
			SELECT $1, $2, t.topic, t.partition, t.committed, t.leader_epoch, t.metadata
			FROM unnest($3::text[], $4::int[], $5::bigint[], $6::int[], $7::text[])
				AS t(topic, partition, committed, leader_epoch, metadata)
			WHERE EXISTS (SELECT 1 FROM fence)
			ON CONFLICT (cluster_id, group_id, topic, partition) DO UPDATE SET
				committed = EXCLUDED.committed, leader_epoch = EXCLUDED.leader_epoch,
				metadata = EXCLUDED.metadata, committed_at = now()
			RETURNING 1
		)
		SELECT EXISTS (SELECT 1 FROM fence)`,
		clusterID, group, topics, parts, offsets, epochs, metas,
		fence.Slot, fence.BrokerID, fence.LeaderEpoch).Scan(&owned)
	if err != nil {
		return fmt.Errorf("store: commit offsets for group %s: %w", group, err)
	}
	if !owned {
		return fmt.Errorf("store: commit offsets for group %s: slot %d no longer led by broker %d at epoch %d: %w",
			group, fence.Slot, fence.BrokerID, fence.LeaderEpoch, ErrFenced)
	}
	return nil
}

// FetchOffsets returns every committed offset of a group.
func (s *Store) FetchOffsets(ctx context.Context, clusterID, group string) ([]GroupOffset, error) {
	rows, err := s.pool.Query(ctx, `
		SELECT topic, partition, committed, leader_epoch, metadata FROM group_offsets
		WHERE cluster_id = $1 AND group_id = $2 ORDER BY topic, partition`, clusterID, group)
	if err != nil {
		return nil, fmt.Errorf("store: fetch offsets for group %s: %w", group, err)
	}
	defer rows.Close()
	var out []GroupOffset
	for rows.Next() {
		var o GroupOffset
		if err := rows.Scan(&o.Topic, &o.Partition, &o.Offset, &o.LeaderEpoch, &o.Metadata); err != nil {
			return nil, fmt.Errorf("store: fetch offsets for group %s: %w", group, err)
		}
		out = append(out, o)
	}
	return out, rows.Err()
}

// DeleteGroupOffsets deletes a group's offsets: all of them when topics is
// nil, else only the listed partitions.
func (s *Store) DeleteGroupOffsets(ctx context.Context, clusterID, group string, topics map[string][]int32) error {
	if topics == nil {
		_, err := s.pool.Exec(ctx, `DELETE FROM group_offsets WHERE cluster_id = $1 AND group_id = $2`, clusterID, group)
		if err != nil {
			return fmt.Errorf("store: delete offsets for group %s: %w", group, err)
		}
		return nil
	}
	var ts []string
	var ps []int32
	for t, parts := range topics {
		for _, p := range parts {
			ts, ps = append(ts, t), append(ps, p)
		}
	}
	_, err := s.pool.Exec(ctx, `
		DELETE FROM group_offsets g USING unnest($3::text[], $4::int[]) AS d(topic, partition)
		WHERE g.cluster_id = $1 AND g.group_id = $2 AND g.topic = d.topic AND g.partition = d.partition`,
		clusterID, group, ts, ps)
	if err != nil {
		return fmt.Errorf("store: delete offsets for group %s: %w", group, err)
	}
	return nil
}

// GroupsWithOffsets lists the groups of a cluster that have committed
// offsets.
func (s *Store) GroupsWithOffsets(ctx context.Context, clusterID string) ([]string, error) {
	rows, err := s.pool.Query(ctx, `SELECT DISTINCT group_id FROM group_offsets WHERE cluster_id = $1 ORDER BY 1`, clusterID)
	if err != nil {
		return nil, fmt.Errorf("store: list groups: %w", err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var g string
		if err := rows.Scan(&g); err != nil {
			return nil, err
		}
		out = append(out, g)
	}
	return out, rows.Err()
}

// GroupLag is one committed offset with its partition's high watermark.
type GroupLag struct {
	ClusterID     string
	Group         string
	Topic         string
	Partition     int32
	Committed     int64
	HighWatermark int64
}

// GroupLags returns every committed offset of topics that still exist,
// with the partition's high watermark, for lag reporting.
func (s *Store) GroupLags(ctx context.Context) ([]GroupLag, error) {
	rows, err := s.pool.Query(ctx, `
		SELECT g.cluster_id, g.group_id, g.topic, g.partition, g.committed, p.high_watermark
		FROM group_offsets g
		JOIN topics t ON t.cluster_id = g.cluster_id AND t.name = g.topic
		JOIN partitions p ON p.topic_id = t.id AND p.partition = g.partition`)
	if err != nil {
		return nil, fmt.Errorf("store: group lags: %w", err)
	}
	defer rows.Close()
	var out []GroupLag
	for rows.Next() {
		var l GroupLag
		if err := rows.Scan(&l.ClusterID, &l.Group, &l.Topic, &l.Partition, &l.Committed, &l.HighWatermark); err != nil {
			return nil, fmt.Errorf("store: group lags: %w", err)
		}
		out = append(out, l)
	}
	return out, rows.Err()
}

// GroupKey names a group across virtual clusters.
type GroupKey struct {
	ClusterID string
	Group     string
}

// StaleGroups lists the groups whose newest committed offset is older than
// before: the candidates for offset expiry.
func (s *Store) StaleGroups(ctx context.Context, before time.Time) ([]GroupKey, error) {
	rows, err := s.pool.Query(ctx, `
		SELECT cluster_id, group_id FROM group_offsets
		GROUP BY cluster_id, group_id HAVING max(committed_at) < $1`, before)
	if err != nil {
		return nil, fmt.Errorf("store: stale groups: %w", err)
	}
	defer rows.Close()
	var out []GroupKey
	for rows.Next() {
		var k GroupKey
		if err := rows.Scan(&k.ClusterID, &k.Group); err != nil {
			return nil, fmt.Errorf("store: stale groups: %w", err)
		}
		out = append(out, k)
	}
	return out, rows.Err()
}

// ExpireGroupOffsets deletes a group's offsets if none of them was
// committed at or after before, in one statement: a commit that races with
// the expiry either lands first (and nothing is deleted) or after (and is
// kept).
func (s *Store) ExpireGroupOffsets(ctx context.Context, clusterID, group string, before time.Time) (int64, error) {
	tag, err := s.pool.Exec(ctx, `
		DELETE FROM group_offsets
		WHERE cluster_id = $1 AND group_id = $2
		AND NOT EXISTS (SELECT 1 FROM group_offsets
			WHERE cluster_id = $1 AND group_id = $2 AND committed_at >= $3)`,
		clusterID, group, before)
	if err != nil {
		return 0, fmt.Errorf("store: expire offsets of group %s: %w", group, err)
	}
	return tag.RowsAffected(), nil
}
