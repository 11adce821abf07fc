package batch_test

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"math"
	"testing"

	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/eddy-streams/eddy/internal/batch"
)

var (
	codecs     = []batch.Codec{batch.CodecNone, batch.CodecGzip, batch.CodecSnappy, batch.CodecLz4, batch.CodecZstd}
	castagnoli = crc32.MakeTable(crc32.Castagnoli)
)

// records returns n records one offset and step milliseconds apart, with
// repetitive values so that every codec has something to compress, and a
// header on every other record.
func records(n int, step int64) []kmsg.Record {
	recs := make([]kmsg.Record, n)
	for i := range recs {
		recs[i] = kmsg.Record{
			OffsetDelta:      int32(i),
			TimestampDelta64: int64(i) * step,
			Key:              fmt.Appendf(nil, "key-%d", i),
			Value:            bytes.Repeat([]byte{'a' + byte(i%26)}, 100+i),
		}
		if i%2 == 1 {
			recs[i].Headers = []kmsg.Header{{Key: "h", Value: []byte("v")}}
		}
	}
	return recs
}

// encodeRecords encodes recs as a record batch's uncompressed payload,
// filling in each record's length prefix.
func encodeRecords(recs []kmsg.Record) []byte {
	var out []byte
	for _, r := range recs {
		r.Length = 0
		body := r.AppendTo(nil)[1:] // a zero length encodes as one byte
		r.Length = int32(len(body))
		out = r.AppendTo(out)
	}
	return out
}

// compress compresses payload with franz-go's producer compressor, the same
// code real clients use.
func compress(t testing.TB, c batch.Codec, payload []byte) []byte {
	t.Helper()
	opt := map[batch.Codec]kgo.CompressionCodec{
		batch.CodecGzip:   kgo.GzipCompression(),
		batch.CodecSnappy: kgo.SnappyCompression(),
		batch.CodecLz4:    kgo.Lz4Compression(),
		batch.CodecZstd:   kgo.ZstdCompression(),
	}
	if c == batch.CodecNone {
		return payload
	}
	comp, err := kgo.DefaultCompressor(opt[c])
	if err != nil {
		t.Fatal(err)
	}
	out, used := comp.Compress(new(bytes.Buffer), payload)
	if used != kgo.CompressionCodecType(c) {
		t.Fatalf("compressor used codec %d, want %v", used, c)
	}
	return bytes.Clone(out)
}

// makeBatch builds a batch of recs the way a producer does: header fields
// from the records, codec c, baseTimestamp 1_000_000, no producer ID. edit,
// if not nil, changes the header before it is encoded and checksummed.
func makeBatch(t testing.TB, c batch.Codec, recs []kmsg.Record, edit func(*kmsg.RecordBatch)) []byte {
	t.Helper()
	payload := compress(t, c, encodeRecords(recs))
	rb := kmsg.RecordBatch{
		PartitionLeaderEpoch: -1,
		Magic:                2,
		Attributes:           int16(c),
		FirstTimestamp:       1_000_000,
		ProducerID:           -1,
		ProducerEpoch:        -1,
		FirstSequence:        -1,
		NumRecords:           int32(len(recs)),
		Records:              payload,
		Length:               int32(batch.HeaderSize - 12 + len(payload)),
	}
	rb.MaxTimestamp = rb.FirstTimestamp
	for _, r := range recs {
		rb.LastOffsetDelta = max(rb.LastOffsetDelta, r.OffsetDelta)
		rb.MaxTimestamp = max(rb.MaxTimestamp, rb.FirstTimestamp+r.TimestampDelta64)
	}
	if edit != nil {
		edit(&rb)
	}
	b := rb.AppendTo(nil)
	binary.BigEndian.PutUint32(b[17:], crc32.Checksum(b[21:], castagnoli))
	return b
}

// recrc recomputes the CRC of the batch at the start of b, over the length
// its header claims, after a test edits it.
func recrc(b []byte) []byte {
	end := 12 + int(binary.BigEndian.Uint32(b[8:]))
	binary.BigEndian.PutUint32(b[17:], crc32.Checksum(b[21:end], castagnoli))
	return b
}

func concat(bs ...[]byte) []byte { return bytes.Join(bs, nil) }

func TestParseHeaderAgreesWithKmsg(t *testing.T) {
	for _, c := range codecs {
		t.Run(c.String(), func(t *testing.T) {
			b := makeBatch(t, c, records(7, 3), func(rb *kmsg.RecordBatch) {
				rb.FirstOffset = 42
				rb.PartitionLeaderEpoch = 9
				rb.Attributes |= 0x10
				rb.ProducerID = 1234
				rb.ProducerEpoch = 5
				rb.FirstSequence = 77
			})
			h, err := batch.ParseHeader(b)
			if err != nil {
				t.Fatal(err)
			}
			var rb kmsg.RecordBatch
			if err := rb.ReadFrom(b); err != nil {
				t.Fatal(err)
			}
			want := batch.Header{
				BaseOffset: rb.FirstOffset, Length: rb.Length, PartitionLeaderEpoch: rb.PartitionLeaderEpoch,
				Magic: rb.Magic, CRC: uint32(rb.CRC), Attributes: rb.Attributes, LastOffsetDelta: rb.LastOffsetDelta,
				BaseTimestamp: rb.FirstTimestamp, MaxTimestamp: rb.MaxTimestamp, ProducerID: rb.ProducerID,
				ProducerEpoch: rb.ProducerEpoch, BaseSequence: rb.FirstSequence, NumRecords: rb.NumRecords,
			}
			if h != want {
				t.Fatalf("ParseHeader = %+v\nkmsg says   %+v", h, want)
			}
			if h.Size() != len(b) {
				t.Errorf("Size() = %d, batch is %d bytes", h.Size(), len(b))
			}
			if h.Codec() != c || !h.Transactional() || !h.Idempotent() || h.Control() || h.LogAppendTime() {
				t.Errorf("accessors disagree with attributes %#x / producer %d", h.Attributes, h.ProducerID)
			}
			if got := h.LastOffset(); got != 48 {
				t.Errorf("LastOffset() = %d, want 48", got)
			}
			if got := h.LastSequence(); got != 83 {
				t.Errorf("LastSequence() = %d, want 83", got)
			}
		})
	}
}

func TestParseHeaderErrors(t *testing.T) {
	good := makeBatch(t, batch.CodecNone, records(1, 0), nil)
	tests := []struct {
		name string
		b    []byte
		want error
	}{
		{"empty", nil, batch.ErrCorrupt},
		{"ends before magic", good[:16], batch.ErrCorrupt},
		{"ends after magic", good[:17], batch.ErrCorrupt},
		{"ends inside header", good[:batch.HeaderSize-1], batch.ErrCorrupt},
		{"magic 1", withByte(good, 16, 1), batch.ErrMagic},
		{"magic 1 short", withByte(good, 16, 1)[:30], batch.ErrMagic},
		{"length below header", withUint32(good, 8, batch.HeaderSize-13), batch.ErrCorrupt},
		{"negative length", withUint32(good, 8, math.MaxUint32), batch.ErrCorrupt},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := batch.ParseHeader(tt.b); !errors.Is(err, tt.want) {
				t.Fatalf("ParseHeader error = %v, want %v", err, tt.want)
			}
		})
	}
	// The header alone is enough: ParseHeader does not need the records.
	if _, err := batch.ParseHeader(good[:batch.HeaderSize]); err != nil {
		t.Fatalf("ParseHeader of a bare header: %v", err)
	}
}

func TestLastSequence(t *testing.T) {
	tests := []struct {
		name        string
		base, delta int32
		want        int32
	}{
		{"no sequence", -1, 4, -1},
		{"single record", 10, 0, 10},
		{"several records", 10, 4, 14},
		{"ends at max", math.MaxInt32 - 2, 2, math.MaxInt32},
		{"wraps to zero", math.MaxInt32, 1, 0},
		{"wraps past zero", math.MaxInt32 - 1, 3, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := batch.Header{BaseSequence: tt.base, LastOffsetDelta: tt.delta}
			if got := h.LastSequence(); got != tt.want {
				t.Fatalf("LastSequence() = %d, want %d", got, tt.want)
			}
		})
	}
}

func TestCodecString(t *testing.T) {
	tests := []struct {
		c    batch.Codec
		want string
	}{
		{batch.CodecNone, "none"},
		{batch.CodecGzip, "gzip"},
		{batch.CodecSnappy, "snappy"},
		{batch.CodecLz4, "lz4"},
		{batch.CodecZstd, "zstd"},
		{5, "codec(5)"},
		{-1, "codec(-1)"},
	}
	for _, tt := range tests {
		if got := tt.c.String(); got != tt.want {
			t.Errorf("Codec(%d).String() = %q, want %q", int(tt.c), got, tt.want)
		}
	}
}

func withByte(b []byte, at int, v byte) []byte {
	b = bytes.Clone(b)
	b[at] = v
	return b
}

func withUint32(b []byte, at int, v uint32) []byte {
	b = bytes.Clone(b)
	binary.BigEndian.PutUint32(b[at:], v)
	return b
}
