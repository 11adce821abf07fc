package tieredtest_test

import (
	"context"
	"testing"

	"github.com/eddy-streams/eddy/data-plane/leader"
	"github.com/eddy-streams/eddy/internal/batch"
	"github.com/eddy-streams/eddy/internal/tieredtest"
	"github.com/eddy-streams/eddy/tiered/cache"
)

// A consumer reading every partition from the start, as kgo does (one
// fetch of MaxBytes per partition in turn), gets whole fetches of
// MaxBytes, not a fixed number of index rows; the leader's read-ahead has
// the next fetch's rows ready (read-ahead hits, few waits); and the bucket
// returns each byte about once: blocks shared by the partitions of a
// flush are fetched once, nothing is fetched twice. A fetch that stops
// inside a row does not make the cache take the next fetch for a hot
// reader's re-read.
func TestColdReadFollowsTheConsumer(t *testing.T) {
	e := tieredtest.New(t, tieredtest.Topic{Name: "t", Partitions: 4})
	m := e.Manager(t, nil, nil)
	written := write(t, e, m, 24<<20, 256<<10) // 96+ flushes, 64 KiB per partition each
	m.Close()

	cfg := cache.DefaultConfig()
	cfg.Dir = t.TempDir()
	c, err := cache.Open(cfg, e.Bucket, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	r := e.Manager(t, func(cfg *leader.Config) { cfg.WALDir, cfg.Remote = t.TempDir(), c }, nil)

	const maxBytes = 1 << 20
	ctx := context.Background()
	pids := e.Parts["t"]
	next := map[int64]int64{}
	var fetches, full, read int64
	for done := 0; done < len(pids); {
		done = 0
		for _, pid := range pids {
			p := tieredtest.Led(t, r, pid)
			_, hw := p.Offsets()
			if next[pid] >= hw {
				done++
				continue
			}
			res, err := p.Read(ctx, next[pid], maxBytes)
			if err != nil || len(res.Records) == 0 {
				t.Fatalf("partition %d at %d: %d bytes, %v", pid, next[pid], len(res.Records), err)
			}
			fetches++
			read += int64(len(res.Records))
			if len(res.Records) > maxBytes-(80<<10) {
				full++
			}
			next[pid] = endOffset(res.Records)
		}
	}
	s := c.Stats()
	t.Logf("%d bytes written, %d read in %d fetches (%d full); cache %+v", written, read, fetches, full, s)
	// Eight rows of 64 KiB (the old fixed window) would be half a fetch.
	if full < fetches*3/4 {
		t.Errorf("%d of %d fetches filled MaxBytes", full, fetches)
	}
	if s.ReadAheadHits == 0 || s.Misses > s.Gets/4 {
		t.Errorf("read-ahead: %d hits, %d of %d blocks waited for", s.ReadAheadHits, s.Misses, s.Gets)
	}
	// Objects carry an index and a footer besides the batches.
	if s.GetBytes > written*105/100 {
		t.Errorf("GETs returned %d bytes for %d written: bytes fetched twice", s.GetBytes, written)
	}
	// A scan is read once: nothing of it is protected from the next one.
	if s.ProtectedBytes != 0 {
		t.Errorf("the scan protected %d bytes", s.ProtectedBytes)
	}
	if s.CachedBytes > cfg.MaxBytes || s.ReadAheadPeak > cfg.ReadAheadBytes {
		t.Errorf("bounds: %+v", s)
	}
}

// endOffset is the offset after the last batch of records.
func endOffset(records []byte) int64 {
	end := int64(-1)
	batch.Each(records, func(h batch.Header, _ []byte) bool { end = h.LastOffset() + 1; return true })
	return end
}
