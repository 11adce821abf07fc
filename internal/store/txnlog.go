package store

// The partition leader's side of transactions (docs/transactions.md):
// checking that a transactional produce belongs to its producer's ongoing
// transaction (KIP-890 part 1) or adding the partition to it (transaction
// version 2), the markers queued for partitions, and the aborted
// transactions read_committed fetches carry. The coordinator's side
// (transactions' state transitions) lives in txn.go.

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5"
)

// TxnMarker is a transaction marker queued for a partition (a txn_markers
// row): the control batch its leader writes.
type TxnMarker struct {
	ID               int64
	PartitionID      int64
	ProducerID       int64
	ProducerEpoch    int16
	CoordinatorEpoch int32
	Commit           bool
}

// AbortedTxn is one aborted transaction of a partition: its producer
// wrote offsets from FirstOffset, and its abort marker is at LastOffset.
type AbortedTxn struct {
	ProducerID  int64
	FirstOffset int64
	LastOffset  int64
}

// VerifyTxnPartition checks that a transactional produce of producerID at
// epoch to partitionID belongs to the ongoing transaction of key (KIP-890
// part 1). It fails with ErrProducerIDMapping, ErrProducerFenced,
// ErrTxnCompleting (the last transaction's markers are still being
// written) or ErrTxnState (no ongoing transaction holds the partition).
// The state rules are the coordinator's (txn.go); a partition leader is
// not the coordinator, so it acts under the row lock but not the slot's
// fence.
func (s *Store) VerifyTxnPartition(ctx context.Context, key TxnKey, producerID int64, epoch int16, partitionID int64) error {
	return s.runTxn(ctx, key, unfenced, func(op *txnOp) (bool, error) {
		if err := op.check(producerID, epoch); err != nil {
			return false, err
		}
		switch {
		case op.t.State.preparing():
			return false, fmt.Errorf("store: transaction %s is %s: %w", key.TransactionalID, op.t.State, ErrTxnCompleting)
		case op.t.State != TxnOngoing:
			return false, fmt.Errorf("store: transaction %s is %s: %w", key.TransactionalID, op.t.State, ErrTxnState)
		}
		var in bool
		if err := op.tx.QueryRow(ctx, `
			SELECT EXISTS (SELECT 1 FROM transaction_partitions
			               WHERE cluster_id = $1 AND transactional_id = $2 AND partition_id = $3)`,
			key.ClusterID, key.TransactionalID, partitionID).Scan(&in); err != nil {
			return false, fmt.Errorf("store: transaction %s: partitions: %w", key.TransactionalID, err)
		}
		if !in {
			return false, fmt.Errorf("store: transaction %s does not hold partition %d: %w", key.TransactionalID, partitionID, ErrTxnState)
		}
		return false, nil
	})
}

// AddTxnPartition adds partitionID to the transaction of key for a
// transaction-version-2 produce (KIP-890 part 2), as AddPartitionsToTxn
// would: an Empty or Complete* transaction becomes Ongoing; one whose
// markers are still being written answers ErrTxnCompleting.
func (s *Store) AddTxnPartition(ctx context.Context, key TxnKey, producerID int64, epoch int16, partitionID int64) error {
	return s.runTxn(ctx, key, unfenced, func(op *txnOp) (bool, error) {
		if err := op.check(producerID, epoch); err != nil {
			return false, err
		}
		if err := op.begin(); err != nil {
			return false, err
		}
		if _, err := op.tx.Exec(ctx, `
			INSERT INTO transaction_partitions (cluster_id, transactional_id, partition_id)
			VALUES ($1, $2, $3) ON CONFLICT DO NOTHING`, key.ClusterID, key.TransactionalID, partitionID); err != nil {
			return false, fmt.Errorf("store: transaction %s: add partition: %w", key.TransactionalID, noPartition(err))
		}
		return false, nil
	})
}

// PendingMarkers returns the markers queued for the given partitions, in
// the order they were queued.
func (s *Store) PendingMarkers(ctx context.Context, partitionIDs []int64) ([]TxnMarker, error) {
	rows, err := s.pool.Query(ctx, `
		SELECT id, partition_id, producer_id, producer_epoch, coordinator_epoch, commit
		FROM txn_markers WHERE partition_id = ANY($1) ORDER BY id`, partitionIDs)
	if err != nil {
		return nil, fmt.Errorf("store: pending markers: %w", err)
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (TxnMarker, error) {
		var m TxnMarker
		err := r.Scan(&m.ID, &m.PartitionID, &m.ProducerID, &m.ProducerEpoch, &m.CoordinatorEpoch, &m.Commit)
		return m, err
	})
	if err != nil {
		return nil, fmt.Errorf("store: pending markers: %w", err)
	}
	return out, nil
}

// DropMarker deletes a marker its partition's leader refuses to write (its
// producer epoch is older than the producer's, as Kafka refuses it), if
// leaderEpoch still leads the partition. It reports whether the row went.
func (s *Store) DropMarker(ctx context.Context, id, partitionID int64, leaderEpoch int32) (bool, error) {
	tag, err := s.pool.Exec(ctx, `
		DELETE FROM txn_markers t USING partitions p
		WHERE t.id = $1 AND t.partition_id = $2 AND p.id = t.partition_id AND p.leader_epoch = $3`,
		id, partitionID, leaderEpoch)
	if err != nil {
		return false, fmt.Errorf("store: drop marker: %w", err)
	}
	return tag.RowsAffected() > 0, nil
}

// AbortedTxns returns the aborted transactions of a partition whose abort
// marker is at or after from and whose first offset is before to, in
// marker order; to < 0 means no upper bound. limit > 0 keeps the newest
// limit of them.
func (s *Store) AbortedTxns(ctx context.Context, partitionID, from, to int64, limit int) ([]AbortedTxn, error) {
	if to < 0 {
		to = 1<<63 - 1
	}
	if limit <= 0 {
		limit = 1 << 30
	}
	rows, err := s.pool.Query(ctx, `
		SELECT producer_id, first_offset, last_offset FROM (
			SELECT * FROM aborted_txns
			WHERE partition_id = $1 AND last_offset >= $2 AND first_offset < $3
			ORDER BY last_offset DESC LIMIT $4) t
		ORDER BY last_offset`, partitionID, from, to, limit)
	if err != nil {
		return nil, fmt.Errorf("store: aborted transactions: %w", err)
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (AbortedTxn, error) {
		var a AbortedTxn
		err := r.Scan(&a.ProducerID, &a.FirstOffset, &a.LastOffset)
		return a, err
	})
	if err != nil {
		return nil, fmt.Errorf("store: aborted transactions: %w", err)
	}
	return out, nil
}

// OpenTxnForTest puts a transactional id of a cluster in the state a
// coordinator leaves it in after InitProducerId and AddPartitionsToTxn:
// Ongoing, owned by producerID at epoch, holding partitionIDs. It is for
// tests of the partition side that run without a coordinator.
func (s *Store) OpenTxnForTest(ctx context.Context, clusterID, transactionalID string, producerID int64, epoch int16, partitionIDs ...int64) error {
	return pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `
			INSERT INTO transactions (cluster_id, transactional_id, slot, producer_id, producer_epoch, state, timeout_ms, started_at)
			VALUES ($1, $2, 0, $3, $4, 'Ongoing', 60000, now())
			ON CONFLICT (cluster_id, transactional_id) DO UPDATE
				SET producer_id = EXCLUDED.producer_id, producer_epoch = EXCLUDED.producer_epoch,
				    state = 'Ongoing', started_at = now(), updated_at = now()`,
			clusterID, transactionalID, producerID, epoch); err != nil {
			return fmt.Errorf("store: open transaction: %w", err)
		}
		if _, err := tx.Exec(ctx, `
			INSERT INTO transaction_partitions (cluster_id, transactional_id, partition_id)
			SELECT $1, $2, unnest($3::bigint[]) ON CONFLICT DO NOTHING`,
			clusterID, transactionalID, partitionIDs); err != nil {
			return fmt.Errorf("store: open transaction: %w", err)
		}
		return nil
	})
}

// EndTxnForTest does what EndTxn does to the stored state, for tests of
// the partition side that run without a coordinator: the transaction goes
// to PrepareCommit or PrepareAbort, one marker per partition of it is
// queued (with markerEpoch as its producer epoch: the transaction's for
// version 1, one more for version 2, which the transaction takes too), its
// partitions are emptied and eddy_txn_markers is notified.
func (s *Store) EndTxnForTest(ctx context.Context, clusterID, transactionalID string, commit bool, markerEpoch int16) error {
	return pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		state := "PrepareAbort"
		if commit {
			state = "PrepareCommit"
		}
		if _, err := tx.Exec(ctx, `
			INSERT INTO txn_markers (cluster_id, transactional_id, producer_id, producer_epoch, coordinator_epoch, commit, partition_id)
			SELECT t.cluster_id, t.transactional_id, t.producer_id, $3, 0, $4, p.partition_id
			FROM transactions t JOIN transaction_partitions p USING (cluster_id, transactional_id)
			WHERE t.cluster_id = $1 AND t.transactional_id = $2`,
			clusterID, transactionalID, markerEpoch, commit); err != nil {
			return fmt.Errorf("store: end transaction: %w", err)
		}
		if _, err := tx.Exec(ctx, `
			DELETE FROM transaction_partitions WHERE cluster_id = $1 AND transactional_id = $2`,
			clusterID, transactionalID); err != nil {
			return fmt.Errorf("store: end transaction: %w", err)
		}
		if _, err := tx.Exec(ctx, `
			UPDATE transactions SET state = $3, producer_epoch = $4, updated_at = now()
			WHERE cluster_id = $1 AND transactional_id = $2`,
			clusterID, transactionalID, state, markerEpoch); err != nil {
			return fmt.Errorf("store: end transaction: %w", err)
		}
		return notify(ctx, tx, "eddy_txn_markers")
	})
}
