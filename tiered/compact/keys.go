package compact

// Key compaction (cleanup.policy=compact): keep the last record of each key.
//
// A pass over such a partition reads its retained log below the last
// stable offset (up to PassBytes; larger partitions are skipped and
// logged: an open transaction's batches are never touched, txn.go), finds
// each key's
// last offset, and rewrites every batch keeping only records that are the
// last of their key, dropping tombstones (null values) older than
// delete.retention.ms. Rewritten batches keep their base offset, last
// offset delta and producer fields, so offsets never move (gaps are normal
// in a compacted log and every Kafka client skips them); records are
// stored uncompressed; a batch left with no record is dropped. The result
// replaces all of the partition's rows in one SwapSegments, which changes
// nothing if retention or DeleteRecords removed rows meanwhile (new data
// only adds rows after the ones read, which the swap leaves alone).
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
	"slices"
	"strings"
	"time"

	"github.com/eddy-streams/eddy/internal/batch"
	"github.com/eddy-streams/eddy/internal/store"
	"github.com/eddy-streams/eddy/internal/topicconfig"
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
	raw  []byte
	// whole batches are kept as they are without their records being
	// read: batches compaction cannot read, and markers it keeps.
	whole bool
	// drop removes the batch whole: a batch of an aborted transaction, or
	// a marker past its horizon (abortAt: the offset of an abort marker,
	// whose aborted_txns row goes with it; -1 otherwise).
	drop    bool
	abortAt int64
}

// compactKeys rewrites a cleanup.policy=compact partition; see above.
func (c *Compactor) compactKeys(ctx context.Context, pid int64, configs map[string]string, res *Result) error {
	lso, err := c.st.LastStableOffset(ctx, pid)
	if err != nil {
		return err
	}
	rows, err := c.st.Segments(ctx, pid, -1, 100000)
	if err != nil {
		return err
	}
	// Whole rows below the LSO only: above it, a transaction may still
	// end either way.
	for i, r := range rows {
		if r.EndOffset > lso {
			rows = rows[:i]
			break
		}
	}
	if len(rows) == 0 {
		return nil
	}
	var total int64
	for _, r := range rows {
		total += int64(r.Length)
	}
	if total > c.cfg.PassBytes {
		c.log.Warn("partition too large to compact by key in one pass; skipped", "partition", pid, "bytes", total)
		return nil
	}
	// Read each object once.
	type span struct{ lo, hi int64 }
	spans := map[string]*span{}
	for _, r := range rows {
		sp := spans[r.ObjectKey]
		if sp == nil {
			sp = &span{r.Position, r.Position}
			spans[r.ObjectKey] = sp
		}
		sp.lo, sp.hi = min(sp.lo, r.Position), max(sp.hi, r.Position+int64(r.Length))
	}
	data := map[string][]byte{}
	for k, sp := range spans {
		b, err := c.b.GetRange(ctx, k, sp.lo, sp.hi-sp.lo)
		if err != nil {
			return fmt.Errorf("compact: read %s: %w", k, err)
		}
		data[k] = b
		res.Gets++
	}

	skips, err := c.st.CompactionSkips(ctx, pid)
	if err != nil {
		return err
	}
	aborted, err := c.st.AbortedTxns(ctx, pid, rows[0].BaseOffset, lso, 0)
	if err != nil {
		return err
	}
	horizon := time.Now().UnixMilli() - topicconfig.Int64(configs, "delete.retention.ms")
	txns := newTxnPass(aborted, horizon)
	limit := batch.DecompressLimit(topicconfig.Int64(configs, "max.message.bytes"))
	var batches []decoded
	last := map[string]int64{}
	for _, r := range rows {
		off := r.Position - spans[r.ObjectKey].lo
		var derr error
		batch.Each(data[r.ObjectKey][off:off+int64(r.Length)], func(h batch.Header, raw []byte) bool {
			if h.Control() {
				remove, abort := txns.marker(h, raw)
				d := decoded{h: h, raw: raw, whole: !remove, drop: remove, abortAt: -1}
				if remove && abort {
					d.abortAt = h.BaseOffset
				}
				batches = append(batches, d)
				return true
			}
			if txns.data(h) {
				batches = append(batches, decoded{h: h, raw: raw, drop: true, abortAt: -1})
				return true
			}
			if _, ok := skips[h.BaseOffset]; ok {
				batches = append(batches, decoded{h: h, raw: raw, whole: true})
				return true
			}
			d, err := decode(h, raw, limit)
			if err != nil {
				if derr = c.skip(ctx, pid, h, err, res); derr != nil {
					return false
				}
				batches = append(batches, decoded{h: h, raw: raw, whole: true})
				return true
			}
			for _, rec := range d.recs {
				if rec.Key != nil {
					last[string(rec.Key)] = h.BaseOffset + int64(rec.OffsetDelta)
				}
			}
			batches = append(batches, d)
			return true
		})
		if derr != nil {
			return derr
		}
	}

	var (
		bld          object.Builder
		newRows      []store.Segment
		cur          [][]byte
		curSize      int64
		curMaxTs     int64
		rowBase      = rows[0].BaseOffset
		dropped      int
		kept         int
		abortedBatch int
		markers      int
		abortMarkers []int64
	)
	cut := func(end int64) {
		if len(cur) == 0 {
			return
		}
		ch := bld.Add(pid, rowBase, end, curMaxTs, cur...)
		newRows = append(newRows, store.Segment{BaseOffset: ch.BaseOffset, EndOffset: ch.EndOffset,
			Position: ch.Position, Length: int32(ch.Length), MaxTimestamp: ch.MaxTimestamp})
		rowBase, cur, curSize, curMaxTs = end, nil, 0, 0
	}
	for i, d := range batches {
		if d.drop && (i < len(batches)-1 || len(cur) > 0 || len(newRows) > 0) {
			if d.h.Control() {
				markers++
				if d.abortAt >= 0 {
					abortMarkers = append(abortMarkers, d.abortAt)
				}
			} else {
				abortedBatch++
			}
			continue
		}
		if d.whole || d.drop { // a dropped batch kept only because a swap needs a row
			if curSize > 0 && curSize+int64(len(d.raw)) > c.cfg.RowBytes {
				cut(d.h.BaseOffset)
			}
			cur = append(cur, d.raw)
			curSize += int64(len(d.raw))
			curMaxTs = max(curMaxTs, d.h.MaxTimestamp)
			kept += int(d.h.NumRecords)
			continue
		}
		keep := d.recs[:0:0]
		for _, rec := range d.recs {
			o := d.h.BaseOffset + int64(rec.OffsetDelta)
			ts := d.h.BaseTimestamp + rec.TimestampDelta64
			switch {
			case rec.Key != nil && last[string(rec.Key)] != o:
			case rec.Value == nil && ts < horizon:
			default:
				keep = append(keep, rec)
				continue
			}
			dropped++
		}
		var out []byte
		switch {
		case len(keep) == len(d.recs):
			out = d.raw // unchanged
		case len(keep) > 0:
			out = encode(d, keep)
		case i == len(batches)-1 && len(cur) == 0 && len(newRows) == 0:
			out = d.raw // keep something: a swap needs at least one row
		default:
			continue
		}
		kept += len(keep)
		if curSize > 0 && curSize+int64(len(out)) > c.cfg.RowBytes {
			cut(d.h.BaseOffset)
		}
		cur = append(cur, out)
		curSize += int64(len(out))
		curMaxTs = max(curMaxTs, d.h.MaxTimestamp)
	}
	cut(rows[len(rows)-1].EndOffset)
	if dropped == 0 && abortedBatch == 0 && markers == 0 && !slices.ContainsFunc(rows, func(s store.Segment) bool { return !strings.HasPrefix(s.ObjectKey, SegmentPrefix) }) {
		return nil // nothing to do
	}
	obj, _ := bld.Finish()
	key := segmentKey()
	for i := range newRows {
		newRows[i].ObjectKey = key
	}
	if err := c.st.RegisterObject(ctx, key, int64(len(obj)), c.brokerID); err != nil {
		return err
	}
	if err := c.b.Put(ctx, key, obj); err != nil {
		return fmt.Errorf("compact: put %s: %w", key, err)
	}
	res.Objects++
	ok, err := c.st.SwapCompacted(ctx, pid, rows, newRows, key, abortMarkers)
	if err != nil {
		return err
	}
	if !ok {
		res.Conflicts++
		c.swaps.WithLabelValues("conflict").Inc()
		return nil
	}
	c.swaps.WithLabelValues("ok").Inc()
	res.Partitions++
	res.Pieces += len(rows)
	res.DroppedRecords += dropped
	res.AbortedBatches += abortedBatch
	res.DroppedMarkers += markers
	c.log.Debug("compacted by key", "partition", pid, "kept", kept, "dropped", dropped,
		"aborted_batches", abortedBatch, "markers", markers, "key", key)
	return nil
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
	d := decoded{h: h, raw: raw}
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

// encode writes d's header with only recs, uncompressed.
func encode(d decoded, recs []kmsg.Record) []byte {
	rb := d.rb
	rb.Attributes &^= 0x07 // codec bits: none
	rb.NumRecords = int32(len(recs))
	rb.Records = nil
	for _, r := range recs {
		rb.Records = r.AppendTo(rb.Records)
	}
	raw := rb.AppendTo(nil)
	binary.BigEndian.PutUint32(raw[8:], uint32(len(raw)-12))
	binary.BigEndian.PutUint32(raw[17:], crc32.Checksum(raw[21:], castagnoli))
	return raw
}
