package store

// Inline storage (migration 0024): small flushes committed in Postgres by
// Commit with an empty object key, read back by fetches until the
// leader's uploader moves them into an object with MoveInline.
//
// Every committed offset is in exactly one place: an index row or an
// inline row. MoveInline keeps it so by deleting the inline rows it moves
// in the transaction that inserts their index rows, and by indexing only
// the rows its delete found: an uploader that lost a race (to another
// uploader, a new leader's, or to DeleteRecords or retention, which drop
// inline rows below the log start) indexes nothing of what it lost, and
// its object is left to garbage collection.

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5"
)

// InlineBatch is one inline row: whole record batches for offsets
// [BaseOffset, EndOffset).
type InlineBatch struct {
	PartitionID  int64
	BaseOffset   int64
	EndOffset    int64
	MaxTimestamp int64
	Length       int32  // bytes of Data, also where InlineToMove leaves Data out
	Data         []byte // nil from InlineToMove until FillInline
}

// ReadInline returns the inline rows of a partition that hold offsets at
// or after from, in offset order, while their bytes stay within maxBytes
// (the first row is always returned).
func (s *Store) ReadInline(ctx context.Context, partitionID, from int64, maxBytes int) ([]InlineBatch, error) {
	return s.inlineRows(ctx, `
		SELECT partition_id, base_offset, end_offset, max_timestamp, data FROM (
			SELECT *, sum(octet_length(data)) OVER (ORDER BY base_offset) AS upto,
				row_number() OVER (ORDER BY base_offset) AS n
			FROM inline_batches WHERE partition_id = $1 AND end_offset > $2
		) r WHERE upto - octet_length(data) < $3 OR n = 1
		ORDER BY base_offset`, partitionID, from, maxBytes)
}

// InlineToMove returns the oldest inline rows of the partitions, ordered by
// partition and offset, while their bytes stay within maxBytes (at least
// one row if any exists), and whether rows were left out. The rows come
// without their Data: an uploader takes what its leader still caches and
// reads the rest with FillInline, so the bytes it committed a second ago
// are not read back out of Postgres (octet_length reads a stored value's
// size, not the value).
func (s *Store) InlineToMove(ctx context.Context, partitionIDs []int64, maxBytes int64) ([]InlineBatch, bool, error) {
	rows, err := s.pool.Query(ctx, `
		SELECT partition_id, base_offset, end_offset, max_timestamp, len FROM (
			SELECT partition_id, base_offset, end_offset, max_timestamp, octet_length(data) AS len,
				sum(octet_length(data)) OVER (ORDER BY partition_id, base_offset) AS upto,
				row_number() OVER (ORDER BY partition_id, base_offset) AS n
			FROM inline_batches WHERE partition_id = ANY($1)
		) r WHERE upto - len < $2 OR n = 1
		ORDER BY partition_id, base_offset`, partitionIDs, maxBytes)
	if err != nil {
		return nil, false, fmt.Errorf("store: inline rows: %w", err)
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (b InlineBatch, err error) {
		return b, r.Scan(&b.PartitionID, &b.BaseOffset, &b.EndOffset, &b.MaxTimestamp, &b.Length)
	})
	if err != nil || len(out) == 0 {
		if err != nil {
			err = fmt.Errorf("store: inline rows: %w", err)
		}
		return out, false, err
	}
	// One more row past the last returned means the bound cut the list.
	last := out[len(out)-1]
	var more bool
	err = s.pool.QueryRow(ctx, `
		SELECT EXISTS (SELECT 1 FROM inline_batches WHERE partition_id = ANY($1)
			AND (partition_id, base_offset) > ($2, $3))`, partitionIDs, last.PartitionID, last.BaseOffset).Scan(&more)
	if err != nil {
		return nil, false, fmt.Errorf("store: inline rows: %w", err)
	}
	return out, more, nil
}

// FillInline reads the Data of the rows that have none from Postgres. A
// row deleted meanwhile (moved by another uploader, dropped by retention
// or DeleteRecords) keeps nil Data.
func (s *Store) FillInline(ctx context.Context, batches []InlineBatch) error {
	var ids, bases []int64
	at := map[[2]int64]int{}
	for i, b := range batches {
		if b.Data == nil {
			ids, bases = append(ids, b.PartitionID), append(bases, b.BaseOffset)
			at[[2]int64{b.PartitionID, b.BaseOffset}] = i
		}
	}
	if len(ids) == 0 {
		return nil
	}
	rows, err := s.pool.Query(ctx, `
		SELECT i.partition_id, i.base_offset, i.data FROM inline_batches i
		JOIN unnest($1::bigint[], $2::bigint[]) AS m(partition_id, base_offset)
			ON i.partition_id = m.partition_id AND i.base_offset = m.base_offset`, ids, bases)
	if err != nil {
		return fmt.Errorf("store: inline data: %w", err)
	}
	var (
		id, base int64
		data     []byte
	)
	_, err = pgx.ForEachRow(rows, []any{&id, &base, &data}, func() error {
		if i, ok := at[[2]int64{id, base}]; ok {
			batches[i].Data = data // pgx scans bytea into a new slice
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("store: inline data: %w", err)
	}
	return nil
}

func (s *Store) inlineRows(ctx context.Context, sql string, args ...any) ([]InlineBatch, error) {
	rows, err := s.pool.Query(ctx, sql, args...)
	if err != nil {
		return nil, fmt.Errorf("store: inline rows: %w", err)
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (b InlineBatch, err error) {
		err = r.Scan(&b.PartitionID, &b.BaseOffset, &b.EndOffset, &b.MaxTimestamp, &b.Data)
		b.Length = int32(len(b.Data))
		return b, err
	})
	if err != nil {
		return nil, fmt.Errorf("store: inline rows: %w", err)
	}
	return out, nil
}

// InlineMove places an inline row in the object MoveInline registers: its
// batches are at bytes [Position, Position+Length) of the object.
type InlineMove struct {
	PartitionID  int64
	BaseOffset   int64
	EndOffset    int64
	MaxTimestamp int64
	Position     int64
	Length       int32
}

// MoveInline records an object written with the bytes of inline rows and,
// in one transaction, deletes those of the rows still present and indexes
// them in the object: one index row per run of rows of a partition that
// are contiguous in offsets and in the object. It returns how many rows
// it moved; rows already gone are left out (see the file comment). The
// objects row is inserted whatever it moved, so an object nothing
// references is garbage collection's.
func (s *Store) MoveInline(ctx context.Context, brokerID int32, key string, size int64, moves []InlineMove) (int, error) {
	n := len(moves)
	ids, bases := make([]int64, n), make([]int64, n)
	for i, m := range moves {
		ids[i], bases[i] = m.PartitionID, m.BaseOffset
	}
	tx, err := s.pool.Begin(ctx)
	if err != nil {
		return 0, fmt.Errorf("store: move inline to %s: %w", key, err)
	}
	defer tx.Rollback(ctx)
	if _, err := tx.Exec(ctx, `INSERT INTO objects (key, size, broker_id) VALUES ($1, $2, $3)`, key, size, brokerID); err != nil {
		return 0, fmt.Errorf("store: move inline to %s: %w", key, err)
	}
	// Rows are locked in key order, as every other delete of them does,
	// so racing uploaders wait for each other instead of deadlocking; a
	// row the winner deleted is skipped.
	rows, err := tx.Query(ctx, `
		DELETE FROM inline_batches i USING (
			SELECT i.partition_id, i.base_offset FROM inline_batches i
			JOIN unnest($1::bigint[], $2::bigint[]) AS m(partition_id, base_offset)
				ON i.partition_id = m.partition_id AND i.base_offset = m.base_offset
			ORDER BY i.partition_id, i.base_offset FOR UPDATE OF i
		) l
		WHERE i.partition_id = l.partition_id AND i.base_offset = l.base_offset
		RETURNING i.partition_id, i.base_offset`, ids, bases)
	if err != nil {
		return 0, fmt.Errorf("store: move inline to %s: %w", key, err)
	}
	type pk struct{ id, base int64 }
	gone := map[pk]bool{}
	var id, base int64
	if _, err := pgx.ForEachRow(rows, []any{&id, &base}, func() error {
		gone[pk{id, base}] = true
		return nil
	}); err != nil {
		return 0, fmt.Errorf("store: move inline to %s: %w", key, err)
	}
	var segs []InlineMove // runs
	for _, m := range moves {
		if !gone[pk{m.PartitionID, m.BaseOffset}] {
			continue
		}
		if k := len(segs) - 1; k >= 0 && segs[k].PartitionID == m.PartitionID && segs[k].EndOffset == m.BaseOffset &&
			segs[k].Position+int64(segs[k].Length) == m.Position {
			segs[k].EndOffset, segs[k].Length = m.EndOffset, segs[k].Length+m.Length
			segs[k].MaxTimestamp = max(segs[k].MaxTimestamp, m.MaxTimestamp)
			continue
		}
		segs = append(segs, m)
	}
	if len(segs) > 0 {
		k := len(segs)
		sp, sb, se, spos, sts, sl := make([]int64, k), make([]int64, k), make([]int64, k), make([]int64, k), make([]int64, k), make([]int32, k)
		for i, r := range segs {
			sp[i], sb[i], se[i], spos[i], sts[i], sl[i] = r.PartitionID, r.BaseOffset, r.EndOffset, r.Position, r.MaxTimestamp, r.Length
		}
		if _, err := tx.Exec(ctx, `
			INSERT INTO segments (partition_id, base_offset, end_offset, object_key, position, length, max_timestamp)
			SELECT p, b, e, $1, pos, l, ts FROM unnest($2::bigint[], $3::bigint[], $4::bigint[], $5::bigint[], $6::int[], $7::bigint[])
				AS r(p, b, e, pos, l, ts)`, key, sp, sb, se, spos, sl, sts); err != nil {
			return 0, fmt.Errorf("store: move inline to %s: %w", key, err)
		}
	}
	if err := tx.Commit(ctx); err != nil {
		return 0, fmt.Errorf("store: move inline to %s: %w", key, err)
	}
	return len(gone), nil
}

// dropInlineBelow deletes a partition's inline rows wholly below a new log
// start (retention, DeleteRecords). It runs before those transactions
// delete index rows: if an uploader holds the rows, it waits for it, and
// the index rows that uploader made are then visible to the delete after.
func dropInlineBelow(ctx context.Context, tx pgx.Tx, partitionID, start int64) error {
	_, err := tx.Exec(ctx, `DELETE FROM inline_batches WHERE partition_id = $1 AND end_offset <= $2`, partitionID, start)
	return err
}
