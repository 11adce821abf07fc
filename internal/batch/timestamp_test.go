package batch_test

import (
	"errors"
	"testing"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/eddy-streams/eddy/internal/batch"
)

func TestFirstAtOrAfterEveryCodec(t *testing.T) {
	// Records at offsets 100..105, timestamps 1_000_000 + 0, 10, ..., 50.
	tests := []struct {
		name   string
		ts     int64
		wantOK bool
		off    int64
		recTS  int64
	}{
		{"before first", 0, true, 100, 1_000_000},
		{"at first", 1_000_000, true, 100, 1_000_000},
		{"between records", 1_000_015, true, 102, 1_000_020},
		{"at last", 1_000_050, true, 105, 1_000_050},
		{"after max", 1_000_051, false, 0, 0},
	}
	for _, c := range codecs {
		b := makeBatch(t, c, records(6, 10), func(rb *kmsg.RecordBatch) { rb.FirstOffset = 100 })
		for _, tt := range tests {
			t.Run(c.String()+"/"+tt.name, func(t *testing.T) {
				off, ts, ok, err := batch.FirstAtOrAfter(b, tt.ts, limit)
				if err != nil {
					t.Fatal(err)
				}
				if ok != tt.wantOK || off != tt.off || ts != tt.recTS {
					t.Fatalf("FirstAtOrAfter(%d) = %d, %d, %v; want %d, %d, %v", tt.ts, off, ts, ok, tt.off, tt.recTS, tt.wantOK)
				}
			})
		}
	}
}

func TestFirstAtOrAfterShapes(t *testing.T) {
	// withDeltas gives records the offset and timestamp deltas given, as
	// compaction or a producer with skewed clocks leaves them.
	withDeltas := func(offs []int32, tss []int64) []kmsg.Record {
		recs := records(len(offs), 0)
		for i := range recs {
			recs[i].OffsetDelta, recs[i].TimestampDelta64 = offs[i], tss[i]
		}
		return recs
	}
	tests := []struct {
		name   string
		b      []byte
		ts     int64
		wantOK bool
		off    int64
		recTS  int64
	}{
		{"compacted", makeBatch(t, batch.CodecZstd, withDeltas([]int32{0, 3, 7}, []int64{0, 5, 9}), nil),
			1_000_004, true, 3, 1_000_005},
		{"timestamps out of order", makeBatch(t, batch.CodecNone, withDeltas([]int32{0, 1, 2}, []int64{50, 10, 30}), nil),
			1_000_020, true, 0, 1_000_050},
		{"log append time", makeBatch(t, batch.CodecGzip, withDeltas([]int32{2, 4}, []int64{0, 1}), func(rb *kmsg.RecordBatch) {
			rb.Attributes |= 0x08
			rb.MaxTimestamp = 9_000_000
		}), 8_000_000, true, 2, 9_000_000},
		{"log append time too early", makeBatch(t, batch.CodecGzip, records(3, 1), func(rb *kmsg.RecordBatch) {
			rb.Attributes |= 0x08
			rb.MaxTimestamp = 9_000_000
		}), 9_000_001, false, 0, 0},
		{"no records left", makeBatch(t, batch.CodecNone, nil, func(rb *kmsg.RecordBatch) {
			rb.MaxTimestamp = 2_000_000
		}), 0, false, 0, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			off, ts, ok, err := batch.FirstAtOrAfter(tt.b, tt.ts, limit)
			if err != nil {
				t.Fatal(err)
			}
			if ok != tt.wantOK || off != tt.off || ts != tt.recTS {
				t.Fatalf("FirstAtOrAfter(%d) = %d, %d, %v; want %d, %d, %v", tt.ts, off, ts, ok, tt.off, tt.recTS, tt.wantOK)
			}
		})
	}
}

func TestFirstAtOrAfterErrors(t *testing.T) {
	good := makeBatch(t, batch.CodecLz4, records(4, 10), nil)
	plain := makeBatch(t, batch.CodecNone, records(4, 10), nil)
	tests := []struct {
		name string
		b    []byte
		want error
	}{
		{"truncated header", good[:30], batch.ErrCorrupt},
		{"truncated records", good[:len(good)-1], batch.ErrCorrupt},
		{"crc mismatch", withByte(good, len(good)-1, good[len(good)-1]^1), batch.ErrCorrupt},
		{"magic 1", withByte(good, 16, 1), batch.ErrMagic},
		{"codec 6", recrc(withByte(plain, 22, 6)), batch.ErrInvalid},
		// Uncompressed records labelled gzip: the CRC holds, the codec fails.
		{"not really gzip", recrc(withByte(plain, 22, byte(batch.CodecGzip))), batch.ErrCorrupt},
		{"record length too short", recrc(withByte(plain, batch.HeaderSize, 0x7e)), batch.ErrCorrupt},
		{"record length negative", recrc(withByte(plain, batch.HeaderSize, 0x01)), batch.ErrCorrupt},
		{"count beyond records", makeBatch(t, batch.CodecSnappy, records(2, 10), func(rb *kmsg.RecordBatch) {
			rb.NumRecords = 5
			rb.MaxTimestamp = 3_000_000
		}), batch.ErrCorrupt},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, _, ok, err := batch.FirstAtOrAfter(tt.b, 1_000_025, limit)
			if !errors.Is(err, tt.want) || ok {
				t.Fatalf("FirstAtOrAfter: ok %v, error %v; want %v", ok, err, tt.want)
			}
		})
	}
}

func BenchmarkFirstAtOrAfter(b *testing.B) {
	for _, c := range codecs {
		raw := makeBatch(b, c, records(100, 1), nil)
		b.Run(c.String(), func(b *testing.B) {
			b.SetBytes(int64(len(raw)))
			b.ReportAllocs()
			for b.Loop() {
				// The last record: the whole batch is decoded.
				if _, _, ok, err := batch.FirstAtOrAfter(raw, 1_000_099, limit); !ok || err != nil {
					b.Fatal(ok, err)
				}
			}
		})
	}
}
