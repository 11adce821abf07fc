package store

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5"
)

// ClusterQuota is a virtual cluster's pool-wide quotas and the storage it
// uses.
type ClusterQuota struct {
	ID              string
	ProduceBytes    int64 // per second (ingress_mbps)
	FetchBytes      int64 // per second (egress_mbps)
	RequestsPerSec  int32
	Connections     int32
	MaxStorageBytes int64
	StoredBytes     int64 // committed bytes the index references; -1 unless asked
	MaxPartitions   int32
}

// ClusterQuotas reads every cluster's quotas. With storage, it also sums
// each cluster's stored bytes from the index (a scan of the segment rows:
// call it seldom).
func (s *Store) ClusterQuotas(ctx context.Context, storage bool) ([]ClusterQuota, error) {
	rows, _ := s.pool.Query(ctx, `
		SELECT c.id, c.ingress_mbps::bigint * 1000000, c.egress_mbps::bigint * 1000000,
			c.max_requests_per_sec, c.max_connections, c.max_storage_gb * 1000000000,
			CASE WHEN $1 THEN coalesce((
				SELECT sum(sg.length) FROM segments sg
				JOIN partitions p ON p.id = sg.partition_id JOIN topics t ON t.id = p.topic_id
				WHERE t.cluster_id = c.id), 0)::bigint ELSE -1 END,
			c.max_partitions
		FROM virtual_clusters c`, storage)
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (ClusterQuota, error) {
		var q ClusterQuota
		err := r.Scan(&q.ID, &q.ProduceBytes, &q.FetchBytes, &q.RequestsPerSec, &q.Connections,
			&q.MaxStorageBytes, &q.StoredBytes, &q.MaxPartitions)
		return q, err
	})
	if err != nil {
		return nil, fmt.Errorf("store: cluster quotas: %w", err)
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
