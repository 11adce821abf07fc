package compact_test

import (
	"context"
	"math"
	"strings"
	"testing"

	"github.com/eddy-streams/eddy/internal/store"
	"github.com/eddy-streams/eddy/internal/tieredtest"
	"github.com/eddy-streams/eddy/tiered/compact"
)

// A partition written a little at a time, with compaction passes between
// flushes as the jobs run them, keeps a few index rows per compacted
// object: rows of about RowBytes, a few small ones at its tail (of
// decreasing sizes) and the pieces not yet merged, however many passes
// ran. Before small rows were merged again, every pass left one more
// small row per partition, so the index grew with the flushes. Every
// record is still read back cold, and fsck finds the index and the bucket
// agree after garbage collection.
func TestMergedRowsStayFewPerPartition(t *testing.T) {
	ctx := context.Background()
	const (
		parts   = 3
		flushes = 640
		every   = 8 // flushes between compaction passes
	)
	e := tieredtest.New(t, tieredtest.Topic{Name: "t", Partitions: parts})
	pids := e.Parts["t"]
	cfg := compact.DefaultConfig()
	cfg.TargetBytes, cfg.RowBytes, cfg.MinPieces = 1<<20, 32<<10, every
	c, err := compact.New(cfg, e.St, e.Bucket, -1, e.Log, nil)
	if err != nil {
		t.Fatal(err)
	}
	m := e.Manager(t, nil, nil)
	var rewritten int
	for i := range flushes {
		for _, p := range pids {
			tieredtest.Append(t, m, p, tieredtest.Batch(2, []byte("k"), 200, int64(1000+i)))
		}
		if err := m.Flush(ctx); err != nil {
			t.Fatal(err)
		}
		if (i+1)%every == 0 {
			r, err := c.Compact(ctx, store.Shard{})
			if err != nil {
				t.Fatal(err)
			}
			rewritten += r.Rewritten
		}
	}
	m.Close()
	if rewritten == 0 {
		t.Error("no small row was merged again")
	}

	var kept int64
	for _, p := range pids {
		segs, err := e.St.Segments(ctx, p, -1, 100000)
		if err != nil {
			t.Fatal(err)
		}
		var bytes int64
		small, pieces := 0, 0
		for _, s := range segs {
			bytes += int64(s.Length)
			switch {
			case !strings.HasPrefix(s.ObjectKey, compact.SegmentPrefix):
				pieces++
			case int64(s.Length) < cfg.RowBytes/2:
				small++
			}
		}
		kept += bytes
		// Rows of at least RowBytes/2, the small tail (each at most
		// half the one before: log2 of RowBytes over the smallest run,
		// one pass's pieces) and the pieces of the last passes.
		runBytes := bytes / flushes * every
		bound := int(bytes/(cfg.RowBytes/2)) + int(math.Ceil(math.Log2(float64(cfg.RowBytes)/float64(runBytes)))) + 1 + every
		t.Logf("partition %d: %d rows (%d small, %d pieces) for %d bytes after %d flushes; bound %d", p, len(segs), small, pieces, bytes, flushes, bound)
		if len(segs) > bound {
			t.Errorf("partition %d has %d index rows (%d small, %d pieces) for %d bytes, want at most %d", p, len(segs), small, pieces, bytes, bound)
		}
	}
	ix, err := e.St.IndexSize(ctx, compact.SegmentPrefix)
	if err != nil {
		t.Fatal(err)
	}
	if ix.DataBytes != kept {
		t.Errorf("index references %d bytes, the partitions' rows %d", ix.DataBytes, kept)
	}
	gib := float64(kept) / (1 << 30)
	t.Logf("index: %d rows, %d bytes of rows for %d bytes kept: %.0f rows and %.0f bytes per GiB kept (%d flushes of %d partitions)",
		ix.Rows, ix.RowBytes, kept, float64(ix.Rows)/gib, float64(ix.RowBytes)/gib, flushes, parts)

	collectAndCheck(t, e)
	coldRead(t, e, pids, 64<<10)
}
