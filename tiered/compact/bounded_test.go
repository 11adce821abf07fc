package compact_test

import (
	"context"
	"fmt"
	"os"
	"runtime"
	"runtime/metrics"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/eddy-streams/eddy/data-plane/leader"
	"github.com/eddy-streams/eddy/internal/batch"
	"github.com/eddy-streams/eddy/internal/store"
	"github.com/eddy-streams/eddy/internal/tieredtest"
	"github.com/eddy-streams/eddy/tiered/compact"
	"github.com/eddy-streams/eddy/tiered/fsck"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// Key compaction of a partition with many more distinct keys than its
// offset map holds: it takes several rounds, the compactor's memory stays
// under --compact-memory-bytes, every key keeps its last value, and
// tombstones stay until delete.retention.ms after the pass that first
// compacted them, then go.
//
// The normal suite runs 200,000 keys (about 27 MiB, over twice the heap
// allowance, so that holding the partition whole fails) under 4 MiB;
// EDDY_COMPACT_SOAK=1 runs issue 20's figures, 10 million keys (about
// 2 GiB) under 128 MiB.
func TestKeyCompactionBoundedMemory(t *testing.T) {
	s := manyKeys{keys: 200_000, valueLen: 84, memory: 4 << 20, flushBytes: 1 << 20}
	if os.Getenv("EDDY_COMPACT_SOAK") != "" {
		s = manyKeys{keys: 10_000_000, valueLen: 130, memory: 128 << 20, flushBytes: 64 << 20}
	}
	s.run(t)
}

// heapSlack is what the sampled live heap may show beyond twice the
// compactor's bound whatever the bound: the test harness and Postgres
// client's own allocations during the pass.
const heapSlack = 4 << 20

type manyKeys struct {
	keys       int
	valueLen   int
	memory     int64
	flushBytes int64
}

// Key i is written with value a, then (i%3 == 0) b, then (i%7 == 0) a
// tombstone.
func (s manyKeys) key(i int) string { return fmt.Sprintf("key-%09d", i) }

func (s manyKeys) value(phase byte, i int) []byte {
	v := make([]byte, s.valueLen)
	n := copy(v, fmt.Sprintf("%c-%d-", phase, i))
	for j := n; j < len(v); j++ {
		v[j] = 'x'
	}
	return v
}

func (s manyKeys) run(t *testing.T) {
	ctx := context.Background()
	e := tieredtest.New(t, tieredtest.Topic{Name: "kv", Partitions: 1,
		Configs: map[string]string{"cleanup.policy": "compact", "delete.retention.ms": "3600000"}})
	pid := e.Parts["kv"][0]
	m := e.Manager(t, func(cfg *leader.Config) { cfg.CacheBytes = 1 }, nil)
	start := time.Now()
	ts := start.UnixMilli()
	var written, pending int64
	write := func(keys []string, vals [][]byte) {
		b := keyedBatch(keys, vals, ts)
		tieredtest.Append(t, m, pid, b)
		written += int64(len(b))
		if pending += int64(len(b)); pending >= s.flushBytes {
			if err := m.Flush(ctx); err != nil {
				t.Fatal(err)
			}
			pending = 0
		}
	}
	const perBatch = 1000
	phase := func(pick func(i int) bool, val func(i int) []byte) {
		var (
			keys []string
			vals [][]byte
		)
		for i := range s.keys {
			if !pick(i) {
				continue
			}
			keys, vals = append(keys, s.key(i)), append(vals, val(i))
			if len(keys) == perBatch {
				write(keys, vals)
				keys, vals = nil, nil
			}
		}
		if len(keys) > 0 {
			write(keys, vals)
		}
	}
	phase(func(int) bool { return true }, func(i int) []byte { return s.value('a', i) })
	phase(func(i int) bool { return i%3 == 0 }, func(i int) []byte { return s.value('b', i) })
	phase(func(i int) bool { return i%7 == 0 }, func(int) []byte { return nil })
	write([]string{"end"}, [][]byte{[]byte("end")}) // the tail is not a tombstone
	if err := m.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	m.Close()
	t.Logf("wrote %d keys, %d MiB, in %v", s.keys, written>>20, time.Since(start).Round(time.Second))
	if allowance := 2*s.memory + heapSlack; written < 2*allowance {
		// Else a pass holding the whole partition could pass the test.
		t.Fatalf("wrote %d bytes: not clearly over the heap allowance of %d", written, allowance)
	}

	cfg := compact.DefaultConfig()
	cfg.MemoryBytes, cfg.RowBytes = s.memory, s.memory/32
	c, err := compact.New(cfg, e.St, e.Bucket, -1, e.Log, nil)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	compact.SetClock(c, func() time.Time { return now })

	res := s.compact(t, c)
	if res.KeyRounds < 2 {
		t.Errorf("%d rounds: the map was meant to fill", res.KeyRounds)
	}
	s.check(t, e, pid, true)
	if rep, err := fsck.Check(ctx, e.St, e.Bucket, 0); err != nil || !rep.OK() {
		t.Fatalf("fsck: %v %+v", err, rep)
	}

	// An hour later (delete.retention.ms) the tombstones are past their
	// horizon and go.
	now = now.Add(time.Hour + time.Second)
	res = s.compact(t, c)
	if want := (s.keys + 6) / 7; res.DroppedRecords != want {
		t.Errorf("past the horizon: dropped %d records, want the %d tombstones", res.DroppedRecords, want)
	}
	s.check(t, e, pid, false)
	if rep, err := fsck.Check(ctx, e.St, e.Bucket, 0); err != nil || !rep.OK() {
		t.Fatalf("fsck: %v %+v", err, rep)
	}
}

// compact runs one pass, measuring the memory the compactor accounts for
// (Result.PeakBytes: its offset map, the object it builds, what it has
// read), which must stay under the bound, and the live heap the process
// grows by, sampled by a collection every few milliseconds. The sample
// counts what the pass allocates while each collection marks (on a
// loaded machine, several of its buffers), so it is held to twice the
// bound plus heapSlack: far under the partition's size, which is what the
// bound is about.
func (s manyKeys) compact(t *testing.T, c *compact.Compactor) compact.Result {
	t.Helper()
	sample := []metrics.Sample{{Name: "/gc/heap/live:bytes"}}
	live := func() uint64 {
		// What the collection found live, not what was allocated
		// since it ended.
		runtime.GC()
		metrics.Read(sample)
		return sample[0].Value.Uint64()
	}
	base := live()
	var (
		peak uint64
		wg   sync.WaitGroup
		done = make(chan struct{})
	)
	wg.Go(func() {
		tick := time.NewTicker(2 * time.Millisecond)
		defer tick.Stop()
		for {
			peak = max(peak, live())
			select {
			case <-done:
				return
			case <-tick.C:
			}
		}
	})
	start := time.Now()
	res, err := c.Compact(context.Background(), store.Shard{})
	close(done)
	wg.Wait()
	if err != nil {
		t.Fatal(err)
	}
	var grew uint64
	if peak > base {
		grew = peak - base
	}
	t.Logf("pass in %v: %+v; live heap grew by %.1f MiB at most (bound %d MiB)",
		time.Since(start).Round(time.Millisecond), res, float64(grew)/(1<<20), s.memory>>20)
	if res.PeakBytes > s.memory {
		t.Errorf("the compactor held %d bytes, over its bound %d", res.PeakBytes, s.memory)
	}
	if grew > 2*uint64(s.memory)+heapSlack {
		t.Errorf("the live heap grew by %d bytes, over twice the bound %d and %d of slack", grew, s.memory, heapSlack)
	}
	return res
}

// check reads the partition's log from the bucket: every key once, with
// its last value (or its tombstone, if tombstones are to be kept).
func (s manyKeys) check(t *testing.T, e *tieredtest.Env, pid int64, tombstones bool) {
	t.Helper()
	ctx := context.Background()
	rows, err := e.St.Segments(ctx, pid, -1, 1<<30)
	if err != nil {
		t.Fatal(err)
	}
	seen := make([]bool, s.keys)
	var n, bad int
	for _, r := range rows {
		data, err := e.Bucket.GetRange(ctx, r.ObjectKey, r.Position, int64(r.Length))
		if err != nil {
			t.Fatal(err)
		}
		for h, raw := range batch.All(data) {
			err := batch.Records(raw, 1<<30, func(rec *kmsg.Record) bool {
				n++
				if string(rec.Key) == "end" {
					return true
				}
				i, err := strconv.Atoi(string(rec.Key[len("key-"):]))
				if err != nil || i >= s.keys || seen[i] {
					t.Errorf("key %q unexpected or twice (value %q, batch %d)", rec.Key, rec.Value, h.BaseOffset)
					bad++
					return bad < 10
				}
				seen[i] = true
				var want []byte
				switch {
				case i%7 == 0:
					if !tombstones {
						t.Errorf("key %d: tombstone past its horizon still there", i)
						bad++
					}
				case i%3 == 0:
					want = s.value('b', i)
				default:
					want = s.value('a', i)
				}
				if string(rec.Value) != string(want) || (want == nil) != (rec.Value == nil) {
					t.Errorf("key %d = %q, want %q (batch %d +%d)", i, rec.Value, want, h.BaseOffset, rec.OffsetDelta)
					bad++
				}
				return bad < 10
			})
			if err != nil {
				t.Fatal(err)
			}
		}
	}
	missing := 0
	for i, ok := range seen {
		if !ok && (tombstones || i%7 != 0) {
			missing++
		}
	}
	if missing > 0 {
		t.Errorf("%d keys missing", missing)
	}
	t.Logf("%d records in %d rows", n, len(rows))
}
