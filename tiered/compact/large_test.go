package compact_test

import (
	"context"
	"strings"
	"testing"

	"github.com/eddy-streams/eddy/internal/tieredtest"
	"github.com/eddy-streams/eddy/tiered/compact"
)

// Pieces of at least RowBytes/2 stay where they are (rewriting them would
// cost a GET and a PUT of every byte for no fewer rows); the small pieces
// before one are merged although they are fewer than MinPieces (no more
// will join them) once the partition has MinPieces small pieces, and the
// small pieces at the tail wait for more.
func TestLargePiecesStay(t *testing.T) {
	ctx := context.Background()
	e := tieredtest.New(t, tieredtest.Topic{Name: "t", Partitions: 1})
	pid := e.Parts["t"][0]
	cfg := compact.DefaultConfig()
	cfg.TargetBytes, cfg.RowBytes, cfg.MinPieces = 1<<20, 64<<10, 16
	c, err := compact.New(cfg, e.St, e.Bucket, -1, e.Log, nil)
	if err != nil {
		t.Fatal(err)
	}
	m := e.Manager(t, nil, nil)
	// small ×14, large, large, small ×3
	var sizes []int
	for range 14 {
		sizes = append(sizes, 1000)
	}
	sizes = append(sizes, 40<<10, 40<<10, 1000, 1000, 1000)
	for i, size := range sizes {
		tieredtest.Append(t, m, pid, tieredtest.Batch(1, []byte("k"), size, int64(1000+i)))
		if err := m.Flush(ctx); err != nil {
			t.Fatal(err)
		}
	}
	m.Close()
	res := compactAll(t, c)
	segs, err := e.St.Segments(ctx, pid, -1, 100)
	if err != nil {
		t.Fatal(err)
	}
	var kinds []string
	for _, s := range segs {
		switch {
		case strings.HasPrefix(s.ObjectKey, compact.SegmentPrefix):
			kinds = append(kinds, "merged")
		case int64(s.Length) >= cfg.RowBytes/2:
			kinds = append(kinds, "large")
		default:
			kinds = append(kinds, "small")
		}
	}
	if got, want := strings.Join(kinds, " "), "merged large large small small small"; got != want || res.Pieces != 14 {
		t.Errorf("rows %q after merging %d pieces, want %q after 14", got, res.Pieces, want)
	}
	collectAndCheck(t, e)
	coldRead(t, e, e.Parts["t"], 64<<10)
}
