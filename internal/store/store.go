// Package store is Eddy's one door to Postgres, for both planes: it is the
// only package that holds application SQL.
//
// The control plane uses it for tenancy (organisations, virtual clusters,
// service accounts, API keys, role bindings, ACLs), topic administration
// over REST, placement of partitions and coordinator slots on brokers,
// graceful moves, signing keys, idempotent requests, the autoscaler's
// history and billing. Brokers use it for their sessions, the metadata
// snapshot they route by, topic administration over the Kafka API, the
// flush commit that moves high watermarks, the segment index reads use,
// idempotent-producer state, consumer-group offsets and state, quotas and
// usage reports; tiered storage for its job table, retention, compaction,
// garbage collection and consistency checks.
//
// A rule about stored state lives here once, whichever plane asks: for
// example creating a topic or growing one checks the cluster's partition
// limit in the same function for REST and for the Kafka API. Methods that
// act inside an organisation take its id and filter by it in SQL, so a
// caller cannot reach another tenant's rows by guessing ids: those look
// like rows that do not exist (ErrNotFound). Brokers, which act for the
// cluster of an authenticated connection, pass AnyOrg.
//
// Every method is safe for concurrent use; methods that must not run in
// two control planes at once take a transaction-scoped advisory lock.
// Errors are wrapped; the sentinels below are what callers translate, into
// HTTP statuses (api) or Kafka error codes (broker).
package store

import (
	"context"
	"crypto/rand"
	"encoding/base32"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
)

var (
	// ErrNotFound: no such row (in the caller's organisation).
	ErrNotFound = errors.New("store: not found")
	// ErrExists: the name is taken in its scope, or an identical row
	// exists.
	ErrExists = errors.New("store: already exists")
	// ErrStale: the row changed since the version the caller read.
	ErrStale = errors.New("store: version mismatch")
	// ErrInvalid: the change contradicts the stored state (for example
	// fewer partitions than a topic has, or a DeleteRecords offset above
	// the high watermark).
	ErrInvalid = errors.New("store: invalid change")
	// ErrLimit: the change would take a virtual cluster past one of its
	// limits (partitions). Brokers answer POLICY_VIOLATION with the
	// error's text, REST 422.
	ErrLimit = errors.New("store: cluster limit exceeded")
	// ErrSessionLost: the broker's session expired or was replaced by a
	// newer registration; the broker must stop leading and re-register.
	ErrSessionLost = errors.New("store: broker session lost")
	// ErrFenced: the caller is no longer the partition's (or coordinator
	// slot's) leader: its leader epoch is stale.
	ErrFenced = errors.New("store: fenced by a newer leader epoch")
)

// AnyOrg, given as the organisation of a method that takes one, skips the
// organisation check. Brokers pass it: they act for the cluster of an
// authenticated connection, which may belong to no organisation at all
// (the anonymous development cluster). It is no organisation's id, and ""
// matches no cluster, so a forgotten organisation id opens nothing.
const AnyOrg = "*"

// Store wraps a pgx pool.
type Store struct {
	pool *pgxpool.Pool
}

// Open connects to the database at url (a libpq URL or DSN) with at most
// maxConns connections (0: pgxpool's default).
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

// Ping checks the database answers (readiness).
func (s *Store) Ping(ctx context.Context) error { return s.pool.Ping(ctx) }

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

// Poke sends on poke, without blocking, at every notification on channel
// until ctx ends, and once each time it starts listening: notifications
// sent before LISTEN, or while a failed connection was being replaced, are
// lost, so the caller must look once it is listening. When the listening
// connection fails it reports the error to failed and listens again a
// second later.
func (s *Store) Poke(ctx context.Context, channel string, poke chan<- struct{}, failed func(error)) {
	for ctx.Err() == nil {
		err := s.Listen(ctx, channel, func(wait func(context.Context) (string, error)) error {
			select {
			case poke <- struct{}{}:
			default:
			}
			for {
				if _, err := wait(ctx); err != nil {
					return err
				}
				select {
				case poke <- struct{}{}:
				default:
				}
			}
		})
		if ctx.Err() != nil {
			return
		}
		failed(err)
		select {
		case <-ctx.Done():
		case <-time.After(time.Second):
		}
	}
}

// querier is what both the pool and a transaction offer, for reads that
// run either on their own or inside a larger transaction.
type querier interface {
	Exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error)
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
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

func isUniqueViolation(err error) bool {
	var pgErr *pgconn.PgError
	return errors.As(err, &pgErr) && pgErr.Code == "23505"
}

func isFKViolation(err error) bool {
	var pgErr *pgconn.PgError
	return errors.As(err, &pgErr) && pgErr.Code == "23503"
}

func isCheckViolation(err error) bool {
	var pgErr *pgconn.PgError
	return errors.As(err, &pgErr) && pgErr.Code == "23514"
}

func noRows(err error) error {
	if errors.Is(err, pgx.ErrNoRows) {
		return ErrNotFound
	}
	return err
}

// idEncoding spells random ids in lower-case base32 without padding.
var idEncoding = base32.NewEncoding("abcdefghijklmnopqrstuvwxyz234567").WithPadding(base32.NoPadding)

// NewID returns prefix + "-" + 20 random characters (100 bits), e.g.
// "vc-3kq7...". Ids are opaque; the prefix only says what kind they name.
func NewID(prefix string) string {
	var b [13]byte
	rand.Read(b[:])
	return prefix + "-" + idEncoding.EncodeToString(b[:])[:20]
}

// Page asks for at most Limit items after the cursor After (an id or a
// name, exclusive; "" starts at the beginning).
type Page struct {
	After string
	Limit int
}

func (p Page) limit() int {
	if p.Limit <= 0 || p.Limit > 1000 {
		return 100
	}
	return p.Limit
}

// page trims items fetched with limit+1 and returns the next cursor.
func page[T any](items []T, limit int, key func(T) string) ([]T, string) {
	if len(items) <= limit {
		return items, ""
	}
	items = items[:limit]
	return items, key(items[limit-1])
}

// marshalConfigs encodes topic configs for a jsonb column; nil is {}.
func marshalConfigs(m map[string]string) []byte {
	if m == nil {
		m = map[string]string{}
	}
	b, _ := json.Marshal(m)
	return b
}

func unmarshalConfigs(b []byte) (map[string]string, error) {
	m := map[string]string{}
	if len(b) == 0 {
		return m, nil
	}
	if err := json.Unmarshal(b, &m); err != nil {
		return nil, err
	}
	return m, nil
}
