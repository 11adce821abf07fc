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
//     (offsetmap.go: key hash → latest offset, at most half of
//     MemoryBytes) until it is full: the mapped rows end at X, the end of
//     the last row mapped whole;
//  2. rewrites the log from its start to X, streaming: it reads a few rows
//     at a time (at most MemoryBytes/8 per GET) and keeps a record unless
//     the map knows a later offset of its key or it is a tombstone past
//     its delete horizon;
//  3. records X as the clean offset.
//
// A partition whose keys fit the map takes one round; one with more keys
// takes several, each cleaning the prefix its map covers. Entries the map
// took from the row it stopped in point past X at records that stay, so
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
// as one segment object of up to MemoryBytes/4 (and TargetBytes and
// segment.bytes) and swapped on its own (store.SwapCompacted), which
// changes nothing if retention or DeleteRecords removed its rows
// meanwhile (the pass then stops; the next one starts again from the
// clean offset). Offsets do not move, so a reader sees a correct log
// before, between and after the swaps. A group that would come out the
// same (already a segment object, nothing dropped or stamped) is not
// written.
//
// Records are read through batch.Records under the topic's
// batch.DecompressLimit, copied one batch at a time. A batch that cannot be
// read that way (records decompressing past the limit, as a decompression
// bomb stored before produce checked sizes would, or records that do not
// decode) is kept as it is, every record in it, and its keys do not count:
// compaction must never lose data, nor crash or exhaust the process that
// runs it. It is logged, counted in eddy_compaction_skipped_batches_total
// by reason and recorded (store.SkipInCompaction), so later passes keep it
// without reading it again.

import (
	"bytes"
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

type decoded struct {
	h    batch.Header
	rb   kmsg.RecordBatch
	recs []kmsg.Record
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

// due reports whether a partition with cleanable rows needs a pass.
func due(k store.KeyCompaction, rows []store.Segment, now int64) bool {
	if k.DeleteHorizon >= 0 && k.DeleteHorizon <= now {
		return true
	}
	if k.MarkerTimestamp >= 0 && k.MarkerTimestamp < now-topicconfig.Int64(k.Configs, "delete.retention.ms") {
		return true
	}
	var clean, dirty int64
	oldest := int64(math.MaxInt64)
	for _, r := range rows {
		if r.BaseOffset < k.CleanOffset {
			clean += int64(r.Length)
			continue
		}
		dirty += int64(r.Length)
		oldest = min(oldest, r.MaxTimestamp)
	}
	if dirty == 0 {
		return false
	}
	if oldest < now-topicconfig.Int64(k.Configs, "max.compaction.lag.ms") {
		return true
	}
	ratio, _ := strconv.ParseFloat(topicconfig.Value(k.Configs, "min.cleanable.dirty.ratio"), 64)
	return float64(dirty)/float64(clean+dirty) > ratio
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
	if len(rows) == 0 || !due(k, rows, now) {
		return nil
	}
	skips, err := c.st.CompactionSkips(ctx, pid)
	if err != nil {
		return err
	}
	m := newOffsetMap(c.cfg.MemoryBytes / 2)
	p := &keyPass{c: c, pid: pid, m: m, skips: skips, res: res, now: now, tail: tail,
		limit:     batch.DecompressLimit(topicconfig.Int64(configs, "max.message.bytes")),
		retention: topicconfig.Int64(configs, "delete.retention.ms"),
		outBytes:  min(c.cfg.TargetBytes, topicconfig.Int64(configs, "segment.bytes"), c.cfg.MemoryBytes/4),
		readBytes: c.cfg.MemoryBytes / 8,
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
		e, err := p.mapKeys(ctx, rows, d, newTxnPass(aborted, 0))
		if err != nil {
			return err
		}
		if e == d && d < len(rows) {
			c.log.Warn("a row of a compacted partition holds more keys than --compact-memory-bytes can map; partition left as it is",
				"partition", pid, "base_offset", rows[d].BaseOffset, "keys", m.len())
			return nil
		}
		res.KeyRounds++
		st, ok, err := p.rewrite(ctx, rows[:e], newTxnPass(aborted, now-p.retention))
		if err != nil || !ok {
			return err
		}
		st.PartitionID, st.CleanOffset = pid, rows[e-1].EndOffset
		if err := c.st.SetCompactionState(ctx, st); err != nil {
			return err
		}
		clean = st.CleanOffset
		if e == len(rows) {
			return nil
		}
	}
}

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
	outBytes  int64 // largest segment object written
	readBytes int64 // largest GET
	swapped   bool  // counted in res.Partitions
	// tail is the end of the partition's log: its last batch is never
	// removed (as Kafka never cleans the active segment), or a consumer
	// there would find nothing below the high watermark.
	tail int64
}

// held notes the memory the pass holds now, for Result.PeakBytes.
func (p *keyPass) held(n int64) {
	p.res.PeakBytes = max(p.res.PeakBytes, p.m.bytes()+n)
}

// mapKeys puts the keys of rows[d:] into the map, and returns the end of
// the rows it mapped whole (the map is full in rows[e], or e is len(rows)).
func (p *keyPass) mapKeys(ctx context.Context, rows []store.Segment, d int, txns *txnPass) (int, error) {
	rd := &rowReader{b: p.c.b, rows: rows, max: p.readBytes, gets: &p.res.Gets}
	for i := d; i < len(rows); i++ {
		data, err := rd.row(ctx, i)
		if err != nil {
			return 0, err
		}
		p.held(int64(len(rd.buf)))
		var (
			full bool
			serr error
		)
		batch.Each(data, func(h batch.Header, raw []byte) bool {
			if _, skip := p.skips[h.BaseOffset]; skip || h.Control() || txns.data(h) {
				return true
			}
			err := batch.Records(raw, p.limit, func(rec *kmsg.Record) bool {
				full = rec.Key != nil && !p.m.put(rec.Key, h.BaseOffset+int64(rec.OffsetDelta))
				return !full
			})
			if full {
				return false
			}
			if err != nil {
				// Record it now, so that the rewrite keeps it without
				// reading it again.
				serr = p.c.skip(ctx, p.pid, h, err, p.res)
				p.skips[h.BaseOffset] = ""
			}
			return serr == nil
		})
		if serr != nil {
			return 0, serr
		}
		if full {
			return i, nil
		}
	}
	return len(rows), nil
}

// rewrite compacts rows (the log from its start to the end of the mapped
// rows) group by group, and returns the state to record: the earliest
// delete horizon and marker age it kept. ok is false if a swap found its
// rows changed.
func (p *keyPass) rewrite(ctx context.Context, rows []store.Segment, txns *txnPass) (st store.KeyCompaction, ok bool, err error) {
	st.DeleteHorizon, st.MarkerTimestamp = -1, -1
	rd := &rowReader{b: p.c.b, rows: rows, max: p.readBytes, gets: &p.res.Gets}
	g := &group{pid: p.pid, rowBytes: p.c.cfg.RowBytes}
	for i, r := range rows {
		data, err := rd.row(ctx, i)
		if err != nil {
			return st, false, err
		}
		if len(g.rows) == 0 {
			g.rowBase = r.BaseOffset
		}
		g.rows = append(g.rows, r)
		g.changed = g.changed || !strings.HasPrefix(r.ObjectKey, SegmentPrefix)
		var derr error
		batch.Each(data, func(h batch.Header, raw []byte) bool {
			derr = p.batch(ctx, g, txns, &st, h, raw)
			return derr == nil
		})
		if derr != nil {
			return st, false, derr
		}
		p.held(int64(len(rd.buf)) + g.size())
		if g.size() >= p.outBytes && g.output() || i == len(rows)-1 {
			if ok, err := p.finish(ctx, g, r.EndOffset == p.tail); err != nil || !ok {
				return st, false, err
			}
			g = &group{pid: p.pid, rowBytes: p.c.cfg.RowBytes}
		}
	}
	return st, true, nil
}

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
	d, err := decode(h, raw, p.limit)
	if err != nil {
		if err := p.c.skip(ctx, p.pid, h, err, p.res); err != nil {
			return err
		}
		p.skips[h.BaseOffset] = ""
		txns.keep(h)
		g.keep(h, raw)
		return nil
	}
	horizon, stamped := h.DeleteHorizon()
	var (
		keep     = d.recs[:0:0]
		dropped  int
		restamp  bool
		tombstds bool
	)
	for _, rec := range d.recs {
		o := h.BaseOffset + int64(rec.OffsetDelta)
		tombstone := rec.Key != nil && rec.Value == nil
		switch {
		case rec.Key != nil && p.m.latest(rec.Key) > o:
		case tombstone && stamped && horizon <= p.now:
		default:
			keep = append(keep, rec)
			tombstds = tombstds || tombstone
			continue
		}
		dropped++
	}
	if tombstds && !stamped {
		restamp = true
		horizon = p.now + min(p.retention, math.MaxInt64-p.now)
	}
	if tombstds {
		st.DeleteHorizon = minTs(st.DeleteHorizon, horizon)
	}
	switch {
	case len(keep) == 0:
		g.drop(h, raw, dropCount{records: dropped, abortAt: -1})
	case dropped == 0 && !restamp:
		txns.keep(h)
		g.keep(h, raw)
	default:
		if !restamp {
			horizon = -1
		}
		txns.keep(h)
		g.dropped += dropped
		g.changed = true
		g.keep(h, encode(d, keep, horizon))
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
// would come out unchanged is not written. ok is false if the swap found
// the rows changed.
func (p *keyPass) finish(ctx context.Context, g *group, tail bool) (bool, error) {
	g.close(tail)
	if !g.changed {
		return true, nil
	}
	c := p.c
	obj, _ := g.bld.Finish()
	key := segmentKey()
	for i := range g.newRows {
		g.newRows[i].ObjectKey = key
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
	cur      [][]byte
	curSize  int64
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

func (g *group) output() bool { return len(g.cur) > 0 || len(g.newRows) > 0 }

// size is about the size of the group's object so far.
func (g *group) size() int64 { return int64(g.bld.Size()) + g.curSize }

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
	if g.curSize > 0 && g.curSize+int64(len(raw)) > g.rowBytes {
		g.cut(h.BaseOffset)
	}
	g.cur = append(g.cur, raw)
	g.curSize += int64(len(raw))
	g.curMaxTs = max(g.curMaxTs, h.MaxTimestamp)
}

func (g *group) cut(end int64) {
	if len(g.cur) == 0 {
		return
	}
	ch := g.bld.Add(g.pid, g.rowBase, end, g.curMaxTs, g.cur...)
	g.newRows = append(g.newRows, store.Segment{BaseOffset: ch.BaseOffset, EndOffset: ch.EndOffset,
		Position: ch.Position, Length: int32(ch.Length), MaxTimestamp: ch.MaxTimestamp})
	g.rowBase, g.cur, g.curSize, g.curMaxTs = end, nil, 0, 0
}

// close cuts the last index row at the end of the group's rows; at the
// log's tail, it keeps the last batch.
func (g *group) close(tail bool) {
	if g.last != nil && (tail || !g.output()) {
		// Keep the dropped batch as it is, uncounted: the swap needs a
		// row, or the tail a batch.
		raw, h := g.last, g.lastH
		g.last = nil
		g.keep(h, raw)
	}
	g.settle()
	g.cut(g.rows[len(g.rows)-1].EndOffset)
}

// rowReader reads index rows in order, each GET spanning consecutive rows
// of one object up to max bytes.
type rowReader struct {
	b        bucket.Bucket
	rows     []store.Segment
	max      int64
	buf      []byte
	from, to int // rows[from:to] are in buf
	gets     *int
}

func (r *rowReader) row(ctx context.Context, i int) ([]byte, error) {
	if i < r.from || i >= r.to {
		first := r.rows[i]
		n, j := int64(first.Length), i+1
		for ; j < len(r.rows); j++ {
			next, prev := r.rows[j], r.rows[j-1]
			if next.ObjectKey != first.ObjectKey || next.Position != prev.Position+int64(prev.Length) || n+int64(next.Length) > r.max {
				break
			}
			n += int64(next.Length)
		}
		r.buf = nil // not held across the GET
		b, err := r.b.GetRange(ctx, first.ObjectKey, first.Position, n)
		if err != nil {
			return nil, fmt.Errorf("compact: read %s: %w", first.ObjectKey, err)
		}
		*r.gets++
		r.buf, r.from, r.to = b, i, j
	}
	off := r.rows[i].Position - r.rows[r.from].Position
	return r.buf[off : off+int64(r.rows[i].Length)], nil
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

// decode parses a stored batch and copies its records, decompressed under
// limit.
func decode(h batch.Header, raw []byte, limit int) (decoded, error) {
	d := decoded{h: h}
	// The header only: the records are read by batch.Records.
	if err := d.rb.ReadFrom(raw); err != nil {
		return d, fmt.Errorf("%w: %w", batch.ErrCorrupt, err)
	}
	d.rb.Records = nil
	err := batch.Records(raw, limit, func(rec *kmsg.Record) bool {
		r := *rec
		// The record aliases a window the next one overwrites.
		r.Key, r.Value = bytes.Clone(rec.Key), bytes.Clone(rec.Value)
		r.Headers = make([]kmsg.Header, len(rec.Headers))
		for i, hd := range rec.Headers {
			r.Headers[i] = kmsg.Header{Key: strings.Clone(hd.Key), Value: bytes.Clone(hd.Value)}
		}
		d.recs = append(d.recs, r)
		return true
	})
	return d, err
}

// encode writes d's header with only recs, uncompressed. A horizon >= 0
// becomes the batch's delete horizon (KIP-534): its base timestamp, with
// the records' timestamp deltas counted from it.
func encode(d decoded, recs []kmsg.Record, horizon int64) []byte {
	rb := d.rb
	rb.Attributes &^= 0x07 // codec bits: none
	rb.NumRecords = int32(len(recs))
	rb.Records = nil
	for _, r := range recs {
		if horizon >= 0 {
			ts := rb.FirstTimestamp + recordDelta(r)
			r.TimestampDelta64 = ts - horizon
			r.TimestampDelta = int32(r.TimestampDelta64)
			r.Length = 0
			r.Length = int32(len(r.AppendTo(nil)) - 1) // the varint 0 takes one byte
		}
		rb.Records = r.AppendTo(rb.Records)
	}
	if horizon >= 0 {
		rb.Attributes |= batch.AttrDeleteHorizon
		rb.FirstTimestamp = horizon
	}
	raw := rb.AppendTo(nil)
	binary.BigEndian.PutUint32(raw[8:], uint32(len(raw)-12))
	binary.BigEndian.PutUint32(raw[17:], crc32.Checksum(raw[21:], castagnoli))
	return raw
}

// recordDelta is a record's timestamp delta as kmsg decodes it.
func recordDelta(r kmsg.Record) int64 {
	if r.TimestampDelta64 != 0 {
		return r.TimestampDelta64
	}
	return int64(r.TimestampDelta)
}
