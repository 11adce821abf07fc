package store

import (
	"context"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"
)

// ErrLimit: the change would take a virtual cluster past one of its limits
// (partitions). Brokers answer POLICY_VIOLATION with the error's text.
var ErrLimit = errors.New("store: cluster limit exceeded")

// lockCluster takes the cluster's row lock, which serialises partition
// creation within a cluster (here and in the control plane's store).
func lockCluster(ctx context.Context, tx pgx.Tx, clusterID string) error {
	var one int
	err := tx.QueryRow(ctx, `SELECT 1 FROM virtual_clusters WHERE id = $1 FOR UPDATE`, clusterID).Scan(&one)
	return notFound(err)
}

// checkPartitionLimit locks the cluster and fails with ErrLimit if n more
// partitions would exceed its max_partitions. The count is a statement of
// its own after the lock: under READ COMMITTED it then sees what the
// previous holder of the lock committed.
func checkPartitionLimit(ctx context.Context, tx pgx.Tx, clusterID string, n int32) error {
	if err := lockCluster(ctx, tx, clusterID); err != nil {
		return fmt.Errorf("store: cluster %s: %w", clusterID, err)
	}
	var limit, used int32
	err := tx.QueryRow(ctx, `
		SELECT c.max_partitions,
			(SELECT count(*)::int FROM partitions p JOIN topics t ON t.id = p.topic_id WHERE t.cluster_id = c.id)
		FROM virtual_clusters c WHERE c.id = $1`, clusterID).Scan(&limit, &used)
	if err != nil {
		return fmt.Errorf("store: partition limit: %w", err)
	}
	if used+n > limit {
		return fmt.Errorf("%w: the cluster has %d of its %d partitions; %d more do not fit", ErrLimit, used, limit, n)
	}
	return nil
}

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
