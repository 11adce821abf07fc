package store

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5"

	"github.com/eddy-streams/eddy/internal/limits"
)

// ClusterLimits reads every cluster's limits, by cluster id.
func (s *Store) ClusterLimits(ctx context.Context) (map[string]limits.Limits, error) {
	rows, _ := s.pool.Query(ctx, `SELECT id, `+limitCols+` FROM virtual_clusters`)
	out := map[string]limits.Limits{}
	var (
		id string
		l  limits.Limits
	)
	_, err := pgx.ForEachRow(rows, append([]any{&id}, limitDests(&l)...), func() error {
		out[id] = l
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("store: cluster limits: %w", err)
	}
	return out, nil
}

// StoredBytes sums every cluster's committed bytes that the index
// references, by cluster id (0 for a cluster with none). It scans the
// segment rows: call it seldom.
func (s *Store) StoredBytes(ctx context.Context) (map[string]int64, error) {
	rows, _ := s.pool.Query(ctx, `
		SELECT c.id, coalesce((
			SELECT sum(sg.length) FROM segments sg
			JOIN partitions p ON p.id = sg.partition_id JOIN topics t ON t.id = p.topic_id
			WHERE t.cluster_id = c.id), 0)::bigint
		FROM virtual_clusters c`)
	out := map[string]int64{}
	var (
		id string
		n  int64
	)
	_, err := pgx.ForEachRow(rows, []any{&id, &n}, func() error {
		out[id] = n
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("store: stored bytes: %w", err)
	}
	return out, nil
}

// BrokerLoads returns the last load report (brokerload JSON) of every live
// broker.
func (s *Store) BrokerLoads(ctx context.Context) (map[int32][]byte, error) {
	rows, _ := s.pool.Query(ctx, `SELECT id, load::text FROM brokers WHERE expires_at > now()`)
	out := map[int32][]byte{}
	var (
		id   int32
		load string
	)
	_, err := pgx.ForEachRow(rows, []any{&id, &load}, func() error {
		out[id] = []byte(load)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("store: broker loads: %w", err)
	}
	return out, nil
}
