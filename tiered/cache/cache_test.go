package cache_test

import (
	"bytes"
	"context"
	"errors"
	"math/rand/v2"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/eddy-streams/eddy/tiered/bucket"
	"github.com/eddy-streams/eddy/tiered/cache"
	"github.com/eddy-streams/eddy/tiered/fsbucket"
	"github.com/prometheus/client_golang/prometheus"
)

func setup(t *testing.T, cfg cache.Config, objects map[string][]byte) (*cache.Cache, *prometheus.Registry) {
	t.Helper()
	dir := t.TempDir()
	fb, err := fsbucket.Open(dir + "/objects")
	if err != nil {
		t.Fatal(err)
	}
	reg := prometheus.NewRegistry()
	b := bucket.Instrument(fb, reg, "fs")
	for k, v := range objects {
		if err := b.Put(context.Background(), k, v); err != nil {
			t.Fatal(err)
		}
	}
	cfg.Dir = dir + "/cache"
	c, err := cache.Open(cfg, b, reg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c, reg
}

func random(n int) []byte {
	b := make([]byte, n)
	r := rand.New(rand.NewPCG(1, uint64(n)))
	for i := range b {
		b[i] = byte(r.Uint32())
	}
	return b
}

// Every range of every object reads back exactly, across block edges,
// whatever the cache holds.
func TestReadRangeIsExact(t *testing.T) {
	obj := random(10_000)
	c, _ := setup(t, cache.Config{MaxBytes: 2048, BlockBytes: 1000, ReadAhead: 1}, map[string][]byte{"data/a": obj})
	ctx := context.Background()
	r := rand.New(rand.NewPCG(2, 3))
	for range 500 {
		off := r.Int64N(int64(len(obj)))
		n := r.Int64N(int64(len(obj)) - off + 1)
		got, err := c.ReadRange(ctx, "data/a", int64(len(obj)), off, n)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, obj[off:off+n]) {
			t.Fatalf("range [%d, %d) differs", off, off+n)
		}
	}
	if _, err := c.ReadRange(ctx, "data/a", int64(len(obj)), 9000, 2000); err == nil {
		t.Fatal("read past the end succeeded")
	}
	if _, err := c.ReadRange(ctx, "data/missing", 100, 0, 10); !bucket.IsNotFound(err) {
		t.Fatalf("missing object: %v", err)
	}
	if got, err := c.ReadRange(ctx, "data/a", -1, 5, 10); err != nil || !bytes.Equal(got, obj[5:15]) {
		t.Fatalf("unknown size: %v", err)
	}
	time.Sleep(10 * time.Millisecond) // let read-ahead settle
	if s := c.Stats(); s.CachedBytes > 2048 {
		t.Fatalf("cache holds %d bytes, bound 2048", s.CachedBytes)
	}
}

// A sequential reader costs one GET per block, and read-ahead has the
// next block ready; re-reading is served from disk.
func TestSequentialReadCostsOneGetPerBlock(t *testing.T) {
	const size, block = 1 << 20, 64 << 10
	obj := random(size)
	c, _ := setup(t, cache.Config{MaxBytes: 4 << 20, BlockBytes: block, ReadAhead: 2}, map[string][]byte{"seg/a": obj})
	ctx := context.Background()
	for pass := range 2 {
		for off := int64(0); off < size; off += 10_000 {
			n := min(10_000, size-off)
			got, err := c.ReadRange(ctx, "seg/a", size, off, n)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got, obj[off:off+n]) {
				t.Fatalf("pass %d: range at %d differs", pass, off)
			}
		}
	}
	s := c.Stats()
	t.Logf("%+v, %.2f GETs per MiB", s, s.GetsPerMiB())
	if s.Gets != size/block {
		t.Fatalf("%d GETs for %d blocks", s.Gets, size/block)
	}
	if s.Misses >= s.Gets/2 {
		t.Fatalf("%d of %d blocks were waited for: read-ahead is not working", s.Misses, s.Gets)
	}
}

// Concurrent readers of one missing block share one GET.
func TestConcurrentMissesShareOneGet(t *testing.T) {
	obj := random(100_000)
	c, _ := setup(t, cache.Config{MaxBytes: 2 << 20, BlockBytes: 1 << 20}, map[string][]byte{"data/a": obj})
	var wg sync.WaitGroup
	for range 16 {
		wg.Go(func() {
			got, err := c.ReadRange(context.Background(), "data/a", int64(len(obj)), 100, 1000)
			if err != nil || !bytes.Equal(got, obj[100:1100]) {
				t.Errorf("read: %v", err)
			}
		})
	}
	wg.Wait()
	if g := c.Stats().Gets; g != 1 {
		t.Fatalf("%d GETs, want 1", g)
	}
}

// Open and Close remove the cache's own files and nothing else.
func TestOpenAndCloseKeepForeignFiles(t *testing.T) {
	dir := t.TempDir()
	fb, err := fsbucket.Open(dir + "/objects")
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if err := fb.Put(ctx, "data/a", random(5000)); err != nil {
		t.Fatal(err)
	}
	cdir := dir + "/cache"
	if err := os.MkdirAll(cdir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(cdir+"/precious", []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	c, err := cache.Open(cache.Config{Dir: cdir, MaxBytes: 1 << 20, BlockBytes: 1000}, fb, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.ReadRange(ctx, "data/a", 5000, 0, 5000); err != nil {
		t.Fatal(err)
	}
	if ents, _ := os.ReadDir(cdir); len(ents) != 6 {
		t.Fatalf("%d files in the cache directory, want 5 blocks and the foreign file", len(ents))
	}
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	ents, _ := os.ReadDir(cdir)
	if len(ents) != 1 || ents[0].Name() != "precious" {
		t.Fatalf("after Close: %v", ents)
	}
	if _, err := c.ReadRange(ctx, "data/a", 5000, 0, 10); !errors.Is(err, cache.ErrClosed) {
		t.Fatalf("read after close: %v", err)
	}
}

// A scan of more than the whole cache, through read-ahead as the leader
// drives it, does not evict what a repeated reader reads: that block was
// read twice and sits in the protected segment, which scans never reach.
func TestScanDoesNotEvictHotReader(t *testing.T) {
	const block = 64 << 10
	objects := map[string][]byte{"data/hot": random(block)}
	for i := range 64 {
		objects[fmt.Sprintf("data/scan-%02d", i)] = random(block + i) // 2 blocks each
	}
	cfg := cache.Config{MaxBytes: 16 * block, BlockBytes: block, ScanBytes: 8 * block,
		ReadAheadBytes: 4 * block, Parallelism: 4}
	c, _ := setup(t, cfg, objects)
	ctx := context.Background()
	read := func(key string, off, n int64) {
		t.Helper()
		obj := objects[key]
		got, err := c.ReadRange(ctx, key, int64(len(obj)), off, n)
		if err != nil || !bytes.Equal(got, obj[off:off+n]) {
			t.Fatalf("%s [%d, %d): %v", key, off, off+n, err)
		}
	}
	// The tailing reader reads its block, then part of it again.
	read("data/hot", 0, 1000)
	read("data/hot", 1000, 1000)
	read("data/hot", 500, 1000)
	if s := c.Stats(); s.ProtectedBytes != block || s.Gets != 1 {
		t.Fatalf("after re-reading: %+v, want one GET and its block protected", s)
	}
	// The scan: 64 objects of two blocks, 8 times the cache, each read
	// once in two disjoint pieces (two partitions' chunks), the next
	// object prefetched first.
	for i := range 64 {
		if i+1 < 64 {
			next := fmt.Sprintf("data/scan-%02d", i+1)
			c.Prefetch(next, int64(len(objects[next])), 0, int64(len(objects[next])))
		}
		key := fmt.Sprintf("data/scan-%02d", i)
		half := int64(len(objects[key]) / 2)
		read(key, half, int64(len(objects[key]))-half)
		read(key, 0, half)
		if s := c.Stats(); s.CachedBytes > cfg.MaxBytes || s.CachedBytes-s.ProtectedBytes > cfg.ScanBytes {
			t.Fatalf("after object %d the cache holds %+v, bounds %d and %d on probation", i, s, cfg.MaxBytes, cfg.ScanBytes)
		}
	}
	before := c.Stats()
	read("data/hot", 0, block)
	after := c.Stats()
	t.Logf("%+v", after)
	if after.Gets != before.Gets {
		t.Fatalf("the hot reader's block was evicted by the scan: %d GETs for it", after.Gets-before.Gets)
	}
	if after.ReadAheadHits < 32 {
		t.Fatalf("%d read-ahead hits over a prefetched scan of 64 objects", after.ReadAheadHits)
	}
	if after.GetBytes != int64(block)+scanBytes(objects) {
		t.Fatalf("GETs returned %d bytes, want each byte once (%d)", after.GetBytes, int64(block)+scanBytes(objects))
	}
}

func scanBytes(objects map[string][]byte) (n int64) {
	for k, v := range objects {
		if strings.HasPrefix(k, "data/scan-") {
			n += int64(len(v))
		}
	}
	return n
}

// With plain LRU (everything on probation) the same scan does evict the
// hot block: the test above can fail.
func TestScanEvictsWithoutProtection(t *testing.T) {
	const block = 64 << 10
	objects := map[string][]byte{"data/hot": random(block)}
	for i := range 32 {
		objects[fmt.Sprintf("data/scan-%02d", i)] = random(block)
	}
	c, _ := setup(t, config(16*block, block, 0), objects)
	ctx := context.Background()
	if _, err := c.ReadRange(ctx, "data/hot", block, 0, 1000); err != nil {
		t.Fatal(err)
	}
	for i := range 32 {
		if _, err := c.ReadRange(ctx, fmt.Sprintf("data/scan-%02d", i), block, 0, block); err != nil {
			t.Fatal(err)
		}
	}
	before := c.Stats().Gets
	if _, err := c.ReadRange(ctx, "data/hot", block, 0, 1000); err != nil {
		t.Fatal(err)
	}
	if c.Stats().Gets != before+1 {
		t.Fatal("a block read once survived a scan of twice the cache")
	}
}

// Prefetching far more than ReadAheadBytes keeps at most that much queued
// or in flight, drops the rest (a hint), and the cache stays within
// MaxBytes; the blocks of one large read are fetched in parallel and all
// read back exactly.
func TestReadAheadIsBounded(t *testing.T) {
	const block = 32 << 10
	objects := map[string][]byte{}
	for i := range 100 {
		objects[fmt.Sprintf("data/%03d", i)] = random(4*block + i)
	}
	cfg := cache.Config{MaxBytes: 64 * block, BlockBytes: block, ScanBytes: 32 * block,
		ReadAheadBytes: 8 * block, Parallelism: 3}
	c, _ := setup(t, cfg, objects)
	for k, v := range objects {
		c.Prefetch(k, int64(len(v)), 0, int64(len(v)))
	}
	s := c.Stats()
	if s.ReadAheadDropped == 0 || s.ReadAheadPeak > cfg.ReadAheadBytes {
		t.Fatalf("%+v: want drops and at most %d bytes of read-ahead at once", s, cfg.ReadAheadBytes)
	}
	var wg sync.WaitGroup
	for k, v := range objects {
		wg.Go(func() {
			got, err := c.ReadRange(context.Background(), k, int64(len(v)), 10, int64(len(v))-10)
			if err != nil || !bytes.Equal(got, v[10:]) {
				t.Errorf("%s: %v", k, err)
			}
		})
	}
	wg.Wait()
	s = c.Stats()
	t.Logf("%+v", s)
	if s.CachedBytes > cfg.MaxBytes || s.ReadAheadPeak > cfg.ReadAheadBytes {
		t.Fatalf("%+v: bounds %d cached, %d read-ahead", s, cfg.MaxBytes, cfg.ReadAheadBytes)
	}
}

// A reader that repeats itself is served from disk after the first pass,
// so a second pass through a cache twice the data costs no GET.
func TestRereadIsCached(t *testing.T) {
	obj := random(300_000)
	c, _ := setup(t, cache.Config{MaxBytes: 1 << 20, BlockBytes: 64 << 10, ScanBytes: 128 << 10,
		ReadAheadBytes: 1 << 20, Parallelism: 2}, map[string][]byte{"data/a": obj})
	ctx := context.Background()
	for pass := range 3 {
		got, err := c.ReadRange(ctx, "data/a", int64(len(obj)), 0, int64(len(obj)))
		if err != nil || !bytes.Equal(got, obj) {
			t.Fatalf("pass %d: %v", pass, err)
		}
	}
	// The first pass fills probation (two blocks fit, three are evicted),
	// the second re-reads and protects what it fetches again, the third
	// finds all five blocks.
	if s := c.Stats(); s.Gets > 8 || s.ProtectedBytes == 0 {
		t.Fatalf("%+v", s)
	}
}
