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
// StateEpoch is the epoch of operator resets the state was loaded at.
type SharePartitionState struct {
	ClusterID, Group string
	PartitionID      int64
	LeaderEpoch      int32 // for writes: the partition leader epoch of the writer
	StateEpoch       int32
	Start            int64
	State            []byte
}

// SaveSharePartitions writes rows in one statement, fenced like the flush
// commit: each row only while broker leads its partition at the row's
// LeaderEpoch (the partition rows are share-locked for the statement, so
// a leader move waits for it) and while the stored state is at the row's
// StateEpoch (no operator reset or deletion since it was loaded). If any
// row fails its fence nothing is written and the error is ErrFenced.
func (s *Store) SaveSharePartitions(ctx context.Context, broker int32, rows []SharePartitionState) error {
	if len(rows) == 0 {
		return nil
	}
	clusters := make([]string, len(rows))
	groups := make([]string, len(rows))
	parts := make([]int64, len(rows))
	epochs := make([]int32, len(rows))
	stateEpochs := make([]int32, len(rows))
	starts := make([]int64, len(rows))
	states := make([][]byte, len(rows))
	for i, r := range rows {
		if !storableText(r.ClusterID) || !storableText(r.Group) {
			return fmt.Errorf("%w: group id Postgres cannot store", ErrInvalid)
		}
		clusters[i], groups[i], parts[i] = r.ClusterID, r.Group, r.PartitionID
		epochs[i], starts[i], states[i] = r.LeaderEpoch, r.Start, r.State
		stateEpochs[i] = r.StateEpoch
	}
	return pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		var fenced int
		err := tx.QueryRow(ctx, `
			WITH r AS (
				SELECT * FROM unnest($2::bigint[], $3::int[], $4::text[], $5::text[], $6::int[])
					AS r(partition_id, leader_epoch, cluster_id, group_id, state_epoch)
			), ok AS (
				SELECT p.id FROM partitions p JOIN r ON p.id = r.partition_id
				WHERE p.leader_id = $1 AND p.leader_epoch = r.leader_epoch
				ORDER BY p.id
				FOR SHARE OF p
			)
			SELECT count(*) FROM r
			LEFT JOIN share_partitions s USING (cluster_id, group_id, partition_id)
			WHERE r.partition_id NOT IN (SELECT id FROM ok) OR coalesce(s.state_epoch, 0) <> r.state_epoch`,
			broker, parts, epochs, clusters, groups, stateEpochs).Scan(&fenced)
		if err != nil {
			return fmt.Errorf("store: save share partitions: %w", err)
		}
		if fenced > 0 {
			return fmt.Errorf("store: save share partitions: %w", ErrFenced)
		}
		// A reset racing this statement waits for the row lock and then
		// bumps state_epoch; the WHERE repeats the check under that lock.
		_, err = tx.Exec(ctx, `
			INSERT INTO share_partitions (cluster_id, group_id, partition_id, state_epoch, start_offset, state)
			SELECT r.* FROM unnest($1::text[], $2::text[], $3::bigint[], $4::int[], $5::bigint[], $6::bytea[])
				AS r(cluster_id, group_id, partition_id, state_epoch, start_offset, state)
			WHERE EXISTS (SELECT 1 FROM virtual_clusters c WHERE c.id = r.cluster_id)
			ORDER BY r.cluster_id, r.group_id, r.partition_id
			ON CONFLICT (cluster_id, group_id, partition_id) DO UPDATE SET
				start_offset = EXCLUDED.start_offset, state = EXCLUDED.state, updated_at = now()
			WHERE share_partitions.state_epoch = EXCLUDED.state_epoch`,
			clusters, groups, parts, stateEpochs, starts, states)
		if err != nil {
			return fmt.Errorf("store: save share partitions: %w", err)
		}
		return nil
	})
}

// LoadSharePartition returns a share-partition's stored state and its
// state epoch, which writes of it must name; state is nil when it has
// none (never written, or deleted).
func (s *Store) LoadSharePartition(ctx context.Context, clusterID, group string, partitionID int64) (state []byte, stateEpoch int32, err error) {
	err = s.pool.QueryRow(ctx, `
		SELECT state, state_epoch FROM share_partitions WHERE cluster_id = $1 AND group_id = $2 AND partition_id = $3`,
		clusterID, group, partitionID).Scan(&state, &stateEpoch)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, 0, nil
	}
	if err != nil {
		return nil, 0, fmt.Errorf("store: load share partition: %w", err)
	}
	return state, stateEpoch, nil
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
		WHERE s.state IS NOT NULL AND ($1 = '' OR (s.cluster_id = $1 AND s.group_id = $2))
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
		SELECT DISTINCT group_id FROM share_partitions WHERE cluster_id = $1 AND state IS NOT NULL ORDER BY group_id`, clusterID)
	if err != nil {
		return nil, fmt.Errorf("store: share groups: %w", err)
	}
	out, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return nil, fmt.Errorf("store: share groups: %w", err)
	}
	return out, nil
}

// ResetSharePartitions replaces the state of share-partitions (the
// share-group offset APIs: a nil State deletes it) and bumps their state
// epoch, so leaders holding the old state fail their next write and load
// the new one. It is not fenced by leadership: the broker allows it only
// while the group has no members.
func (s *Store) ResetSharePartitions(ctx context.Context, rows []SharePartitionState) error {
	clusters := make([]string, len(rows))
	groups := make([]string, len(rows))
	parts := make([]int64, len(rows))
	starts := make([]*int64, len(rows))
	states := make([][]byte, len(rows))
	for i, r := range rows {
		if !storableText(r.ClusterID) || !storableText(r.Group) {
			return fmt.Errorf("%w: group id Postgres cannot store", ErrInvalid)
		}
		clusters[i], groups[i], parts[i], states[i] = r.ClusterID, r.Group, r.PartitionID, r.State
		if r.State != nil {
			starts[i] = &rows[i].Start
		}
	}
	_, err := s.pool.Exec(ctx, `
		INSERT INTO share_partitions (cluster_id, group_id, partition_id, state_epoch, start_offset, state)
		SELECT r.cluster_id, r.group_id, r.partition_id, 1, r.start_offset, r.state
		FROM unnest($1::text[], $2::text[], $3::bigint[], $4::bigint[], $5::bytea[])
			AS r(cluster_id, group_id, partition_id, start_offset, state)
		WHERE EXISTS (SELECT 1 FROM partitions p WHERE p.id = r.partition_id)
		ORDER BY r.cluster_id, r.group_id, r.partition_id
		ON CONFLICT (cluster_id, group_id, partition_id) DO UPDATE SET
			state_epoch = share_partitions.state_epoch + 1,
			start_offset = EXCLUDED.start_offset, state = EXCLUDED.state, updated_at = now()`,
		clusters, groups, parts, starts, states)
	if err != nil {
		return fmt.Errorf("store: reset share partitions: %w", err)
	}
	return nil
}
