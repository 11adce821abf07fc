// Package compact merges the small per-flush pieces of partitions into
// large segment objects, so that reading old data takes few
// GETs and the bucket holds few objects.
//
// A flush writes one object holding one piece (index row) of every
// partition that had new data, so a partition's history is many small rows
// in many objects. One compaction pass takes candidate partitions (those
// with at least MinPieces pieces under RowBytes/2), and for each the
// oldest run of consecutive such pieces up to its target size
// (min(TargetBytes, segment.bytes)); larger pieces are left where they
// are (see plan). It reads every flush object involved once (one ranged
// GET spanning the pieces it needs, whatever the number of partitions),
// writes them under "seg/" into objects of up to TargetBytes (one
// partition's run, or the runs of several small partitions together, so
// compaction's PUTs do not grow with the partition count), and swaps each
// run's index rows:
//
//	RegisterObject(new)            objects row first: a crash leaves garbage
//	Put(new)                        the collector finds, never a dangling row
//	SwapSegments(old rows → new rows, only if the old rows are all still
//	             there and new's objects row was not collected)
//
// The new object is indexed by several rows of about RowBytes each (whole
// batches), so a fetch seeks to its offset without reading the whole
// segment, while consecutive rows share the object and the read cache's
// blocks. Produce and fetch never wait for compaction: the swap is one
// short transaction, and readers holding the old rows keep reading the old
// objects, which garbage collection keeps for its grace period.
//
// Partitions of cleanup.policy=compact topics are instead compacted by
// key, as Kafka's log cleaner does, in memory bounded by MemoryBytes
// (keys.go).
package compact

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"log/slog"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/eddy-streams/eddy/internal/store"
	"github.com/eddy-streams/eddy/internal/topicconfig"
	"github.com/eddy-streams/eddy/tiered/bucket"
	"github.com/eddy-streams/eddy/tiered/object"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/spf13/pflag"
)

// SegmentPrefix starts the key of every object compaction writes; rows in
// other objects are per-flush pieces.
const SegmentPrefix = "seg/"

// Config tunes compaction.
type Config struct {
	// TargetBytes caps the size of one segment object (the topic's
	// segment.bytes caps it too).
	TargetBytes int64
	// RowBytes is the size of the index rows a segment object is cut into.
	RowBytes int64
	// MinPieces is how many pieces a partition needs to be compacted.
	MinPieces int
	// PassBytes bounds the data one pass merging pieces holds in memory.
	PassBytes int64
	// MemoryBytes bounds the memory key compaction holds, whatever the
	// partition's size: 3/8 for its offset map (24 bytes a key, filled
	// to 3/4, so about 1.5 million keys a round at the default 128 MiB;
	// more keys take more rounds), 1/16 for the segment object it writes
	// (with an index row or two, RowBytes being at most 1/32), 1/32 for
	// what it reads; the rest is headroom for the batch in hand and the
	// garbage the collector has yet to find.
	MemoryBytes int64
	// Partitions bounds the partitions one pass considers.
	Partitions int
}

// DefaultConfig returns the defaults the flags start from.
func DefaultConfig() Config {
	return Config{TargetBytes: 64 << 20, RowBytes: 1 << 20, MinPieces: 16, PassBytes: 256 << 20, MemoryBytes: 128 << 20, Partitions: 10000}
}

// RegisterFlags registers compaction's flags with the defaults of
// DefaultConfig.
func (c *Config) RegisterFlags(fs *pflag.FlagSet) {
	d := DefaultConfig()
	fs.Int64Var(&c.TargetBytes, "compact-target-bytes", d.TargetBytes, "largest compacted segment object (also capped by the topic's segment.bytes)")
	fs.Int64Var(&c.RowBytes, "compact-row-bytes", d.RowBytes, "index granularity inside a compacted segment object")
	fs.IntVar(&c.MinPieces, "compact-min-pieces", d.MinPieces, "per-flush pieces a partition needs before it is compacted (at least 2)")
	fs.Int64Var(&c.PassBytes, "compact-pass-bytes", d.PassBytes, "data one compaction pass holds in memory (at least --compact-target-bytes)")
	fs.Int64Var(&c.MemoryBytes, "compact-memory-bytes", d.MemoryBytes, "memory key compaction (cleanup.policy=compact) holds, whatever the partition's size (at least 1 MiB)")
	fs.IntVar(&c.Partitions, "compact-partitions", d.Partitions, "partitions one compaction pass considers")
}

// Validate checks the configuration, naming the flag of a bad value.
func (c *Config) Validate() error {
	switch {
	case c.TargetBytes <= 0:
		return fmt.Errorf("compact: --compact-target-bytes must be positive, got %d", c.TargetBytes)
	case c.RowBytes <= 0:
		return fmt.Errorf("compact: --compact-row-bytes must be positive, got %d", c.RowBytes)
	case c.MinPieces < 2:
		// One piece compacted is the same piece rewritten.
		return fmt.Errorf("compact: --compact-min-pieces must be at least 2, got %d", c.MinPieces)
	case c.PassBytes < c.TargetBytes:
		// A pass must be able to hold the segment it writes.
		return fmt.Errorf("compact: --compact-pass-bytes (%d) must be at least --compact-target-bytes (%d)", c.PassBytes, c.TargetBytes)
	case c.MemoryBytes < 1<<20:
		return fmt.Errorf("compact: --compact-memory-bytes must be at least 1 MiB, got %d", c.MemoryBytes)
	case c.RowBytes > c.MemoryBytes/32:
		// Key compaction holds a row it leaves unchanged whole.
		return fmt.Errorf("compact: --compact-row-bytes (%d) must be at most --compact-memory-bytes/32 (%d)", c.RowBytes, c.MemoryBytes/32)
	case c.Partitions <= 0:
		return fmt.Errorf("compact: --compact-partitions must be positive, got %d", c.Partitions)
	}
	return nil
}

// Compactor runs compaction passes.
type Compactor struct {
	cfg      Config
	st       *store.Store
	b        bucket.Bucket
	brokerID int32
	log      *slog.Logger
	now      func() time.Time // time.Now; tests move it

	swaps       *prometheus.CounterVec
	readBytes   prometheus.Counter
	sparseBytes prometheus.Counter
	skipped     *prometheus.CounterVec
}

// New returns a Compactor that records its objects as written by brokerID
// (-1 for the control plane); reg may be nil.
func New(cfg Config, st *store.Store, b bucket.Bucket, brokerID int32, log *slog.Logger, reg prometheus.Registerer) (*Compactor, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	c := &Compactor{cfg: cfg, st: st, b: b, brokerID: brokerID, log: log, now: time.Now,
		swaps: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "eddy_compaction_swaps_total", Help: "Compaction index swaps by outcome (ok, conflict)."}, []string{"outcome"}),
		readBytes: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "eddy_compaction_bytes_total", Help: "Bytes of pieces merged into segment objects."}),
		sparseBytes: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "eddy_compaction_sparse_bytes_total",
			Help: "Bytes of rows rewritten because their object was sparse (under three quarters referenced), of eddy_compaction_bytes_total."}),
		skipped: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "eddy_compaction_skipped_batches_total",
			Help: "Batches key compaction kept unread, by reason (too_large: records decompress past the topic's limit; corrupt); each is counted once."}, []string{"reason"}),
	}
	if reg != nil {
		reg.MustRegister(c.swaps, c.readBytes, c.sparseBytes, c.skipped)
	}
	return c, nil
}

// Result says what a pass did.
type Result struct {
	Partitions int // partitions whose rows were swapped
	Pieces     int // pieces merged
	Rewritten  int // small rows of earlier segment objects merged again
	Objects    int // segment objects written
	Conflicts  int // swaps refused because the rows changed meanwhile
	Gets       int // objects read
	// DroppedRecords counts records removed by key compaction.
	DroppedRecords int
	// SkippedBatches counts batches key compaction found it could not
	// read in this pass, and kept as they are (keys.go).
	SkippedBatches int
	// AbortedBatches counts batches of aborted transactions key
	// compaction removed, DroppedMarkers the transaction markers (txn.go).
	AbortedBatches int
	DroppedMarkers int
	// KeyRounds counts key compaction's rounds (one per filling of its
	// offset map), PeakBytes the most memory it held (its map, the
	// object it was writing, what it had read).
	KeyRounds int
	PeakBytes int64
	// FailedPartitions counts partitions whose key compaction failed in
	// this pass (logged; the pass went on with the others).
	FailedPartitions int
	// Sparse counts partitions planned because rows of theirs are in
	// sparse objects (see plan).
	Sparse int

	left []string // objects that swapped rows left, for FlagSparse
}

// leftBy records the objects of rows a swap replaced.
func (r *Result) leftBy(rows []store.Segment) {
	for _, s := range rows {
		r.left = append(r.left, s.ObjectKey)
	}
}

// run is a partition's rows to merge into one segment object: pieces
// (fresh of them from flushes, the others small rows of segment objects).
type run struct {
	pid    int64
	pieces []store.Segment
	bytes  int64
	fresh  int
	// sparseBytes is the length of its rows in sparse objects.
	sparseBytes int64
}

// Compact runs one pass over up to cfg.Partitions candidate partitions of
// the shard (the zero Shard: all).
func (c *Compactor) Compact(ctx context.Context, sh store.Shard) (res Result, err error) {
	defer func() {
		// After the pass's swaps committed, whatever ended it: an object
		// left by two partitions' swaps is seen with both. A flag lost
		// to an error costs bucket bytes, not data: the object goes when
		// its rows do.
		fctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
		defer cancel()
		if ferr := c.st.FlagSparse(fctx, slices.Compact(slices.Sorted(slices.Values(res.left)))); ferr != nil && err == nil {
			err = ferr
		}
		res.left = nil
	}()
	keyed, err := c.st.KeyCompactionCandidates(ctx, sh, c.now().UnixMilli(), c.cfg.Partitions)
	if err != nil {
		return res, err
	}
	for _, k := range keyed {
		if err := c.compactKeys(ctx, k, &res); err != nil {
			if ctx.Err() != nil {
				return res, err
			}
			// One partition that keeps failing (an object it cannot
			// read, say) must not stall the shard's others: the next
			// pass tries it again.
			res.FailedPartitions++
			c.log.Warn("key compaction of a partition failed; the pass goes on", "partition", k.PartitionID, "err", err)
		}
	}
	ids, err := c.st.CompactionCandidates(ctx, sh, SegmentPrefix, c.cfg.RowBytes/2, c.cfg.MinPieces, c.cfg.Partitions)
	if err != nil {
		return res, err
	}
	sparse, err := c.st.SparseCandidates(ctx, sh, c.cfg.Partitions)
	if err != nil {
		return res, err
	}
	// Only these have rows in sparse objects for plan to look up.
	candidate := make(map[int64]bool, len(ids))
	for _, pid := range ids {
		candidate[pid] = true
	}
	hasSparse := make(map[int64]bool, len(sparse))
	for _, pid := range sparse {
		hasSparse[pid] = true
		if !candidate[pid] {
			ids = append(ids, pid)
		}
	}
	var (
		batch []run
		held  int64
	)
	for _, pid := range ids {
		configs, err := c.st.PartitionConfigs(ctx, pid)
		if err != nil {
			return res, err
		}
		if keyCompacted(configs) {
			// The candidates query leaves these out; a topic whose
			// cleanup.policy changed since is left for the next pass.
			continue
		}
		r, ok, err := c.plan(ctx, pid, configs, hasSparse[pid])
		if err != nil {
			return res, err
		}
		if !ok {
			continue
		}
		if r.sparseBytes > 0 {
			res.Sparse++
		}
		if held+r.bytes > c.cfg.PassBytes && len(batch) > 0 {
			if err := c.merge(ctx, batch, &res); err != nil {
				return res, err
			}
			batch, held = nil, 0
		}
		batch = append(batch, r)
		held += r.bytes
	}
	if len(batch) > 0 {
		if err := c.merge(ctx, batch, &res); err != nil {
			return res, err
		}
	}
	return res, nil
}

// plan picks the oldest run of consecutive small rows to merge: pieces,
// and the rows that earlier passes left at the end of the partition's
// segments, under RowBytes/2 (small). Without the latter, every pass would
// leave one more small row per partition, and the index would grow with
// the number of passes (with the flush rate) rather than with the data. A
// small row is rewritten only when what follows it in the run is at least
// as large as it is, as in a size-tiered LSM: a partition keeps a few
// small rows of decreasing sizes (about log2(RowBytes/run) at most), and
// each byte is rewritten about that many times.
//
// Pieces of RowBytes/2 or more are left where they are, as rows of a
// segment object would be: rewriting them would make their rows no fewer
// and reads no cheaper, and would cost a GET and a PUT of every byte a
// busy partition writes (and the readers of the old rows the blocks they
// fetched ahead). A run of small pieces that such a piece ends is merged
// from two pieces on: no more will join it.
//
// Rows of sparse objects (store.FlagSparse: less than three quarters of
// the object is still referenced) are merged whatever their size, and a
// run holding one is merged however short: the bucket would otherwise
// keep the rest of their object, rewritten elsewhere or past its
// retention, for their sake (a busy partition's large pieces in flushes
// shared with quiet partitions whose small pieces compaction moved out).
// Only a partition SparseCandidates named (hasSparse) looks them up.
func (c *Compactor) plan(ctx context.Context, pid int64, configs map[string]string, hasSparse bool) (run, bool, error) {
	target := min(c.cfg.TargetBytes, topicconfig.Int64(configs, "segment.bytes"))
	rows, err := c.st.Segments(ctx, pid, -1, 100000)
	if err != nil {
		return run{}, false, err
	}
	var sparse map[string]bool
	if hasSparse {
		if sparse, err = c.st.SparseObjects(ctx, pid); err != nil {
			return run{}, false, err
		}
	}
	ok := func(r run) bool {
		return r.fresh >= c.cfg.MinPieces || r.bytes >= target/2 && r.fresh >= 2 || r.sparseBytes > 0
	}
	r, closed := run{pid: pid}, false
	for _, s := range rows {
		isPiece := !strings.HasPrefix(s.ObjectKey, SegmentPrefix)
		mergeable := int64(s.Length) < c.cfg.RowBytes/2 || sparse[s.ObjectKey]
		contiguous := len(r.pieces) == 0 || r.pieces[len(r.pieces)-1].EndOffset == s.BaseOffset
		if !mergeable || !contiguous || (len(r.pieces) > 0 && r.bytes+int64(s.Length) > target) {
			if closed = !mergeable && contiguous && r.fresh >= 2; closed || ok(r) {
				break
			}
			r = run{pid: pid}
			if !mergeable {
				continue
			}
		}
		r.pieces = append(r.pieces, s)
		r.bytes += int64(s.Length)
		if sparse[s.ObjectKey] {
			r.sparseBytes += int64(s.Length)
		}
		if isPiece {
			r.fresh++
		}
	}
	if !closed && !ok(r) {
		return r, false, nil
	}
	// Leave leading small rows larger than the rest of the run alone.
	for len(r.pieces) > 0 && strings.HasPrefix(r.pieces[0].ObjectKey, SegmentPrefix) && !sparse[r.pieces[0].ObjectKey] &&
		int64(r.pieces[0].Length) > r.bytes-int64(r.pieces[0].Length) {
		r.bytes -= int64(r.pieces[0].Length)
		r.pieces = r.pieces[1:]
	}
	if len(r.pieces) == 0 {
		return r, false, nil
	}
	return r, true, nil
}

// merge reads the pieces of runs (each source object once), writes them
// into segment objects of up to TargetBytes (runs of small partitions
// share one, so compaction's PUTs do not grow with the partition count)
// and swaps each run's index rows.
func (c *Compactor) merge(ctx context.Context, runs []run, res *Result) error {
	type span struct{ lo, hi int64 }
	spans := map[string]*span{}
	for _, r := range runs {
		for _, p := range r.pieces {
			sp := spans[p.ObjectKey]
			if sp == nil {
				sp = &span{p.Position, p.Position}
				spans[p.ObjectKey] = sp
			}
			sp.lo = min(sp.lo, p.Position)
			sp.hi = max(sp.hi, p.Position+int64(p.Length))
		}
	}
	keys := make([]string, 0, len(spans))
	for k := range spans {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	data := make(map[string][]byte, len(spans))
	for _, k := range keys {
		sp := spans[k]
		b, err := c.b.GetRange(ctx, k, sp.lo, sp.hi-sp.lo)
		if err != nil {
			return fmt.Errorf("compact: read %s: %w", k, err)
		}
		data[k] = b
		res.Gets++
	}
	piece := func(p store.Segment) []byte {
		off := p.Position - spans[p.ObjectKey].lo
		return data[p.ObjectKey][off : off+int64(p.Length)]
	}

	type built struct {
		r    run
		rows []store.Segment
	}
	var (
		bld     object.Builder
		pending []built
	)
	finish := func() error {
		if len(pending) == 0 {
			return nil
		}
		obj, _ := bld.Finish()
		key := segmentKey()
		todo := pending
		pending = nil
		if err := c.st.RegisterObject(ctx, key, int64(len(obj)), c.brokerID); err != nil {
			return err
		}
		if err := c.b.Put(ctx, key, obj); err != nil {
			return fmt.Errorf("compact: put %s: %w", key, err)
		}
		res.Objects++
		for _, bt := range todo {
			for i := range bt.rows {
				bt.rows[i].ObjectKey = key
			}
			ok, err := c.st.SwapSegments(ctx, bt.r.pid, bt.r.pieces, bt.rows, key)
			if err != nil {
				return err
			}
			if !ok {
				// Retention or DeleteRecords moved first; if no run
				// swapped, the object is unreferenced and garbage
				// collection takes it.
				res.Conflicts++
				c.swaps.WithLabelValues("conflict").Inc()
				continue
			}
			c.swaps.WithLabelValues("ok").Inc()
			res.leftBy(bt.r.pieces)
			c.readBytes.Add(float64(bt.r.bytes))
			c.sparseBytes.Add(float64(bt.r.sparseBytes))
			res.Partitions++
			res.Pieces += bt.r.fresh
			res.Rewritten += len(bt.r.pieces) - bt.r.fresh
			c.log.Debug("compacted", "partition", bt.r.pid, "pieces", len(bt.r.pieces), "rows", len(bt.rows), "bytes", bt.r.bytes, "key", key)
		}
		return nil
	}
	for _, r := range runs {
		if bld.Len() > 0 && int64(bld.Size())+r.bytes > c.cfg.TargetBytes {
			if err := finish(); err != nil {
				return err
			}
		}
		// Cut the run into rows of about RowBytes, at piece boundaries
		// (pieces are whole batches).
		var (
			rows []store.Segment
			cur  []store.Segment
			size int64
		)
		cut := func() {
			parts := make([][]byte, len(cur))
			maxTs := cur[0].MaxTimestamp
			for i, p := range cur {
				parts[i] = piece(p)
				maxTs = max(maxTs, p.MaxTimestamp)
			}
			ch := bld.Add(r.pid, cur[0].BaseOffset, cur[len(cur)-1].EndOffset, maxTs, parts...)
			rows = append(rows, store.Segment{BaseOffset: ch.BaseOffset, EndOffset: ch.EndOffset,
				Position: ch.Position, Length: int32(ch.Length), MaxTimestamp: ch.MaxTimestamp})
			cur, size = nil, 0
		}
		for _, p := range r.pieces {
			if size > 0 && size+int64(p.Length) > c.cfg.RowBytes {
				cut()
			}
			cur = append(cur, p)
			size += int64(p.Length)
		}
		cut()
		pending = append(pending, built{r, rows})
	}
	return finish()
}

func segmentKey() string {
	var id [8]byte
	_, _ = rand.Read(id[:])
	return fmt.Sprintf("%s%s/%s.obj", SegmentPrefix, time.Now().UTC().Format("2006-01-02"), hex.EncodeToString(id[:]))
}
