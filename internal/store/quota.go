package store

import (
	"context"
	"fmt"
	"strings"

	"github.com/jackc/pgx/v5"

	"github.com/eddy-streams/eddy/internal/limits"
)

// ClusterLimits reads every cluster's effective limits, by cluster id:
// its own capped by its plan's ceilings (limits.Limits.Capped).
func (s *Store) ClusterLimits(ctx context.Context) (map[string]limits.Limits, error) {
	rows, _ := s.pool.Query(ctx, `SELECT c.id, `+limitColsOf("c")+`, `+limitColsOf("p")+` FROM virtual_clusters c`+withPlan)
	out := map[string]limits.Limits{}
	var (
		id      string
		l, ceil limits.Limits
	)
	_, err := pgx.ForEachRow(rows, append(append([]any{&id}, limitDests(&l)...), limitDests(&ceil)...), func() error {
		out[id] = l.Capped(ceil)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("store: cluster limits: %w", err)
	}
	return out, nil
}

// effectiveLimits reads one cluster's effective limits.
func effectiveLimits(ctx context.Context, q querier, clusterID string) (limits.Limits, error) {
	l, ceil, err := readLimits(ctx, q, clusterID)
	return l.Capped(ceil), err
}

// readLimits reads one cluster's own limits and its plan's ceilings.
func readLimits(ctx context.Context, q querier, clusterID string) (own, ceilings limits.Limits, err error) {
	err = q.QueryRow(ctx, `SELECT `+limitColsOf("c")+`, `+limitColsOf("p")+` FROM virtual_clusters c`+withPlan+` WHERE c.id = $1`,
		clusterID).Scan(append(limitDests(&own), limitDests(&ceilings)...)...)
	if err != nil {
		return own, ceilings, fmt.Errorf("store: limits of %s: %w", clusterID, noRows(err))
	}
	return own, ceilings, nil
}

// Limits returns cluster clusterID's own limits and its plan's ceilings.
func (s *Store) Limits(ctx context.Context, clusterID string) (own, ceilings limits.Limits, err error) {
	return readLimits(ctx, s.pool, clusterID)
}

// SetLimits applies change to cluster clusterID's own limits under its
// row lock and returns them: the Kafka API's AlterClientQuotas (the REST
// API goes through UpdateCluster). A limit change moves out of its range
// is ErrInvalid, one it moves above the plan's ceiling ErrLimit, with the
// rules of limits.Limits.ValidateChange and WithinChange. With
// validateOnly it checks and writes nothing.
func (s *Store) SetLimits(ctx context.Context, clusterID string, validateOnly bool, change func(own *limits.Limits, ceilings limits.Limits) error) (limits.Limits, error) {
	var l limits.Limits
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		if err := lockCluster(ctx, tx, AnyOrg, clusterID); err != nil {
			return err
		}
		var (
			ceil limits.Limits
			err  error
		)
		if l, ceil, err = readLimits(ctx, tx, clusterID); err != nil {
			return err
		}
		before := l
		if err := change(&l, ceil); err != nil {
			return err
		}
		if err := l.ValidateChange(before); err != nil {
			return fmt.Errorf("%w: %v", ErrInvalid, strings.TrimPrefix(err.Error(), "limits: "))
		}
		if err := l.WithinChange(before, ceil); err != nil {
			return fmt.Errorf("%w: %v", ErrLimit, strings.TrimPrefix(err.Error(), "limits: "))
		}
		if validateOnly {
			return nil
		}
		if _, err := tx.Exec(ctx, `UPDATE virtual_clusters SET version = version + 1, updated_at = now(),
			(`+limitCols+`) = (`+params(2, len(limitArgs(l)))+`) WHERE id = $1`, append([]any{clusterID}, limitArgs(l)...)...); err != nil {
			return err
		}
		return notify(ctx, tx, "eddy_metadata")
	})
	if err != nil {
		return l, fmt.Errorf("store: set limits: %w", err)
	}
	return l, nil
}

// checkTopicConfigs fails with ErrLimit if configs set retention above
// the cluster's effective retention limits (Kafka's CreateTopicPolicy and
// AlterConfigPolicy answer POLICY_VIOLATION).
func checkTopicConfigs(ctx context.Context, q querier, clusterID string, configs map[string]string) error {
	if configs["retention.ms"] == "" && configs["retention.bytes"] == "" {
		return nil
	}
	l, err := effectiveLimits(ctx, q, clusterID)
	if err != nil {
		return err
	}
	if err := l.CheckTopicConfigs(configs); err != nil {
		return fmt.Errorf("%w: %v", ErrLimit, strings.TrimPrefix(err.Error(), "limits: "))
	}
	return nil
}

// StoredBytes sums every cluster's committed bytes that the index
// references, by cluster id (0 for a cluster with none). It scans the
// segment rows: call it seldom.
func (s *Store) StoredBytes(ctx context.Context) (map[string]int64, error) {
	// One aggregate over the index, grouped by cluster: a subquery per
	// cluster joined the partitions table once per cluster, and with 1,000
	// clusters of 10,000 partitions read 10 million rows a call.
	rows, _ := s.pool.Query(ctx, `
		SELECT c.id, coalesce(b.bytes, 0)::bigint
		FROM virtual_clusters c LEFT JOIN (`+storedByClusterSQL+`) b ON b.cluster_id = c.id`)
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

// storedByClusterSQL is the bytes the index references per cluster
// (clusters with none are left out), in one pass over the segment rows.
const storedByClusterSQL = `
	SELECT t.cluster_id, sum(sg.length) AS bytes
	FROM segments sg JOIN partitions p ON p.id = sg.partition_id JOIN topics t ON t.id = p.topic_id
	GROUP BY t.cluster_id`

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
