package store

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
)

// ClusterOccupancy is what a cluster holds now, for comparing with its
// limits (GET /v1/clusters/{id}/quota-usage): its topics and consumer
// groups, and its stored bytes as the ledger last sampled them (the
// storage_samples of migration 0007; zero SampledAt when never). Rates
// and connections come from the brokers' load reports instead
// (BrokerLoads).
type ClusterOccupancy struct {
	Topics           int32
	Groups           int32 // with committed offsets
	StoredBytes      int64
	StorageSampledAt time.Time
}

// Occupancy returns a cluster's occupancy; it does not check who owns
// the cluster (the caller loaded it through its organisation).
func (s *Store) Occupancy(ctx context.Context, clusterID string) (ClusterOccupancy, error) {
	var o ClusterOccupancy
	err := s.pool.QueryRow(ctx, `
		SELECT (SELECT count(*) FROM topics WHERE cluster_id = $1),
		       (SELECT count(DISTINCT group_id) FROM group_offsets WHERE cluster_id = $1)`, clusterID).Scan(&o.Topics, &o.Groups)
	if err != nil {
		return o, fmt.Errorf("store: occupancy: %w", err)
	}
	// The newest sample: the primary key (cluster_id, window_start) makes
	// this one index probe.
	err = s.pool.QueryRow(ctx, `
		SELECT bytes, window_start FROM storage_samples WHERE cluster_id = $1
		ORDER BY window_start DESC LIMIT 1`, clusterID).Scan(&o.StoredBytes, &o.StorageSampledAt)
	if err != nil && !errors.Is(err, pgx.ErrNoRows) {
		return o, fmt.Errorf("store: occupancy: %w", err)
	}
	return o, nil
}
