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

// config is a cache of maxBytes in blocks of block bytes whose probation
// segment takes all but one block, as close to a plain LRU as the cache
// comes, with room for maxBytes of read-ahead.
func config(maxBytes, block int64, readAhead int) cache.Config {
	return cache.Config{MaxBytes: maxBytes, BlockBytes: block, ReadAhead: readAhead,
		ScanBytes: maxBytes - block, ReadAheadBytes: maxBytes, Parallelism: 4}
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
	c, _ := setup(t, config(2048, 1000, 1), map[string][]byte{"data/a": obj})
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
	c, _ := setup(t, config(4<<20, block, 2), map[string][]byte{"seg/a": obj})
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
	c, _ := setup(t, config(2<<20, 1<<20, 0), map[string][]byte{"data/a": obj})
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
	cfg := config(1<<20, 1000, 0)
	cfg.Dir = cdir
	c, err := cache.Open(cfg, fb, nil)
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

// The counters say where GET bytes went: bytes read for the first time
// (a part handed back with Unread and read again counts once), the rest
// of a block nobody read, and blocks fetched again after they were read
// and evicted.
func TestGetBytesAccounting(t *testing.T) {
	const block = 1024
	c, _ := setup(t, config(3*block, block, 0), map[string][]byte{"a": random(4 * block)}) // 2 blocks of probation
	ctx := context.Background()
	read := func(off, n int64) {
		t.Helper()
		if _, err := c.ReadRange(ctx, "a", 4*block, off, n); err != nil {
			t.Fatal(err)
		}
	}
	read(0, 600) // block 0 fetched, 600 bytes read
	c.Unread("a", 4*block, 400, 200)
	read(400, 300) // 200 handed back (not first) and 100 new
	if s := c.Stats(); s.FirstReadBytes != 700 || s.GetBytes != block || s.AgainBytes != 0 {
		t.Fatalf("after one block: %+v", s)
	}
	read(block, block)   // block 1
	read(2*block, block) // block 2 evicts block 0
	read(0, 100)         // block 0 again: read before, so no first read
	if s := c.Stats(); s.FirstReadBytes != 700+2*block || s.AgainBytes != block || s.GetBytes != 4*block {
		t.Fatalf("after the re-read: %+v", s)
	}
}
