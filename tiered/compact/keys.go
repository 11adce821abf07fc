package compact

// Key compaction (cleanup.policy=compact): keep the last record of each key.
//
// A pass over such a partition reads its whole retained log (up to
// PassBytes; larger partitions are skipped and logged), finds each key's
// last offset, and rewrites every batch keeping only records that are the
// last of their key, dropping tombstones (null values) older than
// delete.retention.ms. Rewritten batches keep their base offset, last
// offset delta and producer fields, so offsets never move (gaps are normal
// in a compacted log and every Kafka client skips them); records are
// stored uncompressed; a batch left with no record is dropped. The result
// replaces all of the partition's rows in one SwapSegments, which changes
// nothing if retention or DeleteRecords removed rows meanwhile (new data
// only adds rows after the ones read, which the swap leaves alone).

import (
	"context"
	"encoding/binary"
	"fmt"
	"hash/crc32"
	"slices"
	"strings"
	"time"

	"github.com/eddy-streams/eddy/internal/batch"
	"github.com/eddy-streams/eddy/internal/store"
	"github.com/eddy-streams/eddy/internal/topicconfig"
	"github.com/eddy-streams/eddy/tiered/object"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

var (
	decompressor = kgo.DefaultDecompressor()
	castagnoli   = crc32.MakeTable(crc32.Castagnoli)
)

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
}

// compactKeys rewrites a cleanup.policy=compact partition; see above.
func (c *Compactor) compactKeys(ctx context.Context, pid int64, configs map[string]string, res *Result) error {
	rows, err := c.st.Segments(ctx, pid, -1, 100000)
	if err != nil || len(rows) == 0 {
		return err
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

	var batches []decoded
	last := map[string]int64{}
	for _, r := range rows {
		off := r.Position - spans[r.ObjectKey].lo
		var derr error
		batch.Each(data[r.ObjectKey][off:off+int64(r.Length)], func(h batch.Header, raw []byte) bool {
			d, err := decode(h, raw)
			if err != nil {
				derr = fmt.Errorf("compact: partition %d offset %d: %w", pid, h.BaseOffset, err)
				return false
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

	tombstoneCutoff := time.Now().UnixMilli() - topicconfig.Int64(configs, "delete.retention.ms")
	var (
		bld      object.Builder
		newRows  []store.Segment
		cur      [][]byte
		curSize  int64
		curMaxTs int64
		rowBase  = rows[0].BaseOffset
		dropped  int
		kept     int
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
		keep := d.recs[:0:0]
		for _, rec := range d.recs {
			o := d.h.BaseOffset + int64(rec.OffsetDelta)
			ts := d.h.BaseTimestamp + rec.TimestampDelta64
			switch {
			case rec.Key != nil && last[string(rec.Key)] != o:
			case rec.Value == nil && ts < tombstoneCutoff:
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
	if dropped == 0 && !slices.ContainsFunc(rows, func(s store.Segment) bool { return !strings.HasPrefix(s.ObjectKey, SegmentPrefix) }) {
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
	ok, err := c.st.SwapSegments(ctx, pid, rows, newRows, key)
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
	c.log.Debug("compacted by key", "partition", pid, "kept", kept, "dropped", dropped, "key", key)
	return nil
}

// decode parses a stored batch and its records (decompressed).
func decode(h batch.Header, raw []byte) (decoded, error) {
	d := decoded{h: h, raw: raw}
	if err := d.rb.ReadFrom(raw); err != nil {
		return d, err
	}
	recs := d.rb.Records
	if h.Codec() != batch.CodecNone {
		var err error
		if recs, err = decompressor.Decompress(recs, kgo.CompressionCodecType(h.Codec())); err != nil {
			return d, err
		}
	}
	for i := range h.NumRecords {
		length, n := binary.Varint(recs)
		if n <= 0 || length < 0 || length > int64(len(recs)-n) {
			return d, fmt.Errorf("record %d of %d: bad length", i, h.NumRecords)
		}
		var rec kmsg.Record
		if err := rec.ReadFrom(recs[:n+int(length)]); err != nil {
			return d, fmt.Errorf("record %d of %d: %w", i, h.NumRecords, err)
		}
		d.recs = append(d.recs, rec)
		recs = recs[n+int(length):]
	}
	return d, nil
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
