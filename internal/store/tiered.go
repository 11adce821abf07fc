package store

// Tiered storage's view of Postgres: the background-job table, retention,
// the compaction swap, garbage collection of objects and what the
// consistency checker compares with the bucket.
//
// Objects move through three states:
//
//	live        an index row (segments) references the key
//	marked      no row references it; objects.unreferenced_at is set
//	deleted     the objects row is gone (then the blob is deleted)
//
// Only MarkUnreferenced marks and only SweepUnreferenced deletes, and the
// sweep re-checks in its own statement that no row references the key and
// that the mark is older than the reader grace period. New references are
// only ever created to new objects: the flush inserts the objects row and
// its index rows in one statement, and a compaction pre-registers its object
// (RegisterObject) and clears any mark on it while holding the row lock in
// the transaction that swaps the index rows.

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
)

// Job is a claimed background job.
type Job struct {
	Kind     string
	Key      string
	Attempts int // including this one
}

// EnsureJob creates the recurring job (kind, key) due now, or updates the
// period of an existing one without touching its schedule.
func (s *Store) EnsureJob(ctx context.Context, kind, key string, every time.Duration) error {
	_, err := s.pool.Exec(ctx, `
		INSERT INTO jobs (kind, key, every) VALUES ($1, $2, $3)
		ON CONFLICT (kind, key) DO UPDATE SET every = EXCLUDED.every`, kind, key, every)
	if err != nil {
		return fmt.Errorf("store: ensure job %s/%s: %w", kind, key, err)
	}
	return nil
}

// DeleteJob removes a job (whoever holds it: its finish will report the
// lease lost).
func (s *Store) DeleteJob(ctx context.Context, kind, key string) error {
	if _, err := s.pool.Exec(ctx, `DELETE FROM jobs WHERE kind = $1 AND key = $2`, kind, key); err != nil {
		return fmt.Errorf("store: delete job %s/%s: %w", kind, key, err)
	}
	return nil
}

// ClaimJob leases the most overdue job of one of kinds that nobody holds
// (or whose holder's lease expired) to owner for lease. ok is false when
// no job is due. Concurrent claimers never get the same job: the row is
// selected FOR UPDATE SKIP LOCKED.
func (s *Store) ClaimJob(ctx context.Context, owner string, kinds []string, lease time.Duration) (j Job, ok bool, err error) {
	err = s.pool.QueryRow(ctx, `
		WITH c AS (
			SELECT kind, key FROM jobs
			WHERE kind = ANY($2) AND run_at <= now() AND (lease_until IS NULL OR lease_until < now())
			ORDER BY run_at LIMIT 1
			FOR UPDATE SKIP LOCKED
		)
		UPDATE jobs j SET lease_owner = $1, lease_until = now() + $3::interval, attempts = j.attempts + 1
		FROM c WHERE j.kind = c.kind AND j.key = c.key
		RETURNING j.kind, j.key, j.attempts`, owner, kinds, lease).Scan(&j.Kind, &j.Key, &j.Attempts)
	if errors.Is(err, pgx.ErrNoRows) {
		return j, false, nil
	}
	if err != nil {
		return j, false, fmt.Errorf("store: claim job: %w", err)
	}
	return j, true, nil
}

// ExtendLease renews owner's lease on a job; false means the lease was
// lost (expired and claimed by another worker, or the job was deleted).
func (s *Store) ExtendLease(ctx context.Context, j Job, owner string, lease time.Duration) (bool, error) {
	tag, err := s.pool.Exec(ctx, `
		UPDATE jobs SET lease_until = now() + $4::interval
		WHERE kind = $1 AND key = $2 AND lease_owner = $3`, j.Kind, j.Key, owner, lease)
	if err != nil {
		return false, fmt.Errorf("store: extend lease %s/%s: %w", j.Kind, j.Key, err)
	}
	return tag.RowsAffected() == 1, nil
}

// JobRetry says when a failed job runs again.
type JobRetry struct {
	// After is the delay before the next attempt, at most the job's period.
	After time.Duration
	// QuarantineAfter is the number of consecutive failed attempts
	// (attempts counts from the last success, a lost lease included) from
	// which a failure quarantines the job: its next attempt waits
	// QuarantineFor, whatever its period. 0 never quarantines.
	QuarantineAfter int
	QuarantineFor   time.Duration
}

// FinishJob releases owner's lease and schedules the next run: after the
// job's period on success (attempts back to 0), as retry says on failure
// (jobErr != nil). mine is false when the lease had been lost;
// quarantined is true when this failure quarantined the job.
func (s *Store) FinishJob(ctx context.Context, j Job, owner string, jobErr error, retry JobRetry) (mine, quarantined bool, err error) {
	if jobErr == nil {
		tag, err := s.pool.Exec(ctx, `
			UPDATE jobs SET lease_owner = NULL, lease_until = NULL, run_at = now() + every,
				attempts = 0, last_error = NULL, last_done = now()
			WHERE kind = $1 AND key = $2 AND lease_owner = $3`, j.Kind, j.Key, owner)
		if err != nil {
			return false, false, fmt.Errorf("store: finish job %s/%s: %w", j.Kind, j.Key, err)
		}
		return tag.RowsAffected() == 1, false, nil
	}
	// The quarantine is only a far run_at: a quarantined job is claimed
	// like any other once it is due, and its next failure quarantines it
	// again, its next success ends the count.
	err = s.pool.QueryRow(ctx, `
		UPDATE jobs SET lease_owner = NULL, lease_until = NULL, last_error = $5,
			run_at = now() + CASE WHEN $6::int > 0 AND attempts >= $6::int THEN $7::interval
				ELSE least(every, $4::interval) END
		WHERE kind = $1 AND key = $2 AND lease_owner = $3
		RETURNING $6::int > 0 AND attempts >= $6::int`,
		j.Kind, j.Key, owner, retry.After, jobErr.Error(), retry.QuarantineAfter, retry.QuarantineFor).Scan(&quarantined)
	if errors.Is(err, pgx.ErrNoRows) {
		return false, false, nil
	}
	if err != nil {
		return false, false, fmt.Errorf("store: finish job %s/%s: %w", j.Kind, j.Key, err)
	}
	return true, quarantined, nil
}

// ErrJobAbandoned is the last error of a job that QuarantineAbandonedJobs
// quarantined.
var ErrJobAbandoned = errors.New("store: job's lease expired: its worker died or stalled")

// QuarantineAbandonedJobs quarantines the jobs of kinds whose holder's
// lease expired (the worker died or stalled, perhaps crashed by the job)
// and which reached retry.QuarantineAfter attempts, instead of letting
// the next worker claim them, and returns them. A job that crashes every
// process that runs it thus stops after QuarantineAfter crashes.
func (s *Store) QuarantineAbandonedJobs(ctx context.Context, kinds []string, retry JobRetry) ([]Job, error) {
	if retry.QuarantineAfter <= 0 {
		return nil, nil
	}
	rows, err := s.pool.Query(ctx, `
		UPDATE jobs SET lease_owner = NULL, lease_until = NULL, run_at = now() + $3::interval,
			last_error = $4
		WHERE kind = ANY($1) AND lease_until < now() AND attempts >= $2
		RETURNING kind, key, attempts`, kinds, retry.QuarantineAfter, retry.QuarantineFor, ErrJobAbandoned.Error())
	if err != nil {
		return nil, fmt.Errorf("store: quarantine abandoned jobs: %w", err)
	}
	js, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (j Job, err error) {
		return j, r.Scan(&j.Kind, &j.Key, &j.Attempts)
	})
	if err != nil {
		return nil, fmt.Errorf("store: quarantine abandoned jobs: %w", err)
	}
	return js, nil
}

// ReleaseJob hands owner's job back, due at once, without counting the
// attempt: a worker that stops (a rolling restart) did not find the job
// failing. false means the lease had been lost.
func (s *Store) ReleaseJob(ctx context.Context, j Job, owner string) (bool, error) {
	tag, err := s.pool.Exec(ctx, `
		UPDATE jobs SET lease_owner = NULL, lease_until = NULL, run_at = now(),
			attempts = greatest(attempts - 1, 0)
		WHERE kind = $1 AND key = $2 AND lease_owner = $3`, j.Kind, j.Key, owner)
	if err != nil {
		return false, fmt.Errorf("store: release job %s/%s: %w", j.Kind, j.Key, err)
	}
	return tag.RowsAffected() == 1, nil
}

// QuarantinedJobs counts the jobs that a failure quarantined with
// QuarantineAfter after (at least 1) and whose quarantine has not ended.
func (s *Store) QuarantinedJobs(ctx context.Context, after int) (int, error) {
	var n int
	err := s.pool.QueryRow(ctx, `SELECT count(*) FROM jobs WHERE attempts >= $1 AND run_at > now()`, after).Scan(&n)
	if err != nil {
		return 0, fmt.Errorf("store: count quarantined jobs: %w", err)
	}
	return n, nil
}

// RetentionTarget is a partition holding index rows, with its topic's
// explicit configs.
type RetentionTarget struct {
	PartitionID int64
	Configs     map[string]string
}

// Shard selects the partitions whose id % Of == Index; the zero value
// (Of 0) selects all. Background jobs are split into shards so that
// several workers share one kind of work.
type Shard struct{ Index, Of int }

func (sh Shard) args() (int, int) {
	if sh.Of <= 0 {
		return 0, 1
	}
	return sh.Index, sh.Of
}

// PartitionsWithData returns up to limit partitions of the shard with id >
// after that have index rows, in id order, with their topics' configs.
func (s *Store) PartitionsWithData(ctx context.Context, sh Shard, after int64, limit int) ([]RetentionTarget, error) {
	i, n := sh.args()
	// The ids come from the index, one primary-key probe per partition
	// with rows (a loose index scan), so a pass costs the partitions that
	// hold data, not every partition of the pool: an idle partition is
	// never read.
	rows, err := s.pool.Query(ctx, `
		WITH RECURSIVE ids(id) AS (
			SELECT min(partition_id) FROM segments WHERE partition_id > $1
			UNION ALL
			SELECT (SELECT min(partition_id) FROM segments WHERE partition_id > ids.id) FROM ids WHERE ids.id IS NOT NULL
		),
		-- The shard's first limit ids, taken as the recursion yields them
		-- (in id order): the recursion stops there instead of walking
		-- every partition with data for each page.
		mine AS (SELECT id FROM ids WHERE id IS NOT NULL AND id % $3 = $4 LIMIT $2)
		SELECT p.id, t.configs FROM mine JOIN partitions p ON p.id = mine.id JOIN topics t ON t.id = p.topic_id
		ORDER BY p.id`, after, limit, n, i)
	if err != nil {
		return nil, fmt.Errorf("store: partitions with data: %w", err)
	}
	defer rows.Close()
	var out []RetentionTarget
	for rows.Next() {
		var (
			t   RetentionTarget
			raw []byte
		)
		if err := rows.Scan(&t.PartitionID, &raw); err != nil {
			return nil, fmt.Errorf("store: partitions with data: %w", err)
		}
		if err := json.Unmarshal(raw, &t.Configs); err != nil {
			return nil, fmt.Errorf("store: partition %d configs: %w", t.PartitionID, err)
		}
		out = append(out, t)
	}
	return out, rows.Err()
}

// ApplyRetention drops the oldest whole index rows of a partition that
// break a retention limit and moves the log start offset to the end of the
// last one dropped, in one transaction. A row is dropped by time if every
// record in it is older than cutoffMs (Unix ms; <0: no time limit), and by
// size while the rows after it still hold at least maxBytes (<0: no size
// limit). Rows are dropped oldest first and never past a row that must be
// kept, so the log stays contiguous. It returns the log start offset and
// how many rows were dropped.
func (s *Store) ApplyRetention(ctx context.Context, partitionID, cutoffMs, maxBytes int64) (int64, int, error) {
	tx, err := s.pool.Begin(ctx)
	if err != nil {
		return 0, 0, fmt.Errorf("store: retention: %w", err)
	}
	defer tx.Rollback(ctx)
	var hw, start int64
	if err := tx.QueryRow(ctx, `SELECT high_watermark, log_start_offset FROM partitions WHERE id = $1 FOR UPDATE`,
		partitionID).Scan(&hw, &start); err != nil {
		return 0, 0, fmt.Errorf("store: retention %d: %w", partitionID, noRows(err))
	}
	// Inline rows (not yet in an object) hold the newest data, unless a
	// large flush went straight to an object after them: retention never
	// drops an index row above them, so the log stays contiguous.
	var inlineBase int64
	if err := tx.QueryRow(ctx, `SELECT coalesce(min(base_offset), -1) FROM inline_batches WHERE partition_id = $1`,
		partitionID).Scan(&inlineBase); err != nil {
		return 0, 0, fmt.Errorf("store: retention %d: %w", partitionID, err)
	}
	rows, err := tx.Query(ctx, `
		SELECT end_offset, length, max_timestamp FROM segments
		WHERE partition_id = $1 ORDER BY base_offset`, partitionID)
	if err != nil {
		return 0, 0, fmt.Errorf("store: retention %d: %w", partitionID, err)
	}
	type row struct{ end, length, maxTs int64 }
	var (
		all   []row
		total int64
	)
	for rows.Next() {
		var r row
		if err := rows.Scan(&r.end, &r.length, &r.maxTs); err != nil {
			rows.Close()
			return 0, 0, fmt.Errorf("store: retention %d: %w", partitionID, err)
		}
		all = append(all, r)
		total += r.length
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return 0, 0, fmt.Errorf("store: retention %d: %w", partitionID, err)
	}
	newStart, dropped := start, 0
	for _, r := range all {
		byTime := cutoffMs >= 0 && r.maxTs < cutoffMs
		bySize := maxBytes >= 0 && total-r.length >= maxBytes
		if !byTime && !bySize || r.end > hw || inlineBase >= 0 && r.end > inlineBase {
			break
		}
		total -= r.length
		newStart = max(newStart, r.end)
		dropped++
	}
	if dropped == 0 {
		return start, 0, nil
	}
	if _, err := tx.Exec(ctx, `UPDATE partitions SET log_start_offset = $2 WHERE id = $1`, partitionID, newStart); err != nil {
		return 0, 0, fmt.Errorf("store: retention %d: %w", partitionID, err)
	}
	if err := dropInlineBelow(ctx, tx, partitionID, newStart); err != nil {
		return 0, 0, fmt.Errorf("store: retention %d: %w", partitionID, err)
	}
	rows, err = tx.Query(ctx, `DELETE FROM segments WHERE partition_id = $1 AND end_offset <= $2 RETURNING object_key`, partitionID, newStart)
	if err != nil {
		return 0, 0, fmt.Errorf("store: retention %d: %w", partitionID, err)
	}
	left, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return 0, 0, fmt.Errorf("store: retention %d: %w", partitionID, err)
	}
	// The objects it dropped rows from may now be mostly other
	// partitions' older data (compacted, or past their retention).
	if _, err := tx.Exec(ctx, flagSparseSQL, left); err != nil {
		return 0, 0, fmt.Errorf("store: retention %d: %w", partitionID, err)
	}
	if err := dropAbortedBelow(ctx, tx, partitionID, newStart); err != nil {
		return 0, 0, fmt.Errorf("store: retention %d: %w", partitionID, err)
	}
	if err := tx.Commit(ctx); err != nil {
		return 0, 0, fmt.Errorf("store: retention %d: %w", partitionID, err)
	}
	return newStart, dropped, nil
}

// RemoteSegment is an index row with the size of its object (-1 if the
// objects row is unknown), which lets readers fetch aligned blocks of the
// object rather than the row's exact range.
type RemoteSegment struct {
	Segment
	ObjectSize int64
}

// readIndexSQL reads a partition's rows from the one holding offset $2, in
// order, at most $3 of them. The rows of a partition do not overlap, so
// that row is the last one starting at or before $2: both lookups are
// ranges of the primary key (partition_id, base_offset), and what a read
// costs does not grow with the rows before it. (Filtering on end_offset
// alone walked every row of the partition from its start: a consumer at
// the tail of a long log read the whole index, and the flush commits of
// every other partition shared the CPU it took.)
const readIndexSQL = `
	SELECT p.log_start_offset, s.base_offset, s.end_offset, s.object_key, s.position, s.length,
		s.max_timestamp, coalesce(o.size, -1)
	FROM partitions p
	LEFT JOIN LATERAL (
		SELECT * FROM segments
		WHERE partition_id = p.id AND end_offset > $2 AND base_offset >= coalesce((
			SELECT base_offset FROM segments
			WHERE partition_id = p.id AND base_offset <= $2
			ORDER BY base_offset DESC LIMIT 1), -1)
		ORDER BY base_offset LIMIT $3
	) s ON true
	LEFT JOIN objects o ON o.key = s.object_key
	WHERE p.id = $1
	ORDER BY s.base_offset`

// ReadIndex returns the partition's log start offset and up to limit index
// rows holding offsets at or after from, in offset order.
func (s *Store) ReadIndex(ctx context.Context, partitionID, from int64, limit int) (int64, []RemoteSegment, error) {
	rows, err := s.pool.Query(ctx, readIndexSQL, partitionID, from, limit)
	if err != nil {
		return 0, nil, fmt.Errorf("store: read index: %w", err)
	}
	defer rows.Close()
	var (
		start int64
		out   []RemoteSegment
		found bool
	)
	for rows.Next() {
		var (
			base, end, pos, maxTs, size *int64
			key                         *string
			length                      *int32
		)
		if err := rows.Scan(&start, &base, &end, &key, &pos, &length, &maxTs, &size); err != nil {
			return 0, nil, fmt.Errorf("store: read index: %w", err)
		}
		found = true
		if base == nil {
			continue // a partition without rows at or after from
		}
		out = append(out, RemoteSegment{Segment: Segment{
			BaseOffset: *base, EndOffset: *end, ObjectKey: *key, Position: *pos, Length: *length, MaxTimestamp: *maxTs,
		}, ObjectSize: *size})
	}
	if err := rows.Err(); err != nil {
		return 0, nil, fmt.Errorf("store: read index: %w", err)
	}
	if !found {
		return 0, nil, fmt.Errorf("store: read index %d: %w", partitionID, ErrNotFound)
	}
	return start, out, nil
}

// CompactionCandidates returns up to limit partitions of the shard with at
// least minPieces index rows shorter than smallBytes in objects whose keys
// do not start with segPrefix (small per-flush pieces), most pieces first.
// Pieces of smallBytes or more are not counted: compaction leaves them
// where they are. Partitions of cleanup.policy=compact topics are left
// out: key compaction rewrites them (KeyCompactionCandidates), and here
// they would only use up limit.
func (s *Store) CompactionCandidates(ctx context.Context, sh Shard, segPrefix string, smallBytes int64, minPieces, limit int) ([]int64, error) {
	i, n := sh.args()
	rows, err := s.pool.Query(ctx, `
		SELECT s.partition_id FROM segments s
		JOIN partitions p ON p.id = s.partition_id JOIN topics t ON t.id = p.topic_id
		WHERE NOT starts_with(s.object_key, $1) AND s.length < $6 AND s.partition_id % $4 = $5 AND NOT `+keyCompactedSQL+`
		GROUP BY s.partition_id HAVING count(*) >= $2
		ORDER BY count(*) DESC, s.partition_id LIMIT $3`, segPrefix, minPieces, limit, n, i, smallBytes)
	if err != nil {
		return nil, fmt.Errorf("store: compaction candidates: %w", err)
	}
	defer rows.Close()
	var out []int64
	for rows.Next() {
		var id int64
		if err := rows.Scan(&id); err != nil {
			return nil, fmt.Errorf("store: compaction candidates: %w", err)
		}
		out = append(out, id)
	}
	return out, rows.Err()
}

// flagSparseSQL flags the objects among $1 that index rows now reference
// for less than three quarters of their size (0026_sparse_objects.sql).
// Objects no row references are left to garbage collection.
const flagSparseSQL = `
	UPDATE objects o SET sparse = true
	FROM (SELECT object_key, sum(length) AS live FROM segments WHERE object_key = ANY($1) GROUP BY object_key) l
	WHERE o.key = l.object_key AND NOT o.sparse AND l.live * 4 < o.size * 3`

// FlagSparse flags the objects among keys, which index rows left, that
// the rows still referencing them use less than three quarters of:
// compaction then rewrites those rows whatever their size
// (SparseCandidates, SparseObjects), so that the bucket does not keep the
// rest of the object for them. Compaction calls it after its swaps have
// committed, so that the swaps of a pass on other partitions of the same
// objects are seen.
func (s *Store) FlagSparse(ctx context.Context, keys []string) error {
	if len(keys) == 0 {
		return nil
	}
	if _, err := s.pool.Exec(ctx, flagSparseSQL, keys); err != nil {
		return fmt.Errorf("store: flag sparse objects: %w", err)
	}
	return nil
}

// SparseCandidates returns up to limit partitions of the shard with index
// rows in sparse objects (FlagSparse), leaving out those of
// cleanup.policy=compact topics (key compaction rewrites them).
func (s *Store) SparseCandidates(ctx context.Context, sh Shard, limit int) ([]int64, error) {
	i, n := sh.args()
	rows, err := s.pool.Query(ctx, `
		SELECT DISTINCT s.partition_id FROM objects o
		JOIN segments s ON s.object_key = o.key
		JOIN partitions p ON p.id = s.partition_id JOIN topics t ON t.id = p.topic_id
		WHERE o.sparse AND s.partition_id % $2 = $3 AND NOT `+keyCompactedSQL+`
		ORDER BY s.partition_id LIMIT $1`, limit, n, i)
	if err != nil {
		return nil, fmt.Errorf("store: sparse candidates: %w", err)
	}
	ids, err := pgx.CollectRows(rows, pgx.RowTo[int64])
	if err != nil {
		return nil, fmt.Errorf("store: sparse candidates: %w", err)
	}
	return ids, nil
}

// SparseObjects returns the sparse objects (FlagSparse) that the
// partition's index rows reference.
func (s *Store) SparseObjects(ctx context.Context, partitionID int64) (map[string]bool, error) {
	rows, err := s.pool.Query(ctx, `
		SELECT DISTINCT o.key FROM objects o JOIN segments s ON s.object_key = o.key
		WHERE o.sparse AND s.partition_id = $1`, partitionID)
	if err != nil {
		return nil, fmt.Errorf("store: sparse objects: %w", err)
	}
	keys, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return nil, fmt.Errorf("store: sparse objects: %w", err)
	}
	out := make(map[string]bool, len(keys))
	for _, k := range keys {
		out[k] = true
	}
	return out, nil
}

// RegisterObject records an object a compaction is about to write, before
// its PUT, so that a compaction that dies anywhere leaves an objects row
// garbage collection finds (the flush path needs none of this: it inserts
// the row with its index rows).
func (s *Store) RegisterObject(ctx context.Context, key string, size int64, brokerID int32) error {
	if _, err := s.pool.Exec(ctx, `
		INSERT INTO objects (key, size, broker_id) VALUES ($1, $2, $3)
		ON CONFLICT (key) DO UPDATE SET size = EXCLUDED.size`, key, size, brokerID); err != nil {
		return fmt.Errorf("store: register object %s: %w", key, err)
	}
	return nil
}

// SwapSegments atomically replaces the index rows old of a partition with
// rows new, in the registered object key (a new row with another
// ObjectKey keeps it: key compaction's remainder of an old row it split,
// whose object the old row referenced). It succeeds only if every
// old row is still there unchanged (same base offset and object), the new
// rows cover exactly the old rows' offsets, and key's objects row still
// exists (garbage collection cannot have taken it): otherwise it changes
// nothing and returns false.
func (s *Store) SwapSegments(ctx context.Context, partitionID int64, old, new []Segment, key string) (bool, error) {
	return s.swapSegments(ctx, partitionID, old, new, key, nil)
}

func (s *Store) swapSegments(ctx context.Context, partitionID int64, old, new []Segment, key string, abortMarkers []int64) (bool, error) {
	if len(old) == 0 || len(new) == 0 ||
		old[0].BaseOffset != new[0].BaseOffset || old[len(old)-1].EndOffset != new[len(new)-1].EndOffset {
		return false, fmt.Errorf("%w: new rows do not cover the old rows' offsets", ErrInvalid)
	}
	for i := 1; i < len(new); i++ {
		if new[i].BaseOffset != new[i-1].EndOffset {
			return false, fmt.Errorf("%w: new rows are not contiguous at %d", ErrInvalid, new[i].BaseOffset)
		}
	}
	tx, err := s.pool.Begin(ctx)
	if err != nil {
		return false, fmt.Errorf("store: swap segments: %w", err)
	}
	defer tx.Rollback(ctx)
	// Lock the objects row and clear any garbage-collection mark: a sweep
	// waiting on this lock re-checks the mark and leaves the row alone.
	tag, err := tx.Exec(ctx, `UPDATE objects SET unreferenced_at = NULL WHERE key = $1`, key)
	if err != nil {
		return false, fmt.Errorf("store: swap segments: %w", err)
	}
	if tag.RowsAffected() != 1 {
		return false, nil
	}
	bases, keys := make([]int64, len(old)), make([]string, len(old))
	for i, o := range old {
		bases[i], keys[i] = o.BaseOffset, o.ObjectKey
	}
	tag, err = tx.Exec(ctx, `
		DELETE FROM segments s USING unnest($2::bigint[], $3::text[]) AS o(base_offset, object_key)
		WHERE s.partition_id = $1 AND s.base_offset = o.base_offset AND s.object_key = o.object_key`,
		partitionID, bases, keys)
	if err != nil {
		return false, fmt.Errorf("store: swap segments: %w", err)
	}
	if tag.RowsAffected() != int64(len(old)) {
		return false, nil // retention or another compaction got there first
	}
	n := len(new)
	nb, ne, np, nts := make([]int64, n), make([]int64, n), make([]int64, n), make([]int64, n)
	nl, nk := make([]int32, n), make([]string, n)
	for i, r := range new {
		nb[i], ne[i], np[i], nl[i], nts[i], nk[i] = r.BaseOffset, r.EndOffset, r.Position, r.Length, r.MaxTimestamp, r.ObjectKey
		if nk[i] == "" {
			nk[i] = key
		}
	}
	if _, err := tx.Exec(ctx, `
		INSERT INTO segments (partition_id, base_offset, end_offset, object_key, position, length, max_timestamp)
		SELECT $1, b, e, k, p, l, ts FROM unnest($2::bigint[], $3::bigint[], $4::bigint[], $5::int[], $6::bigint[], $7::text[]) AS r(b, e, p, l, ts, k)`,
		partitionID, nb, ne, np, nl, nts, nk); err != nil {
		return false, fmt.Errorf("store: swap segments: %w", err)
	}
	if len(abortMarkers) > 0 {
		if _, err := tx.Exec(ctx, `DELETE FROM aborted_txns WHERE partition_id = $1 AND last_offset = ANY($2)`,
			partitionID, abortMarkers); err != nil {
			return false, fmt.Errorf("store: swap segments: aborted transactions: %w", err)
		}
	}
	if err := tx.Commit(ctx); err != nil {
		return false, fmt.Errorf("store: swap segments: %w", err)
	}
	return true, nil
}

// MarkUnreferenced marks the objects older than minAge that no index row
// references, and unmarks marked objects that are referenced (which only a
// bug could cause). It returns how many it marked.
func (s *Store) MarkUnreferenced(ctx context.Context, minAge time.Duration) (int64, error) {
	if _, err := s.pool.Exec(ctx, `
		UPDATE objects o SET unreferenced_at = NULL
		WHERE unreferenced_at IS NOT NULL AND EXISTS (SELECT 1 FROM segments s WHERE s.object_key = o.key)`); err != nil {
		return 0, fmt.Errorf("store: unmark objects: %w", err)
	}
	tag, err := s.pool.Exec(ctx, `
		UPDATE objects o SET unreferenced_at = now()
		WHERE unreferenced_at IS NULL AND created_at < now() - $1::interval
		  AND NOT EXISTS (SELECT 1 FROM segments s WHERE s.object_key = o.key)`, minAge)
	if err != nil {
		return 0, fmt.Errorf("store: mark objects: %w", err)
	}
	return tag.RowsAffected(), nil
}

// ObjectRow is a row of the objects table.
type ObjectRow struct {
	Key  string
	Size int64
}

// SweepUnreferenced deletes up to limit objects rows marked more than
// grace ago that still no index row references, and returns them: the
// caller deletes their blobs next. A crash in between leaves blobs without
// rows, which a bucket sweep of orphans removes.
func (s *Store) SweepUnreferenced(ctx context.Context, grace time.Duration, limit int) ([]ObjectRow, error) {
	rows, err := s.pool.Query(ctx, `
		DELETE FROM objects o
		WHERE o.key IN (
			SELECT key FROM objects WHERE unreferenced_at < now() - $1::interval
			ORDER BY unreferenced_at LIMIT $2)
		  AND o.unreferenced_at < now() - $1::interval
		  AND NOT EXISTS (SELECT 1 FROM segments s WHERE s.object_key = o.key)
		RETURNING o.key, o.size`, grace, limit)
	if err != nil {
		return nil, fmt.Errorf("store: sweep objects: %w", err)
	}
	defer rows.Close()
	var out []ObjectRow
	for rows.Next() {
		var o ObjectRow
		if err := rows.Scan(&o.Key, &o.Size); err != nil {
			return nil, fmt.Errorf("store: sweep objects: %w", err)
		}
		out = append(out, o)
	}
	return out, rows.Err()
}

// KnownObjects returns which of keys have an objects row.
func (s *Store) KnownObjects(ctx context.Context, keys []string) (map[string]bool, error) {
	rows, err := s.pool.Query(ctx, `SELECT key FROM objects WHERE key = ANY($1)`, keys)
	if err != nil {
		return nil, fmt.Errorf("store: known objects: %w", err)
	}
	defer rows.Close()
	out := make(map[string]bool, len(keys))
	for rows.Next() {
		var k string
		if err := rows.Scan(&k); err != nil {
			return nil, fmt.Errorf("store: known objects: %w", err)
		}
		out[k] = true
	}
	return out, rows.Err()
}

// ObjectRef is what the index says about one object: its objects row (if
// any) and how far into it index rows reach.
type ObjectRef struct {
	Key        string
	Size       int64 // from the objects row; -1 if there is none
	Rows       int64 // index rows referencing it
	MaxEnd     int64 // largest position+length over those rows
	Registered bool  // an objects row exists
	Marked     bool  // garbage collection marked it unreferenced
}

// ObjectRefs returns every object the index or the objects table knows,
// in key order (for the consistency checker).
func (s *Store) ObjectRefs(ctx context.Context) ([]ObjectRef, error) {
	rows, err := s.pool.Query(ctx, `
		WITH r AS (
			SELECT object_key AS key, count(*) AS n, max(position + length) AS max_end
			FROM segments GROUP BY object_key
		)
		SELECT coalesce(o.key, r.key), coalesce(o.size, -1), coalesce(r.n, 0), coalesce(r.max_end, 0),
			o.key IS NOT NULL, o.unreferenced_at IS NOT NULL
		FROM objects o FULL OUTER JOIN r ON r.key = o.key
		ORDER BY 1`)
	if err != nil {
		return nil, fmt.Errorf("store: object refs: %w", err)
	}
	defer rows.Close()
	var out []ObjectRef
	for rows.Next() {
		var o ObjectRef
		if err := rows.Scan(&o.Key, &o.Size, &o.Rows, &o.MaxEnd, &o.Registered, &o.Marked); err != nil {
			return nil, fmt.Errorf("store: object refs: %w", err)
		}
		out = append(out, o)
	}
	return out, rows.Err()
}

// PartitionConfigs returns the explicit configs of a partition's topic.
func (s *Store) PartitionConfigs(ctx context.Context, partitionID int64) (map[string]string, error) {
	var raw []byte
	err := s.pool.QueryRow(ctx, `
		SELECT t.configs FROM partitions p JOIN topics t ON t.id = p.topic_id WHERE p.id = $1`, partitionID).Scan(&raw)
	if err != nil {
		return nil, fmt.Errorf("store: partition %d configs: %w", partitionID, noRows(err))
	}
	var out map[string]string
	if err := json.Unmarshal(raw, &out); err != nil {
		return nil, fmt.Errorf("store: partition %d configs: %w", partitionID, err)
	}
	return out, nil
}

// CompactionSkips returns the base offsets of the batches of a partition
// that key compaction skipped (SkipInCompaction), with the reason.
func (s *Store) CompactionSkips(ctx context.Context, partitionID int64) (map[int64]string, error) {
	rows, err := s.pool.Query(ctx, `SELECT base_offset, reason FROM compaction_skips WHERE partition_id = $1`, partitionID)
	if err != nil {
		return nil, err
	}
	out := map[int64]string{}
	var (
		base   int64
		reason string
	)
	_, err = pgx.ForEachRow(rows, []any{&base, &reason}, func() error {
		out[base] = reason
		return nil
	})
	return out, err
}

// SkipInCompaction records that key compaction keeps the batch at
// [base, last] of a partition as it is, without reading it again.
func (s *Store) SkipInCompaction(ctx context.Context, partitionID, base, last int64, reason string) error {
	_, err := s.pool.Exec(ctx, `INSERT INTO compaction_skips (partition_id, base_offset, last_offset, reason)
		VALUES ($1, $2, $3, $4) ON CONFLICT (partition_id, base_offset) DO NOTHING`, partitionID, base, last, reason)
	return err
}

// PartitionName returns the topic and number of a partition, for logs.
func (s *Store) PartitionName(ctx context.Context, partitionID int64) (topic string, partition int32, err error) {
	err = s.pool.QueryRow(ctx, `
		SELECT t.name, p.partition FROM partitions p JOIN topics t ON t.id = p.topic_id WHERE p.id = $1`, partitionID).Scan(&topic, &partition)
	if err != nil {
		return "", 0, fmt.Errorf("store: partition %d: %w", partitionID, noRows(err))
	}
	return topic, partition, nil
}
