package gc_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/eddy-streams/eddy/data-plane/leader"
	"github.com/eddy-streams/eddy/internal/pgtest"
	"github.com/eddy-streams/eddy/internal/store"
	"github.com/eddy-streams/eddy/internal/tieredtest"
	"github.com/eddy-streams/eddy/tiered/fsck"
	"github.com/eddy-streams/eddy/tiered/gc"
	"github.com/eddy-streams/eddy/tiered/retention"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

func collector(t *testing.T, e *tieredtest.Env, grace time.Duration) *gc.Collector {
	t.Helper()
	cfg := gc.DefaultConfig()
	cfg.Grace, cfg.OrphanAge = grace, grace
	c, err := gc.New(cfg, e.St, e.Bucket, e.Log, nil)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func check(t *testing.T, e *tieredtest.Env) *fsck.Report {
	t.Helper()
	r, err := fsck.Check(context.Background(), e.St, e.Bucket, 0)
	if err != nil {
		t.Fatal(err)
	}
	if !r.OK() {
		var b []byte
		r.Print(writer{&b})
		t.Fatalf("index and bucket inconsistent:\n%s", b)
	}
	return r
}

type writer struct{ b *[]byte }

func (w writer) Write(p []byte) (int, error) { *w.b = append(*w.b, p...); return len(p), nil }

// Retention by time and by size drops whole pieces and moves the log start;
// garbage collection then deletes the objects nothing references, so the
// bucket shrinks; the checker finds index and bucket consistent and clean,
// and what is retained reads back completely.
func TestRetentionAndGCShrinkTheBucket(t *testing.T) {
	ctx := context.Background()
	e := tieredtest.New(t,
		tieredtest.Topic{Name: "bytime", Partitions: 2, Configs: map[string]string{"retention.ms": "3600000"}},
		tieredtest.Topic{Name: "bysize", Partitions: 1, Configs: map[string]string{"retention.bytes": "20000", "retention.ms": "-1"}},
		tieredtest.Topic{Name: "forever", Partitions: 1, Configs: map[string]string{"retention.ms": "-1"}},
		tieredtest.Topic{Name: "compacted", Partitions: 1, Configs: map[string]string{"cleanup.policy": "compact", "retention.ms": "1"}},
	)
	// A tiny in-memory cache, so reads of old offsets go to the index.
	m := e.Manager(t, func(cfg *leader.Config) { cfg.CacheBytes = 1 }, nil)
	old := time.Now().Add(-2 * time.Hour).UnixMilli()
	now := time.Now().UnixMilli()
	bytime, bysize := e.Parts["bytime"], e.Parts["bysize"][0]
	forever, compacted := e.Parts["forever"][0], e.Parts["compacted"][0]

	// Ten flushes of old data on bytime only: these objects become garbage.
	for range 10 {
		for _, p := range bytime {
			tieredtest.Append(t, m, p, tieredtest.Batch(10, []byte("k"), 100, old))
		}
		if err := m.Flush(ctx); err != nil {
			t.Fatal(err)
		}
	}
	// Ten flushes of 1 KiB+ per partition everywhere, old timestamps on
	// forever and compacted (kept anyway), new ones elsewhere.
	for range 10 {
		for _, p := range bytime {
			tieredtest.Append(t, m, p, tieredtest.Batch(10, []byte("k"), 100, now))
		}
		tieredtest.Append(t, m, bysize, tieredtest.Batch(5, []byte("k"), 1000, now))
		tieredtest.Append(t, m, forever, tieredtest.Batch(10, []byte("k"), 100, old))
		tieredtest.Append(t, m, compacted, tieredtest.Batch(10, []byte("k"), 100, old))
		if err := m.Flush(ctx); err != nil {
			t.Fatal(err)
		}
	}
	check(t, e)
	nBefore, sizeBefore := e.BucketBytes(t)

	res, err := retention.New(e.St, e.Log, nil).Enforce(ctx, store.Shard{})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("retention: %+v", res)
	for _, p := range bytime {
		st, err := e.St.LoadPartition(ctx, p, time.Time{})
		if err != nil {
			t.Fatal(err)
		}
		if st.LogStartOffset != 100 || st.HighWatermark != 200 {
			t.Errorf("bytime partition %d: log start %d hw %d, want 100 and 200", p, st.LogStartOffset, st.HighWatermark)
		}
	}
	st, _ := e.St.LoadPartition(ctx, bysize, time.Time{})
	segs, _ := e.St.Segments(ctx, bysize, -1, 100)
	var kept int64
	for _, s := range segs {
		kept += int64(s.Length)
	}
	if kept < 20000 || kept-int64(segs[0].Length) >= 20000 || st.LogStartOffset != segs[0].BaseOffset || st.LogStartOffset == 0 {
		t.Errorf("bysize keeps %d bytes in %d rows from %d (log start %d), want the fewest rows holding >= 20000",
			kept, len(segs), segs[0].BaseOffset, st.LogStartOffset)
	}
	for _, p := range []int64{forever, compacted} {
		if st, _ := e.St.LoadPartition(ctx, p, time.Time{}); st.LogStartOffset != 0 {
			t.Errorf("partition %d without delete retention moved its log start to %d", p, st.LogStartOffset)
		}
	}

	// Retention learned through a read: the leader still believes in log
	// start 0 and must answer OFFSET_OUT_OF_RANGE, then serve from 100.
	if _, err := tieredtest.Led(t, m, bytime[0]).Read(ctx, 0, 1<<20); !errors.Is(err, leader.ErrOffsetOutOfRange) {
		t.Fatalf("read below the new log start: %v, want ErrOffsetOutOfRange", err)
	}
	if start, _ := tieredtest.Led(t, m, bytime[0]).Offsets(); start != 100 {
		t.Fatalf("leader's log start %d after the failed read, want 100", start)
	}

	// A grace period protects objects from collection.
	c := collector(t, e, time.Hour)
	if r, err := c.Collect(ctx); err != nil || r.Deleted != 0 {
		t.Fatalf("collect within the grace period: %+v %v", r, err)
	}
	c = collector(t, e, 0)
	r, err := c.Collect(ctx)
	if err != nil {
		t.Fatal(err)
	}
	nAfter, sizeAfter := e.BucketBytes(t)
	t.Logf("gc %+v: bucket %d objects / %d bytes -> %d / %d", r, nBefore, sizeBefore, nAfter, sizeAfter)
	if r.Deleted < 10 || nAfter > nBefore-10 || sizeAfter >= sizeBefore {
		t.Fatalf("bucket did not shrink: %d objects / %d bytes -> %d / %d", nBefore, sizeBefore, nAfter, sizeAfter)
	}
	if rep := check(t, e); !rep.Clean() {
		t.Fatalf("garbage left after collection: %d orphans, %d unreferenced", len(rep.Orphans), len(rep.Unreferenced))
	}

	// Everything retained reads back from the bucket, through a new
	// leader without any cache.
	m.Close()
	m2 := e.Manager(t, func(cfg *leader.Config) { cfg.WALDir = e.Dir + "/wal2" }, nil)
	for _, p := range bytime {
		if n, _ := tieredtest.ReadAll(t, m2, p, 100); n != 100 {
			t.Errorf("partition %d: read %d records after retention, want 100", p, n)
		}
	}
	if n, _ := tieredtest.ReadAll(t, m2, forever, 0); n != 100 {
		t.Errorf("forever: read %d records, want 100", n)
	}
}

// Garbage collection re-checks references in the statement that deletes
// the objects row, keeps an object a compaction claimed after it was
// marked, and a crash between the row's deletion and the blob's leaves an
// orphan that the bucket sweep removes.
func TestGCNeverDeletesReferencedObjects(t *testing.T) {
	ctx := context.Background()
	e := tieredtest.New(t, tieredtest.Topic{Name: "t", Partitions: 1})
	pid := e.Parts["t"][0]
	m := e.Manager(t, nil, nil)
	for range 3 {
		tieredtest.Append(t, m, pid, tieredtest.Batch(2, []byte("k"), 10, 1))
		if err := m.Flush(ctx); err != nil {
			t.Fatal(err)
		}
	}
	old, err := e.St.Segments(ctx, pid, -1, 10)
	if err != nil || len(old) != 3 {
		t.Fatalf("segments: %v %v", old, err)
	}

	// A compaction registered its object long ago and got slow: the
	// collector marks it (nothing references it yet).
	const key = "seg/1/slow.obj"
	data, err := e.Bucket.Get(ctx, old[0].ObjectKey)
	if err != nil {
		t.Fatal(err)
	}
	if err := e.St.RegisterObject(ctx, key, int64(len(data)), 1); err != nil {
		t.Fatal(err)
	}
	if err := e.Bucket.Put(ctx, key, data); err != nil {
		t.Fatal(err)
	}
	if n, err := e.St.MarkUnreferenced(ctx, 0); err != nil || n != 1 {
		t.Fatalf("marked %d (%v), want the compaction's object", n, err)
	}
	// The swap clears the mark under the row lock, so the sweep that
	// follows keeps the object.
	row := old[0]
	row.ObjectKey = key
	if ok, err := e.St.SwapSegments(ctx, pid, old[:1], []store.Segment{row}, key); err != nil || !ok {
		t.Fatalf("swap: %v %v", ok, err)
	}
	// Swapping rows that are gone changes nothing.
	if ok, err := e.St.SwapSegments(ctx, pid, old[:1], []store.Segment{row}, key); err != nil || ok {
		t.Fatalf("second swap of the same rows: %v %v, want a refusal", ok, err)
	}
	c := collector(t, e, 0)
	if _, err := c.Collect(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := e.Bucket.Get(ctx, key); err != nil {
		t.Fatalf("referenced object collected: %v", err)
	}
	check(t, e)

	if _, err := e.Bucket.Get(ctx, old[0].ObjectKey); err == nil {
		t.Fatalf("unreferenced object %s survived collection without grace", old[0].ObjectKey)
	}

	// Compact the second piece too; then collect only the row of the
	// object it leaves unreferenced, as a collector that crashes before
	// deleting the blob would.
	const key2 = "seg/1/second.obj"
	data2, err := e.Bucket.Get(ctx, old[1].ObjectKey)
	if err != nil {
		t.Fatal(err)
	}
	if err := e.St.RegisterObject(ctx, key2, int64(len(data2)), 1); err != nil {
		t.Fatal(err)
	}
	if err := e.Bucket.Put(ctx, key2, data2); err != nil {
		t.Fatal(err)
	}
	row = old[1]
	row.ObjectKey = key2
	if ok, err := e.St.SwapSegments(ctx, pid, old[1:2], []store.Segment{row}, key2); err != nil || !ok {
		t.Fatalf("swap: %v %v", ok, err)
	}
	if _, err := e.St.MarkUnreferenced(ctx, 0); err != nil {
		t.Fatal(err)
	}
	gone, err := e.St.SweepUnreferenced(ctx, 0, 10)
	if err != nil || len(gone) != 1 || gone[0].Key != old[1].ObjectKey {
		t.Fatalf("sweep: %v %v, want %s", gone, err, old[1].ObjectKey)
	}
	rep := check(t, e)
	if len(rep.Orphans) != 1 || rep.Orphans[0].Key != old[1].ObjectKey {
		t.Fatalf("orphans %v, want %s", rep.Orphans, old[1].ObjectKey)
	}
	if n, err := c.SweepOrphans(ctx); err != nil || n != 1 {
		t.Fatalf("orphan sweep deleted %d (%v), want 1", n, err)
	}
	if rep := check(t, e); !rep.Clean() || rep.Referenced != 3 {
		t.Fatalf("after the orphan sweep: clean=%v referenced=%d", rep.Clean(), rep.Referenced)
	}
	m.Close()
	m2 := e.Manager(t, func(cfg *leader.Config) { cfg.WALDir = e.Dir + "/wal2" }, nil)
	if n, _ := tieredtest.ReadAll(t, m2, pid, 0); n != 6 {
		t.Fatalf("read %d records, want 6", n)
	}
}
