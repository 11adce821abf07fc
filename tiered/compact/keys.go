package compact

// Key compaction (cleanup.policy=compact): keep the last record of each
// key, as Kafka's log cleaner does, in memory bounded by MemoryBytes
// whatever the partition's size.
//
// A partition's log below its last stable offset (an open transaction's
// batches are never touched, txn.go) and below min.compaction.lag.ms is
// cleanable; compaction_state.clean_offset splits it into a clean part,
// which holds each key at most once, and a dirty part. A partition is due
// when the dirty part is more than min.cleanable.dirty.ratio of the
// cleanable bytes, when its oldest dirty row is older than
// max.compaction.lag.ms (a row's largest timestamp stands for its
// records'), or when a tombstone's delete horizon or a marker's age has
// come. A pass over a due partition runs rounds, each:
//
//  1. maps the keys of the dirty rows, in offset order, into an offset map
//     (offsetmap.go: key hash → latest offset, 24 bytes a key, at most
//     3/8 of MemoryBytes) until it is 3/4 full: the mapped batches end at
//     X, after the last batch mapped whole;
//  2. rewrites the log from its start to X, streaming: it reads a few rows
//     at a time (at most MemoryBytes/32 per GET) and keeps a record unless
//     the map knows a later offset of its key or it is a tombstone past
//     its delete horizon;
//  3. records X as the clean offset.
//
// A partition whose keys fit the map takes one round; one with more keys
// takes several, each cleaning the prefix its map covers. Entries the map
// took from the batch it stopped in point past X at records that stay, so
// the older records they drop are indeed superseded.
//
// Rewritten batches keep their base offset, last offset delta and producer
// fields, so offsets never move (gaps are normal in a compacted log and
// every Kafka client skips them); records are stored uncompressed; a batch
// left with no record is dropped. Keyless records are kept.
//
// Tombstones follow KIP-534: a batch kept with a tombstone and no delete
// horizon is rewritten with one, now + delete.retention.ms, in its base
// timestamp with the delete-horizon attribute bit (the records' timestamp
// deltas are re-counted from it, so their timestamps do not change); a
// tombstone in a batch whose horizon has passed is removed. So a tombstone
// is kept for delete.retention.ms from the pass that first compacted it,
// whatever its own timestamp. Transaction markers keep their rule (txn.go).
//
// The rewritten log goes out in groups of consecutive rows, each written
// as one segment object of about MemoryBytes/16 (or TargetBytes or
// segment.bytes, if smaller, but at least 1 MiB unless MemoryBytes/16 or
// TargetBytes is smaller) and swapped on its own (store.SwapCompacted);
// a group that fills in the middle of a row ends there, and the rest of
// the row stays in its object as a row of its own (the remainder, also
// where a round whose map filled mid-row ends). A swap changes nothing if
// retention or DeleteRecords removed its rows
// meanwhile (the pass then stops; the next one starts again from the
// clean offset). Offsets do not move, so a reader sees a correct log
// before, between and after the swaps. A group that would come out the
// same (already a segment object, nothing dropped or stamped) is not
// written.
//
// Records are read through batch.Records under the topic's
// batch.DecompressLimit, and a batch that loses records (or is stamped) is
// re-encoded record by record as they are read. A batch that cannot be
// read that way (records decompressing past the limit, as a decompression
// bomb stored before produce checked sizes would, or records that do not
// decode) is kept as it is, every record in it, and its keys do not count:
// compaction must never lose data, nor crash or exhaust the process that
// runs it. It is logged, counted in eddy_compaction_skipped_batches_total
// by reason and recorded (store.SkipInCompaction), so later passes keep it
// without reading it again.

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"math"
	"sort"
	"strconv"
	"strings"

	"github.com/eddy-streams/eddy/internal/batch"
	"github.com/eddy-streams/eddy/internal/store"
	"github.com/eddy-streams/eddy/internal/topicconfig"
	"github.com/eddy-streams/eddy/tiered/bucket"
	"github.com/eddy-streams/eddy/tiered/object"
	"github.com/twmb/franz-go/pkg/kmsg"
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

func keyCompacted(configs map[string]string) bool {
	for p := range strings.SplitSeq(topicconfig.Value(configs, "cleanup.policy"), ",") {
		if strings.TrimSpace(p) == "compact" {
			return true
		}
	}
	return false
}

// cleanable cuts rows at the first one key compaction may not touch: one
// reaching past the last stable offset, or (with min.compaction.lag.ms)
// holding a record newer than the lag.
func cleanable(rows []store.Segment, lso, now int64, configs map[string]string) []store.Segment {
	minLag := topicconfig.Int64(configs, "min.compaction.lag.ms")
	for i, r := range rows {
		if r.EndOffset > lso || minLag > 0 && r.MaxTimestamp > now-minLag {
			return rows[:i]
		}
	}
	return rows
}

// due reports whether a partition needs a pass, from its state and the
// sizes of its rows (k.CleanBytes, k.DirtyBytes, k.OldestDirty): those the
// candidates query measured over all its rows, which is enough to leave a
// partition alone before reading anything (extra rows past the cleanable
// end are dirty, so they can only make it look more due), then those of
// its cleanable rows (measure).
func due(k store.KeyCompaction, now int64) bool {
	if k.DeleteHorizon >= 0 && k.DeleteHorizon <= now {
		return true
	}
	if k.MarkerTimestamp >= 0 && k.MarkerTimestamp < now-topicconfig.Int64(k.Configs, "delete.retention.ms") {
		return true
	}
	if k.DirtyBytes == 0 {
		return false
	}
	if k.OldestDirty < now-topicconfig.Int64(k.Configs, "max.compaction.lag.ms") {
		return true
	}
	ratio, _ := strconv.ParseFloat(topicconfig.Value(k.Configs, "min.cleanable.dirty.ratio"), 64)
	return float64(k.DirtyBytes)/float64(k.CleanBytes+k.DirtyBytes) > ratio
}

// measure returns k with the sizes due reads taken from rows, as the
// candidates query takes them from all of a partition's rows.
func measure(k store.KeyCompaction, rows []store.Segment) store.KeyCompaction {
	k.CleanBytes, k.DirtyBytes, k.OldestDirty = 0, 0, math.MaxInt64
	for _, r := range rows {
		if r.BaseOffset < k.CleanOffset {
			k.CleanBytes += int64(r.Length)
			continue
		}
		k.DirtyBytes += int64(r.Length)
		k.OldestDirty = min(k.OldestDirty, r.MaxTimestamp)
	}
	return k
}

// segments returns every index row of a partition, in offset order.
func (c *Compactor) segments(ctx context.Context, pid int64) ([]store.Segment, error) {
	var out []store.Segment
	for from := int64(-1); ; {
		page, err := c.st.Segments(ctx, pid, from, 10000)
		if err != nil {
			return nil, err
		}
		out = append(out, page...)
		if len(page) < 10000 {
			return out, nil
		}
		from = page[len(page)-1].EndOffset
	}
}

// compactKeys runs a pass over a cleanup.policy=compact partition if it is
// due; see above.
func (c *Compactor) compactKeys(ctx context.Context, k store.KeyCompaction, res *Result) error {
	now := c.now().UnixMilli()
	pid, configs := k.PartitionID, k.Configs
	if !due(k, now) {
		return nil // known from the candidates query alone
	}
	lso, err := c.st.LastStableOffset(ctx, pid)
	if err != nil {
		return err
	}
	rows, err := c.segments(ctx, pid)
	if err != nil {
		return err
	}
	tail := logEnd(rows)
	rows = cleanable(rows, lso, now, configs)
	if len(rows) == 0 {
		return nil
	}
	k = measure(k, rows)
	if !due(k, now) {
		return nil
	}
	skips, err := c.st.CompactionSkips(ctx, pid)
	if err != nil {
		return err
	}
	// The map's table starts at the keys the dirty rows hold if they are
	// uncompressed (a record takes at least minRecordBytes) and grows up
	// to its share of the bound if compressed batches hold more.
	m := newOffsetMap(c.cfg.MemoryBytes*3/8, k.DirtyBytes/minRecordBytes)
	p := &keyPass{c: c, pid: pid, m: m, skips: skips, res: res, now: now, tail: tail,
		limit:     batch.DecompressLimit(topicconfig.Int64(configs, "max.message.bytes")),
		retention: topicconfig.Int64(configs, "delete.retention.ms"),
		// segment.bytes may be as small as 14: floored, or every batch
		// would be an object and a swap of its own.
		outBytes:  min(c.cfg.TargetBytes, max(topicconfig.Int64(configs, "segment.bytes"), minOutBytes), c.cfg.MemoryBytes/16),
		readBytes: c.cfg.MemoryBytes / 32,
	}
	clean := k.CleanOffset
	for round := 0; ; round++ {
		if round > 0 {
			if rows, err = c.segments(ctx, pid); err != nil {
				return err
			}
			p.tail = logEnd(rows)
			rows = cleanable(rows, lso, now, configs)
		}
		d := sort.Search(len(rows), func(i int) bool { return rows[i].BaseOffset >= clean })
		if len(rows) == 0 || round > 0 && d == len(rows) {
			return nil
		}
		aborted, err := c.st.AbortedTxns(ctx, pid, rows[0].BaseOffset, lso, 0)
		if err != nil {
			return err
		}
		m.reset()
		e, stop, err := p.mapKeys(ctx, rows, d, newTxnPass(aborted, 0))
		if err != nil {
			return err
		}
		if e == d && d < len(rows) {
			c.log.Warn("a batch of a compacted partition holds more keys than --compact-memory-bytes can map; partition left as it is",
				"partition", pid, "base_offset", rows[d].BaseOffset, "keys", m.len())
			return nil
		}
		res.KeyRounds++
		st, ok, err := p.rewrite(ctx, rows[:e], stop, newTxnPass(aborted, now-p.retention))
		if err != nil || !ok {
			return err
		}
		st.PartitionID, st.CleanOffset = pid, rows[e-1].EndOffset
		if stop.pos >= 0 {
			st.CleanOffset = stop.offset
		}
		if err := c.st.SetCompactionState(ctx, st); err != nil {
			return err
		}
		clean = st.CleanOffset
		if e == len(rows) && stop.pos < 0 {
			return nil
		}
	}
}

// minOutBytes floors the segment objects key compaction writes, whatever
// the topic's segment.bytes.
const minOutBytes = 1 << 20

// minRecordBytes is the least a keyed record takes in a batch: length,
// attributes, timestamp and offset deltas, key length and a one-byte key,
// value length, header count.
const minRecordBytes = 8

func logEnd(rows []store.Segment) int64 {
	if len(rows) == 0 {
		return -1
	}
	return rows[len(rows)-1].EndOffset
}

// keyPass is one partition's key compaction pass.
type keyPass struct {
	c         *Compactor
	pid       int64
	m         *offsetMap
	skips     map[int64]string
	res       *Result
	now       int64
	limit     int
	retention int64
	outBytes  int64      // largest segment object written
	readBytes int64      // largest GET
	swapped   bool       // counted in res.Partitions
	scratch   []byte     // the kept records of the batch in hand
	stamped   []byte     // the same, re-stamped (rebatch)
	stage     []mapEntry // mapBatch's keys held back
	// tail is the end of the partition's log: its last batch is never
	// removed (as Kafka never cleans the active segment), or a consumer
	// there would find nothing below the high watermark.
	tail int64
}

// held notes the memory the pass holds now, for Result.PeakBytes.
func (p *keyPass) held(n int64) {
	p.res.PeakBytes = max(p.res.PeakBytes, p.m.peak+n)
}

// stopPoint is where, inside the last row of a round, the map filled: the
// round rewrites the row's batches before pos (offsets below offset) and
// leaves the rest as a row of its own. pos is -1 if the round ends at a
// row's end.
type stopPoint struct{ pos, offset int64 }

// mapKeys puts the keys of rows[d:] into the map, and returns where the
// mapped batches end: rows[:e] (the map filled at the start of rows[e], or
// e is len(rows)), or, if the map filled in the middle of a row, rows[:e]
// with the last one mapped up to stop.
func (p *keyPass) mapKeys(ctx context.Context, rows []store.Segment, d int, txns *txnPass) (int, stopPoint, error) {
	rd := &rowReader{b: p.c.b, rows: rows, max: p.readBytes, gets: &p.res.Gets}
	none := stopPoint{-1, -1}
	for i := d; i < len(rows); i++ {
		var (
			full bool
			serr error
			stop = none
		)
		err := rd.each(ctx, i, func(h batch.Header, raw []byte, pos int64) bool {
			p.held(int64(len(rd.buf)) + int64(len(raw)) + int64(cap(p.stage))*entryBytes)
			if _, skip := p.skips[h.BaseOffset]; skip || h.Control() || txns.data(h) {
				stop.offset = h.LastOffset() + 1
				return true
			}
			var err error
			full, err = p.mapBatch(h, raw)
			if full {
				if stop.offset >= 0 {
					stop.pos = pos
				}
				return false
			}
			stop.offset = h.LastOffset() + 1
			if err != nil {
				// Record it now, so that the rewrite keeps it without
				// reading it again.
				serr = p.c.skip(ctx, p.pid, h, err, p.res)
				p.skips[h.BaseOffset] = ""
			}
			return serr == nil
		})
		if err != nil {
			return 0, none, err
		}
		if serr != nil {
			return 0, none, serr
		}
		if full && stop.pos >= 0 {
			return i + 1, stop, nil
		}
		if full {
			return i, none, nil
		}
	}
	return len(rows), none, nil
}

// maxStaged is the most keys mapBatch holds back for a batch (24 bytes
// each); a batch with more is decoded once more instead.
const maxStaged = 4096

// mapBatch puts the keys of one batch into the map, only once the batch
// has decoded whole: a batch that does not decode is kept as it is, so
// its keys must not drop their older records. It returns whether the map
// filled (at a record of this batch) and the batch's decoding error.
func (p *keyPass) mapBatch(h batch.Header, raw []byte) (full bool, err error) {
	p.stage = p.stage[:0]
	over := false
	err = batch.Records(raw, p.limit, func(rec *kmsg.Record) bool {
		if rec.Key == nil {
			return true
		}
		if len(p.stage) == maxStaged {
			over = true
			return false
		}
		p.stage = append(p.stage, p.m.entry(rec.Key, h.BaseOffset+int64(rec.OffsetDelta)))
		return true
	})
	if err != nil {
		return false, err
	}
	if !over {
		for _, e := range p.stage {
			if !p.m.putHash(e.h1, e.h2, e.offset) {
				return true, nil
			}
		}
		return false, nil
	}
	// Too many keys to hold back: check that the batch decodes whole,
	// then map it as it decodes again.
	if err := batch.Records(raw, p.limit, func(*kmsg.Record) bool { return true }); err != nil {
		return false, err
	}
	err = batch.Records(raw, p.limit, func(rec *kmsg.Record) bool {
		full = rec.Key != nil && !p.m.put(rec.Key, h.BaseOffset+int64(rec.OffsetDelta))
		return !full
	})
	return full, err
}

// rewrite compacts rows (the log from its start to the end of the mapped
// rows) group by group, and returns the state to record: the earliest
// delete horizon and marker age it kept. ok is false if a swap found its
// rows changed.
func (p *keyPass) rewrite(ctx context.Context, rows []store.Segment, stop stopPoint, txns *txnPass) (st store.KeyCompaction, ok bool, err error) {
	st.DeleteHorizon, st.MarkerTimestamp = -1, -1
	rd := &rowReader{b: p.c.b, rows: rows, max: p.readBytes, gets: &p.res.Gets}
	g := p.newGroup()
	for i, r := range rows {
		if len(g.rows) == 0 {
			g.rowBase = r.BaseOffset
		}
		g.rows = append(g.rows, r)
		g.changed = g.changed || !strings.HasPrefix(r.ObjectKey, SegmentPrefix)
		rowEnd := r.Position + int64(r.Length)
		var ferr error
		last := i == len(rows)-1
		err := rd.each(ctx, i, func(h batch.Header, raw []byte, pos int64) bool {
			if last && stop.pos >= 0 && pos >= stop.pos {
				// The map ends here: the rest of the row stays, as a row
				// of its own, for the next round. Written even unchanged,
				// so that the clean offset is a row's start.
				rem := store.Segment{BaseOffset: stop.offset, EndOffset: r.EndOffset, ObjectKey: r.ObjectKey,
					Position: pos, Length: int32(rowEnd - pos), MaxTimestamp: r.MaxTimestamp}
				g.changed = true
				ok, err := p.finish(ctx, g, rem)
				if ferr = err; err == nil && !ok {
					ferr = errConflict
				}
				g = nil
				return false
			}
			if ferr = p.batch(ctx, g, txns, &st, h, raw); ferr != nil {
				return false
			}
			p.held(int64(len(rd.buf)) + int64(len(raw)) + p.groupBytes())
			next := pos + int64(len(raw))
			if g.size() < p.outBytes || !g.output() || !g.changed || next == rowEnd {
				return true
			}
			// The group is full in the middle of a row: it ends here,
			// and the rest of the row stays where it is, as a row of
			// its own (the remainder) that the next group replaces.
			rem := store.Segment{BaseOffset: h.LastOffset() + 1, EndOffset: r.EndOffset, ObjectKey: r.ObjectKey,
				Position: next, Length: int32(rowEnd - next), MaxTimestamp: r.MaxTimestamp}
			var ok bool
			if ok, ferr = p.finish(ctx, g, rem); ferr != nil || !ok {
				if ferr == nil {
					ferr = errConflict
				}
				return false
			}
			*g = group{} // the finished group's buffers are garbage before the next's exist
			g = p.newGroup()
			g.rows, g.rowBase, g.changed = []store.Segment{rem}, rem.BaseOffset, !strings.HasPrefix(rem.ObjectKey, SegmentPrefix)
			return true
		})
		if err == nil {
			err = ferr
		}
		if errors.Is(err, errConflict) {
			return st, false, nil
		}
		if err != nil {
			return st, false, err
		}
		if g == nil {
			break // stopped at stop
		}
		if g.size() >= p.outBytes && g.output() || i == len(rows)-1 {
			if ok, err := p.finish(ctx, g, store.Segment{}); err != nil || !ok {
				return st, false, err
			}
			*g = group{} // as above
			g = p.newGroup()
		}
	}
	return st, true, nil
}

// errConflict stops a rewrite whose swap found its rows changed.
var errConflict = errors.New("compact: rows changed")

// newGroup starts a group, with room for its object and the index row
// it is building, so that neither grows by doubling.
func (p *keyPass) newGroup() *group {
	g := &group{pid: p.pid, rowBytes: p.c.cfg.RowBytes, buf: make([]byte, 0, p.c.cfg.RowBytes)}
	g.bld.Grow(int(p.outBytes + p.c.cfg.RowBytes + 64<<10))
	return g
}

// groupBytes is the memory a group holds.
func (p *keyPass) groupBytes() int64 { return p.outBytes + 2*p.c.cfg.RowBytes + 64<<10 }

// batch decides the fate of one batch in the rewrite.
func (p *keyPass) batch(ctx context.Context, g *group, txns *txnPass, st *store.KeyCompaction, h batch.Header, raw []byte) error {
	if h.Control() {
		remove, abort, aging := txns.marker(h, raw)
		if remove {
			at := int64(-1)
			if abort {
				at = h.BaseOffset
			}
			g.drop(h, raw, dropCount{markers: 1, abortAt: at})
			return nil
		}
		if aging {
			st.MarkerTimestamp = minTs(st.MarkerTimestamp, h.MaxTimestamp)
		}
		g.keep(h, raw)
		return nil
	}
	if txns.data(h) {
		g.drop(h, raw, dropCount{aborted: 1, abortAt: -1})
		return nil
	}
	if _, ok := p.skips[h.BaseOffset]; ok {
		txns.keep(h)
		g.keep(h, raw)
		return nil
	}
	own, stamped := h.DeleteHorizon()
	horizon := own
	fate := func(rec *kmsg.Record) (keep, tombstone bool) {
		tombstone = rec.Key != nil && rec.Value == nil
		switch {
		case rec.Key != nil && p.m.latest(rec.Key) > h.BaseOffset+int64(rec.OffsetDelta):
			return false, tombstone
		case tombstone && stamped && own <= p.now:
			return false, tombstone
		}
		return true, tombstone
	}
	// One pass: the kept records are encoded into scratch as they are
	// read and fated, and thrown away if the batch comes out unchanged
	// (most do).
	var (
		dropped, kept int
		tombstones    bool
	)
	recs := p.scratch[:0]
	err := batch.Records(raw, p.limit, func(rec *kmsg.Record) bool {
		keep, tombstone := fate(rec)
		if !keep {
			dropped++
			return true
		}
		kept++
		tombstones = tombstones || tombstone
		recs = rec.AppendTo(recs)
		return true
	})
	p.scratch = recs
	restamp := tombstones && !stamped
	if restamp {
		horizon = p.now + min(p.retention, math.MaxInt64-p.now)
	}
	var out []byte
	if err == nil && kept > 0 && (dropped > 0 || restamp) {
		stamp := int64(-1) // keep the batch's own
		if restamp {
			stamp = horizon
		}
		out, err = p.rebatch(raw, recs, int32(kept), stamp)
	}
	if err != nil {
		if err := p.c.skip(ctx, p.pid, h, err, p.res); err != nil {
			return err
		}
		p.skips[h.BaseOffset] = ""
		txns.keep(h)
		g.keep(h, raw)
		return nil
	}
	if tombstones {
		st.DeleteHorizon = minTs(st.DeleteHorizon, horizon)
	}
	switch {
	case kept == 0:
		g.drop(h, raw, dropCount{records: dropped, abortAt: -1})
	case out == nil:
		txns.keep(h)
		g.keep(h, raw)
	default:
		txns.keep(h)
		g.dropped += dropped
		g.changed = true
		g.keep(h, out)
	}
	return nil
}

func minTs(a, b int64) int64 {
	if a < 0 {
		return b
	}
	return min(a, b)
}

// finish writes a group's segment object and swaps its rows; a group that
// would come out unchanged is not written. A group that ends in the middle
// of its last row has the rest of that row as rem (Length > 0), which
// stays in its object. ok is false if the swap found the rows changed.
func (p *keyPass) finish(ctx context.Context, g *group, rem store.Segment) (bool, error) {
	end := g.rows[len(g.rows)-1].EndOffset
	if rem.Length > 0 {
		end = rem.BaseOffset
	}
	g.close(end, rem.Length == 0 && end == p.tail)
	if !g.changed {
		return true, nil
	}
	c := p.c
	obj, _ := g.bld.Finish()
	key := segmentKey()
	for i := range g.newRows {
		g.newRows[i].ObjectKey = key
	}
	if rem.Length > 0 {
		g.newRows = append(g.newRows, rem)
	}
	if err := c.st.RegisterObject(ctx, key, int64(len(obj)), c.brokerID); err != nil {
		return false, err
	}
	if err := c.b.Put(ctx, key, obj); err != nil {
		return false, fmt.Errorf("compact: put %s: %w", key, err)
	}
	p.res.Objects++
	ok, err := c.st.SwapCompacted(ctx, p.pid, g.rows, g.newRows, key, g.abortMarkers)
	if err != nil {
		return false, err
	}
	if !ok {
		// Retention or DeleteRecords moved first; the object is
		// unreferenced and garbage collection takes it.
		p.res.Conflicts++
		c.swaps.WithLabelValues("conflict").Inc()
		return false, nil
	}
	c.swaps.WithLabelValues("ok").Inc()
	p.res.leftBy(g.rows)
	if !p.swapped {
		p.swapped = true
		p.res.Partitions++
	}
	p.res.Pieces += len(g.rows)
	p.res.DroppedRecords += g.dropped
	p.res.AbortedBatches += g.aborted
	p.res.DroppedMarkers += g.markers
	c.log.Debug("compacted by key", "partition", p.pid, "rows", len(g.rows), "dropped", g.dropped,
		"aborted_batches", g.aborted, "markers", g.markers, "key", key)
	return true, nil
}

// dropCount is what dropping one batch removes.
type dropCount struct {
	records, aborted, markers int
	abortAt                   int64 // an abort marker's offset, or -1
}

// group is a run of consecutive rows rewritten into one segment object,
// cut into index rows of about rowBytes.
type group struct {
	pid      int64
	rowBytes int64
	rows     []store.Segment // the rows replaced
	bld      object.Builder
	newRows  []store.Segment
	buf      []byte // the index row being built
	curMaxTs int64
	rowBase  int64
	changed  bool
	// last is the latest dropped batch, counted only once another batch
	// follows it: a group that keeps nothing keeps it, since a swap
	// needs a row.
	last      []byte
	lastH     batch.Header
	lastCount dropCount
	dropped   int
	aborted   int
	markers   int
	// abortMarkers are the offsets of the abort markers dropped, whose
	// aborted_txns rows go in the swap.
	abortMarkers []int64
}

func (g *group) output() bool { return len(g.buf) > 0 || len(g.newRows) > 0 }

// size is about the size of the group's object so far.
func (g *group) size() int64 { return int64(g.bld.Size() + len(g.buf)) }

func (g *group) settle() {
	if g.last == nil {
		return
	}
	n := g.lastCount
	g.dropped += n.records
	g.aborted += n.aborted
	g.markers += n.markers
	if n.abortAt >= 0 {
		g.abortMarkers = append(g.abortMarkers, n.abortAt)
	}
	g.changed = true
	g.last = nil
}

func (g *group) drop(h batch.Header, raw []byte, n dropCount) {
	g.settle()
	g.last, g.lastH, g.lastCount = raw, h, n
}

func (g *group) keep(h batch.Header, raw []byte) {
	g.settle()
	if len(g.buf) > 0 && int64(len(g.buf)+len(raw)) > g.rowBytes {
		g.cut(h.BaseOffset)
	}
	// Copied: raw is in a read buffer, which this frees.
	g.buf = append(g.buf, raw...)
	g.curMaxTs = max(g.curMaxTs, h.MaxTimestamp)
}

func (g *group) cut(end int64) {
	if len(g.buf) == 0 {
		return
	}
	ch := g.bld.Add(g.pid, g.rowBase, end, g.curMaxTs, g.buf)
	g.newRows = append(g.newRows, store.Segment{BaseOffset: ch.BaseOffset, EndOffset: ch.EndOffset,
		Position: ch.Position, Length: int32(ch.Length), MaxTimestamp: ch.MaxTimestamp})
	g.rowBase, g.buf, g.curMaxTs = end, g.buf[:0], 0
}

// close cuts the last index row at end; at the log's tail, it keeps the
// last batch.
func (g *group) close(end int64, tail bool) {
	if g.last != nil && (tail || !g.output()) {
		// Keep the dropped batch as it is, uncounted: the swap needs a
		// row, or the tail a batch.
		raw, h := g.last, g.lastH
		g.last = nil
		g.keep(h, raw)
	}
	g.settle()
	g.cut(end)
}

// rowReader reads the batches of index rows in order, never more than
// max bytes at a time (but one batch larger than that whole): a GET spans
// consecutive small rows of one object, or a window of a large row.
type rowReader struct {
	b        bucket.Bucket
	rows     []store.Segment
	max      int64
	buf      []byte
	from, to int // rows[from:to] are in buf
	gets     *int
}

// each calls fn with every batch of rows[i] and its position in the
// row's object, until fn returns false; it fails with batch.ErrCorrupt if
// the row's bytes are not all batches.
func (r *rowReader) each(ctx context.Context, i int, fn func(h batch.Header, raw []byte, pos int64) bool) error {
	row := r.rows[i]
	if int64(row.Length) > r.max {
		return r.window(ctx, row, fn)
	}
	if i < r.from || i >= r.to {
		n, j := int64(row.Length), i+1
		for ; j < len(r.rows); j++ {
			next, prev := r.rows[j], r.rows[j-1]
			if next.ObjectKey != row.ObjectKey || next.Position != prev.Position+int64(prev.Length) || n+int64(next.Length) > r.max {
				break
			}
			n += int64(next.Length)
		}
		r.buf = nil // not held across the next GET
		b, err := r.get(ctx, row.ObjectKey, row.Position, n)
		if err != nil {
			return err
		}
		r.buf, r.from, r.to = b, i, j
	}
	off := row.Position - r.rows[r.from].Position
	pos := row.Position
	stopped := false
	batch.Each(r.buf[off:off+int64(row.Length)], func(h batch.Header, raw []byte) bool {
		stopped = !fn(h, raw, pos)
		pos += int64(len(raw))
		return !stopped
	})
	if !stopped && pos != row.Position+int64(row.Length) {
		// Each stops quietly at bytes that are not a batch; going on
		// would have the new rows cover bytes no batch was read from.
		return fmt.Errorf("compact: %s at %d: %w: no batch in the row's last %d bytes",
			row.ObjectKey, pos, batch.ErrCorrupt, row.Position+int64(row.Length)-pos)
	}
	return nil
}

// window reads a large row max bytes at a time.
func (r *rowReader) window(ctx context.Context, row store.Segment, fn func(h batch.Header, raw []byte, pos int64) bool) error {
	r.buf, r.from, r.to = nil, 0, 0
	for pos, end := row.Position, row.Position+int64(row.Length); pos < end; {
		r.buf = nil
		b, err := r.get(ctx, row.ObjectKey, pos, min(r.max, end-pos))
		if err != nil {
			return err
		}
		r.buf = b // for the accounting only: from == to
		var used int64
		stop := false
		batch.Each(b, func(h batch.Header, raw []byte) bool {
			stop = !fn(h, raw, pos+used)
			used += int64(len(raw))
			return !stop
		})
		if stop {
			return nil
		}
		if used == 0 {
			// One batch larger than the window: read it whole.
			h, err := batch.ParseHeader(b)
			if err != nil {
				return fmt.Errorf("compact: %s at %d: %w", row.ObjectKey, pos, err)
			}
			if b, err = r.get(ctx, row.ObjectKey, pos, min(int64(h.Size()), end-pos)); err != nil {
				return err
			}
			batch.Each(b, func(h batch.Header, raw []byte) bool {
				stop = !fn(h, raw, pos)
				used = int64(len(raw))
				return false
			})
			if stop {
				return nil
			}
			if used == 0 {
				return fmt.Errorf("compact: %s at %d: %w: a short batch", row.ObjectKey, pos, batch.ErrCorrupt)
			}
		}
		pos += used
	}
	return nil
}

func (r *rowReader) get(ctx context.Context, key string, off, n int64) ([]byte, error) {
	b, err := r.b.GetRange(ctx, key, off, n)
	if err != nil {
		return nil, fmt.Errorf("compact: read %s: %w", key, err)
	}
	*r.gets++
	return b, nil
}

// skip reports a batch that key compaction cannot read and records it, so
// that later passes keep it without trying again. Only a failure to record
// it fails the pass.
func (c *Compactor) skip(ctx context.Context, pid int64, h batch.Header, cause error, res *Result) error {
	reason := "corrupt"
	if errors.Is(cause, batch.ErrTooLarge) {
		reason = "too_large"
	}
	topic, partition, err := c.st.PartitionName(ctx, pid)
	if err != nil {
		return err
	}
	c.log.Warn("key compaction keeps a batch it cannot read, as it is, and will not read it again",
		"topic", topic, "partition", partition, "partition_id", pid,
		"base_offset", h.BaseOffset, "last_offset", h.LastOffset(), "codec", h.Codec().String(), "reason", reason, "err", cause)
	c.skipped.WithLabelValues(reason).Inc()
	res.SkippedBatches++
	return c.st.SkipInCompaction(ctx, pid, h.BaseOffset, h.LastOffset(), reason)
}

// rebatch writes the batch raw again with the records recs (uncompressed,
// n of them) instead of its own, uncompressed. A horizon >= 0 becomes the
// batch's delete horizon (KIP-534): its base timestamp, with the records'
// timestamp deltas counted from it.
func (p *keyPass) rebatch(raw, recs []byte, n int32, horizon int64) ([]byte, error) {
	var rb kmsg.RecordBatch
	if err := rb.ReadFrom(raw); err != nil {
		return nil, fmt.Errorf("%w: %w", batch.ErrCorrupt, err)
	}
	if horizon >= 0 {
		stamped := p.stamped[:0]
		for rest := recs; len(rest) > 0; {
			length, k := binary.Varint(rest)
			if k <= 0 || length < 0 || int64(len(rest)-k) < length {
				return nil, fmt.Errorf("%w: a record re-encoded short", batch.ErrCorrupt)
			}
			var r kmsg.Record
			if err := r.UnsafeReadFrom(rest[:k+int(length)]); err != nil {
				return nil, fmt.Errorf("%w: %w", batch.ErrCorrupt, err)
			}
			rest = rest[k+int(length):]
			old := r.TimestampDelta64
			r.TimestampDelta64 = rb.FirstTimestamp + old - horizon
			r.TimestampDelta = int32(r.TimestampDelta64)
			// Only the delta's varlong changes size.
			r.Length += int32(varlongLen(r.TimestampDelta64) - varlongLen(old))
			stamped = r.AppendTo(stamped)
		}
		p.stamped = stamped
		recs = stamped
		rb.Attributes |= batch.AttrDeleteHorizon
		rb.FirstTimestamp = horizon
	}
	rb.Attributes &^= 0x07 // codec bits: none
	rb.NumRecords = n
	rb.Records = recs
	out := rb.AppendTo(make([]byte, 0, batch.HeaderSize+len(recs)))
	binary.BigEndian.PutUint32(out[8:], uint32(len(out)-12))
	binary.BigEndian.PutUint32(out[17:], crc32.Checksum(out[21:], castagnoli))
	return out, nil
}

// varlongLen is the size of v as a Kafka varlong (zigzag, as
// binary.PutVarint).
func varlongLen(v int64) int {
	var b [binary.MaxVarintLen64]byte
	return binary.PutVarint(b[:], v)
}
