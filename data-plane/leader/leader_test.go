package leader_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"log/slog"
	"slices"
	"testing"
	"time"

	"github.com/eddy-streams/eddy/control-plane/placement"
	"github.com/eddy-streams/eddy/data-plane/leader"
	"github.com/eddy-streams/eddy/internal/batch"
	"github.com/eddy-streams/eddy/internal/batchtest"
	"github.com/eddy-streams/eddy/internal/pgtest"
	"github.com/eddy-streams/eddy/internal/store"
	"github.com/eddy-streams/eddy/internal/tieredtest"
	"github.com/eddy-streams/eddy/tiered/fsbucket"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

// recordBatch builds a valid magic-2 batch of n records.
func recordBatch(n int, producerID int64, seq int32) []byte {
	return recordBatchOf(n, producerID, seq, []byte("v"))
}

func recordBatchOf(n int, producerID int64, seq int32, value []byte) []byte {
	return batchtest.Build(batchtest.Spec{N: n, Key: []byte("k"), Value: value, Timestamp: 1000, ProducerID: producerID, Sequence: seq})
}

type env struct {
	st   *store.Store
	pid  int64
	dir  string
	objs *fsbucket.Bucket
}

func setup(t testing.TB) *env {
	t.Helper()
	ctx := context.Background()
	te := tieredtest.New(t, tieredtest.Topic{Name: "t", Partitions: 1})
	pid := te.Parts["t"][0]
	st, err := te.St.LoadPartition(ctx, pid, time.Time{})
	if err != nil {
		t.Fatal(err)
	}
	if st.LeaderID != 1 || st.LeaderEpoch != 1 {
		t.Fatalf("partition placed on %d epoch %d, want broker 1 epoch 1", st.LeaderID, st.LeaderEpoch)
	}
	return &env{st: te.St, pid: pid, dir: te.Dir, objs: te.FS}
}

func (e *env) manager(t testing.TB, id int32) *leader.Manager {
	t.Helper()
	return e.managerWith(t, id, nil)
}

// managerWith is manager with leader.DefaultConfig changed by configure
// (if not nil).
func (e *env) managerWith(t testing.TB, id int32, configure func(*leader.Config)) *leader.Manager {
	t.Helper()
	cfg := leader.DefaultConfig()
	cfg.BrokerID, cfg.WALDir = id, e.dir+"/wal-"+string(rune('0'+id))
	if configure != nil {
		configure(&cfg)
	}
	m, err := leader.Open(cfg, e.st, e.objs, slog.New(slog.NewTextHandler(io.Discard, nil)), nil)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// lead opens broker id's manager (closed when t ends) and has it lead the
// partition at epoch.
func (e *env) lead(t *testing.T, id, epoch int32) (*leader.Manager, *leader.Partition) {
	t.Helper()
	return e.leadWith(t, id, epoch, nil)
}

// leadWith is lead with the manager's configuration changed by configure.
func (e *env) leadWith(t *testing.T, id, epoch int32, configure func(*leader.Config)) (*leader.Manager, *leader.Partition) {
	t.Helper()
	m := e.managerWith(t, id, configure)
	t.Cleanup(func() { m.Close() })
	if err := m.Sync(context.Background(), map[int64]int32{e.pid: epoch}); err != nil {
		t.Fatal(err)
	}
	return m, tieredtest.Led(t, m, e.pid)
}

// moveToBroker2 has placement move the partition from broker 1 to broker
// 2 (epoch 2), as when broker 1 leaves; broker 1 has not noticed yet.
func (e *env) moveToBroker2(t *testing.T) {
	t.Helper()
	ctx := context.Background()
	if _, err := e.st.Register(ctx, 2, "127.0.0.1", 2, "", time.Minute); err != nil {
		t.Fatal(err)
	}
	if err := e.st.Deregister(ctx, 1, 1); err != nil {
		t.Fatal(err)
	}
	if _, _, err := e.st.PlaceRound(ctx, placement.Assign); err != nil {
		t.Fatal(err)
	}
}

func appendBatch(t *testing.T, p *leader.Partition, raw []byte) leader.AppendResult {
	t.Helper()
	return appendWith(t, raw, func(hdrs []batch.Header) (leader.AppendResult, error) {
		return p.Append(raw, hdrs, false)
	})
}

// appendWith validates raw and appends it with add, failing t on an error.
func appendWith(t *testing.T, raw []byte, add func([]batch.Header) (leader.AppendResult, error)) leader.AppendResult {
	t.Helper()
	hdrs, err := batch.Validate(raw, 0)
	if err != nil {
		t.Fatal(err)
	}
	res, err := add(hdrs)
	if err != nil {
		t.Fatal(err)
	}
	return res
}

// A deposed leader's flush must not commit, and its acks=all waiters must
// get ErrNotLeader; the new leader continues at the committed high
// watermark (DESIGN.md invariants 1 and 2).
func TestDeposedLeaderCannotCommit(t *testing.T) {
	ctx := context.Background()
	e := setup(t)
	m1, p1 := e.lead(t, 1, 1)
	r := appendBatch(t, p1, recordBatch(3, -1, -1))
	if err := m1.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	if err := p1.WaitCommitted(ctx, r.LastOffset); err != nil {
		t.Fatal(err)
	}
	if _, hw := p1.Offsets(); hw != 3 {
		t.Fatalf("hw %d, want 3", hw)
	}

	// Broker 2 takes over: broker 1 leaves, placement bumps the epoch.
	e.moveToBroker2(t)

	// Broker 1 has not noticed yet and accepts one more batch.
	stale := appendBatch(t, p1, recordBatch(2, -1, -1))
	if err := m1.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	wctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	if err := p1.WaitCommitted(wctx, stale.LastOffset); !errors.Is(err, leader.ErrNotLeader) {
		t.Fatalf("deposed leader's waiter got %v, want ErrNotLeader", err)
	}
	st, err := e.st.LoadPartition(ctx, e.pid, time.Time{})
	if err != nil {
		t.Fatal(err)
	}
	if st.HighWatermark != 3 || st.LeaderID != 2 || st.LeaderEpoch != 2 {
		t.Fatalf("after fencing: %+v, want hw 3 led by 2 at epoch 2", st)
	}

	m2 := e.manager(t, 2)
	defer m2.Close()
	if err := m2.Sync(ctx, map[int64]int32{e.pid: 2}); err != nil {
		t.Fatal(err)
	}
	p2 := tieredtest.Led(t, m2, e.pid)
	r2 := appendBatch(t, p2, recordBatch(1, -1, -1))
	if r2.BaseOffset != 3 {
		t.Fatalf("new leader assigned offset %d, want 3 (the committed high watermark)", r2.BaseOffset)
	}
	if err := m2.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	res, err := p2.Read(ctx, 0, 1<<20)
	if err != nil {
		t.Fatal(err)
	}
	var offs []int64
	batch.Each(res.Records, func(h batch.Header, _ []byte) bool { offs = append(offs, h.BaseOffset); return true })
	if len(offs) != 2 || offs[0] != 0 || offs[1] != 3 || res.HighWatermark != 4 {
		t.Fatalf("read batches at %v hw %d, want [0 3] hw 4", offs, res.HighWatermark)
	}
}

// Idempotent retries get their original offsets, also from a new leader
// (producer state is committed with the data); gaps are refused.
func TestIdempotentProducer(t *testing.T) {
	ctx := context.Background()
	e := setup(t)
	m1 := e.manager(t, 1)
	if err := m1.Sync(ctx, map[int64]int32{e.pid: 1}); err != nil {
		t.Fatal(err)
	}
	p := tieredtest.Led(t, m1, e.pid)
	first := appendBatch(t, p, recordBatch(5, 4242, 0))
	dup := appendBatch(t, p, recordBatch(5, 4242, 0))
	if !dup.Duplicate || dup.BaseOffset != first.BaseOffset {
		t.Fatalf("retry got %+v, want the original offset %d", dup, first.BaseOffset)
	}
	hdrs, _ := batch.Validate(recordBatch(1, 4242, 7), 0)
	if _, err := p.Append(recordBatch(1, 4242, 7), hdrs, false); !errors.Is(err, leader.ErrOutOfOrderSequence) {
		t.Fatalf("sequence gap: got %v, want ErrOutOfOrderSequence", err)
	}
	second := appendBatch(t, p, recordBatch(2, 4242, 5))
	if err := m1.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	m1.Close()

	// A new manager (a restarted or new leader) loads the producer state
	// from Postgres and still recognises the retry.
	m2 := e.manager(t, 1)
	defer m2.Close()
	if err := m2.Sync(ctx, map[int64]int32{e.pid: 1}); err != nil {
		t.Fatal(err)
	}
	again := appendBatch(t, tieredtest.Led(t, m2, e.pid), recordBatch(2, 4242, 5))
	if !again.Duplicate || again.BaseOffset != second.BaseOffset {
		t.Fatalf("retry after leader change got %+v, want offset %d", again, second.BaseOffset)
	}
}

// A broker that crashes (no clean shutdown) replays its WAL on restart and
// commits what it had acknowledged with acks=1.
func TestWALReplay(t *testing.T) {
	ctx := context.Background()
	e := setup(t)
	m1 := e.manager(t, 1)
	if err := m1.Sync(ctx, map[int64]int32{e.pid: 1}); err != nil {
		t.Fatal(err)
	}
	appendBatch(t, tieredtest.Led(t, m1, e.pid), recordBatch(4, -1, -1))
	appendBatch(t, tieredtest.Led(t, m1, e.pid), recordBatch(6, -1, -1))
	m1.Close() // no flush: as if the process died after answering acks=1

	m2 := e.manager(t, 1)
	defer m2.Close()
	if err := m2.Sync(ctx, map[int64]int32{e.pid: 1}); err != nil {
		t.Fatal(err)
	}
	if err := m2.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	st, err := e.st.LoadPartition(ctx, e.pid, time.Time{})
	if err != nil {
		t.Fatal(err)
	}
	if st.HighWatermark != 10 {
		t.Fatalf("after replay hw is %d, want 10", st.HighWatermark)
	}
}

// Reads bounded by maxBytes must stop at the first batch that does not
// fit: skipping to a later, smaller batch would hide records from the
// consumer. Checked on the cache and on object storage, and on inline
// rows (flushes committed in Postgres, not yet uploaded).
func TestReadNeverSkips(t *testing.T) {
	for _, mode := range []struct {
		name   string
		inline int64
	}{{"object store", 0}, {"inline", leader.DefaultConfig().InlineMaxBytes}} {
		t.Run(mode.name, func(t *testing.T) {
			testReadNeverSkips(t, mode.name, func(c *leader.Config) {
				c.InlineMaxBytes = mode.inline
				c.UploadAge = time.Hour // no uploader runs here anyway
			})
		})
	}
}

func testReadNeverSkips(t *testing.T, cold string, configure func(*leader.Config)) {
	ctx := context.Background()
	e := setup(t)
	m, p := e.leadWith(t, 1, 1, configure)
	// Flushes of alternating big and small batches: one index row each.
	for i := range 6 {
		n := 1
		if i%2 == 0 {
			n = 50
		}
		appendBatch(t, p, recordBatch(n, -1, -1))
		if err := m.Flush(ctx); err != nil {
			t.Fatal(err)
		}
	}
	check := func(name string, read func(off int64, max int) []byte) {
		for _, max := range []int{1, 100, 500, 1000, 2000, 1 << 20} {
			next := int64(0)
			for next < 153 {
				got := read(next, max)
				if len(got) == 0 {
					t.Fatalf("%s: empty read at %d (max %d)", name, next, max)
				}
				batch.Each(got, func(h batch.Header, _ []byte) bool {
					if h.BaseOffset > next {
						t.Fatalf("%s: read at max %d jumped from %d to batch %d", name, max, next, h.BaseOffset)
					}
					next = h.LastOffset() + 1
					return true
				})
			}
		}
	}
	check("cache", func(off int64, max int) []byte {
		r, err := p.Read(ctx, off, max)
		if err != nil {
			t.Fatal(err)
		}
		return r.Records
	})
	m.Close()
	m2 := e.managerWith(t, 1, configure) // a new leader: nothing cached, all from objects or inline rows
	defer m2.Close()
	if err := m2.Sync(ctx, map[int64]int32{e.pid: 1}); err != nil {
		t.Fatal(err)
	}
	check(cold, func(off int64, max int) []byte {
		r, err := tieredtest.Led(t, m2, e.pid).Read(ctx, off, max)
		if err != nil {
			t.Fatal(err)
		}
		return r.Records
	})
	refs, err := e.st.ObjectRefs(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if inObjects := cold == "object store"; (len(refs) > 0) != inObjects {
		t.Fatalf("%d objects after the flushes; want them in objects: %v", len(refs), inObjects)
	}
}

// BenchmarkProduceAppend measures the broker's produce hot path below the
// protocol: batch validation (CRC-32C) plus Partition.Append (offset
// patching, one WAL write, queueing for the flusher) for 16 KiB batches.
// The flusher runs as in production, so object PUTs and commits happen in
// the background.
func BenchmarkProduceAppend(b *testing.B) {
	ctx := context.Background()
	e := setup(b)
	m := e.manager(b, 1)
	defer m.Close()
	if err := m.Sync(ctx, map[int64]int32{e.pid: 1}); err != nil {
		b.Fatal(err)
	}
	p := tieredtest.Led(b, m, e.pid)
	runCtx, stop := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() { m.Run(runCtx); close(done) }()
	defer func() { stop(); <-done }()

	proto := recordBatchOf(16, -1, -1, make([]byte, 1000)) // ~16 KiB
	hdrs := make([]batch.Header, 0, 1)
	b.SetBytes(int64(len(proto)))
	b.ResetTimer()
	for range b.N {
		raw := append([]byte(nil), proto...) // the broker keeps each request's bytes
		var err error
		if hdrs, err = batch.ValidateInto(hdrs[:0], raw, 1<<20); err != nil {
			b.Fatal(err)
		}
		if _, err := p.Append(raw, hdrs, false); err != nil {
			b.Fatal(err)
		}
	}
}

// EnvUnsafeNoDedupe, the fault-injection harness's switch, stores an
// idempotent retry again; without it the retry is recognised (above).
func TestUnsafeNoDedupe(t *testing.T) {
	t.Setenv(leader.EnvUnsafeNoDedupe, "1")
	_, p := setup(t).lead(t, 1, 1)
	first := appendBatch(t, p, recordBatch(5, 4242, 0))
	again := appendBatch(t, p, recordBatch(5, 4242, 0))
	if again.Duplicate || again.BaseOffset != first.LastOffset+1 {
		t.Fatalf("retry with the dedupe off got %+v, want it stored again at %d", again, first.LastOffset+1)
	}
}

// Reads of committed batches from the leader's cache hand out the cached
// bytes themselves, not a copy per read, capped so that a caller's append
// cannot write into them; a read spanning chunks is one fresh slice.
func TestReadsShareCachedBytes(t *testing.T) {
	ctx := context.Background()
	e := setup(t)
	m, p := e.leadWith(t, 1, 1, func(c *leader.Config) { c.InlineMaxBytes = 0 })
	appendBatch(t, p, recordBatch(5, -1, -1)) // offsets 0-4
	if err := m.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	appendBatch(t, p, recordBatch(3, -1, -1)) // 5-7
	appendBatch(t, p, recordBatch(2, -1, -1)) // 8-9
	if err := m.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	readMax := func(off int64, max int) []byte {
		r, err := p.Read(ctx, off, max)
		if err != nil {
			t.Fatal(err)
		}
		return r.Records
	}
	read := func(off int64) []byte { return readMax(off, 1<<20) }
	bases := func(b []byte) (out []int64) {
		batch.Each(b, func(h batch.Header, _ []byte) bool { out = append(out, h.BaseOffset); return true })
		return out
	}
	one, again := read(5), read(5)
	if got := bases(one); !slices.Equal(got, []int64{5, 8}) {
		t.Fatalf("read at 5 returned batches at %v, want [5 8]", got)
	}
	if &one[0] != &again[0] {
		t.Fatal("two reads of the same cached chunk returned copies, not the cached bytes")
	}
	if cap(one) != len(one) {
		t.Fatalf("read returned %d bytes with capacity %d: an append would write into the cache", len(one), cap(one))
	}
	// A read that stops inside a chunk is capped too.
	first := readMax(5, 1)
	if got := bases(first); !slices.Equal(got, []int64{5}) || cap(first) != len(first) {
		t.Fatalf("read at 5 of 1 byte returned batches at %v, %d bytes with capacity %d", got, len(first), cap(first))
	}
	want := slices.Clone(one)
	_ = append(first, 0xff)
	_ = append(one, 0xff)
	if !bytes.Equal(read(5), want) {
		t.Fatal("appending to a read's records changed the cached bytes")
	}
	all := read(0)
	if got := bases(all); !slices.Equal(got, []int64{0, 5, 8}) {
		t.Fatalf("read at 0 returned batches at %v, want [0 5 8]", got)
	}
	if !bytes.Equal(all[len(all)-len(want):], want) {
		t.Fatal("a read across chunks did not return the second chunk's bytes")
	}
}
