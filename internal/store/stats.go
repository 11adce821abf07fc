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

// DatabaseActivity is the database's cumulative activity counters
// (pg_stat_database): what `eddy bench` turns into rates.
type DatabaseActivity struct {
	Commits     int64 // xact_commit
	RowsRead    int64 // tup_returned + tup_fetched: rows scanned and fetched by index
	RowsWritten int64 // tup_inserted + tup_updated + tup_deleted
}

// Activity reads the database's DatabaseActivity (as CommittedTransactions,
// statistics lag by a second or so).
func (s *Store) Activity(ctx context.Context) (DatabaseActivity, error) {
	var a DatabaseActivity
	err := s.pool.QueryRow(ctx, `
		SELECT xact_commit, tup_returned + tup_fetched, tup_inserted + tup_updated + tup_deleted
		FROM pg_stat_database WHERE datname = current_database()`).Scan(&a.Commits, &a.RowsRead, &a.RowsWritten)
	if err != nil {
		return a, fmt.Errorf("store: pg_stat_database: %w", err)
	}
	return a, nil
}

// IndexStats is the segment index's size: its rows (Compacted of them in
// objects under the compacted prefix asked for), the bytes they take as
// stored (without the table's indexes and dead tuples), and the bytes of
// data they reference.
type IndexStats struct {
	Rows, Compacted, RowBytes, DataBytes, Partitions int64
}

// IndexSize measures the segment index, for the index-hygiene
// measurements of tests and `eddy bench`; rows in objects whose keys
// start with compactedPrefix count as Compacted. It reads every row.
func (s *Store) IndexSize(ctx context.Context, compactedPrefix string) (IndexStats, error) {
	var st IndexStats
	err := s.pool.QueryRow(ctx, `
		SELECT count(*), count(*) FILTER (WHERE starts_with(object_key, $1)), coalesce(sum(pg_column_size(s.*)), 0),
			coalesce(sum(length), 0), count(DISTINCT partition_id)
		FROM segments s`, compactedPrefix).Scan(&st.Rows, &st.Compacted, &st.RowBytes, &st.DataBytes, &st.Partitions)
	if err != nil {
		return st, fmt.Errorf("store: index size: %w", err)
	}
	return st, nil
}

// TableReads is, per table, the rows read by sequential scans and fetched
// through indexes (pg_stat_user_tables): where a database's reads go.
func (s *Store) TableReads(ctx context.Context) (map[string]int64, error) {
	rows, err := s.pool.Query(ctx, `SELECT relname, coalesce(seq_tup_read, 0) + coalesce(idx_tup_fetch, 0) FROM pg_stat_user_tables`)
	if err != nil {
		return nil, fmt.Errorf("store: pg_stat_user_tables: %w", err)
	}
	defer rows.Close()
	out := map[string]int64{}
	for rows.Next() {
		var (
			name string
			n    int64
		)
		if err := rows.Scan(&name, &n); err != nil {
			return nil, fmt.Errorf("store: pg_stat_user_tables: %w", err)
		}
		out[name] = n
	}
	return out, rows.Err()
}
