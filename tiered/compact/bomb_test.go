package compact_test

import (
	"bytes"
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/eddy-streams/eddy/internal/batch"
	"github.com/eddy-streams/eddy/internal/batchtest"
	"github.com/eddy-streams/eddy/internal/store"
	"github.com/eddy-streams/eddy/internal/tieredtest"
	"github.com/eddy-streams/eddy/tiered/compact"
	"github.com/eddy-streams/eddy/tiered/fsck"
)

// A decompression bomb stored before produce checked sizes (a gigabyte of
// zstd in 32 KB, appended to the leader directly) in a compacted topic:
// key compaction finishes within its bound, compacts the rest, keeps the
// bomb as it is, reports it once and does not read it again.
func TestKeyCompactionSkipsBomb(t *testing.T) {
	const memoryBound = 64 << 20
	ctx := context.Background()
	e := tieredtest.New(t,
		// The ratio: ten small new batches next to the 32 KB bomb are
		// dirty enough for a second pass.
		tieredtest.Topic{Name: "kvb", Partitions: 1, Configs: map[string]string{"cleanup.policy": "compact", "min.cleanable.dirty.ratio": "0.01"}})
	pid := e.Parts["kvb"][0]
	m := e.Manager(t, nil, nil)
	ts := time.Now().UnixMilli()
	bomb := batchtest.Bomb(int8(batch.CodecZstd), 1<<30, ts)
	var bombOffset int64
	flushes := func(n int, withBomb bool) {
		for i := range n {
			tieredtest.Append(t, m, pid, keyedBatch([]string{fmt.Sprintf("k%d", i%3)}, [][]byte{[]byte("v")}, ts))
			if withBomb && i == n/2 {
				bombOffset = tieredtest.Append(t, m, pid, bytes.Clone(bomb)).BaseOffset
			}
			if err := m.Flush(ctx); err != nil {
				t.Fatal(err)
			}
		}
	}
	flushes(20, true)

	reg := prometheus.NewRegistry()
	cfg := compact.DefaultConfig()
	cfg.MinPieces = 8
	c, err := compact.New(cfg, e.St, e.Bucket, -1, e.Log, reg)
	if err != nil {
		t.Fatal(err)
	}
	pass := func() compact.Result {
		t.Helper()
		var r compact.Result
		var err error
		grew := batchtest.AllocatedBy(func() { r, err = c.Compact(ctx, store.Shard{}) })
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("pass: %+v, allocated %d KiB", r, grew>>10)
		if grew > memoryBound {
			t.Fatalf("the pass allocated %d MiB, want under %d", grew>>20, memoryBound>>20)
		}
		return r
	}
	if r := pass(); r.SkippedBatches != 1 || r.DroppedRecords == 0 || r.Partitions != 1 {
		t.Fatalf("first pass: %+v; want the bomb skipped and the rest compacted", r)
	}
	if n := skippedMetric(t, reg, "too_large"); n != 1 {
		t.Fatalf("eddy_compaction_skipped_batches_total{reason=too_large} = %v, want 1", n)
	}
	if !holdsBatch(t, e, pid, bombOffset, bomb) {
		t.Fatalf("the bomb at offset %d is gone after compaction", bombOffset)
	}

	// New pieces make the partition a candidate again; the bomb is kept
	// without being read.
	flushes(10, false)
	if r := pass(); r.SkippedBatches != 0 || r.Partitions != 1 {
		t.Fatalf("second pass: %+v; want the partition compacted again, nothing newly skipped", r)
	}
	if n := skippedMetric(t, reg, "too_large"); n != 1 {
		t.Fatalf("after the second pass the metric is %v: the bomb was read again", n)
	}
	if !holdsBatch(t, e, pid, bombOffset, bomb) {
		t.Fatalf("the bomb at offset %d is gone after the second pass", bombOffset)
	}
	if rep, err := fsck.Check(ctx, e.St, e.Bucket, 0); err != nil || !rep.OK() {
		t.Fatalf("fsck: %v %+v", err, rep)
	}
}

// holdsBatch reports whether the partition's log holds, at offset base, a
// batch with the same bytes as want (past the fields the leader sets).
func holdsBatch(t *testing.T, e *tieredtest.Env, pid, base int64, want []byte) bool {
	t.Helper()
	ctx := context.Background()
	rows, err := e.St.Segments(ctx, pid, -1, 100000)
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range rows {
		if base < r.BaseOffset || base >= r.EndOffset {
			continue
		}
		data, err := e.Bucket.GetRange(ctx, r.ObjectKey, r.Position, int64(r.Length))
		if err != nil {
			t.Fatal(err)
		}
		found := false
		batch.Each(data, func(h batch.Header, raw []byte) bool {
			found = h.BaseOffset == base && bytes.Equal(raw[16:], want[16:])
			return !found
		})
		return found
	}
	return false
}

func skippedMetric(t *testing.T, reg *prometheus.Registry, reason string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != "eddy_compaction_skipped_batches_total" {
			continue
		}
		for _, m := range mf.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == "reason" && l.GetValue() == reason {
					return m.GetCounter().GetValue()
				}
			}
		}
	}
	return 0
}
