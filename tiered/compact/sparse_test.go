package compact_test

import (
	"context"
	"testing"

	"github.com/eddy-streams/eddy/internal/tieredtest"
	"github.com/eddy-streams/eddy/tiered/compact"
)

// A flush object must not stay in the bucket for the sake of one large
// piece when the rest of it is gone from the index: its small pieces
// merged elsewhere by compaction, or another partition's pieces dropped
// by retention. The bucket would keep those bytes until the large
// piece's own retention (a busy partition beside quiet ones in every
// flush). Before objects were flagged sparse, the first case kept 134% of
// the indexed bytes in the bucket and the second 200%.
func TestSparseObjectsGo(t *testing.T) {
	for _, tc := range []struct {
		name      string
		quietSize int // each flush: a 40 KiB piece of hot, one of quiet
		retention bool
	}{
		{name: "compacted", quietSize: 20 << 10},
		{name: "retention", quietSize: 40 << 10, retention: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx := context.Background()
			e := tieredtest.New(t, tieredtest.Topic{Name: "t", Partitions: 2})
			hot, quiet := e.Parts["t"][0], e.Parts["t"][1]
			cfg := compact.DefaultConfig()
			cfg.TargetBytes, cfg.RowBytes, cfg.MinPieces = 1<<20, 64<<10, 4
			c, err := compact.New(cfg, e.St, e.Bucket, -1, e.Log, nil)
			if err != nil {
				t.Fatal(err)
			}
			m := e.Manager(t, nil, nil)
			for i := range 12 {
				tieredtest.Append(t, m, hot, tieredtest.Batch(1, []byte("k"), 40<<10, int64(1000+i)))
				tieredtest.Append(t, m, quiet, tieredtest.Batch(1, []byte("k"), tc.quietSize, int64(1000+i)))
				if err := m.Flush(ctx); err != nil {
					t.Fatal(err)
				}
			}
			m.Close()
			parts := []int64{hot, quiet}
			if tc.retention {
				if _, dropped, err := e.St.ApplyRetention(ctx, quiet, -1, 0); err != nil || dropped != 12 {
					t.Fatalf("retention dropped %d rows of quiet (%v), want 12", dropped, err)
				}
				parts = []int64{hot}
			}
			res := compactAll(t, c)
			collectAndCheck(t, e)
			n, size := e.BucketBytes(t)
			var live int64
			for _, p := range parts {
				segs, err := e.St.Segments(ctx, p, -1, 1000)
				if err != nil {
					t.Fatal(err)
				}
				for _, s := range segs {
					live += int64(s.Length)
				}
			}
			t.Logf("bucket: %d objects, %d bytes; index: %d bytes (%.0f%%); partitions planned for sparse objects: %d",
				n, size, live, 100*float64(size)/float64(live), res.Sparse)
			if float64(size) > 1.1*float64(live) || res.Sparse == 0 {
				t.Errorf("the bucket holds %d bytes for %d indexed (%d sparse plans): objects kept for their large pieces hold dead bytes",
					size, live, res.Sparse)
			}
			coldRead(t, e, parts, 64<<10)
		})
	}
}
