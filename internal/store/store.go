// Package store is the data plane's only door to Postgres: broker sessions,
// the metadata snapshot brokers serve from, topic administration issued over
// the Kafka API, the flush commit that moves high watermarks, the segment
// index reads use, idempotent-producer state and consumer-group offsets.
//
// Every method is safe for concurrent use. Errors are wrapped; the sentinels
// below are what callers translate into Kafka error codes.
package store

import (
	"context"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
)

var (
	// ErrNotFound: the named cluster, topic or partition does not exist.
	ErrNotFound = errors.New("store: not found")
	// ErrExists: a topic of that name already exists in the cluster.
	ErrExists = errors.New("store: already exists")
	// ErrSessionLost: the broker's session expired or was replaced by a
	// newer registration; the broker must stop leading and re-register.
	ErrSessionLost = errors.New("store: broker session lost")
	// ErrFenced: the caller is no longer the partition's leader (its leader
	// epoch is stale).
	ErrFenced = errors.New("store: fenced by a newer leader epoch")
	// ErrInvalid: the request contradicts the stored state (for example a
	// DeleteRecords offset above the high watermark).
	ErrInvalid = errors.New("store: invalid request")
)

// Store wraps a pgx pool.
type Store struct {
	pool *pgxpool.Pool
}

// Open connects to the database at url (a libpq URL or DSN).
func Open(ctx context.Context, url string, maxConns int32) (*Store, error) {
	cfg, err := pgxpool.ParseConfig(url)
	if err != nil {
		return nil, fmt.Errorf("store: parse database url: %w", err)
	}
	if maxConns > 0 {
		cfg.MaxConns = maxConns
	}
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("store: connect: %w", err)
	}
	if err := pool.Ping(ctx); err != nil {
		pool.Close()
		return nil, fmt.Errorf("store: ping: %w", err)
	}
	return &Store{pool: pool}, nil
}

// Close closes every connection.
func (s *Store) Close() { s.pool.Close() }

func isUniqueViolation(err error) bool {
	var pgErr *pgconn.PgError
	return errors.As(err, &pgErr) && pgErr.Code == "23505"
}

func notFound(err error) error {
	if errors.Is(err, pgx.ErrNoRows) {
		return ErrNotFound
	}
	return err
}

var txRepeatableReadRO = pgx.TxOptions{IsoLevel: pgx.RepeatableRead, AccessMode: pgx.ReadOnly}

// notify sends an empty NOTIFY on each channel inside tx (delivered on
// commit). eddy_placement wakes the placer; eddy_metadata makes brokers
// re-read their routing view at once.
func notify(ctx context.Context, tx pgx.Tx, channels ...string) error {
	for _, ch := range channels {
		if _, err := tx.Exec(ctx, `SELECT pg_notify($1, '')`, ch); err != nil {
			return fmt.Errorf("store: notify %s: %w", ch, err)
		}
	}
	return nil
}

// Listen runs fn with a dedicated connection LISTENing on channel; wait
// blocks until a notification arrives (returning its payload) or its ctx
// ends. Listen returns when fn does.
func (s *Store) Listen(ctx context.Context, channel string, fn func(wait func(context.Context) (string, error)) error) error {
	conn, err := s.pool.Acquire(ctx)
	if err != nil {
		return fmt.Errorf("store: listen: %w", err)
	}
	defer conn.Release()
	if _, err := conn.Exec(ctx, "LISTEN "+pgx.Identifier{channel}.Sanitize()); err != nil {
		return fmt.Errorf("store: listen: %w", err)
	}
	defer conn.Exec(context.WithoutCancel(ctx), "UNLISTEN *")
	return fn(func(ctx context.Context) (string, error) {
		n, err := conn.Conn().WaitForNotification(ctx)
		if err != nil {
			return "", err
		}
		return n.Payload, nil
	})
}
