package store

import (
	"context"
	"errors"
	"fmt"
	"time"

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
		// bumps state_epoch; the WHERE repeats the check under that lock,
		// and a row it skips (or one of a cluster deleted since) is written
		// by nobody: fenced, not a success the caller would build on.
		tag, err := tx.Exec(ctx, `
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
		if n := tag.RowsAffected(); n != int64(len(rows)) {
			return fmt.Errorf("store: save share partitions: %d of %d rows written: %w", n, len(rows), ErrFenced)
		}
		return nil
	})
}

// LoadSharePartition returns a share-partition's stored state with its
// state epoch, which writes of it must name. State is nil and Start -1
// when it has none (never written, or deleted); State is nil and Start
// set after a reset (nothing in flight).
func (s *Store) LoadSharePartition(ctx context.Context, clusterID, group string, partitionID int64) (SharePartitionState, error) {
	st := SharePartitionState{ClusterID: clusterID, Group: group, PartitionID: partitionID, Start: -1}
	err := s.pool.QueryRow(ctx, `
		SELECT coalesce(start_offset, -1), state, state_epoch FROM share_partitions
		WHERE cluster_id = $1 AND group_id = $2 AND partition_id = $3`,
		clusterID, group, partitionID).Scan(&st.Start, &st.State, &st.StateEpoch)
	if errors.Is(err, pgx.ErrNoRows) {
		return st, nil
	}
	if err != nil {
		return st, fmt.Errorf("store: load share partition: %w", err)
	}
	return st, nil
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
	LogStart         int64
	State            []byte
	UpdatedAt        time.Time
}

// Backlog is the records from the start offset to the high watermark:
// not yet acknowledged or archived, but for those finished out of order
// above the start (an upper bound, cheap to compute).
func (o ShareOffset) Backlog() int64 { return max(o.HighWatermark-o.Start, 0) }

// ShareOffsets lists the share-partitions of cluster's group by topic and
// partition.
func (s *Store) ShareOffsets(ctx context.Context, clusterID, group string) ([]ShareOffset, error) {
	rows, err := s.pool.Query(ctx, `
		SELECT s.cluster_id, s.group_id, t.id, t.name, p.partition, p.id, s.start_offset, p.high_watermark,
		       p.log_start_offset, s.state, s.updated_at
		FROM share_partitions s
		JOIN partitions p ON p.id = s.partition_id
		JOIN topics t ON t.id = p.topic_id
		WHERE s.start_offset IS NOT NULL AND s.cluster_id = $1 AND s.group_id = $2
		ORDER BY t.name, p.partition`, clusterID, group)
	if err != nil {
		return nil, fmt.Errorf("store: share offsets: %w", err)
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (o ShareOffset, err error) {
		err = r.Scan(&o.ClusterID, &o.Group, &o.TopicID, &o.Topic, &o.Partition, &o.PartitionID, &o.Start, &o.HighWatermark,
			&o.LogStart, &o.State, &o.UpdatedAt)
		return o, err
	})
	if err != nil {
		return nil, fmt.Errorf("store: share offsets: %w", err)
	}
	return out, nil
}

// LedShareOffsets lists the share-partitions, of every group of every
// cluster, of the partitions broker leads, without State: the backlog
// metrics, read at every scrape, need neither other brokers' rows nor the
// in-flight state.
func (s *Store) LedShareOffsets(ctx context.Context, broker int32) ([]ShareOffset, error) {
	rows, err := s.pool.Query(ctx, `
		SELECT s.cluster_id, s.group_id, t.id, t.name, p.partition, p.id, s.start_offset, p.high_watermark,
		       p.log_start_offset, s.updated_at
		FROM share_partitions s
		JOIN partitions p ON p.id = s.partition_id
		JOIN topics t ON t.id = p.topic_id
		WHERE s.start_offset IS NOT NULL AND p.leader_id = $1
		ORDER BY s.cluster_id, s.group_id, t.name, p.partition`, broker)
	if err != nil {
		return nil, fmt.Errorf("store: led share offsets: %w", err)
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (o ShareOffset, err error) {
		err = r.Scan(&o.ClusterID, &o.Group, &o.TopicID, &o.Topic, &o.Partition, &o.PartitionID, &o.Start, &o.HighWatermark,
			&o.LogStart, &o.UpdatedAt)
		return o, err
	})
	if err != nil {
		return nil, fmt.Errorf("store: led share offsets: %w", err)
	}
	return out, nil
}

// ShareGroupOffsets is ShareOffsets of a group of a cluster of orgID (the
// REST API): ErrNotFound for a cluster outside orgID or a group without
// share-partition state.
func (s *Store) ShareGroupOffsets(ctx context.Context, orgID, clusterID, group string) ([]ShareOffset, error) {
	if _, err := s.Cluster(ctx, orgID, clusterID); err != nil {
		return nil, err
	}
	out, err := s.ShareOffsets(ctx, clusterID, group)
	if err == nil && len(out) == 0 {
		err = ErrNotFound
	}
	return out, err
}

// ShareGroupSummary is a share group as its stored state shows it.
type ShareGroupSummary struct {
	Group      string
	Partitions int32 // share-partitions with state
	Backlog    int64 // summed ShareOffset.Backlog
	UpdatedAt  time.Time
}

// ShareGroupSummaries lists the share groups with state in a cluster of
// orgID, by group id.
func (s *Store) ShareGroupSummaries(ctx context.Context, orgID, clusterID string, p Page) ([]ShareGroupSummary, string, error) {
	if _, err := s.Cluster(ctx, orgID, clusterID); err != nil {
		return nil, "", err
	}
	rows, _ := s.pool.Query(ctx, `
		SELECT s.group_id, count(*), coalesce(sum(greatest(p.high_watermark - s.start_offset, 0)), 0), max(s.updated_at)
		FROM share_partitions s JOIN partitions p ON p.id = s.partition_id
		WHERE s.cluster_id = $1 AND s.group_id > $2 AND s.start_offset IS NOT NULL
		GROUP BY s.group_id
		ORDER BY s.group_id
		LIMIT $3`, clusterID, p.After, p.limit()+1)
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (g ShareGroupSummary, err error) {
		return g, r.Scan(&g.Group, &g.Partitions, &g.Backlog, &g.UpdatedAt)
	})
	if err != nil {
		return nil, "", fmt.Errorf("store: share groups: %w", err)
	}
	out, next := page(out, p.limit(), func(g ShareGroupSummary) string { return g.Group })
	return out, next, nil
}

// HasShareState reports whether cluster's group has stored share-partition
// state (a start offset), so it exists though it has no members.
func (s *Store) HasShareState(ctx context.Context, clusterID, group string) (bool, error) {
	var ok bool
	err := s.pool.QueryRow(ctx, `
		SELECT EXISTS (SELECT 1 FROM share_partitions WHERE cluster_id = $1 AND group_id = $2 AND start_offset IS NOT NULL)`,
		clusterID, group).Scan(&ok)
	if err != nil {
		return false, fmt.Errorf("store: share state: %w", err)
	}
	return ok, nil
}

// ShareGroups lists the share groups of cluster that have stored state.
func (s *Store) ShareGroups(ctx context.Context, clusterID string) ([]string, error) {
	rows, err := s.pool.Query(ctx, `
		SELECT DISTINCT group_id FROM share_partitions WHERE cluster_id = $1 AND start_offset IS NOT NULL ORDER BY group_id`, clusterID)
	if err != nil {
		return nil, fmt.Errorf("store: share groups: %w", err)
	}
	out, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return nil, fmt.Errorf("store: share groups: %w", err)
	}
	return out, nil
}

// ResetSharePartitions starts share-partitions over at each row's Start
// with nothing in flight (the share-group offset APIs; a negative Start
// deletes the state) and bumps their state epoch, so leaders holding the old state fail their next write and load
// the new one. It is not fenced by leadership: the broker allows it only
// while the group has no members.
func (s *Store) ResetSharePartitions(ctx context.Context, rows []SharePartitionState) error {
	clusters := make([]string, len(rows))
	groups := make([]string, len(rows))
	parts := make([]int64, len(rows))
	starts := make([]*int64, len(rows))
	for i, r := range rows {
		if !storableText(r.ClusterID) || !storableText(r.Group) {
			return fmt.Errorf("%w: group id Postgres cannot store", ErrInvalid)
		}
		clusters[i], groups[i], parts[i] = r.ClusterID, r.Group, r.PartitionID
		if r.Start >= 0 {
			starts[i] = &rows[i].Start
		}
	}
	_, err := s.pool.Exec(ctx, `
		INSERT INTO share_partitions (cluster_id, group_id, partition_id, state_epoch, start_offset, state)
		SELECT r.cluster_id, r.group_id, r.partition_id, 1, r.start_offset, NULL
		FROM unnest($1::text[], $2::text[], $3::bigint[], $4::bigint[])
			AS r(cluster_id, group_id, partition_id, start_offset)
		WHERE EXISTS (SELECT 1 FROM partitions p WHERE p.id = r.partition_id)
		ORDER BY r.cluster_id, r.group_id, r.partition_id
		ON CONFLICT (cluster_id, group_id, partition_id) DO UPDATE SET
			state_epoch = share_partitions.state_epoch + 1,
			start_offset = EXCLUDED.start_offset, state = NULL, updated_at = now()`,
		clusters, groups, parts, starts)
	if err != nil {
		return fmt.Errorf("store: reset share partitions: %w", err)
	}
	return nil
}
