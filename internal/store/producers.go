package store

import (
	"context"
	"errors"
	"fmt"
	"math"
	"time"

	"github.com/jackc/pgx/v5"
)

// AllocateProducerID allocates a producer id (InitProducerId) for a
// connection of cluster, taking one token of the cluster's budget: a token
// bucket holding up to burst tokens, refilled at perSecond. Over budget it
// allocates nothing and returns ErrLimit and how long until a token is
// available. The bucket lives in Postgres, so it is the cluster's across
// every broker.
func (s *Store) AllocateProducerID(ctx context.Context, clusterID string, perSecond float64, burst int) (int64, time.Duration, error) {
	return allocProducerID(ctx, s.pool, clusterID, ProducerIDBudget{PerSecond: perSecond, Burst: burst})
}

// allocProducerID is AllocateProducerID on q, so that a transaction's
// InitProducerId allocates inside its own Postgres transaction.
func allocProducerID(ctx context.Context, q querier, clusterID string, b ProducerIDBudget) (int64, time.Duration, error) {
	var id int64
	err := q.QueryRow(ctx, `
		INSERT INTO producer_id_budgets AS b (cluster_id, tokens, updated_at)
		VALUES ($1, $3::float8 - 1, clock_timestamp())
		ON CONFLICT (cluster_id) DO UPDATE
			SET tokens = least($3::float8, b.tokens + $2 * extract(epoch FROM clock_timestamp() - b.updated_at)) - 1,
			    updated_at = clock_timestamp()
			WHERE least($3::float8, b.tokens + $2 * extract(epoch FROM clock_timestamp() - b.updated_at)) >= 1
		RETURNING nextval('producer_ids')`, clusterID, b.PerSecond, b.Burst).Scan(&id)
	if err == nil {
		return id, 0, nil
	}
	if !errors.Is(err, pgx.ErrNoRows) {
		return 0, 0, fmt.Errorf("store: producer id: %w", err)
	}
	var tokens float64
	if err := q.QueryRow(ctx, `
		SELECT least($2::float8, tokens + $3 * extract(epoch FROM clock_timestamp() - updated_at))
		FROM producer_id_budgets WHERE cluster_id = $1`, clusterID, b.Burst, b.PerSecond).Scan(&tokens); err != nil {
		return 0, 0, fmt.Errorf("store: producer id budget: %w", noRows(err))
	}
	wait := time.Duration(math.Ceil((1 - tokens) / b.PerSecond * float64(time.Second)))
	return 0, max(wait, time.Millisecond), ErrLimit
}

// ExpireProducerStates deletes the state of producers that have not
// written since before, in batches, and returns how many rows went. A
// producer with an open transaction is kept, as Kafka keeps it: its first
// offset holds the last stable offset until the marker is written. It is
// idempotent: brokers may run it at once.
func (s *Store) ExpireProducerStates(ctx context.Context, before time.Time) (int64, error) {
	const batch = 10_000
	var total int64
	for {
		tag, err := s.pool.Exec(ctx, `
			DELETE FROM producer_states WHERE ctid IN (
				SELECT ctid FROM producer_states WHERE updated_at < $1 AND txn_first_offset < 0 LIMIT $2)`, before, batch)
		if err != nil {
			return total, fmt.Errorf("store: expire producer states: %w", err)
		}
		total += tag.RowsAffected()
		if tag.RowsAffected() < batch {
			return total, nil
		}
	}
}
