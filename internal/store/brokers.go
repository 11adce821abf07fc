package store

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
)

// Register starts a new session for broker id, advertising host:port. It
// returns the new session epoch; an older process using the same id is
// thereby cut off (its heartbeats fail with ErrSessionLost). Partitions the
// id led under its previous session stay assigned, so a broker that
// restarts quickly can replay its WAL and commit under its old leader epoch.
func (s *Store) Register(ctx context.Context, id int32, host string, port int32, rack string, ttl time.Duration) (int64, error) {
	var epoch int64
	// The NOTIFY (sent on commit) makes the other brokers list this one
	// in their Metadata responses at once.
	err := s.pool.QueryRow(ctx, `
		WITH n AS (SELECT pg_notify('eddy_metadata', ''))
		INSERT INTO brokers (id, host, port, rack, session_epoch, heartbeat_at, expires_at, draining)
		SELECT $1::int, $2::text, $3::int, NULLIF($4::text, ''), 1, now(), now() + $5::interval, false FROM n
		ON CONFLICT (id) DO UPDATE SET
			host = EXCLUDED.host, port = EXCLUDED.port, rack = EXCLUDED.rack,
			session_epoch = brokers.session_epoch + 1,
			heartbeat_at = now(), expires_at = EXCLUDED.expires_at, draining = false
		RETURNING session_epoch`,
		id, host, port, rack, ttl.String()).Scan(&epoch)
	if err != nil {
		return 0, fmt.Errorf("store: register broker %d: %w", id, err)
	}
	return epoch, nil
}

// Heartbeat extends the session and records the broker's load report
// (JSON). It fails with ErrSessionLost when the session expired or a newer
// registration replaced it.
func (s *Store) Heartbeat(ctx context.Context, id int32, epoch int64, ttl time.Duration, load []byte) error {
	if load == nil {
		load = []byte("{}")
	}
	tag, err := s.pool.Exec(ctx, `
		UPDATE brokers SET heartbeat_at = now(), expires_at = now() + $3::interval, load = $4
		WHERE id = $1 AND session_epoch = $2 AND expires_at > now()`,
		id, epoch, ttl.String(), load)
	if err != nil {
		return fmt.Errorf("store: heartbeat: %w", err)
	}
	if tag.RowsAffected() == 0 {
		return ErrSessionLost
	}
	return nil
}

// Deregister ends the session after a clean shutdown: the broker's
// partitions and coordinator slots are released for immediate placement.
// The caller must have flushed and committed everything it acknowledged.
func (s *Store) Deregister(ctx context.Context, id int32, epoch int64) error {
	tx, err := s.pool.Begin(ctx)
	if err != nil {
		return fmt.Errorf("store: deregister: %w", err)
	}
	defer tx.Rollback(ctx)
	tag, err := tx.Exec(ctx, `UPDATE brokers SET expires_at = now() WHERE id = $1 AND session_epoch = $2`, id, epoch)
	if err != nil {
		return fmt.Errorf("store: deregister: %w", err)
	}
	if tag.RowsAffected() == 0 {
		return ErrSessionLost
	}
	if _, err := tx.Exec(ctx, `UPDATE partitions SET leader_id = NULL WHERE leader_id = $1`, id); err != nil {
		return fmt.Errorf("store: deregister: %w", err)
	}
	if _, err := tx.Exec(ctx, `UPDATE coordinator_slots SET leader_id = NULL WHERE leader_id = $1`, id); err != nil {
		return fmt.Errorf("store: deregister: %w", err)
	}
	if err := notify(ctx, tx, "eddy_placement", "eddy_metadata"); err != nil {
		return err
	}
	return tx.Commit(ctx)
}

// BrokerRow is a broker's session row as the operator sees it (the REST
// API's GET /v1/brokers): where it listens, its session, its last load
// report and what it leads.
type BrokerRow struct {
	ID           int32
	Host         string
	Port         int32
	Rack         string // its zone; empty when the broker gave none
	SessionEpoch int64
	HeartbeatAt  time.Time
	ExpiresAt    time.Time
	Live         bool // its session has not expired
	Draining     bool
	Load         []byte // its last load report (brokerload JSON)
	Partitions   int    // partitions it leads
	Moving       int    // of those, how many have a move pending
	Slots        int    // coordinator slots it leads
}

// Brokers returns every broker row, live or not, by id. The pool is a few
// dozen brokers at most, so it is one query without paging.
func (s *Store) Brokers(ctx context.Context) ([]BrokerRow, error) {
	rows, _ := s.pool.Query(ctx, `
		SELECT b.id, b.host, b.port, coalesce(b.rack, ''), b.session_epoch, b.heartbeat_at, b.expires_at,
			b.expires_at > now(), b.draining, b.load::text,
			(SELECT count(*)::int FROM partitions p WHERE p.leader_id = b.id),
			(SELECT count(*)::int FROM partitions p WHERE p.leader_id = b.id AND p.moving_to IS NOT NULL),
			(SELECT count(*)::int FROM coordinator_slots c WHERE c.leader_id = b.id)
		FROM brokers b ORDER BY b.id`)
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (BrokerRow, error) {
		var (
			b    BrokerRow
			load string
		)
		err := r.Scan(&b.ID, &b.Host, &b.Port, &b.Rack, &b.SessionEpoch, &b.HeartbeatAt, &b.ExpiresAt,
			&b.Live, &b.Draining, &load, &b.Partitions, &b.Moving, &b.Slots)
		b.Load = []byte(load)
		return b, err
	})
	if err != nil {
		return nil, fmt.Errorf("store: brokers: %w", err)
	}
	return out, nil
}
