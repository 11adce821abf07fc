package store

import (
	"context"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"
)

// SharePartitionState is one share-partition's state (KIP-932 share
// groups, migration 0020): one group's delivery state of one partition.
// Start is the share-partition start offset; State is the broker's
// encoding of it and the in-flight records (data-plane/share).
type SharePartitionState struct {
	ClusterID, Group string
	PartitionID      int64
	LeaderEpoch      int32 // for writes: the partition leader epoch of the writer
	Start            int64
	State            []byte
}

// SaveSharePartitions writes rows in one statement, fenced like the flush
// commit: each row only while broker leads its partition at the row's
// LeaderEpoch, with the partition rows share-locked for the statement so
// a leader move waits for it. If any row fails its fence nothing is
// written and the error is ErrFenced.
func (s *Store) SaveSharePartitions(ctx context.Context, broker int32, rows []SharePartitionState) error {
	if len(rows) == 0 {
		return nil
	}
	clusters := make([]string, len(rows))
	groups := make([]string, len(rows))
	parts := make([]int64, len(rows))
	epochs := make([]int32, len(rows))
	starts := make([]int64, len(rows))
	states := make([][]byte, len(rows))
	for i, r := range rows {
		if !storableText(r.ClusterID) || !storableText(r.Group) {
			return fmt.Errorf("%w: group id Postgres cannot store", ErrInvalid)
		}
		clusters[i], groups[i], parts[i] = r.ClusterID, r.Group, r.PartitionID
		epochs[i], starts[i], states[i] = r.LeaderEpoch, r.Start, r.State
	}
	return pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		var fenced int
		err := tx.QueryRow(ctx, `
			WITH r AS (
				SELECT * FROM unnest($2::bigint[], $3::int[]) AS r(partition_id, leader_epoch)
			), ok AS (
				SELECT p.id FROM partitions p JOIN r ON p.id = r.partition_id
				WHERE p.leader_id = $1 AND p.leader_epoch = r.leader_epoch
				ORDER BY p.id
				FOR SHARE OF p
			)
			SELECT count(*) FROM r WHERE partition_id NOT IN (SELECT id FROM ok)`,
			broker, parts, epochs).Scan(&fenced)
		if err != nil {
			return fmt.Errorf("store: save share partitions: %w", err)
		}
		if fenced > 0 {
			return fmt.Errorf("store: save share partitions: %w", ErrFenced)
		}
		_, err = tx.Exec(ctx, `
			INSERT INTO share_partitions (cluster_id, group_id, partition_id, start_offset, state)
			SELECT r.* FROM unnest($1::text[], $2::text[], $3::bigint[], $4::bigint[], $5::bytea[])
				AS r(cluster_id, group_id, partition_id, start_offset, state)
			WHERE EXISTS (SELECT 1 FROM virtual_clusters c WHERE c.id = r.cluster_id)
			ORDER BY r.cluster_id, r.group_id, r.partition_id
			ON CONFLICT (cluster_id, group_id, partition_id) DO UPDATE SET
				start_offset = EXCLUDED.start_offset, state = EXCLUDED.state, updated_at = now()`,
			clusters, groups, parts, starts, states)
		if err != nil {
			return fmt.Errorf("store: save share partitions: %w", err)
		}
		return nil
	})
}

// LoadSharePartition returns a share-partition's stored state; ok is false
// when it has none.
func (s *Store) LoadSharePartition(ctx context.Context, clusterID, group string, partitionID int64) (state []byte, ok bool, err error) {
	err = s.pool.QueryRow(ctx, `
		SELECT state FROM share_partitions WHERE cluster_id = $1 AND group_id = $2 AND partition_id = $3`,
		clusterID, group, partitionID).Scan(&state)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, false, nil
	}
	if err != nil {
		return nil, false, fmt.Errorf("store: load share partition: %w", err)
	}
	return state, true, nil
}

// ShareOffset is a share-partition as the share-group offset APIs and
// metrics see it: its start offset and its partition's high watermark.
type ShareOffset struct {
	ClusterID, Group string
	TopicID          [16]byte
	Topic            string
	Partition        int32
	PartitionID      int64
	Start            int64
	HighWatermark    int64
	State            []byte
}

// ShareOffsets lists the share-partitions of cluster's group, or of every
// group of every cluster when clusterID is empty (the lag metrics), by
// topic and partition.
func (s *Store) ShareOffsets(ctx context.Context, clusterID, group string) ([]ShareOffset, error) {
	rows, err := s.pool.Query(ctx, `
		SELECT s.cluster_id, s.group_id, t.id, t.name, p.partition, p.id, s.start_offset, p.high_watermark, s.state
		FROM share_partitions s
		JOIN partitions p ON p.id = s.partition_id
		JOIN topics t ON t.id = p.topic_id
		WHERE ($1 = '' OR (s.cluster_id = $1 AND s.group_id = $2))
		ORDER BY s.cluster_id, s.group_id, t.name, p.partition`, clusterID, group)
	if err != nil {
		return nil, fmt.Errorf("store: share offsets: %w", err)
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (o ShareOffset, err error) {
		err = r.Scan(&o.ClusterID, &o.Group, &o.TopicID, &o.Topic, &o.Partition, &o.PartitionID, &o.Start, &o.HighWatermark, &o.State)
		return o, err
	})
	if err != nil {
		return nil, fmt.Errorf("store: share offsets: %w", err)
	}
	return out, nil
}

// ShareGroups lists the share groups of cluster that have stored state.
func (s *Store) ShareGroups(ctx context.Context, clusterID string) ([]string, error) {
	rows, err := s.pool.Query(ctx, `
		SELECT DISTINCT group_id FROM share_partitions WHERE cluster_id = $1 ORDER BY group_id`, clusterID)
	if err != nil {
		return nil, fmt.Errorf("store: share groups: %w", err)
	}
	out, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return nil, fmt.Errorf("store: share groups: %w", err)
	}
	return out, nil
}

// ResetSharePartitions replaces the state of group's share-partitions
// (an offset reset: the admin APIs), unfenced: the broker allows it only
// while the group has no members, and leaders drop what they loaded.
func (s *Store) ResetSharePartitions(ctx context.Context, rows []SharePartitionState) error {
	for _, r := range rows {
		if !storableText(r.ClusterID) || !storableText(r.Group) {
			return fmt.Errorf("%w: group id Postgres cannot store", ErrInvalid)
		}
		_, err := s.pool.Exec(ctx, `
			INSERT INTO share_partitions (cluster_id, group_id, partition_id, start_offset, state)
			VALUES ($1, $2, $3, $4, $5)
			ON CONFLICT (cluster_id, group_id, partition_id) DO UPDATE SET
				start_offset = EXCLUDED.start_offset, state = EXCLUDED.state, updated_at = now()`,
			r.ClusterID, r.Group, r.PartitionID, r.Start, r.State)
		if err != nil {
			return fmt.Errorf("store: reset share partitions: %w", err)
		}
	}
	return nil
}

// DeleteSharePartitions deletes the state of group's share-partitions
// (all of them for nil partitionIDs).
func (s *Store) DeleteSharePartitions(ctx context.Context, clusterID, group string, partitionIDs []int64) error {
	_, err := s.pool.Exec(ctx, `
		DELETE FROM share_partitions
		WHERE cluster_id = $1 AND group_id = $2 AND ($3::bigint[] IS NULL OR partition_id = ANY($3))`,
		clusterID, group, partitionIDs)
	if err != nil {
		return fmt.Errorf("store: delete share partitions: %w", err)
	}
	return nil
}
