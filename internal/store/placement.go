package store

// Placement: the assignment of partitions and group-coordinator slots to
// live brokers, one round at a time.

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5"
)

// placementLock is the advisory lock key that serialises placement rounds
// across control-plane replicas.
const placementLock = 0x65646479 // "eddy"

// Kind tells a partition from a coordinator slot.
type Kind int

const (
	KindPartition Kind = iota
	KindSlot
)

// Item is something a broker can lead. ID is the partition id or slot number.
type Item struct {
	Kind Kind
	ID   int64
}

// BrokerLoad is a live broker and how many partitions and coordinator
// slots it leads.
type BrokerLoad struct {
	ID         int32
	Draining   bool
	Partitions int
	Slots      int
}

// Assignment hands Item to Broker.
type Assignment struct {
	Item   Item
	Broker int32
}

// PlaceFunc decides where unassigned items go.
type PlaceFunc func(brokers []BrokerLoad, unassigned []Item) []Assignment

// PlaceRound runs one placement round in a single transaction: it releases
// the partitions and slots of brokers whose session expired, then hands
// every unassigned item to a live broker as place decides, bumping each
// item's leader epoch. It returns how many items were released and assigned.
// Under a lease (WithLease) it fails with ErrNotLeader once the term ended.
func (s *Store) PlaceRound(ctx context.Context, place PlaceFunc) (released, assigned int, err error) {
	err = pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		if err := checkLease(ctx, tx); err != nil {
			return err
		}
		var got bool
		if err := tx.QueryRow(ctx, `SELECT pg_try_advisory_xact_lock($1)`, placementLock).Scan(&got); err != nil {
			return err
		}
		if !got {
			return nil // another control plane is placing right now
		}
		tag, err := tx.Exec(ctx, `
			UPDATE partitions SET leader_id = NULL
			WHERE leader_id IN (SELECT id FROM brokers WHERE expires_at <= now())`)
		if err != nil {
			return err
		}
		released = int(tag.RowsAffected())
		tag, err = tx.Exec(ctx, `
			UPDATE coordinator_slots SET leader_id = NULL
			WHERE leader_id IN (SELECT id FROM brokers WHERE expires_at <= now())`)
		if err != nil {
			return err
		}
		released += int(tag.RowsAffected())
		if released > 0 {
			if _, err := tx.Exec(ctx, `SELECT pg_notify('eddy_metadata', '')`); err != nil {
				return err
			}
		}

		var unassigned []Item
		rows, err := tx.Query(ctx, `
			SELECT 0, id FROM partitions WHERE leader_id IS NULL
			UNION ALL
			SELECT 1, slot FROM coordinator_slots WHERE leader_id IS NULL
			ORDER BY 1, 2`)
		if err != nil {
			return err
		}
		for rows.Next() {
			var it Item
			if err := rows.Scan(&it.Kind, &it.ID); err != nil {
				return err
			}
			unassigned = append(unassigned, it)
		}
		if err := rows.Err(); err != nil {
			return err
		}
		if len(unassigned) == 0 {
			return nil
		}
		var brokers []BrokerLoad
		rows, err = tx.Query(ctx, `
			SELECT b.id, b.draining,
				(SELECT count(*) FROM partitions p WHERE p.leader_id = b.id),
				(SELECT count(*) FROM coordinator_slots c WHERE c.leader_id = b.id)
			FROM brokers b WHERE b.expires_at > now() ORDER BY b.id`)
		if err != nil {
			return err
		}
		for rows.Next() {
			var b BrokerLoad
			if err := rows.Scan(&b.ID, &b.Draining, &b.Partitions, &b.Slots); err != nil {
				return err
			}
			brokers = append(brokers, b)
		}
		if err := rows.Err(); err != nil {
			return err
		}
		as := place(brokers, unassigned)
		if len(as) == 0 {
			return nil
		}
		var pIDs, sIDs []int64
		var pTo, sTo []int32
		for _, a := range as {
			if a.Item.Kind == KindPartition {
				pIDs, pTo = append(pIDs, a.Item.ID), append(pTo, a.Broker)
			} else {
				sIDs, sTo = append(sIDs, a.Item.ID), append(sTo, a.Broker)
			}
		}
		if _, err := tx.Exec(ctx, `
			UPDATE partitions p SET leader_id = a.broker, leader_epoch = p.leader_epoch + 1,
				moving_to = NULL, move_started_at = NULL
			FROM unnest($1::bigint[], $2::int[]) AS a(id, broker)
			WHERE p.id = a.id AND p.leader_id IS NULL`, pIDs, pTo); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `
			UPDATE coordinator_slots c SET leader_id = a.broker, leader_epoch = c.leader_epoch + 1
			FROM unnest($1::int[], $2::int[]) AS a(slot, broker)
			WHERE c.slot = a.slot AND c.leader_id IS NULL`, sIDs, sTo); err != nil {
			return err
		}
		assigned = len(as)
		// Brokers re-read their routing view on this, so new leaders start
		// serving within milliseconds rather than at their next poll.
		_, err = tx.Exec(ctx, `SELECT pg_notify('eddy_metadata', '')`)
		return err
	})
	if err != nil {
		return 0, 0, fmt.Errorf("store: placement round: %w", err)
	}
	return released, assigned, nil
}
