package compact_test

import (
	"context"
	"encoding/binary"
	"fmt"
	"hash/crc32"
	"slices"
	"strings"
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

// txnKeyedBatch is keyedBatch for a transactional producer at epoch 0,
// first sequence seq.
func txnKeyedBatch(keys []string, values []string, tsMs, producerID int64, seq int32) []byte {
	var recs []byte
	for i, k := range keys {
		r := kmsg.Record{OffsetDelta: int32(i), Key: []byte(k), Value: []byte(values[i])}
		r.Length = int32(len(r.AppendTo(nil)) - 1)
		recs = r.AppendTo(recs)
	}
	b := kmsg.RecordBatch{
		PartitionLeaderEpoch: -1, Magic: 2, Attributes: 0x10, LastOffsetDelta: int32(len(keys) - 1),
		FirstTimestamp: tsMs, MaxTimestamp: tsMs,
		ProducerID: producerID, ProducerEpoch: 0, FirstSequence: seq, NumRecords: int32(len(keys)), Records: recs,
	}
	raw := b.AppendTo(nil)
	binary.BigEndian.PutUint32(raw[8:], uint32(len(raw)-12))
	binary.BigEndian.PutUint32(raw[17:], crc32.Checksum(raw[21:], crc32.MakeTable(crc32.Castagnoli)))
	return raw
}

// txnRig drives one partition's transactions as a broker and its
// coordinator would: batches appended after the produce check, markers
// queued in Postgres and written by the leader, every step flushed into
// its own piece.
type txnRig struct {
	t   *testing.T
	e   *tieredtest.Env
	m   *leader.Manager
	pid int64
}

func (r *txnRig) flush() {
	r.t.Helper()
	if err := r.m.Flush(context.Background()); err != nil {
		r.t.Fatal(err)
	}
}

// send appends a transactional batch of producerID and flushes it.
func (r *txnRig) send(producerID int64, seq int32, keys, values []string) {
	r.t.Helper()
	r.e.AppendTxn(r.t, r.m, r.pid, txnKeyedBatch(keys, values, time.Now().Add(-time.Hour).UnixMilli(), producerID, seq))
	r.flush()
}

// end writes producerID's marker and flushes it.
func (r *txnRig) end(producerID int64, commit bool) {
	r.t.Helper()
	r.e.EndTxn(r.t, r.m, producerID, commit)
	r.flush()
}

func (r *txnRig) plain(keys, values []string) {
	r.t.Helper()
	vals := make([][]byte, len(values))
	for i, v := range values {
		vals[i] = []byte(v)
	}
	tieredtest.Append(r.t, r.m, r.pid, keyedBatch(keys, vals, time.Now().Add(-time.Hour).UnixMilli()))
	r.flush()
}

// consumed is what a Kafka consumer of the partition gets: "key=value@offset"
// for each record, in order.
type consumed []string

// consume reads the partition from offset 0 as a Kafka client does
// (Java's CompletedFetch, franz-go's aborter): read_uncommitted gets every
// data record up to the high watermark; read_committed reads up to the
// last stable offset, skips control batches, and drops the batches of a
// producer from the first offset of an aborted transaction the fetch
// names until that producer's abort marker.
func (r *txnRig) consume(committed bool) (out consumed, aborted []store.AbortedTxn) {
	r.t.Helper()
	ctx := context.Background()
	p := tieredtest.Led(r.t, r.m, r.pid)
	for off := int64(0); ; {
		var (
			res leader.ReadResult
			err error
		)
		if committed {
			res, err = p.ReadCommitted(ctx, off, 1<<20)
		} else {
			res, err = p.Read(ctx, off, 1<<20)
		}
		if err != nil {
			r.t.Fatal(err)
		}
		if len(res.Records) == 0 {
			return out, aborted
		}
		aborted = append(aborted, res.Aborted...)
		queue := slices.Clone(res.Aborted)
		slices.SortFunc(queue, func(a, b store.AbortedTxn) int { return int(a.FirstOffset - b.FirstOffset) })
		dropping := map[int64]bool{}
		for h, raw := range batch.All(res.Records) {
			off = h.LastOffset() + 1
			if committed && h.Idempotent() {
				for len(queue) > 0 && queue[0].FirstOffset <= h.LastOffset() {
					dropping[queue[0].ProducerID] = true
					queue = queue[1:]
				}
				if h.Control() {
					if c, _, err := batch.ParseControl(raw); err == nil && !c {
						delete(dropping, h.ProducerID)
					}
					continue
				}
				if dropping[h.ProducerID] {
					continue
				}
			}
			if h.Control() {
				continue
			}
			var rb kmsg.RecordBatch
			if err := rb.ReadFrom(raw); err != nil {
				r.t.Fatal(err)
			}
			recs := rb.Records
			for range rb.NumRecords {
				length, n := binary.Varint(recs)
				var rec kmsg.Record
				if err := rec.ReadFrom(recs[:n+int(length)]); err != nil {
					r.t.Fatal(err)
				}
				recs = recs[n+int(length):]
				out = append(out, fmt.Sprintf("%s=%s@%d", rec.Key, rec.Value, h.BaseOffset+int64(rec.OffsetDelta)))
			}
		}
	}
}

// markers lists the offsets of the control batches left in the log.
func (r *txnRig) markers() []int64 {
	r.t.Helper()
	p := tieredtest.Led(r.t, r.m, r.pid)
	_, hw := p.Offsets()
	var out []int64
	for off := int64(0); off < hw; {
		res, err := p.Read(context.Background(), off, 1<<20)
		if err != nil {
			r.t.Fatal(err)
		}
		for h := range batch.All(res.Records) {
			if h.Control() {
				out = append(out, h.BaseOffset)
			}
			off = h.LastOffset() + 1
		}
	}
	return out
}

// Key compaction of a topic holding committed, aborted and open
// transactions: the aborted batches go in the first pass and their keys
// never count; the markers stay while data of their transaction is left
// before them and until delete.retention.ms, then go, each abort marker
// with its aborted_txns row; the open transaction above the last stable
// offset is not touched. Consumers read cold (a leader whose memory cache
// holds one flush) and see what Kafka's consumers would.
func TestKeyCompactionOfTransactions(t *testing.T) {
	ctx := context.Background()
	e := tieredtest.New(t,
		// Ratio 0: any dirty byte makes a pass (the third one has only
		// the aborted transaction's two batches).
		tieredtest.Topic{Name: "kv", Partitions: 1, Configs: map[string]string{"cleanup.policy": "compact", "delete.retention.ms": "3600000", "min.cleanable.dirty.ratio": "0"}})
	r := &txnRig{t: t, e: e, pid: e.Parts["kv"][0]}
	r.m = e.Manager(t, func(cfg *leader.Config) { cfg.CacheBytes = 1 }, nil)

	r.send(100, 0, []string{"a", "b"}, []string{"a1", "b1"}) // 0-1
	r.end(100, true)                                         // 2
	r.send(200, 0, []string{"a", "c"}, []string{"aX", "cX"}) // 3-4
	r.end(200, false)                                        // 5
	r.plain([]string{"b"}, []string{"b2"})                   // 6
	r.send(100, 2, []string{"d"}, []string{"d1"})            // 7
	r.end(100, true)                                         // 8
	r.plain([]string{"d"}, []string{"d2"})                   // 9
	r.send(200, 2, []string{"f"}, []string{"f1"})            // 10
	r.end(200, true)                                         // 11
	r.send(300, 0, []string{"a"}, []string{"aOpen"})         // 12, open: the LSO
	r.plain([]string{"e"}, []string{"e1"})                   // 13
	if lso := tieredtest.Led(t, r.m, r.pid).LastStable(); lso != 12 {
		t.Fatalf("LSO %d, want 12", lso)
	}
	if lso, err := e.St.LastStableOffset(ctx, r.pid); err != nil || lso != 12 {
		t.Fatalf("LSO in Postgres %d, %v; want 12", lso, err)
	}
	wantAborted := []store.AbortedTxn{{ProducerID: 200, FirstOffset: 3, LastOffset: 5}}
	checkConsumed(t, r, "before compaction",
		"a=a1@0 b=b1@1 b=b2@6 d=d1@7 d=d2@9 f=f1@10",
		"a=a1@0 b=b1@1 a=aX@3 c=cX@4 b=b2@6 d=d1@7 d=d2@9 f=f1@10 a=aOpen@12 e=e1@13")

	cfg := compact.DefaultConfig()
	cfg.MinPieces = 2
	c, err := compact.New(cfg, e.St, e.Bucket, -1, e.Log, nil)
	if err != nil {
		t.Fatal(err)
	}
	res, err := c.Compact(ctx, store.Shard{})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("first pass: %+v", res)
	if res.Partitions != 1 || res.AbortedBatches != 1 || res.DroppedMarkers != 0 || res.DroppedRecords != 2 {
		t.Fatalf("first pass: %+v; want 1 partition, 1 aborted batch, no marker, 2 records (b1, d1) dropped", res)
	}
	// The aborted records are gone for everyone; the committed ones are
	// compacted by key among themselves (aX, the aborted a, does not hide
	// a1); the open transaction and what follows it are as they were.
	checkConsumed(t, r, "after the first pass",
		"a=a1@0 b=b2@6 d=d2@9 f=f1@10",
		"a=a1@0 b=b2@6 d=d2@9 f=f1@10 a=aOpen@12 e=e1@13")
	if got := r.markers(); !slices.Equal(got, []int64{2, 5, 8, 11}) {
		t.Fatalf("markers at %v after the first pass, want all four", got)
	}
	if got, err := e.St.AbortedTxns(ctx, r.pid, 0, -1, 0); err != nil || !slices.Equal(got, wantAborted) {
		t.Fatalf("aborted_txns %v, %v; want %v", got, err, wantAborted)
	}

	// Past the horizon, the markers with no data of their transaction
	// left before them go: 5 (the abort, whose data the first pass
	// removed) and 8 (d1 was compacted away); 2 and 11 still end data.
	// Nothing new is dirty: the pass is due because the first one kept 5
	// and 8 only for their age.
	if err := e.St.SetTopicConfigs(ctx, "vc-t", "kv", map[string]string{"cleanup.policy": "compact", "delete.retention.ms": "0", "min.cleanable.dirty.ratio": "0"}); err != nil {
		t.Fatal(err)
	}
	time.Sleep(2 * time.Millisecond) // markers are stamped in milliseconds
	if res, err = c.Compact(ctx, store.Shard{}); err != nil {
		t.Fatal(err)
	}
	t.Logf("second pass: %+v", res)
	if res.DroppedMarkers != 2 || res.AbortedBatches != 0 {
		t.Fatalf("second pass: %+v; want 2 markers dropped", res)
	}
	if got := r.markers(); !slices.Equal(got, []int64{2, 11}) {
		t.Fatalf("markers at %v after the second pass, want [2 11]", got)
	}
	if got, err := e.St.AbortedTxns(ctx, r.pid, 0, -1, 0); err != nil || len(got) != 0 {
		t.Fatalf("aborted_txns %v, %v after its marker went; want none", got, err)
	}
	// The leader still remembers the aborted transaction; naming it to a
	// read_committed consumer now would hide f1, producer 200's later
	// committed record.
	checkConsumed(t, r, "after the second pass",
		"a=a1@0 b=b2@6 d=d2@9 f=f1@10",
		"a=a1@0 b=b2@6 d=d2@9 f=f1@10 a=aOpen@12 e=e1@13")

	// Once the open transaction aborts, the next pass removes its batch.
	r.end(300, false) // 14
	if res, err = c.Compact(ctx, store.Shard{}); err != nil {
		t.Fatal(err)
	}
	t.Logf("third pass: %+v", res)
	if res.AbortedBatches != 1 {
		t.Fatalf("third pass: %+v; want the aborted batch at 12 removed", res)
	}
	checkConsumed(t, r, "after the open transaction aborted",
		"a=a1@0 b=b2@6 d=d2@9 f=f1@10 e=e1@13",
		"a=a1@0 b=b2@6 d=d2@9 f=f1@10 e=e1@13")
	if rep, err := fsck.Check(ctx, e.St, e.Bucket, 0); err != nil || !rep.OK() {
		t.Fatalf("fsck: %v %+v", err, rep)
	}
}

func checkConsumed(t *testing.T, r *txnRig, when, committed, uncommitted string) {
	t.Helper()
	got, _ := r.consume(true)
	if s := strings.Join(got, " "); s != committed {
		t.Errorf("%s, read_committed:\n got %s\nwant %s", when, s, committed)
	}
	got, _ = r.consume(false)
	if s := strings.Join(got, " "); s != uncommitted {
		t.Errorf("%s, read_uncommitted:\n got %s\nwant %s", when, s, uncommitted)
	}
}
