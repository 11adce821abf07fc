package compact_test

import (
	"context"
	"encoding/binary"
	"fmt"
	"hash/crc32"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/eddy-streams/eddy/data-plane/leader"
	"github.com/eddy-streams/eddy/internal/batch"
	"github.com/eddy-streams/eddy/internal/pgtest"
	"github.com/eddy-streams/eddy/internal/store"
	"github.com/eddy-streams/eddy/internal/tieredtest"
	"github.com/eddy-streams/eddy/tiered/cache"
	"github.com/eddy-streams/eddy/tiered/compact"
	"github.com/eddy-streams/eddy/tiered/fsck"
	"github.com/eddy-streams/eddy/tiered/gc"
	"github.com/twmb/franz-go/pkg/kmsg"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

// Compaction merges per-flush pieces into segment objects; after garbage
// collection and with every local cache gone, a consumer reading from
// offset 0 gets every record, and the GETs per MiB it costs are bounded by
// the block size (one GET per block of a large segment object) instead of
// one GET per flush.
func TestCompactionThenColdReadFromZero(t *testing.T) {
	ctx := context.Background()
	const (
		parts   = 4
		flushes = 120
		recs    = 4
		valLen  = 1000
		block   = 256 << 10
	)
	e := tieredtest.New(t, tieredtest.Topic{Name: "t", Partitions: parts})
	pids := e.Parts["t"]
	m := e.Manager(t, nil, nil)
	for i := range flushes {
		for j, p := range pids {
			// Keys repeat, as in a real topic; the last flushes also
			// leave a tail that stays in per-flush pieces.
			tieredtest.Append(t, m, p, tieredtest.Batch(recs, []byte{byte('a' + (i+j)%5)}, valLen, int64(1000+i)))
		}
		if err := m.Flush(ctx); err != nil {
			t.Fatal(err)
		}
	}
	m.Close()

	// Reading cold before compaction costs a GET per flush.
	before := coldRead(t, e, pids, block)

	cfg := compact.DefaultConfig()
	cfg.TargetBytes, cfg.RowBytes, cfg.MinPieces = 1<<20, 128<<10, 8
	c, err := compact.New(cfg, e.St, e.Bucket, -1, e.Log, nil)
	if err != nil {
		t.Fatal(err)
	}
	total := compactAll(t, c)
	if total.Pieces < parts*(flushes-8) {
		t.Fatalf("compacted %d pieces, want nearly all %d", total.Pieces, parts*flushes)
	}
	for _, p := range pids {
		segs, err := e.St.Segments(ctx, p, -1, 10000)
		if err != nil {
			t.Fatal(err)
		}
		pieces := 0
		for _, s := range segs {
			if !strings.HasPrefix(s.ObjectKey, compact.SegmentPrefix) {
				pieces++
			}
		}
		if pieces >= 8 {
			t.Errorf("partition %d still has %d pieces", p, pieces)
		}
	}
	collectAndCheck(t, e)
	n, _ := e.BucketBytes(t)
	t.Logf("bucket: %d objects after compaction (%d flushes)", n, flushes)

	after := coldRead(t, e, pids, block)
	t.Logf("GETs per MiB: %.2f before compaction, %.2f after (block %d KiB)", before.GetsPerMiB(), after.GetsPerMiB(), block>>10)
	// One GET per block, plus one per segment object for its short last
	// block; at most 1 MiB segments here, so at most 2 GETs per MiB of
	// segment over the 4-per-MiB blocks.
	if bound := float64(1<<20)/block + 2; after.GetsPerMiB() > bound {
		t.Errorf("%.2f GETs per MiB after compaction, want <= %.2f", after.GetsPerMiB(), bound)
	}
	if after.GetsPerMiB()*4 > before.GetsPerMiB() {
		t.Errorf("compaction saved too little: %.2f -> %.2f GETs per MiB", before.GetsPerMiB(), after.GetsPerMiB())
	}
}

// compactAll runs passes until one compacts no partition, and returns
// what they did in all.
func compactAll(t *testing.T, c *compact.Compactor) compact.Result {
	t.Helper()
	var total compact.Result
	for {
		r, err := c.Compact(context.Background(), store.Shard{})
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("compaction pass: %+v", r)
		if r.Partitions == 0 {
			return total
		}
		total.Partitions += r.Partitions
		total.Pieces += r.Pieces
		total.Rewritten += r.Rewritten
		total.Objects += r.Objects
		total.Sparse += r.Sparse
	}
}

// collectAndCheck collects every unreferenced object at once (no grace
// period) and fails unless fsck finds the index and the bucket agree.
func collectAndCheck(t *testing.T, e *tieredtest.Env) {
	t.Helper()
	ctx := context.Background()
	gcfg := gc.DefaultConfig()
	gcfg.Grace, gcfg.OrphanAge = 0, 0
	col, err := gc.New(gcfg, e.St, e.Bucket, e.Log, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := col.Collect(ctx); err != nil {
		t.Fatal(err)
	}
	rep, err := fsck.Check(ctx, e.St, e.Bucket, 0)
	if err != nil {
		t.Fatal(err)
	}
	if !rep.Clean() {
		t.Fatalf("not clean after compaction and gc: %+v", rep)
	}
}

// coldRead reads every partition from offset 0 through a new leader with
// an empty WAL, an empty memory cache and a new disk cache, checks every
// record is there, and returns the cache's counters.
func coldRead(t *testing.T, e *tieredtest.Env, pids []int64, block int64) getsPerMiB {
	t.Helper()
	dir := t.TempDir()
	c, err := cache.Open(cache.Config{Dir: dir + "/cache", MaxBytes: 64 << 20, BlockBytes: block, ReadAhead: 2,
		ScanBytes: 32 << 20, ReadAheadBytes: 16 << 20, Parallelism: 4}, e.Bucket, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	m := e.Manager(t, func(cfg *leader.Config) { cfg.WALDir, cfg.Remote = dir+"/wal", c }, nil)
	defer m.Close()
	var read int64
	for _, p := range pids {
		_, hw := tieredtest.Led(t, m, p).Offsets()
		n, b := tieredtest.ReadAll(t, m, p, 0)
		if n != hw {
			t.Fatalf("partition %d: read %d records, want %d", p, n, hw)
		}
		read += b
	}
	return getsPerMiB(float64(c.Stats().Gets) / (float64(read) / (1 << 20)))
}

// getsPerMiB is object-store GETs per MiB delivered to the consumer.
type getsPerMiB float64

func (g getsPerMiB) GetsPerMiB() float64 { return float64(g) }

// keyedBatch builds an uncompressed batch with one record per key; a nil
// value is a tombstone.
func keyedBatch(keys []string, values [][]byte, tsMs int64) []byte {
	var recs []byte
	for i, k := range keys {
		r := kmsg.Record{OffsetDelta: int32(i), Key: []byte(k), Value: values[i]}
		r.Length = int32(len(r.AppendTo(nil)) - 1)
		recs = r.AppendTo(recs)
	}
	b := kmsg.RecordBatch{
		PartitionLeaderEpoch: -1, Magic: 2, LastOffsetDelta: int32(len(keys) - 1),
		FirstTimestamp: tsMs, MaxTimestamp: tsMs,
		ProducerID: -1, ProducerEpoch: -1, FirstSequence: -1, NumRecords: int32(len(keys)), Records: recs,
	}
	raw := b.AppendTo(nil)
	binary.BigEndian.PutUint32(raw[8:], uint32(len(raw)-12))
	binary.BigEndian.PutUint32(raw[17:], crc32.Checksum(raw[21:], crc32.MakeTable(crc32.Castagnoli)))
	return raw
}

// readRecords reads a partition from offset 0 (gaps allowed) and returns
// every record's key, value and offset, in order.
func readRecords(t *testing.T, m *leader.Manager, pid int64) (keys []string, values [][]byte, offsets []int64) {
	t.Helper()
	p := tieredtest.Led(t, m, pid)
	_, hw := p.Offsets()
	for off := int64(0); off < hw; {
		res, err := p.Read(context.Background(), off, 1<<20)
		if err != nil {
			t.Fatal(err)
		}
		if len(res.Records) == 0 {
			t.Fatalf("no records at %d (hw %d)", off, hw)
		}
		for h, raw := range batch.All(res.Records) {
			var rb kmsg.RecordBatch
			if err := rb.ReadFrom(raw); err != nil {
				t.Fatal(err)
			}
			if crc32.Checksum(raw[21:], crc32.MakeTable(crc32.Castagnoli)) != uint32(rb.CRC) {
				t.Fatalf("batch at %d: bad CRC", h.BaseOffset)
			}
			recs := rb.Records
			for range rb.NumRecords {
				length, n := binary.Varint(recs)
				var r kmsg.Record
				if err := r.ReadFrom(recs[:n+int(length)]); err != nil {
					t.Fatal(err)
				}
				recs = recs[n+int(length):]
				keys = append(keys, string(r.Key))
				values = append(values, r.Value)
				offsets = append(offsets, h.BaseOffset+int64(r.OffsetDelta))
			}
			off = h.LastOffset() + 1
		}
	}
	return keys, values, offsets
}

// cleanup.policy=compact keeps the last value of each key at its original
// offset, and keeps tombstones for delete.retention.ms from the pass that
// first compacted them (KIP-534), whatever their own timestamps.
func TestKeyCompactionKeepsLastValuePerKey(t *testing.T) {
	ctx := context.Background()
	e := tieredtest.New(t,
		tieredtest.Topic{Name: "kv", Partitions: 1, Configs: map[string]string{"cleanup.policy": "compact", "delete.retention.ms": "60000"}})
	pid := e.Parts["kv"][0]
	m := e.Manager(t, nil, nil)
	old := time.Now().Add(-time.Hour).UnixMilli()
	want := map[string]string{}
	wantOffset := map[string]int64{}
	next := int64(0)
	for i := range 30 {
		keys := []string{fmt.Sprintf("k%d", i%7), fmt.Sprintf("k%d", (i+3)%7), "stable"}
		vals := [][]byte{[]byte(fmt.Sprintf("v%d-a", i)), []byte(fmt.Sprintf("v%d-b", i)), []byte("s")}
		if i > 0 {
			keys, vals = keys[:2], vals[:2] // "stable" is written once, first
		}
		for j, k := range keys {
			want[k], wantOffset[k] = string(vals[j]), next+int64(j)
		}
		tieredtest.Append(t, m, pid, keyedBatch(keys, vals, old))
		next += int64(len(keys))
		if err := m.Flush(ctx); err != nil {
			t.Fatal(err)
		}
	}
	// An old tombstone and a fresh one: both are kept by the first pass,
	// an hour-old timestamp does not matter.
	tieredtest.Append(t, m, pid, keyedBatch([]string{"k0"}, [][]byte{nil}, old))
	want["k0"], wantOffset["k0"] = "<tombstone>", next
	tieredtest.Append(t, m, pid, keyedBatch([]string{"k1"}, [][]byte{nil}, time.Now().UnixMilli()))
	want["k1"], wantOffset["k1"] = "<tombstone>", next+1
	if err := m.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	m.Close()

	cfg := compact.DefaultConfig()
	cfg.MinPieces, cfg.RowBytes = 8, 200
	c, err := compact.New(cfg, e.St, e.Bucket, -1, e.Log, nil)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	compact.SetClock(c, func() time.Time { return now })
	check := func(when string) {
		t.Helper()
		m2 := e.Manager(t, func(cfg *leader.Config) { cfg.WALDir = t.TempDir() }, nil)
		defer m2.Close()
		keys, vals, offs := readRecords(t, m2, pid)
		got := map[string]string{}
		for i, k := range keys {
			if _, dup := got[k]; dup {
				t.Errorf("%s: key %s appears twice", when, k)
			}
			v := string(vals[i])
			if vals[i] == nil {
				v = "<tombstone>"
			}
			got[k] = v
			if offs[i] != wantOffset[k] {
				t.Errorf("%s: key %s at offset %d, want %d", when, k, offs[i], wantOffset[k])
			}
		}
		if fmt.Sprint(got) != fmt.Sprint(want) {
			t.Fatalf("%s:\n got %v\nwant %v", when, got, want)
		}
		if rep, err := fsck.Check(ctx, e.St, e.Bucket, 0); err != nil || !rep.OK() {
			t.Fatalf("%s: fsck: %v %+v", when, err, rep)
		}
	}
	r, err := c.Compact(ctx, store.Shard{})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("%+v", r)
	if r.Partitions != 1 || r.DroppedRecords == 0 {
		t.Fatalf("key compaction did nothing: %+v", r)
	}
	check("after key compaction")

	// Just before the horizon the tombstones stay (and nothing is due);
	// past it they go, with nothing new written, and nothing is due
	// after.
	now = now.Add(59 * time.Second)
	if r, err := c.Compact(ctx, store.Shard{}); err != nil || r.Partitions != 0 {
		t.Fatalf("before the horizon: %+v, %v; want nothing done", r, err)
	}
	now = now.Add(2 * time.Second)
	if r, err = c.Compact(ctx, store.Shard{}); err != nil {
		t.Fatal(err)
	}
	if r.Partitions != 1 || r.DroppedRecords != 1 {
		t.Fatalf("past the horizon: %+v; want k0's tombstone dropped", r)
	}
	// k1's stays while it is the log's last batch: removing it would
	// leave a consumer there nothing to read below the high watermark.
	delete(want, "k0")
	check("past the delete horizon")
	if r, err := c.Compact(ctx, store.Shard{}); err != nil || r.Partitions != 0 {
		t.Fatalf("after the tombstones went: %+v, %v; want nothing due", r, err)
	}
}

// Compaction and garbage collection run while producers append and
// consumers read from offset 0 over and over: every read sees every
// committed record, in order, and nothing referenced is ever collected.
func TestCompactionUnderLoad(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	e := tieredtest.New(t, tieredtest.Topic{Name: "t", Partitions: 3})
	pids := e.Parts["t"]
	m := e.Manager(t, func(cfg *leader.Config) { cfg.FlushInterval, cfg.CacheBytes = 10*time.Millisecond, 1 }, nil)
	runDone := make(chan error, 1)
	go func() { runDone <- m.Run(ctx) }()
	cfg := compact.DefaultConfig()
	cfg.TargetBytes, cfg.RowBytes, cfg.MinPieces = 64<<10, 8<<10, 4
	c, err := compact.New(cfg, e.St, e.Bucket, -1, e.Log, nil)
	if err != nil {
		t.Fatal(err)
	}
	gcfg := gc.DefaultConfig()
	gcfg.Grace, gcfg.OrphanAge = 2*time.Second, time.Hour
	col, err := gc.New(gcfg, e.St, e.Bucket, e.Log, nil)
	if err != nil {
		t.Fatal(err)
	}
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() { // producer
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			default:
			}
			for _, p := range pids {
				tieredtest.Append(t, m, p, tieredtest.Batch(3, []byte("k"), 300, int64(i)))
			}
			time.Sleep(5 * time.Millisecond)
		}
	})
	var reads int
	var compactions atomic.Int64
	wg.Go(func() { // background work
		for {
			select {
			case <-stop:
				return
			default:
			}
			r, err := c.Compact(ctx, store.Shard{})
			if err != nil {
				t.Error(err)
				return
			}
			compactions.Add(int64(r.Partitions))
			if _, err := col.Collect(ctx); err != nil {
				t.Error(err)
				return
			}
			time.Sleep(50 * time.Millisecond)
		}
	})
	// Four seconds of load at least, and on until something was
	// compacted: on a busy machine the first compaction can come late.
	start := time.Now()
	for (time.Since(start) < 4*time.Second || compactions.Load() == 0) && !t.Failed() { // consumer
		if time.Since(start) > 2*time.Minute {
			t.Fatal("nothing was compacted in 2 minutes of load")
		}
		for _, p := range pids {
			_, hw := tieredtest.Led(t, m, p).Offsets()
			if hw == 0 {
				continue
			}
			if n, _ := tieredtest.ReadAll(t, m, p, 0); n < hw {
				t.Fatalf("partition %d: read %d records, hw was %d", p, n, hw)
			}
			reads++
		}
	}
	close(stop)
	wg.Wait()
	cancel()
	if err := <-runDone; err != nil {
		t.Fatal(err)
	}
	t.Logf("%d full reads, %d partition compactions", reads, compactions.Load())
	if compactions.Load() == 0 {
		t.Fatal("nothing was compacted")
	}
	if rep, err := fsck.Check(context.Background(), e.St, e.Bucket, time.Hour); err != nil || !rep.OK() {
		t.Fatalf("fsck: %v %+v", err, rep)
	}
}
