package store

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

// Graceful partition moves (migrations/0006_autoscale.sql): the control
// plane sets moving_to; the leader flushes and hands the partition over
// itself (HandOff, handoff.go). Moves the leader does not complete in
// time are forced by ExpireMoves.

// Move asks for partition PartitionID to be led by To.
type Move struct {
	PartitionID int64
	To          int32
}

// RequestMoves records moves for partitions that have a leader other than
// their target and no move pending, and tells the brokers (NOTIFY
// eddy_metadata). It returns how many were recorded. Under a lease
// (WithLease) it, like ExpireMoves, fails with ErrNotLeader once the term
// ended.
func (s *Store) RequestMoves(ctx context.Context, moves []Move) (int, error) {
	if len(moves) == 0 {
		return 0, nil
	}
	ids, to := make([]int64, len(moves)), make([]int32, len(moves))
	for i, m := range moves {
		ids[i], to[i] = m.PartitionID, m.To
	}
	var n int
	// The UPDATE locks the rows in no set order, as a flush's commit does:
	// Postgres may find the two deadlocked and abort this one (40P01),
	// which is then run again (a few times) rather than failing the
	// operator's request.
	err := retryDeadlock(ctx, func() error {
		return pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
			var err error
			n, err = s.requestMoves(ctx, tx, ids, to)
			return err
		})
	})
	if err != nil {
		return 0, fmt.Errorf("store: request moves: %w", err)
	}
	return n, nil
}

// retryDeadlock runs fn again, up to three more times, while it fails
// because Postgres aborted its transaction to break a deadlock.
func retryDeadlock(ctx context.Context, fn func() error) error {
	for tries := 0; ; tries++ {
		err := fn()
		var pe *pgconn.PgError
		if err == nil || tries == 3 || !errors.As(err, &pe) || pe.Code != "40P01" || ctx.Err() != nil {
			return err
		}
	}
}

func (s *Store) requestMoves(ctx context.Context, tx pgx.Tx, ids []int64, to []int32) (int, error) {
	if err := checkLease(ctx, tx); err != nil {
		return 0, err
	}
	tag, err := tx.Exec(ctx, `
		UPDATE partitions p SET moving_to = m.broker, move_started_at = now()
		FROM unnest($1::bigint[], $2::int[]) AS m(id, broker)
		WHERE p.id = m.id AND p.leader_id IS NOT NULL AND p.leader_id <> m.broker AND p.moving_to IS NULL`, ids, to)
	if err != nil {
		return 0, err
	}
	_, err = tx.Exec(ctx, `SELECT pg_notify('eddy_metadata', '')`)
	return int(tag.RowsAffected()), err
}

// ExpireMoves cancels moves whose target is no longer a live, undrained
// broker, and forces moves older than timeout: the partition goes to its
// target at the next leader epoch, which fences the old leader (whatever
// it accepted and did not commit is lost to it — Kafka's acks=1
// contract; acks=all producers get a retriable error). It returns how
// many moves were cancelled and forced.
func (s *Store) ExpireMoves(ctx context.Context, timeout time.Duration) (cancelled, forced int, err error) {
	err = pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		if err := checkLease(ctx, tx); err != nil {
			return err
		}
		tag, err := tx.Exec(ctx, `
			UPDATE partitions SET moving_to = NULL, move_started_at = NULL
			WHERE moving_to IS NOT NULL
				AND moving_to NOT IN (SELECT id FROM brokers WHERE expires_at > now() AND NOT draining)`)
		if err != nil {
			return err
		}
		cancelled = int(tag.RowsAffected())
		tag, err = tx.Exec(ctx, `
			UPDATE partitions SET leader_id = moving_to, leader_epoch = leader_epoch + 1,
				moving_to = NULL, move_started_at = NULL
			WHERE moving_to IS NOT NULL AND move_started_at < now() - $1::interval`, timeout.String())
		if err != nil {
			return err
		}
		forced = int(tag.RowsAffected())
		if cancelled+forced > 0 {
			_, err = tx.Exec(ctx, `SELECT pg_notify('eddy_metadata', '')`)
		}
		return err
	})
	if err != nil {
		return 0, 0, fmt.Errorf("store: expire moves: %w", err)
	}
	return cancelled, forced, nil
}

// PartitionByName looks a partition up by cluster, topic and number. It
// leaves HighWatermark zero.
func (s *Store) PartitionByName(ctx context.Context, clusterID, topic string, partition int32) (Partition, error) {
	p := Partition{Partition: partition}
	err := s.pool.QueryRow(ctx, `
		SELECT p.id, coalesce(p.leader_id, -1), p.leader_epoch, coalesce(p.moving_to, -1)
		FROM partitions p JOIN topics t ON t.id = p.topic_id
		WHERE t.cluster_id = $1 AND t.name = $2 AND p.partition = $3`, clusterID, topic, partition).
		Scan(&p.ID, &p.LeaderID, &p.LeaderEpoch, &p.MovingTo)
	if err != nil {
		return p, fmt.Errorf("store: partition: %w", noRows(err))
	}
	return p, nil
}

// PoolBroker is a live broker as the rebalancer and autoscaler see it.
type PoolBroker struct {
	ID           int32
	SessionEpoch int64 // a new one each time the broker registers
	Draining     bool
	Load         []byte  // its last load report (brokerload JSON)
	Partitions   []int64 // partitions it leads
	Moving       int     // of those, how many have a move pending
	Slots        []int32 // coordinator slots it leads
}

// Pool returns every live broker with its load and what it leads.
func (s *Store) Pool(ctx context.Context) ([]PoolBroker, error) {
	rows, _ := s.pool.Query(ctx, `
		SELECT b.id, b.session_epoch, b.draining, b.load::text,
			coalesce((SELECT array_agg(p.id ORDER BY p.id) FROM partitions p WHERE p.leader_id = b.id), '{}'),
			(SELECT count(*)::int FROM partitions p WHERE p.leader_id = b.id AND p.moving_to IS NOT NULL),
			coalesce((SELECT array_agg(c.slot ORDER BY c.slot) FROM coordinator_slots c WHERE c.leader_id = b.id), '{}')
		FROM brokers b WHERE b.expires_at > now() ORDER BY b.id`)
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (PoolBroker, error) {
		var (
			b    PoolBroker
			load string
		)
		err := r.Scan(&b.ID, &b.SessionEpoch, &b.Draining, &load, &b.Partitions, &b.Moving, &b.Slots)
		b.Load = []byte(load)
		return b, err
	})
	if err != nil {
		return nil, fmt.Errorf("store: pool: %w", err)
	}
	return out, nil
}

// SetDraining marks broker id as draining (it takes no new work and the
// rebalancer moves its partitions away) or not, and wakes placement.
func (s *Store) SetDraining(ctx context.Context, id int32, on bool) error {
	tag, err := s.pool.Exec(ctx, `
		WITH u AS (UPDATE brokers SET draining = $2 WHERE id = $1 RETURNING 1)
		SELECT pg_notify('eddy_placement', ''), pg_notify('eddy_metadata', '') FROM u`, id, on)
	if err != nil {
		return fmt.Errorf("store: set draining: %w", err)
	}
	if tag.RowsAffected() == 0 {
		return ErrNotFound
	}
	return nil
}

// ReleaseSlots releases coordinator slots for placement to assign again
// (their groups' members rejoin at the new coordinator).
func (s *Store) ReleaseSlots(ctx context.Context, slots []int32) error {
	_, err := s.pool.Exec(ctx, `
		WITH u AS (UPDATE coordinator_slots SET leader_id = NULL WHERE slot = ANY($1::int[]) RETURNING 1)
		SELECT pg_notify('eddy_placement', ''), pg_notify('eddy_metadata', '') FROM u LIMIT 1`, slots)
	if err != nil {
		return fmt.Errorf("store: release slots: %w", err)
	}
	return nil
}
