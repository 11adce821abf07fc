package store

import (
	"context"
	"fmt"
)

// CommittedTransactions returns how many transactions the database has
// committed (pg_stat_database.xact_commit), for `eddy bench`'s cost
// figures. Statistics reach pg_stat_database within a second or so, and
// this call's own transaction adds one: noise over a benchmark's phase.
func (s *Store) CommittedTransactions(ctx context.Context) (int64, error) {
	var n int64
	err := s.pool.QueryRow(ctx, `SELECT xact_commit FROM pg_stat_database WHERE datname = current_database()`).Scan(&n)
	if err != nil {
		return 0, fmt.Errorf("store: pg_stat_database: %w", err)
	}
	return n, nil
}

// WALBytes returns how many bytes the server has written to its WAL
// (pg_stat_wal.wal_bytes: every database of the server, so a benchmark
// reads it on a server of its own), for `eddy bench`'s cost figures.
func (s *Store) WALBytes(ctx context.Context) (int64, error) {
	var n int64
	err := s.pool.QueryRow(ctx, `SELECT wal_bytes::bigint FROM pg_stat_wal`).Scan(&n)
	if err != nil {
		return 0, fmt.Errorf("store: pg_stat_wal: %w", err)
	}
	return n, nil
}
