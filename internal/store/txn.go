package store

// The transaction coordinator's state (KIP-98, KIP-447, KIP-890; schema
// 0014 and 0015, story in docs/transactions.md).
//
// Nothing of it is authoritative in a broker's memory: every transition
// is one Postgres transaction that first checks the caller still leads
// the coordinator slot (share-locking its row, as offset commits do), then
// locks the transactional id's row (FOR UPDATE) and checks the producer id
// and epoch, so concurrent requests through any brokers, and a new slot
// leader after a crash, see one sequence of states.
//
// The Prepare* states last while marker rows of the transaction remain.
// Nobody updates the row when the last marker goes (the partition side
// deletes partition markers in its flush commit and knows nothing of the
// row): the state is completed lazily, by the next transition that locks
// the row, and read as Complete* by Txn and Txns meanwhile.

import (
	"context"
	"errors"
	"fmt"
	"math"
	"time"

	"github.com/jackc/pgx/v5"
)

// TxnState is Kafka's transaction state.
type TxnState string

const (
	TxnEmpty          TxnState = "Empty"
	TxnOngoing        TxnState = "Ongoing"
	TxnPrepareCommit  TxnState = "PrepareCommit"
	TxnPrepareAbort   TxnState = "PrepareAbort"
	TxnCompleteCommit TxnState = "CompleteCommit"
	TxnCompleteAbort  TxnState = "CompleteAbort"
)

// TxnStates lists every state, for filters.
var TxnStates = []TxnState{TxnEmpty, TxnOngoing, TxnPrepareCommit, TxnPrepareAbort, TxnCompleteCommit, TxnCompleteAbort}

func (st TxnState) preparing() bool { return st == TxnPrepareCommit || st == TxnPrepareAbort }

func (st TxnState) complete() TxnState {
	if st == TxnPrepareCommit {
		return TxnCompleteCommit
	}
	return TxnCompleteAbort
}

var (
	// ErrProducerFenced: the producer epoch is not the transactional id's
	// current one (a newer instance, or a timeout, bumped it). Brokers
	// answer PRODUCER_FENCED, or INVALID_PRODUCER_EPOCH to versions that
	// predate it.
	ErrProducerFenced = errors.New("store: producer fenced by a newer epoch")
	// ErrProducerIDMapping: the transactional id is unknown or has another
	// producer id (INVALID_PRODUCER_ID_MAPPING).
	ErrProducerIDMapping = errors.New("store: producer id does not belong to the transactional id")
	// ErrTxnCompleting: the transaction's markers are still being written
	// (CONCURRENT_TRANSACTIONS: retriable).
	ErrTxnCompleting = errors.New("store: the previous transaction is still completing")
	// ErrTxnState: the request does not fit the transaction's state
	// (INVALID_TXN_STATE).
	ErrTxnState = errors.New("store: invalid transaction state for the request")
)

// TxnKey names a transactional id of a virtual cluster.
type TxnKey struct {
	ClusterID       string
	TransactionalID string
}

// Txn is a transactional id's row. Partitions and Groups are filled by
// Txn and Txns only.
type Txn struct {
	TxnKey
	Slot              int32
	ProducerID        int64
	ProducerEpoch     int16
	LastProducerEpoch int16 // before the last bump the caller asked for (-1: none)
	PrevProducerID    int64 // before epoch exhaustion gave a new id (-1: none)
	State             TxnState
	TimeoutMs         int32
	TxnVersion        int16
	StartedAt         time.Time // zero unless Ongoing (or later, of the last transaction)
	UpdatedAt         time.Time
	Partitions        []TxnPartition
	Groups            []string
}

// TxnPartition is a partition of an ongoing transaction.
type TxnPartition struct {
	Topic     string
	Partition int32
}

// ProducerIDBudget is the cluster's producer id rate (AllocateProducerID).
type ProducerIDBudget struct {
	PerSecond float64
	Burst     int
}

// epochExhausted is Kafka's: the epoch cannot be bumped once more.
func epochExhausted(e int16) bool { return e >= math.MaxInt16-1 }

const txnColumns = `cluster_id, transactional_id, slot, producer_id, producer_epoch, last_producer_epoch,
	prev_producer_id, state, timeout_ms, txn_version, started_at, updated_at`

func scanTxn(row pgx.Row) (Txn, error) {
	var t Txn
	var started *time.Time
	var state string
	err := row.Scan(&t.ClusterID, &t.TransactionalID, &t.Slot, &t.ProducerID, &t.ProducerEpoch, &t.LastProducerEpoch,
		&t.PrevProducerID, &state, &t.TimeoutMs, &t.TxnVersion, &started, &t.UpdatedAt)
	t.State = TxnState(state)
	if started != nil {
		t.StartedAt = *started
	}
	return t, err
}

// txnOp is one transition: a Postgres transaction holding the slot fence
// and the row lock.
type txnOp struct {
	tx      pgx.Tx
	t       Txn
	found   bool
	notify  bool // markers were queued: NOTIFY eddy_txn_markers on commit
	changed bool
}

// runTxn runs fn on key's row, locked, inside one Postgres transaction
// fenced by the coordinator slot; fn's changes to op.t are saved when it
// sets op.changed. An error from fn rolls back unless it returns keep
// (then what fn did is committed and its error returned).
func (s *Store) runTxn(ctx context.Context, key TxnKey, fence SlotFence, fn func(op *txnOp) (keep bool, err error)) error {
	tx, err := s.pool.Begin(ctx)
	if err != nil {
		return fmt.Errorf("store: transaction %s: %w", key.TransactionalID, err)
	}
	defer tx.Rollback(ctx)
	if err := checkSlotFence(ctx, tx, fence); err != nil {
		return err
	}
	op := &txnOp{tx: tx}
	op.t, err = scanTxn(tx.QueryRow(ctx, `SELECT `+txnColumns+` FROM transactions
		WHERE cluster_id = $1 AND transactional_id = $2 FOR UPDATE`, key.ClusterID, key.TransactionalID))
	switch {
	case err == nil:
		op.found = true
		if err := op.settle(ctx); err != nil {
			return err
		}
	case errors.Is(err, pgx.ErrNoRows):
		op.t = Txn{TxnKey: key, Slot: fence.Slot}
	default:
		return fmt.Errorf("store: transaction %s: %w", key.TransactionalID, err)
	}
	keep, ferr := fn(op)
	if ferr != nil && !keep {
		return ferr
	}
	if op.changed {
		if _, err := tx.Exec(ctx, `UPDATE transactions SET producer_id = $3, producer_epoch = $4, last_producer_epoch = $5,
				prev_producer_id = $6, state = $7, timeout_ms = $8, txn_version = $9, started_at = $10, updated_at = now()
			WHERE cluster_id = $1 AND transactional_id = $2`,
			key.ClusterID, key.TransactionalID, op.t.ProducerID, op.t.ProducerEpoch, op.t.LastProducerEpoch,
			op.t.PrevProducerID, string(op.t.State), op.t.TimeoutMs, op.t.TxnVersion, nullTime(op.t.StartedAt)); err != nil {
			return fmt.Errorf("store: transaction %s: save: %w", key.TransactionalID, err)
		}
	}
	if op.notify {
		if err := notify(ctx, tx, "eddy_txn_markers"); err != nil {
			return err
		}
	}
	if err := tx.Commit(ctx); err != nil {
		return fmt.Errorf("store: transaction %s: commit: %w", key.TransactionalID, err)
	}
	return ferr
}

func nullTime(t time.Time) *time.Time {
	if t.IsZero() {
		return nil
	}
	return &t
}

// unfenced is the fence of a transition a partition leader makes (a
// transaction-version-2 produce adding its partition, or a produce's
// check): it is not the coordinator, so only the row lock orders it with
// the coordinator's transitions.
var unfenced = SlotFence{Slot: -1}

// checkSlotFence share-locks the slot's row if fence still holds, so a
// slot move waits for the transition or fences it (ErrFenced).
func checkSlotFence(ctx context.Context, q querier, fence SlotFence) error {
	if fence == unfenced {
		return nil
	}
	var one int
	err := q.QueryRow(ctx, `SELECT 1 FROM coordinator_slots WHERE slot = $1 AND leader_id = $2 AND leader_epoch = $3 FOR SHARE`,
		fence.Slot, fence.BrokerID, fence.LeaderEpoch).Scan(&one)
	if errors.Is(err, pgx.ErrNoRows) {
		return fmt.Errorf("store: slot %d no longer led by broker %d at epoch %d: %w", fence.Slot, fence.BrokerID, fence.LeaderEpoch, ErrFenced)
	}
	if err != nil {
		return fmt.Errorf("store: slot fence: %w", err)
	}
	return nil
}

// settle completes a Prepare* state whose markers are all written.
func (op *txnOp) settle(ctx context.Context) error {
	if !op.t.State.preparing() {
		return nil
	}
	var pending bool
	if err := op.tx.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM txn_markers WHERE cluster_id = $1 AND transactional_id = $2)`,
		op.t.ClusterID, op.t.TransactionalID).Scan(&pending); err != nil {
		return fmt.Errorf("store: transaction %s: markers: %w", op.t.TransactionalID, err)
	}
	if !pending {
		op.t.State, op.changed = op.t.State.complete(), true
	}
	return nil
}

// check is the producer id and epoch check of every transition but
// InitProducerId.
func (op *txnOp) check(producerID int64, epoch int16) error {
	switch {
	case !op.found || op.t.ProducerID != producerID:
		return fmt.Errorf("store: transaction %s: producer id %d: %w", op.t.TransactionalID, producerID, ErrProducerIDMapping)
	case op.t.ProducerEpoch != epoch:
		return fmt.Errorf("store: transaction %s: producer epoch %d, current %d: %w", op.t.TransactionalID, epoch, op.t.ProducerEpoch, ErrProducerFenced)
	}
	return nil
}

// begin makes the transaction Ongoing (from Empty or Complete*); a
// transaction whose markers are still being written cannot.
func (op *txnOp) begin() error {
	switch op.t.State {
	case TxnOngoing:
		return nil
	case TxnPrepareCommit, TxnPrepareAbort:
		return fmt.Errorf("store: transaction %s is %s: %w", op.t.TransactionalID, op.t.State, ErrTxnCompleting)
	}
	op.t.State, op.t.StartedAt, op.changed = TxnOngoing, time.Now(), true
	return nil
}

// bump moves to the next epoch, or to a new producer id when the epoch is
// exhausted. last is the epoch a retry of this bump may carry (-1: none).
func (op *txnOp) bump(ctx context.Context, budget ProducerIDBudget, last int16) (time.Duration, error) {
	if epochExhausted(op.t.ProducerEpoch) {
		id, wait, err := allocProducerID(ctx, op.tx, op.t.ClusterID, budget)
		if err != nil {
			return wait, err
		}
		op.t.PrevProducerID, op.t.ProducerID, op.t.ProducerEpoch, op.t.LastProducerEpoch = op.t.ProducerID, id, 0, -1
	} else {
		op.t.ProducerEpoch, op.t.LastProducerEpoch = op.t.ProducerEpoch+1, last
	}
	op.changed = true
	return 0, nil
}

// end queues the markers of the transaction's partitions and groups under
// producer id pid and epoch (the transaction's producer id, and its epoch
// after the bump that ends it, if any), empties its lists and moves it to
// Prepare* (or straight to Complete* with nothing to mark).
func (op *txnOp) end(ctx context.Context, commit bool, coordinatorEpoch int32, pid int64, epoch int16) error {
	var n int64
	err := op.tx.QueryRow(ctx, `
		WITH p AS (
			DELETE FROM transaction_partitions WHERE cluster_id = $1 AND transactional_id = $2 RETURNING partition_id
		), g AS (
			DELETE FROM transaction_groups WHERE cluster_id = $1 AND transactional_id = $2 RETURNING group_id
		), ip AS (
			INSERT INTO txn_markers (cluster_id, transactional_id, producer_id, producer_epoch, coordinator_epoch, commit, partition_id)
			SELECT $1, $2, $3, $4, $5, $6, partition_id FROM p ORDER BY partition_id
			RETURNING 1
		), ig AS (
			INSERT INTO txn_markers (cluster_id, transactional_id, producer_id, producer_epoch, coordinator_epoch, commit, group_id)
			SELECT $1, $2, $3, $4, $5, $6, group_id FROM g ORDER BY group_id
			RETURNING 1
		)
		SELECT (SELECT count(*) FROM ip) + (SELECT count(*) FROM ig)`,
		op.t.ClusterID, op.t.TransactionalID, pid, epoch, coordinatorEpoch, commit).Scan(&n)
	if err != nil {
		return fmt.Errorf("store: transaction %s: queue markers: %w", op.t.TransactionalID, err)
	}
	op.t.State = TxnPrepareAbort
	if commit {
		op.t.State = TxnPrepareCommit
	}
	if n == 0 {
		op.t.State = op.t.State.complete()
	}
	op.notify = op.notify || n > 0
	op.changed = true
	return nil
}

// bumpEnd bumps the epoch and ends the transaction: its markers carry
// the producer id it ran under at the epoch after it, even when epoch
// exhaustion gave the transactional id a new producer id.
func (op *txnOp) bumpEnd(ctx context.Context, commit bool, coordinatorEpoch int32, budget ProducerIDBudget, last int16) (time.Duration, error) {
	pid, epoch := op.t.ProducerID, op.t.ProducerEpoch+1
	if wait, err := op.bump(ctx, budget, last); err != nil {
		return wait, err
	}
	return 0, op.end(ctx, commit, coordinatorEpoch, pid, epoch)
}

// InitTxn is an InitProducerId with a transactional id.
type InitTxn struct {
	TxnKey
	Fence     SlotFence
	TimeoutMs int32
	// ProducerID and ProducerEpoch are what the client had (KIP-360), or
	// -1 for a producer starting afresh.
	ProducerID    int64
	ProducerEpoch int16
	Budget        ProducerIDBudget
}

// InitTxnProducer is InitProducerId for a transactional id, as Kafka's
// coordinator does it: a new id gets a producer id (from the cluster's
// budget: ErrLimit and the wait when spent) at epoch 0; an existing one
// has its epoch bumped, which fences every older instance; an Ongoing
// transaction is aborted first (its markers queued at the bumped epoch)
// and, while those markers are written, the answer is ErrTxnCompleting,
// as it is whenever the last transaction is still completing. A KIP-360
// caller naming an id and epoch that are not (or no longer, or not just
// before a retried bump) the current ones is fenced.
func (s *Store) InitTxnProducer(ctx context.Context, r InitTxn) (Txn, time.Duration, error) {
	var out Txn
	var wait time.Duration
	err := s.runTxn(ctx, r.TxnKey, r.Fence, func(op *txnOp) (bool, error) {
		if !op.found {
			id, w, err := allocProducerID(ctx, op.tx, r.ClusterID, r.Budget)
			if err != nil {
				wait = w
				return false, err
			}
			tag, err := op.tx.Exec(ctx, `INSERT INTO transactions (cluster_id, transactional_id, slot, producer_id, producer_epoch, state, timeout_ms)
				VALUES ($1, $2, $3, $4, 0, $5, $6) ON CONFLICT DO NOTHING`,
				r.ClusterID, r.TransactionalID, r.Fence.Slot, id, string(TxnEmpty), r.TimeoutMs)
			if err != nil {
				return false, fmt.Errorf("store: transaction %s: create: %w", r.TransactionalID, noCluster(err))
			}
			if tag.RowsAffected() == 0 {
				// Created meanwhile by another InitProducerId: let the client retry.
				return false, fmt.Errorf("store: transaction %s created concurrently: %w", r.TransactionalID, ErrTxnCompleting)
			}
			out = Txn{TxnKey: r.TxnKey, Slot: r.Fence.Slot, ProducerID: id, LastProducerEpoch: -1, PrevProducerID: -1, State: TxnEmpty, TimeoutMs: r.TimeoutMs}
			return false, nil
		}
		t := &op.t
		expected := r.ProducerID >= 0
		if expected && r.ProducerID != t.ProducerID && (r.ProducerID != t.PrevProducerID || !epochExhausted(r.ProducerEpoch)) {
			return false, fmt.Errorf("store: transaction %s: producer id %d is not current: %w", r.TransactionalID, r.ProducerID, ErrProducerFenced)
		}
		if expected && r.ProducerID == t.ProducerID && r.ProducerEpoch >= 0 && r.ProducerEpoch != t.ProducerEpoch && r.ProducerEpoch != t.LastProducerEpoch {
			// A zombie recovering (KIP-360) must not abort its successor's
			// transaction.
			return false, fmt.Errorf("store: transaction %s: producer epoch %d, current %d: %w", r.TransactionalID, r.ProducerEpoch, t.ProducerEpoch, ErrProducerFenced)
		}
		switch t.State {
		case TxnPrepareCommit, TxnPrepareAbort:
			return false, fmt.Errorf("store: transaction %s is %s: %w", r.TransactionalID, t.State, ErrTxnCompleting)
		case TxnOngoing:
			// Fence the running instance and abort its transaction.
			// The caller proved it holds the current epoch (KIP-360) or
			// is a new instance; only the former may retry into it.
			last := int16(-1)
			if expected && r.ProducerID == t.ProducerID && r.ProducerEpoch == t.ProducerEpoch {
				last = t.ProducerEpoch
			}
			if w, err := op.bumpEnd(ctx, false, r.Fence.LeaderEpoch, r.Budget, last); err != nil {
				wait = w
				return false, err
			}
			if t.State.preparing() {
				return true, fmt.Errorf("store: transaction %s: aborting the ongoing transaction: %w", r.TransactionalID, ErrTxnCompleting)
			}
			if last >= 0 {
				// The abort's bump is the caller's bump.
				t.State, t.TimeoutMs = TxnEmpty, r.TimeoutMs
				out = *t
				return false, nil
			}
		}
		switch {
		case !expected || r.ProducerEpoch < 0:
			if w, err := op.bump(ctx, r.Budget, -1); err != nil {
				wait = w
				return false, err
			}
		case r.ProducerID == t.ProducerID && r.ProducerEpoch == t.ProducerEpoch:
			if w, err := op.bump(ctx, r.Budget, r.ProducerEpoch); err != nil {
				wait = w
				return false, err
			}
		case r.ProducerID == t.ProducerID && r.ProducerEpoch == t.LastProducerEpoch,
			r.ProducerID == t.PrevProducerID && t.ProducerEpoch == 0:
			// A retry of a bump whose answer was lost: the current epoch.
		default:
			return false, fmt.Errorf("store: transaction %s: producer epoch %d, current %d: %w", r.TransactionalID, r.ProducerEpoch, t.ProducerEpoch, ErrProducerFenced)
		}
		t.State, t.TimeoutMs, op.changed = TxnEmpty, r.TimeoutMs, true
		out = *t
		return false, nil
	})
	return out, wait, err
}

// TxnChange names a transactional id and the producer acting on it.
type TxnChange struct {
	TxnKey
	Fence         SlotFence
	ProducerID    int64
	ProducerEpoch int16
}

// AddTxnPartitions adds partitions (by id) to the producer's transaction,
// which becomes Ongoing if it was not (AddPartitionsToTxn).
func (s *Store) AddTxnPartitions(ctx context.Context, c TxnChange, partitionIDs []int64) error {
	return s.runTxn(ctx, c.TxnKey, c.Fence, func(op *txnOp) (bool, error) {
		if err := op.check(c.ProducerID, c.ProducerEpoch); err != nil {
			return false, err
		}
		if err := op.begin(); err != nil {
			return false, err
		}
		if _, err := op.tx.Exec(ctx, `INSERT INTO transaction_partitions (cluster_id, transactional_id, partition_id)
			SELECT $1, $2, id FROM unnest($3::bigint[]) AS id ORDER BY id ON CONFLICT DO NOTHING`,
			c.ClusterID, c.TransactionalID, partitionIDs); err != nil {
			return false, fmt.Errorf("store: transaction %s: add partitions: %w", c.TransactionalID, noPartition(err))
		}
		return false, nil
	})
}

// TxnHasPartitions answers the verification form of AddPartitionsToTxn:
// which of partitionIDs are in the producer's ongoing transaction. The
// producer must be current (ErrProducerIDMapping, ErrProducerFenced) and
// its last transaction complete (ErrTxnCompleting).
func (s *Store) TxnHasPartitions(ctx context.Context, c TxnChange, partitionIDs []int64) (map[int64]bool, error) {
	in := map[int64]bool{}
	err := s.runTxn(ctx, c.TxnKey, c.Fence, func(op *txnOp) (bool, error) {
		if err := op.check(c.ProducerID, c.ProducerEpoch); err != nil {
			return false, err
		}
		if op.t.State.preparing() {
			return false, fmt.Errorf("store: transaction %s is %s: %w", c.TransactionalID, op.t.State, ErrTxnCompleting)
		}
		if op.t.State != TxnOngoing {
			return false, nil
		}
		rows, err := op.tx.Query(ctx, `SELECT partition_id FROM transaction_partitions
			WHERE cluster_id = $1 AND transactional_id = $2 AND partition_id = ANY($3::bigint[])`,
			c.ClusterID, c.TransactionalID, partitionIDs)
		if err != nil {
			return false, fmt.Errorf("store: transaction %s: partitions: %w", c.TransactionalID, err)
		}
		ids, err := pgx.CollectRows(rows, pgx.RowTo[int64])
		if err != nil {
			return false, fmt.Errorf("store: transaction %s: partitions: %w", c.TransactionalID, err)
		}
		for _, id := range ids {
			in[id] = true
		}
		return false, nil
	})
	return in, err
}

// AddTxnGroup adds a consumer group to the producer's transaction
// (AddOffsetsToTxn), which becomes Ongoing if it was not.
func (s *Store) AddTxnGroup(ctx context.Context, c TxnChange, group string) error {
	if !storableText(group) {
		return fmt.Errorf("store: group %q is not valid UTF-8 text: %w", group, ErrInvalid)
	}
	return s.runTxn(ctx, c.TxnKey, c.Fence, func(op *txnOp) (bool, error) {
		if err := op.check(c.ProducerID, c.ProducerEpoch); err != nil {
			return false, err
		}
		if err := op.begin(); err != nil {
			return false, err
		}
		return false, addTxnGroup(ctx, op.tx, c.TxnKey, group)
	})
}

func addTxnGroup(ctx context.Context, tx pgx.Tx, key TxnKey, group string) error {
	if _, err := tx.Exec(ctx, `INSERT INTO transaction_groups (cluster_id, transactional_id, group_id)
		VALUES ($1, $2, $3) ON CONFLICT DO NOTHING`, key.ClusterID, key.TransactionalID, group); err != nil {
		return fmt.Errorf("store: transaction %s: add group: %w", key.TransactionalID, err)
	}
	return nil
}

// TxnOffsetCommit is a TxnOffsetCommit: offsets of Group committed inside
// the producer's transaction.
type TxnOffsetCommit struct {
	TxnKey
	ProducerID    int64
	ProducerEpoch int16
	Group         string
	// GroupFence is the group's coordinator slot, which the request was
	// sent to (the transactional id's slot may be another).
	GroupFence SlotFence
	// AddGroup adds the group to the transaction, starting it if needed
	// (transaction version 2, TxnOffsetCommit v5+); without it the group
	// must have been added by AddOffsetsToTxn (ErrTxnState).
	AddGroup bool
	Offsets  []GroupOffset
}

// CommitTxnOffsets stores offsets pending in the producer's transaction
// (txn_offsets), fenced by the group's coordinator slot like
// CommitOffsets: they reach group_offsets when the transaction's group
// marker is applied (ApplyGroupMarker) with a commit.
func (s *Store) CommitTxnOffsets(ctx context.Context, c TxnOffsetCommit) error {
	if !storable(OffsetCommit{ClusterID: c.ClusterID, Group: c.Group, Offsets: c.Offsets}) {
		return fmt.Errorf("store: transactional offset commit for group %q: a name or metadata is not valid UTF-8 text: %w", c.Group, ErrInvalid)
	}
	tx, err := s.pool.Begin(ctx)
	if err != nil {
		return fmt.Errorf("store: transactional offset commit: %w", err)
	}
	defer tx.Rollback(ctx)
	if err := checkSlotFence(ctx, tx, c.GroupFence); err != nil {
		return err
	}
	op := &txnOp{tx: tx}
	op.t, err = scanTxn(tx.QueryRow(ctx, `SELECT `+txnColumns+` FROM transactions
		WHERE cluster_id = $1 AND transactional_id = $2 FOR UPDATE`, c.ClusterID, c.TransactionalID))
	switch {
	case err == nil:
		op.found = true
		if err := op.settle(ctx); err != nil {
			return err
		}
	case !errors.Is(err, pgx.ErrNoRows):
		return fmt.Errorf("store: transaction %s: %w", c.TransactionalID, err)
	}
	if err := op.check(c.ProducerID, c.ProducerEpoch); err != nil {
		return err
	}
	var inTxn bool
	if op.t.State == TxnOngoing {
		if err := tx.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM transaction_groups
			WHERE cluster_id = $1 AND transactional_id = $2 AND group_id = $3)`, c.ClusterID, c.TransactionalID, c.Group).Scan(&inTxn); err != nil {
			return fmt.Errorf("store: transaction %s: groups: %w", c.TransactionalID, err)
		}
	}
	if !inTxn {
		if !c.AddGroup {
			if op.t.State.preparing() {
				return fmt.Errorf("store: transaction %s is %s: %w", c.TransactionalID, op.t.State, ErrTxnCompleting)
			}
			return fmt.Errorf("store: transaction %s: group %s was not added to the transaction: %w", c.TransactionalID, c.Group, ErrTxnState)
		}
		if err := op.begin(); err != nil {
			return err
		}
		if err := addTxnGroup(ctx, tx, c.TxnKey, c.Group); err != nil {
			return err
		}
	}
	var topics, metas []string
	var parts, epochs []int32
	var offsets []int64
	for _, o := range c.Offsets {
		topics, parts, offsets = append(topics, o.Topic), append(parts, o.Partition), append(offsets, o.Offset)
		epochs, metas = append(epochs, o.LeaderEpoch), append(metas, o.Metadata)
	}
	if _, err := tx.Exec(ctx, `
		INSERT INTO txn_offsets (cluster_id, group_id, producer_id, topic, partition, committed, leader_epoch, metadata)
		SELECT DISTINCT ON (r.topic, r.partition) $1, $2, $3, r.topic, r.partition, r.committed, r.leader_epoch, r.metadata
		FROM unnest($4::text[], $5::int[], $6::bigint[], $7::int[], $8::text[]) WITH ORDINALITY
			AS r(topic, partition, committed, leader_epoch, metadata, ord)
		ORDER BY r.topic, r.partition, r.ord DESC
		ON CONFLICT (cluster_id, group_id, topic, partition, producer_id) DO UPDATE SET
			committed = EXCLUDED.committed, leader_epoch = EXCLUDED.leader_epoch,
			metadata = EXCLUDED.metadata, committed_at = now()`,
		c.ClusterID, c.Group, c.ProducerID, topics, parts, offsets, epochs, metas); err != nil {
		return fmt.Errorf("store: transactional offset commit for group %s: %w", c.Group, noCluster(err))
	}
	if op.changed {
		if _, err := tx.Exec(ctx, `UPDATE transactions SET state = $3, started_at = $4, updated_at = now()
			WHERE cluster_id = $1 AND transactional_id = $2`, c.ClusterID, c.TransactionalID, string(op.t.State), nullTime(op.t.StartedAt)); err != nil {
			return fmt.Errorf("store: transaction %s: save: %w", c.TransactionalID, err)
		}
	}
	if err := tx.Commit(ctx); err != nil {
		return fmt.Errorf("store: transactional offset commit for group %s: %w", c.Group, err)
	}
	return nil
}

// EndTxnRequest is an EndTxn.
type EndTxnRequest struct {
	TxnChange
	Commit bool
	// Bump is transaction version 2 (EndTxn v5+): the epoch is bumped at
	// every end, the markers carry the new epoch, and the answer is the
	// producer id and epoch to use next.
	Bump   bool
	Budget ProducerIDBudget
}

// EndTxn commits or aborts the producer's transaction (Kafka's
// TransactionCoordinator.endTransaction): it queues one marker per
// partition and group, empties the lists and moves to Prepare*, in one
// Postgres transaction, and returns the row (with Bump, the id and epoch
// the producer uses next). A retry of an end that took effect answers as
// the first did; an end that contradicts the state is ErrTxnState, one
// whose markers are still being written ErrTxnCompleting.
func (s *Store) EndTxn(ctx context.Context, r EndTxnRequest) (Txn, time.Duration, error) {
	var out Txn
	var wait time.Duration
	err := s.runTxn(ctx, r.TxnKey, r.Fence, func(op *txnOp) (bool, error) {
		t := &op.t
		if !op.found {
			return false, fmt.Errorf("store: transaction %s: %w", r.TransactionalID, ErrProducerIDMapping)
		}
		// With version 2 a retried end carries the epoch before its bump
		// (or, after exhaustion, the previous producer id).
		retry := r.Bump && t.TxnVersion >= 2 && t.State != TxnOngoing &&
			((r.ProducerID == t.ProducerID && r.ProducerEpoch+1 == t.ProducerEpoch) ||
				(r.ProducerID == t.PrevProducerID && t.ProducerEpoch == 0 && epochExhausted(r.ProducerEpoch)))
		if !retry {
			if err := op.check(r.ProducerID, r.ProducerEpoch); err != nil {
				return false, err
			}
		}
		want := TxnPrepareAbort
		if r.Commit {
			want = TxnPrepareCommit
		}
		switch t.State {
		case TxnOngoing:
			if r.Bump {
				t.TxnVersion = 2
				if w, err := op.bumpEnd(ctx, r.Commit, r.Fence.LeaderEpoch, r.Budget, -1); err != nil {
					wait = w
					return false, err
				}
			} else if err := op.end(ctx, r.Commit, r.Fence.LeaderEpoch, t.ProducerID, t.ProducerEpoch); err != nil {
				return false, err
			}
		case TxnPrepareCommit, TxnPrepareAbort:
			if t.State != want {
				return false, fmt.Errorf("store: transaction %s is %s: %w", r.TransactionalID, t.State, ErrTxnState)
			}
			return false, fmt.Errorf("store: transaction %s is %s: %w", r.TransactionalID, t.State, ErrTxnCompleting)
		case TxnCompleteCommit, TxnCompleteAbort, TxnEmpty:
			switch {
			case t.State == want.complete() && (retry || !r.Bump):
				// A retry of the end that got us here.
			case r.Bump && !r.Commit && !retry:
				// Version 2 may abort an empty transaction: a fresh epoch.
				if w, err := op.bump(ctx, r.Budget, -1); err != nil {
					wait = w
					return false, err
				}
				t.TxnVersion, t.State = 2, TxnCompleteAbort
			default:
				return false, fmt.Errorf("store: transaction %s is %s, cannot %s: %w", r.TransactionalID, t.State, map[bool]string{true: "commit", false: "abort"}[r.Commit], ErrTxnState)
			}
		}
		out = *t
		return false, nil
	})
	return out, wait, err
}

// ExpiredTxns returns the Ongoing transactions of slots older than their
// timeout.
func (s *Store) ExpiredTxns(ctx context.Context, slots []int32) ([]Txn, error) {
	rows, err := s.pool.Query(ctx, `SELECT `+txnColumns+` FROM transactions
		WHERE slot = ANY($1::int[]) AND state = $2 AND started_at + make_interval(secs => timeout_ms / 1000.0) < now()
		ORDER BY cluster_id, transactional_id LIMIT 1000`, slots, string(TxnOngoing))
	if err != nil {
		return nil, fmt.Errorf("store: expired transactions: %w", err)
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (Txn, error) { return scanTxn(r) })
	if err != nil {
		return nil, fmt.Errorf("store: expired transactions: %w", err)
	}
	return out, nil
}

// AbortExpiredTxn aborts t if it is still the same Ongoing transaction
// and past its timeout: the epoch is bumped (fencing the producer, which
// may recover with InitProducerId at its old epoch, KIP-360) and abort
// markers queued. It reports whether it aborted.
func (s *Store) AbortExpiredTxn(ctx context.Context, t Txn, fence SlotFence, budget ProducerIDBudget) (bool, error) {
	aborted := false
	err := s.runTxn(ctx, t.TxnKey, fence, func(op *txnOp) (bool, error) {
		cur := &op.t
		if !op.found || cur.State != TxnOngoing || cur.ProducerID != t.ProducerID || cur.ProducerEpoch != t.ProducerEpoch ||
			time.Since(cur.StartedAt) <= time.Duration(cur.TimeoutMs)*time.Millisecond {
			return false, nil
		}
		if _, err := op.bumpEnd(ctx, false, fence.LeaderEpoch, budget, cur.ProducerEpoch); err != nil {
			return false, err
		}
		aborted = true
		return false, nil
	})
	return aborted, err
}

// Txn returns a transactional id's row with its current transaction's
// partitions and groups; a Prepare* state whose markers are all written
// reads as Complete*. ErrNotFound if there is none.
func (s *Store) Txn(ctx context.Context, key TxnKey) (Txn, error) {
	ts, err := s.txns(ctx, `WHERE t.cluster_id = $1 AND t.transactional_id = $2`, key.ClusterID, key.TransactionalID)
	if err != nil {
		return Txn{}, err
	}
	if len(ts) == 0 {
		return Txn{}, fmt.Errorf("store: transaction %s: %w", key.TransactionalID, ErrNotFound)
	}
	t := ts[0]
	rows, err := s.pool.Query(ctx, `SELECT tp.name, p.partition FROM transaction_partitions x
		JOIN partitions p ON p.id = x.partition_id JOIN topics tp ON tp.id = p.topic_id
		WHERE x.cluster_id = $1 AND x.transactional_id = $2 ORDER BY 1, 2`, key.ClusterID, key.TransactionalID)
	if err != nil {
		return Txn{}, fmt.Errorf("store: transaction %s: partitions: %w", key.TransactionalID, err)
	}
	if t.Partitions, err = pgx.CollectRows(rows, pgx.RowToStructByPos[TxnPartition]); err != nil {
		return Txn{}, fmt.Errorf("store: transaction %s: partitions: %w", key.TransactionalID, err)
	}
	rows, err = s.pool.Query(ctx, `SELECT group_id FROM transaction_groups WHERE cluster_id = $1 AND transactional_id = $2 ORDER BY 1`,
		key.ClusterID, key.TransactionalID)
	if err != nil {
		return Txn{}, fmt.Errorf("store: transaction %s: groups: %w", key.TransactionalID, err)
	}
	if t.Groups, err = pgx.CollectRows(rows, pgx.RowTo[string]); err != nil {
		return Txn{}, fmt.Errorf("store: transaction %s: groups: %w", key.TransactionalID, err)
	}
	return t, nil
}

// Txns returns the transactional ids of cluster whose coordinator slot is
// one of slots, with states read as Txn reads them (no partitions).
func (s *Store) Txns(ctx context.Context, clusterID string, slots []int32) ([]Txn, error) {
	return s.txns(ctx, `WHERE t.cluster_id = $1 AND t.slot = ANY($2::int[])`, clusterID, slots)
}

func (s *Store) txns(ctx context.Context, where string, args ...any) ([]Txn, error) {
	rows, err := s.pool.Query(ctx, `SELECT t.cluster_id, t.transactional_id, t.slot, t.producer_id, t.producer_epoch,
			t.last_producer_epoch, t.prev_producer_id,
			CASE WHEN t.state LIKE 'Prepare%' AND NOT EXISTS (SELECT 1 FROM txn_markers m
				WHERE m.cluster_id = t.cluster_id AND m.transactional_id = t.transactional_id)
			THEN replace(t.state, 'Prepare', 'Complete') ELSE t.state END,
			t.timeout_ms, t.txn_version, t.started_at, t.updated_at
		FROM transactions t `+where+` ORDER BY t.transactional_id`, args...)
	if err != nil {
		return nil, fmt.Errorf("store: transactions: %w", err)
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (Txn, error) { return scanTxn(r) })
	if err != nil {
		return nil, fmt.Errorf("store: transactions: %w", err)
	}
	return out, nil
}

// TxnLoad is what a broker's transaction metrics show of its slots.
type TxnLoad struct {
	Open    int // Ongoing transactions
	Markers int // marker rows not yet written
}

// TxnLoadOf counts the open transactions and outstanding markers of the
// transactional ids in slots.
func (s *Store) TxnLoadOf(ctx context.Context, slots []int32) (TxnLoad, error) {
	var l TxnLoad
	err := s.pool.QueryRow(ctx, `SELECT
			(SELECT count(*) FROM transactions WHERE slot = ANY($1::int[]) AND state = $2),
			(SELECT count(*) FROM txn_markers m JOIN transactions t USING (cluster_id, transactional_id) WHERE t.slot = ANY($1::int[]))`,
		slots, string(TxnOngoing)).Scan(&l.Open, &l.Markers)
	if err != nil {
		return l, fmt.Errorf("store: transaction load: %w", err)
	}
	return l, nil
}

// GroupMarker is a transaction's marker for a consumer group: its pending
// offsets (txn_offsets of the producer) are to be committed or dropped.
type GroupMarker struct {
	ID         int64
	ClusterID  string
	Group      string
	ProducerID int64
	Commit     bool
}

// GroupMarkers returns up to limit group markers still to be applied,
// oldest first.
func (s *Store) GroupMarkers(ctx context.Context, limit int) ([]GroupMarker, error) {
	rows, err := s.pool.Query(ctx, `SELECT id, cluster_id, group_id, producer_id, commit FROM txn_markers
		WHERE group_id IS NOT NULL ORDER BY id LIMIT $1`, limit)
	if err != nil {
		return nil, fmt.Errorf("store: group markers: %w", err)
	}
	out, err := pgx.CollectRows(rows, pgx.RowToStructByPos[GroupMarker])
	if err != nil {
		return nil, fmt.Errorf("store: group markers: %w", err)
	}
	return out, nil
}

// ApplyGroupMarker applies m in one statement fenced by the group's
// coordinator slot (like CommitOffsetsBatch): with a commit the producer's
// pending offsets of the group move into group_offsets, with an abort they
// are deleted, and the marker row goes. It reports whether it applied m:
// false if the fence no longer holds or m was applied already.
func (s *Store) ApplyGroupMarker(ctx context.Context, m GroupMarker, fence SlotFence) (bool, error) {
	var applied bool
	err := s.pool.QueryRow(ctx, `
		WITH fence AS MATERIALIZED (
			SELECT 1 FROM coordinator_slots WHERE slot = $2 AND leader_id = $3 AND leader_epoch = $4 FOR SHARE
		), m AS MATERIALIZED (
			DELETE FROM txn_markers WHERE id = $1 AND EXISTS (SELECT 1 FROM fence)
			RETURNING cluster_id, group_id, producer_id, commit
		), moved AS MATERIALIZED (
			DELETE FROM txn_offsets o USING m
			WHERE o.cluster_id = m.cluster_id AND o.group_id = m.group_id AND o.producer_id = m.producer_id
			RETURNING o.cluster_id, o.group_id, o.topic, o.partition, o.committed, o.leader_epoch, o.metadata, m.commit
		), ins AS (
			INSERT INTO group_offsets (cluster_id, group_id, topic, partition, committed, leader_epoch, metadata)
			SELECT cluster_id, group_id, topic, partition, committed, leader_epoch, metadata FROM moved
			WHERE commit ORDER BY topic, partition
			ON CONFLICT (cluster_id, group_id, topic, partition) DO UPDATE SET
				committed = EXCLUDED.committed, leader_epoch = EXCLUDED.leader_epoch,
				metadata = EXCLUDED.metadata, committed_at = now()
			RETURNING 1
		)
		SELECT EXISTS (SELECT 1 FROM m)`, m.ID, fence.Slot, fence.BrokerID, fence.LeaderEpoch).Scan(&applied)
	if err != nil {
		return false, fmt.Errorf("store: apply group marker %d: %w", m.ID, err)
	}
	return applied, nil
}

// PendingTxnOffsets returns the partitions of a group, by topic, with
// offsets committed in a transaction that has not ended yet (or whose
// marker is not applied yet): OffsetFetch's require_stable.
func (s *Store) PendingTxnOffsets(ctx context.Context, clusterID, group string) (map[string]map[int32]bool, error) {
	rows, err := s.pool.Query(ctx, `SELECT DISTINCT topic, partition FROM txn_offsets WHERE cluster_id = $1 AND group_id = $2`, clusterID, group)
	if err != nil {
		return nil, fmt.Errorf("store: pending offsets of group %s: %w", group, err)
	}
	tps, err := pgx.CollectRows(rows, pgx.RowToStructByPos[TxnPartition])
	if err != nil {
		return nil, fmt.Errorf("store: pending offsets of group %s: %w", group, err)
	}
	out := map[string]map[int32]bool{}
	for _, tp := range tps {
		if out[tp.Topic] == nil {
			out[tp.Topic] = map[int32]bool{}
		}
		out[tp.Topic][tp.Partition] = true
	}
	return out, nil
}

// DeletePartitionMarkers deletes the partition markers of a transactional
// id and returns how many went. Partition leaders delete a marker in the
// flush commit that writes it; tests of the coordinator alone use this to
// stand in for them.
func (s *Store) DeletePartitionMarkers(ctx context.Context, key TxnKey) (int, error) {
	tag, err := s.pool.Exec(ctx, `DELETE FROM txn_markers WHERE cluster_id = $1 AND transactional_id = $2 AND partition_id IS NOT NULL`,
		key.ClusterID, key.TransactionalID)
	if err != nil {
		return 0, fmt.Errorf("store: delete partition markers: %w", err)
	}
	return int(tag.RowsAffected()), nil
}

// noCluster maps a foreign-key violation (the virtual cluster is gone) to
// ErrNotFound.
func noCluster(err error) error {
	if isFKViolation(err) {
		return fmt.Errorf("%w: %w", ErrNotFound, err)
	}
	return err
}

// noPartition maps a foreign-key violation (a partition deleted with its
// topic meanwhile) to ErrNotFound.
func noPartition(err error) error { return noCluster(err) }
