package store

// Coordinator slots moved by hand rather than by a placement round: what
// tests of the slot fence (CommitOffsetsBatch, SaveGroupStates) and of
// coordinator failover need, kept here so that no test holds SQL of its
// own.

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5"
)

// AssignSlots hands coordinator slots to broker at leaderEpoch, whoever
// led them, and tells the brokers.
func (s *Store) AssignSlots(ctx context.Context, broker, leaderEpoch int32, slots ...int32) error {
	_, err := s.pool.Exec(ctx, `
		WITH u AS (UPDATE coordinator_slots SET leader_id = $1, leader_epoch = $2 WHERE slot = ANY($3::int[]) RETURNING 1)
		SELECT pg_notify('eddy_metadata', '') FROM u LIMIT 1`, broker, leaderEpoch, slots)
	if err != nil {
		return fmt.Errorf("store: assign slots: %w", err)
	}
	return nil
}

// MoveSlots moves every coordinator slot broker from leads to broker to,
// at the next leader epoch (which fences from's commits), tells the
// brokers and returns how many slots moved.
func (s *Store) MoveSlots(ctx context.Context, from, to int32) (int, error) {
	tag, err := s.pool.Exec(ctx, `
		WITH u AS (UPDATE coordinator_slots SET leader_id = $2, leader_epoch = leader_epoch + 1 WHERE leader_id = $1 RETURNING 1)
		SELECT pg_notify('eddy_metadata', '') FROM u`, from, to)
	if err != nil {
		return 0, fmt.Errorf("store: move slots: %w", err)
	}
	return int(tag.RowsAffected()), nil
}

// SlotMove is a change of a coordinator slot's leader epoch, held open in
// a transaction of its own: until Commit or Rollback, the slot's row is
// locked, and a statement fenced by the slot waits for the move.
type SlotMove struct {
	tx pgx.Tx
}

// BeginSlotMove starts moving slot to leaderEpoch (its leader stays). A
// move to the epoch the slot has changes nothing but holds the lock.
func (s *Store) BeginSlotMove(ctx context.Context, slot, leaderEpoch int32) (*SlotMove, error) {
	tx, err := s.pool.Begin(ctx)
	if err != nil {
		return nil, fmt.Errorf("store: begin slot move: %w", err)
	}
	tag, err := tx.Exec(ctx, `UPDATE coordinator_slots SET leader_epoch = $2 WHERE slot = $1`, slot, leaderEpoch)
	if err == nil && tag.RowsAffected() == 0 {
		err = ErrNotFound
	}
	if err != nil {
		tx.Rollback(ctx)
		return nil, fmt.Errorf("store: begin slot move: %w", err)
	}
	return &SlotMove{tx: tx}, nil
}

// Commit completes the move.
func (m *SlotMove) Commit(ctx context.Context) error { return m.tx.Commit(ctx) }

// Rollback abandons the move (after Commit it does nothing).
func (m *SlotMove) Rollback(ctx context.Context) error { return m.tx.Rollback(ctx) }
