package store

import (
	"context"
	"encoding/json"
	"fmt"
	"time"
)

// SeqBatch is one batch an idempotent producer wrote, kept so a retry of
// it is answered with its original offset.
type SeqBatch struct {
	FirstSeq   int32
	LastSeq    int32
	BaseOffset int64
}

// ProducerState is an idempotent producer's state on one partition: its
// epoch and its most recent batches (oldest first, at most five).
type ProducerState struct {
	ProducerID int64
	Epoch      int16
	Batches    []SeqBatch
	// TxnFirstOffset is the first offset of the producer's open
	// transaction on the partition, -1 if none; the last stable offset
	// stops at the smallest of them.
	TxnFirstOffset int64
	// Updated is when the state was last committed (read only: Commit
	// stamps it).
	Updated time.Time
}

// PartitionState is what a broker needs to start leading a partition.
type PartitionState struct {
	LeaderID       int32
	LeaderEpoch    int32
	HighWatermark  int64
	LogStartOffset int64
	Producers      []ProducerState
	// InlineBytes is how much of the log is committed inline (not yet
	// moved to an object), which the new leader's uploader moves.
	InlineBytes int64
}

// LoadPartition reads a partition's committed state, with the producers
// whose state was committed at or after producersSince or that have an
// open transaction (expired producers are left out; the zero time loads
// all).
func (s *Store) LoadPartition(ctx context.Context, partitionID int64, producersSince time.Time) (PartitionState, error) {
	var st PartitionState
	err := s.pool.QueryRow(ctx, `
		SELECT coalesce(leader_id, -1), leader_epoch, high_watermark, log_start_offset,
			(SELECT coalesce(sum(octet_length(data)), 0) FROM inline_batches WHERE partition_id = p.id)
		FROM partitions p WHERE id = $1`, partitionID).
		Scan(&st.LeaderID, &st.LeaderEpoch, &st.HighWatermark, &st.LogStartOffset, &st.InlineBytes)
	if err != nil {
		return st, fmt.Errorf("store: load partition %d: %w", partitionID, noRows(err))
	}
	rows, err := s.pool.Query(ctx, `
		SELECT producer_id, producer_epoch, batches, txn_first_offset, updated_at FROM producer_states
		WHERE partition_id = $1 AND (updated_at >= $2 OR txn_first_offset >= 0)`, partitionID, producersSince)
	if err != nil {
		return st, fmt.Errorf("store: load producers %d: %w", partitionID, err)
	}
	defer rows.Close()
	for rows.Next() {
		var (
			p   ProducerState
			raw []byte
		)
		if err := rows.Scan(&p.ProducerID, &p.Epoch, &raw, &p.TxnFirstOffset, &p.Updated); err != nil {
			return st, fmt.Errorf("store: load producers %d: %w", partitionID, err)
		}
		if p.Batches, err = decodeBatches(raw); err != nil {
			return st, fmt.Errorf("store: producer %d state: %w", p.ProducerID, err)
		}
		st.Producers = append(st.Producers, p)
	}
	return st, rows.Err()
}

// The batches column holds [[first_seq, last_seq, base_offset], ...]:
// compact, and readable in psql.
func encodeBatches(bs []SeqBatch) string {
	a := make([][3]int64, len(bs))
	for i, b := range bs {
		a[i] = [3]int64{int64(b.FirstSeq), int64(b.LastSeq), b.BaseOffset}
	}
	out, _ := json.Marshal(a)
	return string(out)
}

func decodeBatches(raw []byte) ([]SeqBatch, error) {
	var a [][3]int64
	if err := json.Unmarshal(raw, &a); err != nil {
		return nil, err
	}
	bs := make([]SeqBatch, len(a))
	for i, v := range a {
		bs[i] = SeqBatch{FirstSeq: int32(v[0]), LastSeq: int32(v[1]), BaseOffset: v[2]}
	}
	return bs, nil
}

// CommitPart is one partition's contribution to a flushed object: offsets
// [BaseOffset, EndOffset) at bytes [Position, Position+Length) of the object,
// written under LeaderEpoch, plus the producer states as of EndOffset and
// the transaction markers written in the range.
type CommitPart struct {
	PartitionID  int64
	LeaderEpoch  int32
	BaseOffset   int64
	EndOffset    int64
	Position     int64
	Length       int32
	MaxTimestamp int64
	Producers    []ProducerState
	Markers      []WrittenMarker
	// Data is the part's batches when Commit stores them inline (an empty
	// object key); Position and Length are then unused.
	Data []byte
}

// WrittenMarker is a transaction marker (a txn_markers row) that a part
// carries as a control batch at offset Offset. FirstOffset is the first
// offset of the producer's transaction on the partition, -1 if it wrote
// nothing there.
type WrittenMarker struct {
	ID          int64
	ProducerID  int64
	FirstOffset int64
	Offset      int64
	Commit      bool
}

// Commit records a flushed object and, for every part whose writer is still
// the partition's leader at that epoch and whose BaseOffset equals the
// committed high watermark, inserts its index row, its producer states and
// moves the high watermark to EndOffset — all in one statement, so either
// all of a part lands or none of it does. A part's markers are settled in
// the same statement: their txn_markers rows are deleted and an abort's
// transaction is recorded in aborted_txns, so a marker is written exactly
// once whoever leads the partition. It returns the ids of the partitions
// that committed; the others were fenced (DESIGN.md invariant 1).
//
// With an empty objectKey nothing was PUT: each part's Data goes into an
// inline_batches row instead of an index row (migration 0024), in the same
// statement, and MoveInline later moves it into an object.
func (s *Store) Commit(ctx context.Context, brokerID int32, objectKey string, objectSize int64, parts []CommitPart) (map[int64]bool, error) {
	n := len(parts)
	var (
		ids, bases, ends, poss, maxTs  = make([]int64, n), make([]int64, n), make([]int64, n), make([]int64, n), make([]int64, n)
		epochs, lens                   = make([]int32, n), make([]int32, n)
		data                           [][]byte
		pPart, pID                     []int64
		pEpoch                         []int16
		pBatches                       []string
		pTxnFirst                      []int64
		mPart, mID, mPID, mFirst, mOff []int64
		mCommit                        []bool
	)
	if objectKey == "" {
		data = make([][]byte, 0, n)
	}
	for i, p := range parts {
		ids[i], epochs[i], bases[i], ends[i] = p.PartitionID, p.LeaderEpoch, p.BaseOffset, p.EndOffset
		poss[i], lens[i], maxTs[i] = p.Position, p.Length, p.MaxTimestamp
		if objectKey == "" {
			data = append(data, p.Data)
		}
		for _, ps := range p.Producers {
			pPart = append(pPart, p.PartitionID)
			pID = append(pID, ps.ProducerID)
			pEpoch = append(pEpoch, ps.Epoch)
			pBatches = append(pBatches, encodeBatches(ps.Batches))
			pTxnFirst = append(pTxnFirst, ps.TxnFirstOffset)
		}
		for _, mk := range p.Markers {
			mPart, mID, mPID = append(mPart, p.PartitionID), append(mID, mk.ID), append(mPID, mk.ProducerID)
			mFirst, mOff, mCommit = append(mFirst, mk.FirstOffset), append(mOff, mk.Offset), append(mCommit, mk.Commit)
		}
	}
	rows, err := s.pool.Query(ctx, `
		WITH input AS (
			SELECT * FROM unnest($4::bigint[], $5::int[], $6::bigint[], $7::bigint[], $8::bigint[], $9::int[], $10::bigint[], $22::bytea[])
				AS t(partition_id, leader_epoch, base_offset, end_offset, position, length, max_timestamp, data)
		), advanced AS (
			UPDATE partitions p SET high_watermark = i.end_offset
			FROM input i
			WHERE p.id = i.partition_id AND p.leader_id = $1
			  AND p.leader_epoch = i.leader_epoch AND p.high_watermark = i.base_offset
			RETURNING p.id
		), obj AS (
			INSERT INTO objects (key, size, broker_id) SELECT $2, $3, $1 WHERE $2 <> ''
		), seg AS (
			INSERT INTO segments (partition_id, base_offset, end_offset, object_key, position, length, max_timestamp)
			SELECT i.partition_id, i.base_offset, i.end_offset, $2, i.position, i.length, i.max_timestamp
			FROM input i JOIN advanced a ON a.id = i.partition_id WHERE $2 <> ''
		), inl AS (
			INSERT INTO inline_batches (partition_id, base_offset, end_offset, max_timestamp, data)
			SELECT i.partition_id, i.base_offset, i.end_offset, i.max_timestamp, i.data
			FROM input i JOIN advanced a ON a.id = i.partition_id WHERE $2 = ''
		), prod AS (
			INSERT INTO producer_states (partition_id, producer_id, producer_epoch, batches, txn_first_offset)
			SELECT s.partition_id, s.producer_id, s.producer_epoch, s.batches::jsonb, s.txn_first_offset
			FROM unnest($11::bigint[], $12::bigint[], $13::smallint[], $14::text[], $15::bigint[])
				AS s(partition_id, producer_id, producer_epoch, batches, txn_first_offset)
			JOIN advanced a ON a.id = s.partition_id
			ON CONFLICT (partition_id, producer_id) DO UPDATE
				SET producer_epoch = EXCLUDED.producer_epoch, batches = EXCLUDED.batches,
				    txn_first_offset = EXCLUDED.txn_first_offset, updated_at = now()
		), marker AS (
			SELECT m.* FROM unnest($16::bigint[], $17::bigint[], $18::bigint[], $19::bigint[], $20::bigint[], $21::bool[])
				AS m(partition_id, id, producer_id, first_offset, last_offset, is_commit)
			JOIN advanced a ON a.id = m.partition_id
		), marked AS (
			DELETE FROM txn_markers t USING marker m WHERE t.id = m.id AND t.partition_id = m.partition_id
		), aborted AS (
			INSERT INTO aborted_txns (partition_id, producer_id, first_offset, last_offset)
			SELECT partition_id, producer_id, first_offset, last_offset FROM marker
			WHERE NOT is_commit AND first_offset >= 0
		)
		SELECT id FROM advanced`,
		brokerID, objectKey, objectSize,
		ids, epochs, bases, ends, poss, lens, maxTs,
		pPart, pID, pEpoch, pBatches, pTxnFirst,
		mPart, mID, mPID, mFirst, mOff, mCommit, data)
	if err != nil {
		return nil, fmt.Errorf("store: commit %s: %w", objectKey, err)
	}
	defer rows.Close()
	done := make(map[int64]bool, n)
	for rows.Next() {
		var id int64
		if err := rows.Scan(&id); err != nil {
			return nil, fmt.Errorf("store: commit %s: %w", objectKey, err)
		}
		done[id] = true
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("store: commit %s: %w", objectKey, err)
	}
	return done, nil
}

// Segment is an index row: where offsets [BaseOffset, EndOffset) live.
type Segment struct {
	BaseOffset   int64
	EndOffset    int64
	ObjectKey    string
	Position     int64
	Length       int32
	MaxTimestamp int64
}

// Segments returns up to limit index rows of a partition that hold offsets
// at or after from, in offset order.
func (s *Store) Segments(ctx context.Context, partitionID, from int64, limit int) ([]Segment, error) {
	rows, err := s.pool.Query(ctx, `
		SELECT base_offset, end_offset, object_key, position, length, max_timestamp
		FROM segments WHERE partition_id = $1 AND end_offset > $2
		ORDER BY base_offset LIMIT $3`, partitionID, from, limit)
	if err != nil {
		return nil, fmt.Errorf("store: segments: %w", err)
	}
	defer rows.Close()
	var out []Segment
	for rows.Next() {
		var sg Segment
		if err := rows.Scan(&sg.BaseOffset, &sg.EndOffset, &sg.ObjectKey, &sg.Position, &sg.Length, &sg.MaxTimestamp); err != nil {
			return nil, fmt.Errorf("store: segments: %w", err)
		}
		out = append(out, sg)
	}
	return out, rows.Err()
}

// logRowsSQL is a partition's index rows and inline rows (ObjectKey "",
// Length their size) as one relation s, for a query joining partitions p
// on p.id = $1.
const logRowsSQL = `(
		SELECT base_offset, end_offset, object_key, position, length, max_timestamp
		FROM segments WHERE partition_id = $1
		UNION ALL
		SELECT base_offset, end_offset, '', 0, octet_length(data), max_timestamp
		FROM inline_batches WHERE partition_id = $1
	) s JOIN partitions p ON p.id = $1`

// SegmentAtTimestamp returns the first index row or inline row (ObjectKey
// "") at or after the log start offset holding a record with timestamp >=
// ts; ok is false if none does.
func (s *Store) SegmentAtTimestamp(ctx context.Context, partitionID, ts int64) (Segment, bool, error) {
	var sg Segment
	err := s.pool.QueryRow(ctx, `
		SELECT s.base_offset, s.end_offset, s.object_key, s.position, s.length, s.max_timestamp
		FROM `+logRowsSQL+`
		WHERE s.max_timestamp >= $2 AND s.end_offset > p.log_start_offset
		ORDER BY s.base_offset LIMIT 1`, partitionID, ts).
		Scan(&sg.BaseOffset, &sg.EndOffset, &sg.ObjectKey, &sg.Position, &sg.Length, &sg.MaxTimestamp)
	if err != nil {
		if noRows(err) == ErrNotFound {
			return sg, false, nil
		}
		return sg, false, fmt.Errorf("store: segment at timestamp: %w", err)
	}
	return sg, true, nil
}

// MaxTimestamp returns the largest record timestamp of a partition's
// retained data and the index row or inline row (ObjectKey "") holding it.
func (s *Store) MaxTimestamp(ctx context.Context, partitionID int64) (Segment, bool, error) {
	var sg Segment
	err := s.pool.QueryRow(ctx, `
		SELECT s.base_offset, s.end_offset, s.object_key, s.position, s.length, s.max_timestamp
		FROM `+logRowsSQL+`
		WHERE s.end_offset > p.log_start_offset
		ORDER BY s.max_timestamp DESC, s.base_offset LIMIT 1`, partitionID).
		Scan(&sg.BaseOffset, &sg.EndOffset, &sg.ObjectKey, &sg.Position, &sg.Length, &sg.MaxTimestamp)
	if err != nil {
		if noRows(err) == ErrNotFound {
			return sg, false, nil
		}
		return sg, false, fmt.Errorf("store: max timestamp: %w", err)
	}
	return sg, true, nil
}
