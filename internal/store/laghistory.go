package store

import (
	"context"
	"fmt"
	"time"
)

// Consumer-group lag history (migration 0025, group_lag_samples): what
// control-plane/laghistory samples and GET .../lag-history returns.

// PartitionLag is one partition's lag in a LagSample.
type PartitionLag struct {
	Topic     string
	Partition int32
	Lag       int64
}

// LagSample is a group's lag at one instant.
type LagSample struct {
	At         time.Time
	TotalLag   int64
	Partitions []PartitionLag // by topic and partition
}

// SampleGroupLag stores, at instant at, the lag of every consumer group
// with committed offsets in every cluster — computed as GroupOffset.Lag
// and Groups compute it — in one statement. At most maxGroupsPerCluster
// groups of a cluster are sampled (the first by group id), which bounds
// the rows a cluster adds per sample and the rows the statement reads:
// each cluster's groups are taken from group_offsets' primary key in
// order and the walk stops at the cap, so a tenant with more groups than
// that does not make every sample read all of them. A second sample at
// the same instant adds nothing. It returns how many groups it sampled.
func (s *Store) SampleGroupLag(ctx context.Context, at time.Time, maxGroupsPerCluster int) (int64, error) {
	tag, err := s.pool.Exec(ctx, sampleGroupLagSQL, at, maxGroupsPerCluster)
	if err != nil {
		return 0, fmt.Errorf("store: sample group lag: %w", err)
	}
	return tag.RowsAffected(), nil
}

const sampleGroupLagSQL = `
		WITH lag AS (
			SELECT c.id AS cluster_id, g.group_id, g.topic, g.partition,
			       CASE WHEN p.high_watermark IS NULL OR p.high_watermark < 0 THEN 0
			            ELSE greatest(p.high_watermark - g.committed, 0) END AS lag
			FROM virtual_clusters c
			-- The cluster's last sampled group: the cap-th by id.
			CROSS JOIN LATERAL (
				SELECT max(group_id) AS last FROM (
					SELECT DISTINCT o.group_id FROM group_offsets o
					WHERE o.cluster_id = c.id ORDER BY o.group_id LIMIT $2) first) b
			-- OFFSET 0 keeps this a range scan of the primary key per
			-- cluster (flattened, it is planned as a hash join over all
			-- of group_offsets).
			CROSS JOIN LATERAL (
				SELECT o.group_id, o.topic, o.partition, o.committed FROM group_offsets o
				WHERE o.cluster_id = c.id AND o.group_id <= b.last OFFSET 0) g
			LEFT JOIN topics t ON t.cluster_id = c.id AND t.name = g.topic
			LEFT JOIN partitions p ON p.topic_id = t.id AND p.partition = g.partition
		)
		INSERT INTO group_lag_samples (cluster_id, group_id, sampled_at, total_lag, topics, partitions, lags)
		SELECT cluster_id, group_id, $1, sum(lag),
		       array_agg(topic ORDER BY topic, partition),
		       array_agg(partition ORDER BY topic, partition),
		       array_agg(lag ORDER BY topic, partition)
		FROM lag
		GROUP BY cluster_id, group_id
		ON CONFLICT DO NOTHING`

// PruneGroupLag deletes lag samples taken before before, at most limit of
// them (oldest first, so a backlog goes over several short statements),
// and returns how many it deleted.
func (s *Store) PruneGroupLag(ctx context.Context, before time.Time, limit int) (int64, error) {
	tag, err := s.pool.Exec(ctx, `DELETE FROM group_lag_samples WHERE ctid IN (
		SELECT ctid FROM group_lag_samples WHERE sampled_at < $1 ORDER BY sampled_at LIMIT $2)`, before, limit)
	if err != nil {
		return 0, fmt.Errorf("store: prune group lag: %w", err)
	}
	return tag.RowsAffected(), nil
}

// GroupLagHistory returns a group's lag samples taken after since, oldest
// first: at most limit of them, and no more after the one that would take
// their partition lags past maxPoints (the first is always returned), so
// a group of many partitions cannot make a page without bound. The
// samples are the oldest after since, so a caller pages on by asking
// again after the last one's time; more reports that a bound ended the
// page (there may be more). A cluster outside orgID is ErrNotFound; a
// group without samples has none.
func (s *Store) GroupLagHistory(ctx context.Context, orgID, clusterID, group string, since time.Time, limit, maxPoints int) (samples []LagSample, more bool, err error) {
	if _, err := s.Cluster(ctx, orgID, clusterID); err != nil {
		return nil, false, err
	}
	rows, err := s.pool.Query(ctx, `
		SELECT sampled_at, total_lag, topics, partitions, lags FROM group_lag_samples
		WHERE cluster_id = $1 AND group_id = $2 AND sampled_at > $3
		ORDER BY sampled_at LIMIT $4`, clusterID, group, since, limit)
	if err != nil {
		return nil, false, fmt.Errorf("store: group lag history: %w", err)
	}
	defer rows.Close()
	points := 0
	for rows.Next() {
		var (
			ls     LagSample
			topics []string
			parts  []int32
			lags   []int64
		)
		if err := rows.Scan(&ls.At, &ls.TotalLag, &topics, &parts, &lags); err != nil {
			return nil, false, fmt.Errorf("store: group lag history: %w", err)
		}
		if len(parts) != len(topics) || len(lags) != len(topics) {
			return nil, false, fmt.Errorf("store: group lag history: sample at %s: arrays of different lengths", ls.At)
		}
		if points += len(topics); points > maxPoints && len(samples) > 0 {
			return samples, true, nil
		}
		ls.Partitions = make([]PartitionLag, len(topics))
		for i := range topics {
			ls.Partitions[i] = PartitionLag{Topic: topics[i], Partition: parts[i], Lag: lags[i]}
		}
		samples = append(samples, ls)
	}
	if err := rows.Err(); err != nil {
		return nil, false, fmt.Errorf("store: group lag history: %w", err)
	}
	return samples, len(samples) == limit, nil
}
