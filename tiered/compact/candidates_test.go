package compact_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/eddy-streams/eddy/internal/store"
	"github.com/eddy-streams/eddy/internal/tieredtest"
	"github.com/eddy-streams/eddy/tiered/compact"
)

// With more compacted partitions than --compact-partitions, a pass takes
// the dirtiest: a partition with a lower id that is not due does not use
// up the limit and starve a due one.
func TestKeyCompactionCandidatesDirtiestFirst(t *testing.T) {
	ctx := context.Background()
	e := tieredtest.New(t,
		tieredtest.Topic{Name: "a", Partitions: 1, Configs: map[string]string{"cleanup.policy": "compact"}},
		tieredtest.Topic{Name: "b", Partitions: 1, Configs: map[string]string{"cleanup.policy": "compact"}})
	pa, pb := e.Parts["a"][0], e.Parts["b"][0]
	if pa > pb {
		pa, pb = pb, pa
	}
	m := e.Manager(t, nil, nil)
	defer m.Close()
	ts := time.Now().UnixMilli()
	write := func(pid int64, n int, key func(i int) string) {
		t.Helper()
		for i := range n {
			tieredtest.Append(t, m, pid, keyedBatch([]string{key(i)}, [][]byte{[]byte(fmt.Sprintf("v%d", i))}, ts))
			if err := m.Flush(ctx); err != nil {
				t.Fatal(err)
			}
		}
	}
	cfg := compact.DefaultConfig()
	cfg.Partitions = 1
	c, err := compact.New(cfg, e.St, e.Bucket, -1, e.Log, nil)
	if err != nil {
		t.Fatal(err)
	}
	// The lower id compacted, then a little dirty: a candidate, not due.
	write(pa, 20, func(i int) string { return fmt.Sprintf("k%d", i) })
	if r, err := c.Compact(ctx, store.Shard{}); err != nil || r.Partitions != 1 {
		t.Fatalf("first pass: %+v, %v", r, err)
	}
	write(pa, 1, func(int) string { return "new" })
	// The higher id all dirty, with keys to drop.
	write(pb, 10, func(i int) string { return fmt.Sprintf("k%d", i%2) })
	r, err := c.Compact(ctx, store.Shard{})
	if err != nil {
		t.Fatal(err)
	}
	if r.Partitions != 1 || r.DroppedRecords == 0 {
		t.Fatalf("the due partition was left alone: %+v", r)
	}
}

// Merging pieces leaves cleanup.policy=compact partitions to key
// compaction in the candidates query itself: one with more pieces than a
// delete-policy partition does not use up --compact-partitions.
func TestMergeCandidatesLeaveCompactedTopicsOut(t *testing.T) {
	ctx := context.Background()
	e := tieredtest.New(t,
		// Never due for key compaction, so its pieces stay pieces.
		tieredtest.Topic{Name: "kv", Partitions: 1, Configs: map[string]string{"cleanup.policy": "compact", "min.cleanable.dirty.ratio": "1"}},
		tieredtest.Topic{Name: "log", Partitions: 1})
	pk, pl := e.Parts["kv"][0], e.Parts["log"][0]
	m := e.Manager(t, nil, nil)
	defer m.Close()
	ts := time.Now().UnixMilli()
	for i := range 12 {
		tieredtest.Append(t, m, pk, keyedBatch([]string{fmt.Sprintf("k%d", i)}, [][]byte{[]byte("v")}, ts))
		if i < 8 {
			tieredtest.Append(t, m, pl, keyedBatch([]string{fmt.Sprintf("k%d", i)}, [][]byte{[]byte("v")}, ts))
		}
		if err := m.Flush(ctx); err != nil {
			t.Fatal(err)
		}
	}
	cfg := compact.DefaultConfig()
	cfg.MinPieces, cfg.Partitions = 4, 1
	c, err := compact.New(cfg, e.St, e.Bucket, -1, e.Log, nil)
	if err != nil {
		t.Fatal(err)
	}
	r, err := c.Compact(ctx, store.Shard{})
	if err != nil {
		t.Fatal(err)
	}
	if r.Partitions != 1 || r.Pieces != 8 {
		t.Fatalf("the delete-policy partition was not merged: %+v", r)
	}
}

// A partition whose key compaction fails (here its object is gone) is
// counted and the pass goes on with the shard's other partitions.
func TestKeyCompactionFailureDoesNotStallThePass(t *testing.T) {
	ctx := context.Background()
	e := tieredtest.New(t,
		tieredtest.Topic{Name: "a", Partitions: 1, Configs: map[string]string{"cleanup.policy": "compact"}},
		tieredtest.Topic{Name: "b", Partitions: 1, Configs: map[string]string{"cleanup.policy": "compact"}})
	pa, pb := e.Parts["a"][0], e.Parts["b"][0]
	if pa > pb {
		pa, pb = pb, pa
	}
	m := e.Manager(t, nil, nil)
	defer m.Close()
	ts := time.Now().UnixMilli()
	for _, pid := range []int64{pa, pb} {
		for i := range 4 {
			tieredtest.Append(t, m, pid, keyedBatch([]string{"k"}, [][]byte{[]byte(fmt.Sprint(i))}, ts))
		}
		if err := m.Flush(ctx); err != nil {
			t.Fatal(err)
		}
	}
	rows, err := e.St.Segments(ctx, pa, -1, 100)
	if err != nil || len(rows) != 1 {
		t.Fatalf("rows of %d: %v %v", pa, rows, err)
	}
	if err := e.Bucket.Delete(ctx, rows[0].ObjectKey); err != nil {
		t.Fatal(err)
	}
	c, err := compact.New(compact.DefaultConfig(), e.St, e.Bucket, -1, e.Log, nil)
	if err != nil {
		t.Fatal(err)
	}
	r, err := c.Compact(ctx, store.Shard{})
	if err != nil {
		t.Fatal(err)
	}
	if r.FailedPartitions != 1 || r.Partitions != 1 || r.DroppedRecords != 3 {
		t.Fatalf("%+v: want %d failed and %d compacted", r, pa, pb)
	}
}

// A row whose bytes end in something that is not a batch fails its
// partition's pass (and is left as it is) rather than being rewritten as
// if its batches ended there.
func TestKeyCompactionRowEndingInGarbage(t *testing.T) {
	ctx := context.Background()
	e := tieredtest.New(t, tieredtest.Topic{Name: "kvg", Partitions: 1, Configs: map[string]string{"cleanup.policy": "compact"}})
	pid := e.Parts["kvg"][0]
	m := e.Manager(t, nil, nil)
	ts := time.Now().UnixMilli()
	first := keyedBatch([]string{"k"}, [][]byte{[]byte("1")}, ts)
	tieredtest.Append(t, m, pid, first)
	tieredtest.Append(t, m, pid, keyedBatch([]string{"k"}, [][]byte{[]byte("2")}, ts))
	tieredtest.Append(t, m, pid, keyedBatch([]string{"j"}, [][]byte{[]byte("3")}, ts))
	if err := m.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	m.Close()
	rows, err := e.St.Segments(ctx, pid, -1, 100)
	if err != nil || len(rows) != 1 {
		t.Fatalf("rows: %v %v", rows, err)
	}
	obj, err := e.Bucket.Get(ctx, rows[0].ObjectKey)
	if err != nil {
		t.Fatal(err)
	}
	obj[rows[0].Position+int64(len(first))+16] = 9 // the second batch's magic
	if err := e.Bucket.Put(ctx, rows[0].ObjectKey, obj); err != nil {
		t.Fatal(err)
	}
	c, err := compact.New(compact.DefaultConfig(), e.St, e.Bucket, -1, e.Log, nil)
	if err != nil {
		t.Fatal(err)
	}
	r, err := c.Compact(ctx, store.Shard{})
	if err != nil {
		t.Fatal(err)
	}
	if r.FailedPartitions != 1 || r.Partitions != 0 {
		t.Fatalf("%+v: want the partition failed and left as it is", r)
	}
}

// A tiny segment.bytes (Kafka allows 14) does not make key compaction
// write an object, and swap, per batch.
func TestKeyCompactionTinySegmentBytes(t *testing.T) {
	ctx := context.Background()
	e := tieredtest.New(t, tieredtest.Topic{Name: "kvs", Partitions: 1, Configs: map[string]string{"cleanup.policy": "compact", "segment.bytes": "14"}})
	pid := e.Parts["kvs"][0]
	m := e.Manager(t, nil, nil)
	ts := time.Now().UnixMilli()
	for i := range 20 {
		tieredtest.Append(t, m, pid, keyedBatch([]string{fmt.Sprintf("k%d", i%10)}, [][]byte{[]byte("v")}, ts))
	}
	if err := m.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	m.Close()
	c, err := compact.New(compact.DefaultConfig(), e.St, e.Bucket, -1, e.Log, nil)
	if err != nil {
		t.Fatal(err)
	}
	r, err := c.Compact(ctx, store.Shard{})
	if err != nil {
		t.Fatal(err)
	}
	if r.Objects != 1 || r.DroppedRecords != 10 {
		t.Fatalf("%+v: want one object, 10 records dropped", r)
	}
}
