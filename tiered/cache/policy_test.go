package cache_test

import (
	"bytes"
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"

	"github.com/eddy-streams/eddy/tiered/cache"
)

// A scan of more than the whole cache, through read-ahead as the leader
// drives it, does not evict what a repeated reader reads: that block was
// read twice and sits in the protected segment, which scans never reach.
func TestScanDoesNotEvictHotReader(t *testing.T) {
	const block = 64 << 10
	objects := map[string][]byte{"data/hot": random(block)}
	for i := range 64 {
		objects[fmt.Sprintf("data/scan-%02d", i)] = random(block + 100 + i) // 2 blocks each
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
	// once in two disjoint pieces (two partitions' chunks, the later one
	// first), the next object prefetched first.
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
	if want := int64(block) + scanBytes(objects); after.GetBytes != want {
		t.Fatalf("GETs returned %d bytes, want each byte once (%d)", after.GetBytes, want)
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

// Without a protected share (probation takes all but one block: about a
// plain LRU) the same kind of scan does evict a block read once, so the
// test above can fail.
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
// or in flight and drops the rest (a hint); the cache stays within
// MaxBytes; the blocks of large reads, fetched in parallel, read back
// exactly.
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

// A reader that reads the same data again has it served from disk: the
// second pass protects what it fetched again, the third costs no GET.
func TestRereadIsCached(t *testing.T) {
	obj := random(300_000) // 5 blocks
	c, _ := setup(t, cache.Config{MaxBytes: 1 << 20, BlockBytes: 64 << 10, ScanBytes: 128 << 10,
		ReadAheadBytes: 1 << 20, Parallelism: 2}, map[string][]byte{"data/a": obj})
	ctx := context.Background()
	gets := []int64{}
	for pass := range 3 {
		got, err := c.ReadRange(ctx, "data/a", int64(len(obj)), 0, int64(len(obj)))
		if err != nil || !bytes.Equal(got, obj) {
			t.Fatalf("pass %d: %v", pass, err)
		}
		gets = append(gets, c.Stats().Gets)
	}
	if s := c.Stats(); gets[2] != gets[1] || s.ProtectedBytes != int64(len(obj)) {
		t.Fatalf("GETs after each pass %v, %+v", gets, s)
	}
}

// A block evicted after one reader read part of it, fetched again for
// another part (a partition whose reader lags the others on a shared
// flush object), is not taken for a re-read; reading the first part again
// is one.
func TestStragglerIsNotARereader(t *testing.T) {
	const block = 64 << 10
	objects := map[string][]byte{"data/shared": random(block)}
	for i := range 8 {
		objects[fmt.Sprintf("data/scan-%02d", i)] = random(block)
	}
	c, _ := setup(t, cache.Config{MaxBytes: 8 * block, BlockBytes: block, ScanBytes: 2 * block,
		ReadAheadBytes: block, Parallelism: 2}, objects)
	ctx := context.Background()
	read := func(key string, off, n int64) {
		t.Helper()
		if _, err := c.ReadRange(ctx, key, int64(len(objects[key])), off, n); err != nil {
			t.Fatal(err)
		}
	}
	read("data/shared", 0, 1000)
	for i := range 8 {
		read(fmt.Sprintf("data/scan-%02d", i), 0, block)
	}
	read("data/shared", 2000, 1000) // fetched again, other bytes
	if s := c.Stats(); s.ProtectedBytes != 0 {
		t.Fatalf("a straggler's read protected %d bytes", s.ProtectedBytes)
	}
	read("data/shared", 500, 1000) // overlaps the first read
	if s := c.Stats(); s.ProtectedBytes != block {
		t.Fatalf("a re-read protected %d bytes, want the block", s.ProtectedBytes)
	}
}
