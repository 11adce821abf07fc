package store

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
)

// GroupOffset is one committed offset of a consumer group with its
// partition's high watermark (lag = high watermark - committed, never
// below zero). HighWatermark is -1 when the topic no longer exists.
type GroupOffset struct {
	Topic         string
	Partition     int32
	Committed     int64
	HighWatermark int64
	Metadata      string
	CommittedAt   time.Time
}

// Lag is how far the group's consumers are behind on this partition.
func (o GroupOffset) Lag() int64 {
	if o.HighWatermark < 0 {
		return 0
	}
	return max(o.HighWatermark-o.Committed, 0)
}

// GroupSummary is a consumer group of a cluster as its committed offsets
// show it.
type GroupSummary struct {
	Group       string
	Partitions  int32 // partitions with a committed offset
	TotalLag    int64
	CommittedAt time.Time // newest commit
}

// Groups lists the consumer groups with committed offsets in a cluster of
// orgID, by group id. A cluster outside orgID is ErrNotFound.
func (s *Store) Groups(ctx context.Context, orgID, clusterID string, p Page) ([]GroupSummary, string, error) {
	if _, err := s.Cluster(ctx, orgID, clusterID); err != nil {
		return nil, "", err
	}
	rows, err := s.pool.Query(ctx, `
		SELECT g.group_id, count(*),
		       coalesce(sum(greatest(p.high_watermark - g.committed, 0)), 0),
		       max(g.committed_at)
		FROM group_offsets g
		LEFT JOIN topics t ON t.cluster_id = g.cluster_id AND t.name = g.topic
		LEFT JOIN partitions p ON p.topic_id = t.id AND p.partition = g.partition
		WHERE g.cluster_id = $1 AND g.group_id > $2
		GROUP BY g.group_id
		ORDER BY g.group_id
		LIMIT $3`, clusterID, p.After, p.limit()+1)
	if err != nil {
		return nil, "", fmt.Errorf("store: groups: %w", err)
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (GroupSummary, error) {
		var g GroupSummary
		return g, r.Scan(&g.Group, &g.Partitions, &g.TotalLag, &g.CommittedAt)
	})
	if err != nil {
		return nil, "", fmt.Errorf("store: groups: %w", err)
	}
	out, next := page(out, p.limit(), func(g GroupSummary) string { return g.Group })
	return out, next, nil
}

// GroupOffsets returns one group's committed offsets with their lag, by
// topic and partition; ErrNotFound if the group has none (or the cluster
// is not orgID's).
func (s *Store) GroupOffsets(ctx context.Context, orgID, clusterID, group string) ([]GroupOffset, error) {
	if _, err := s.Cluster(ctx, orgID, clusterID); err != nil {
		return nil, err
	}
	rows, err := s.pool.Query(ctx, `
		SELECT g.topic, g.partition, g.committed, coalesce(p.high_watermark, -1), g.metadata, g.committed_at
		FROM group_offsets g
		LEFT JOIN topics t ON t.cluster_id = g.cluster_id AND t.name = g.topic
		LEFT JOIN partitions p ON p.topic_id = t.id AND p.partition = g.partition
		WHERE g.cluster_id = $1 AND g.group_id = $2
		ORDER BY g.topic, g.partition`, clusterID, group)
	if err != nil {
		return nil, fmt.Errorf("store: group offsets: %w", err)
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (GroupOffset, error) {
		var o GroupOffset
		return o, r.Scan(&o.Topic, &o.Partition, &o.Committed, &o.HighWatermark, &o.Metadata, &o.CommittedAt)
	})
	if err != nil {
		return nil, fmt.Errorf("store: group offsets: %w", err)
	}
	if len(out) == 0 {
		return nil, ErrNotFound
	}
	return out, nil
}
