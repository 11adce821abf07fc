package store

// What tiered storage's background work needs of transactions
// (docs/transactions.md, "Compaction and retention"): the last stable
// offset a compaction may not pass, the compaction swap that also forgets
// the aborted transactions whose markers it removed, the aborted
// transactions retention and DeleteRecords drop with the log below the
// new start, and what fsck checks of them.

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5"
)

// lastStableSQL is a partition's last stable offset as committed, for a
// query over partitions p: the first offset of its oldest open
// transaction, or its high watermark.
const lastStableSQL = `least(p.high_watermark, (SELECT min(txn_first_offset) FROM producer_states
	WHERE partition_id = p.id AND txn_first_offset >= 0))`

// LastStableOffset returns a partition's last stable offset as committed
// in Postgres: the smallest first offset of a producer's open transaction
// (producer_states.txn_first_offset), or the high watermark. The flush
// commit that makes a marker durable clears its producer's first offset,
// so below this offset every transaction has its marker committed and, if
// it aborted, its aborted_txns row. A leader's own LSO can only be higher
// than an earlier reading of this one (a new transaction starts at or
// above the high watermark).
func (s *Store) LastStableOffset(ctx context.Context, partitionID int64) (int64, error) {
	var lso int64
	err := s.pool.QueryRow(ctx, `SELECT `+lastStableSQL+` FROM partitions p WHERE p.id = $1`, partitionID).Scan(&lso)
	if err != nil {
		return 0, fmt.Errorf("store: last stable offset %d: %w", partitionID, noRows(err))
	}
	return lso, nil
}

// SwapCompacted is SwapSegments for a compaction that removed transaction
// markers: in the same transaction it deletes the aborted_txns rows of the
// abort markers at the offsets abortMarkers, so no read_committed fetch
// names an aborted transaction whose marker is gone (a client would then
// drop its producer's later batches, waiting for a marker that never
// comes).
func (s *Store) SwapCompacted(ctx context.Context, partitionID int64, old, new []Segment, key string, abortMarkers []int64) (bool, error) {
	return s.swapSegments(ctx, partitionID, old, new, key, abortMarkers)
}

// dropAbortedBelow deletes the aborted transactions of a partition whose
// marker is below start, in tx: the log start moved past them, and a
// fetch (which starts at or above the log start) never names them.
func dropAbortedBelow(ctx context.Context, tx pgx.Tx, partitionID, start int64) error {
	if _, err := tx.Exec(ctx, `DELETE FROM aborted_txns WHERE partition_id = $1 AND last_offset < $2`, partitionID, start); err != nil {
		return fmt.Errorf("aborted transactions: %w", err)
	}
	return nil
}

// AbortedRef is an aborted_txns row at or above its partition's log
// start, with where the index says its marker is.
type AbortedRef struct {
	PartitionID int64
	AbortedTxn
	HighWatermark int64
	// Row is the index row holding the marker's offset, if InRow.
	Row   RemoteSegment
	InRow bool
}

// AbortedRefs returns every aborted transaction at or above its
// partition's log start, with its partition's high watermark and the index
// row holding its marker, by partition and marker (for fsck). Rows below
// the log start are left out: no fetch names them, and retention deletes
// them.
func (s *Store) AbortedRefs(ctx context.Context) ([]AbortedRef, error) {
	rows, err := s.pool.Query(ctx, `
		SELECT a.partition_id, a.producer_id, a.first_offset, a.last_offset, p.high_watermark,
			s.base_offset, s.end_offset, s.object_key, s.position, s.length, s.max_timestamp, coalesce(o.size, -1)
		FROM aborted_txns a JOIN partitions p ON p.id = a.partition_id
		LEFT JOIN segments s ON s.partition_id = a.partition_id
			AND s.base_offset <= a.last_offset AND s.end_offset > a.last_offset
		LEFT JOIN objects o ON o.key = s.object_key
		WHERE a.last_offset >= p.log_start_offset
		ORDER BY a.partition_id, a.last_offset`)
	if err != nil {
		return nil, fmt.Errorf("store: aborted transactions: %w", err)
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (AbortedRef, error) {
		var (
			a                           AbortedRef
			base, end, pos, maxTs, size *int64
			key                         *string
			length                      *int32
		)
		err := r.Scan(&a.PartitionID, &a.ProducerID, &a.FirstOffset, &a.LastOffset, &a.HighWatermark,
			&base, &end, &key, &pos, &length, &maxTs, &size)
		if err == nil && base != nil {
			a.Row = RemoteSegment{Segment: Segment{BaseOffset: *base, EndOffset: *end, ObjectKey: *key,
				Position: *pos, Length: *length, MaxTimestamp: *maxTs}, ObjectSize: *size}
			a.InRow = true
		}
		return a, err
	})
	if err != nil {
		return nil, fmt.Errorf("store: aborted transactions: %w", err)
	}
	return out, nil
}

// PutAbortedTxnForTest records an aborted transaction of a partition as
// the flush commit of its marker would, without the marker: the damage
// fsck looks for.
func (s *Store) PutAbortedTxnForTest(ctx context.Context, partitionID int64, a AbortedTxn) error {
	if _, err := s.pool.Exec(ctx, `INSERT INTO aborted_txns (partition_id, producer_id, first_offset, last_offset)
		VALUES ($1, $2, $3, $4)`, partitionID, a.ProducerID, a.FirstOffset, a.LastOffset); err != nil {
		return fmt.Errorf("store: put aborted transaction: %w", err)
	}
	return nil
}

// CommittedOffsets is a partition's committed offsets as a broker that
// does not lead it sees them (a KIP-392 read replica).
type CommittedOffsets struct {
	HighWatermark  int64
	LastStable     int64
	LogStartOffset int64
}

// CommittedOffsetsOf reads the committed offsets of partitions in one
// statement: brokers serving reads of partitions they do not lead poll
// it, for every partition a fetch waits on at once. Unknown ids are left
// out of the map.
func (s *Store) CommittedOffsetsOf(ctx context.Context, partitionIDs []int64) (map[int64]CommittedOffsets, error) {
	rows, err := s.pool.Query(ctx, `SELECT p.id, p.high_watermark, `+lastStableSQL+`, p.log_start_offset
		FROM partitions p WHERE p.id = ANY($1)`, partitionIDs)
	if err != nil {
		return nil, fmt.Errorf("store: committed offsets: %w", err)
	}
	defer rows.Close()
	out := make(map[int64]CommittedOffsets, len(partitionIDs))
	for rows.Next() {
		var (
			id int64
			o  CommittedOffsets
		)
		if err := rows.Scan(&id, &o.HighWatermark, &o.LastStable, &o.LogStartOffset); err != nil {
			return nil, fmt.Errorf("store: committed offsets: %w", err)
		}
		out[id] = o
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("store: committed offsets: %w", err)
	}
	return out, nil
}
