// Package batchtest builds valid Kafka record batches (magic 2, correct
// length and CRC-32C) for tests that feed the broker or the partition
// engine directly.
package batchtest

import (
	"bytes"
	"encoding/binary"
	"hash/crc32"
	"io"
	"runtime"
	"strconv"

	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/zstd"
	"github.com/pierrec/lz4/v4"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// Spec describes a batch of N records that all have Key and Value and the
// timestamp Timestamp (ms). ProducerID < 0 makes a non-idempotent batch;
// otherwise the batch carries ProducerID, Epoch and first sequence
// Sequence, and is part of a transaction if Transactional.
type Spec struct {
	N             int
	Key, Value    []byte
	Timestamp     int64
	ProducerID    int64
	Epoch         int16
	Sequence      int32
	Transactional bool
}

// Build returns the batch's bytes.
func Build(s Spec) []byte {
	var recs []byte
	for i := range s.N {
		r := kmsg.Record{OffsetDelta: int32(i), Key: s.Key, Value: s.Value}
		r.Length = int32(len(r.AppendTo(nil)) - 1)
		recs = r.AppendTo(recs)
	}
	b := kmsg.RecordBatch{
		PartitionLeaderEpoch: -1, Magic: 2, LastOffsetDelta: int32(s.N - 1),
		FirstTimestamp: s.Timestamp, MaxTimestamp: s.Timestamp,
		ProducerID: s.ProducerID, ProducerEpoch: s.Epoch, FirstSequence: s.Sequence, NumRecords: int32(s.N), Records: recs,
	}
	if s.Transactional {
		b.Attributes |= 0x10
	}
	if s.ProducerID < 0 {
		b.ProducerID, b.ProducerEpoch, b.FirstSequence = -1, -1, -1
	}
	raw := b.AppendTo(nil)
	binary.BigEndian.PutUint32(raw[8:], uint32(len(raw)-12))
	binary.BigEndian.PutUint32(raw[17:], crc32.Checksum(raw[21:], crc32.MakeTable(crc32.Castagnoli)))
	return raw
}

// Bomb returns a batch of one record whose value is size zero bytes,
// compressed with codec (1 gzip, 3 lz4, 4 zstd) by streaming from a reader
// of zeros, so that building a gigabyte's bomb costs CPU but no memory: a
// few hundred kilobytes of zstd, about a megabyte of gzip per gigabyte
// (deflate's best ratio is about 1:1000), four of lz4 (1:250). The record
// is well formed, so only its size is wrong with it.
func Bomb(codec int8, size int64, timestamp int64) []byte {
	// The record: length, attributes, timestamp and offset deltas, a null
	// key, the value's length; then the value; then no headers.
	var pre []byte
	pre = append(pre, 0, 0, 0)
	pre = binary.AppendVarint(pre, -1)
	pre = binary.AppendVarint(pre, size)
	length := int64(len(pre)) + size + 1
	pre = append(binary.AppendVarint(nil, length), pre...)
	src := io.MultiReader(bytes.NewReader(pre), io.LimitReader(zeros{}, size), bytes.NewReader([]byte{0}))

	var out bytes.Buffer
	var w io.WriteCloser
	switch codec {
	case 1:
		// Deflating a gigabyte at the best level takes half a minute;
		// the same zeros as a run of identical gzip members (which
		// every reader takes as one stream) take a second.
		const member = 16 << 20
		if size <= member {
			gzipZeros(&out, pre, size, true)
			return build(codec, out.Bytes(), timestamp)
		}
		gzipZeros(&out, pre, member, false)
		var mid bytes.Buffer
		gzipZeros(&mid, nil, member, false)
		left := size - member
		for ; left > member; left -= member {
			out.Write(mid.Bytes())
		}
		gzipZeros(&out, nil, left, true)
		return build(codec, out.Bytes(), timestamp)
	case 3:
		zw := lz4.NewWriter(&out)
		_ = zw.Apply(lz4.BlockSizeOption(lz4.Block4Mb), lz4.CompressionLevelOption(lz4.Level9))
		w = zw
	case 4:
		w, _ = zstd.NewWriter(&out, zstd.WithEncoderLevel(zstd.SpeedBestCompression))
	default:
		panic("batchtest: no bomb for codec " + strconv.Itoa(int(codec)))
	}
	// Through a plain Writer: lz4's ReadFrom leaves the writer unable to Close.
	if _, err := io.Copy(struct{ io.Writer }{w}, src); err != nil {
		panic(err)
	}
	if err := w.Close(); err != nil {
		panic(err)
	}
	return build(codec, out.Bytes(), timestamp)
}

// gzipZeros appends a gzip member holding pre, n zeros and, if last, the
// record's empty header count.
func gzipZeros(out *bytes.Buffer, pre []byte, n int64, last bool) {
	w, _ := gzip.NewWriterLevel(out, gzip.BestCompression)
	src := io.MultiReader(bytes.NewReader(pre), io.LimitReader(zeros{}, n))
	if last {
		src = io.MultiReader(src, bytes.NewReader([]byte{0}))
	}
	if _, err := io.Copy(struct{ io.Writer }{w}, src); err != nil {
		panic(err)
	}
	if err := w.Close(); err != nil {
		panic(err)
	}
}

// build wraps compressed records of one record in a batch.
func build(codec int8, records []byte, timestamp int64) []byte {
	b := kmsg.RecordBatch{
		PartitionLeaderEpoch: -1, Magic: 2, Attributes: int16(codec),
		FirstTimestamp: timestamp, MaxTimestamp: timestamp,
		ProducerID: -1, ProducerEpoch: -1, FirstSequence: -1, NumRecords: 1, Records: records,
	}
	raw := b.AppendTo(nil)
	binary.BigEndian.PutUint32(raw[8:], uint32(len(raw)-12))
	binary.BigEndian.PutUint32(raw[17:], crc32.Checksum(raw[21:], crc32.MakeTable(crc32.Castagnoli)))
	return raw
}

type zeros struct{}

func (zeros) Read(p []byte) (int, error) {
	clear(p)
	return len(p), nil
}

// AllocatedBy returns the bytes this process allocated while fn ran (after
// a collection, so that earlier garbage does not count): what a bomb cost,
// and an upper bound of what fn made anything in the process hold.
func AllocatedBy(fn func()) uint64 {
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	fn()
	runtime.ReadMemStats(&after)
	return after.TotalAlloc - before.TotalAlloc
}
