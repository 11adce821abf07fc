package compact_test

import (
	"context"
	"encoding/binary"
	"fmt"
	"hash/crc32"
	"testing"
	"time"

	"github.com/klauspost/compress/zstd"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/eddy-streams/eddy/internal/store"
	"github.com/eddy-streams/eddy/internal/tieredtest"
	"github.com/eddy-streams/eddy/tiered/compact"
)

// zstdKeyedBatch is keyedBatch compressed with zstd.
func zstdKeyedBatch(t *testing.T, keys []string, values [][]byte, tsMs int64) []byte {
	t.Helper()
	var recs []byte
	for i, k := range keys {
		r := kmsg.Record{OffsetDelta: int32(i), Key: []byte(k), Value: values[i]}
		r.Length = int32(len(r.AppendTo(nil)) - 1)
		recs = r.AppendTo(recs)
	}
	enc, err := zstd.NewWriter(nil, zstd.WithEncoderLevel(zstd.SpeedBestCompression))
	if err != nil {
		t.Fatal(err)
	}
	b := kmsg.RecordBatch{
		PartitionLeaderEpoch: -1, Magic: 2, Attributes: 4, LastOffsetDelta: int32(len(keys) - 1),
		FirstTimestamp: tsMs, MaxTimestamp: tsMs,
		ProducerID: -1, ProducerEpoch: -1, FirstSequence: -1, NumRecords: int32(len(keys)), Records: enc.EncodeAll(recs, nil),
	}
	raw := b.AppendTo(nil)
	binary.BigEndian.PutUint32(raw[8:], uint32(len(raw)-12))
	binary.BigEndian.PutUint32(raw[17:], crc32.Checksum(raw[21:], crc32.MakeTable(crc32.Castagnoli)))
	return raw
}

// A compressed batch holding many more keys than its bytes would as
// uncompressed records: the offset map grows to take them (within its
// share of --compact-memory-bytes) rather than the partition being left
// as it is every pass.
func TestKeyCompactionCompressedBatchOfManyKeys(t *testing.T) {
	ctx := context.Background()
	e := tieredtest.New(t, tieredtest.Topic{Name: "kvz", Partitions: 1, Configs: map[string]string{"cleanup.policy": "compact"}})
	pid := e.Parts["kvz"][0]
	m := e.Manager(t, nil, nil)
	defer m.Close()
	ts := time.Now().UnixMilli()
	const n = 20_000
	keys, vals := make([]string, n), make([][]byte, n)
	for i := range n {
		keys[i], vals[i] = fmt.Sprintf("key-%06d", i), []byte("v")
	}
	tieredtest.Append(t, m, pid, keyedBatch([]string{keys[0]}, [][]byte{[]byte("old")}, ts))
	z := zstdKeyedBatch(t, keys, vals, ts)
	if est := int64(len(z)) / 8; est*2 > n {
		t.Fatalf("the batch (%d bytes) is not compressed enough for the test", len(z))
	}
	tieredtest.Append(t, m, pid, z)
	if err := m.Flush(ctx); err != nil {
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
	if r.DroppedRecords != 1 || r.KeyRounds != 1 {
		t.Fatalf("%+v: want the old value of %s dropped in one round", r, keys[0])
	}
}

// truncatedBatch is keyedBatch of keys with one more record cut short:
// the others decode, the batch does not (its CRC is right).
func truncatedBatch(keys []string, value []byte, tsMs int64) []byte {
	var recs []byte
	for i, k := range keys {
		r := kmsg.Record{OffsetDelta: int32(i), Key: []byte(k), Value: value}
		r.Length = int32(len(r.AppendTo(nil)) - 1)
		recs = r.AppendTo(recs)
	}
	recs = append(recs, 0x20, 0) // a record of 16 bytes, one there
	n := int32(len(keys) + 1)
	b := kmsg.RecordBatch{
		PartitionLeaderEpoch: -1, Magic: 2, LastOffsetDelta: n - 1, FirstTimestamp: tsMs, MaxTimestamp: tsMs,
		ProducerID: -1, ProducerEpoch: -1, FirstSequence: -1, NumRecords: n, Records: recs,
	}
	raw := b.AppendTo(nil)
	binary.BigEndian.PutUint32(raw[8:], uint32(len(raw)-12))
	binary.BigEndian.PutUint32(raw[17:], crc32.Checksum(raw[21:], crc32.MakeTable(crc32.Castagnoli)))
	return raw
}

// A batch that does not decode is kept whole and its keys do not count:
// the record it supersedes (as far as its first records say) stays,
// whether the batch holds few keys or more than are held back.
func TestKeyCompactionUnreadableBatchKeysDoNotCount(t *testing.T) {
	for _, n := range []int{1, 5000} {
		t.Run(fmt.Sprint(n, " keys"), func(t *testing.T) {
			ctx := context.Background()
			e := tieredtest.New(t, tieredtest.Topic{Name: "kvc", Partitions: 1, Configs: map[string]string{"cleanup.policy": "compact"}})
			pid := e.Parts["kvc"][0]
			m := e.Manager(t, nil, nil)
			ts := time.Now().UnixMilli()
			keys := []string{"x"}
			for i := 1; i < n; i++ {
				keys = append(keys, fmt.Sprintf("k%d", i))
			}
			tieredtest.Append(t, m, pid, keyedBatch([]string{"x"}, [][]byte{[]byte("old")}, ts))
			tieredtest.Append(t, m, pid, truncatedBatch(keys, []byte("new"), ts))
			tieredtest.Append(t, m, pid, keyedBatch([]string{"y"}, [][]byte{[]byte("y")}, ts))
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
			if r.SkippedBatches != 1 || r.DroppedRecords != 0 {
				t.Fatalf("%+v: want the unreadable batch skipped and x's old value kept", r)
			}
		})
	}
}
