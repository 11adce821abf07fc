package store

import (
	"context"
	"fmt"
)

// GroupOffset is a committed consumer-group offset.
type GroupOffset struct {
	Topic       string
	Partition   int32
	Offset      int64
	LeaderEpoch int32
	Metadata    string
}

// CommitOffsets upserts a group's offsets in one statement.
func (s *Store) CommitOffsets(ctx context.Context, clusterID, group string, offs []GroupOffset) error {
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
	_, err := s.pool.Exec(ctx, `
		INSERT INTO group_offsets (cluster_id, group_id, topic, partition, committed, leader_epoch, metadata)
		SELECT $1, $2, t.topic, t.partition, t.committed, t.leader_epoch, t.metadata
		FROM unnest($3::text[], $4::int[], $5::bigint[], $6::int[], $7::text[])
			AS t(topic, partition, committed, leader_epoch, metadata)
		ON CONFLICT (cluster_id, group_id, topic, partition) DO UPDATE SET
			committed = EXCLUDED.committed, leader_epoch = EXCLUDED.leader_epoch,
			metadata = EXCLUDED.metadata, committed_at = now()`,
		clusterID, group, topics, parts, offsets, epochs, metas)
	if err != nil {
		return fmt.Errorf("store: commit offsets for group %s: %w", group, err)
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
