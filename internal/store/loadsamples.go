package store

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
)

// The autoscaler's history (migrations/0006_autoscale.sql, load_samples):
// one row per evaluation, holding the pool's load and the decision taken
// as JSON the autoscale package defines. The store treats it as opaque.

// LoadSample is one stored evaluation.
type LoadSample struct {
	At     time.Time
	Sample []byte // JSON
}

// AddLoadSample records a sample and deletes the samples older than
// keep before its time, so the table holds a bounded window. A second
// sample for the same instant (another control plane) is ignored.
func (s *Store) AddLoadSample(ctx context.Context, at time.Time, sample []byte, keep time.Duration) error {
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `INSERT INTO load_samples (at, sample) VALUES ($1, $2) ON CONFLICT (at) DO NOTHING`, at, sample); err != nil {
			return err
		}
		// The primary key on at makes this a range scan of the oldest rows.
		_, err := tx.Exec(ctx, `DELETE FROM load_samples WHERE at < $1`, at.Add(-keep))
		return err
	})
	if err != nil {
		return fmt.Errorf("store: add load sample: %w", err)
	}
	return nil
}

// LoadSamples returns the samples taken after since, oldest first.
func (s *Store) LoadSamples(ctx context.Context, since time.Time) ([]LoadSample, error) {
	rows, _ := s.pool.Query(ctx, `SELECT at, sample::text FROM load_samples WHERE at > $1 ORDER BY at`, since)
	out, err := pgx.CollectRows(rows, scanLoadSample)
	if err != nil {
		return nil, fmt.Errorf("store: load samples: %w", err)
	}
	return out, nil
}

// RecentLoadSamples returns at most limit samples taken after since, the
// newest ones, oldest first: what an operator's chart shows without
// reading the whole week the table keeps.
func (s *Store) RecentLoadSamples(ctx context.Context, since time.Time, limit int) ([]LoadSample, error) {
	rows, _ := s.pool.Query(ctx, `
		SELECT at, sample FROM (
			SELECT at, sample::text FROM load_samples WHERE at > $1 ORDER BY at DESC LIMIT $2
		) recent ORDER BY at`, since, limit)
	out, err := pgx.CollectRows(rows, scanLoadSample)
	if err != nil {
		return nil, fmt.Errorf("store: recent load samples: %w", err)
	}
	return out, nil
}

// scanLoadSample reads a row of (at, sample::text).
func scanLoadSample(r pgx.CollectableRow) (LoadSample, error) {
	var (
		ls LoadSample
		b  string
	)
	err := r.Scan(&ls.At, &b)
	ls.Sample = []byte(b)
	return ls, err
}
