package batch_test

import (
	"bytes"
	"errors"
	"testing"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/eddy-streams/eddy/internal/batch"
)

func TestValidateAccepts(t *testing.T) {
	one := makeBatch(t, batch.CodecNone, records(1, 0), nil)
	tests := []struct {
		name     string
		records  []byte
		maxBytes int
		want     int // batches
	}{
		{"one record", one, 0, 1},
		{"none", makeBatch(t, batch.CodecNone, records(20, 1), nil), 0, 1},
		{"gzip", makeBatch(t, batch.CodecGzip, records(20, 1), nil), 0, 1},
		{"snappy", makeBatch(t, batch.CodecSnappy, records(20, 1), nil), 0, 1},
		{"lz4", makeBatch(t, batch.CodecLz4, records(20, 1), nil), 0, 1},
		{"zstd", makeBatch(t, batch.CodecZstd, records(20, 1), nil), 0, 1},
		{"exactly maxBytes", one, len(one), 1},
		{"transactional idempotent", makeBatch(t, batch.CodecLz4, records(3, 1), func(rb *kmsg.RecordBatch) {
			rb.Attributes |= 0x10
			rb.ProducerID, rb.ProducerEpoch, rb.FirstSequence = 7, 0, 100
		}), 0, 1},
		{"several batches", concat(
			makeBatch(t, batch.CodecNone, records(2, 1), nil),
			makeBatch(t, batch.CodecZstd, records(5, 1), nil),
			one,
		), 0, 3},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			hs, err := batch.Validate(tt.records, tt.maxBytes)
			if err != nil {
				t.Fatal(err)
			}
			if len(hs) != tt.want {
				t.Fatalf("got %d headers, want %d", len(hs), tt.want)
			}
			total := 0
			for _, h := range hs {
				total += h.Size()
			}
			if total != len(tt.records) {
				t.Fatalf("headers cover %d bytes of %d", total, len(tt.records))
			}
		})
	}
}

func TestValidateRejects(t *testing.T) {
	good := makeBatch(t, batch.CodecSnappy, records(5, 1), nil)
	tests := []struct {
		name     string
		records  []byte
		maxBytes int
		want     error
	}{
		{"empty", nil, 0, batch.ErrInvalid},
		{"over maxBytes", good, len(good) - 1, batch.ErrTooLarge},
		{"several batches over maxBytes", concat(good, good), len(good) + 1, batch.ErrTooLarge},
		{"ends before magic", good[:10], 0, batch.ErrCorrupt},
		{"ends inside header", good[:40], 0, batch.ErrCorrupt},
		{"magic 0", withByte(good, 16, 0), 0, batch.ErrMagic},
		{"magic 1", withByte(good, 16, 1), 0, batch.ErrMagic},
		{"magic 3", withByte(good, 16, 3), 0, batch.ErrMagic},
		{"length below header", withUint32(good, 8, batch.HeaderSize-13), 0, batch.ErrCorrupt},
		{"negative length", withUint32(good, 8, 0x80000000), 0, batch.ErrCorrupt},
		{"length past end", withUint32(good, 8, uint32(len(good)-11)), 0, batch.ErrCorrupt},
		{"records truncated", good[:len(good)-1], 0, batch.ErrCorrupt},
		{"length short of records", recrc(withUint32(good, 8, uint32(len(good)-13))), 0, batch.ErrCorrupt},
		{"trailing bytes", concat(good, []byte{0, 0, 0}), 0, batch.ErrCorrupt},
		{"second batch truncated", concat(good, good[:len(good)-1]), 0, batch.ErrCorrupt},
		{"crc field wrong", withUint32(good, 17, 0xdeadbeef), 0, batch.ErrCorrupt},
		{"record byte flipped", withByte(good, len(good)-1, good[len(good)-1]^1), 0, batch.ErrCorrupt},
		{"attributes changed under crc", withByte(good, 22, good[22]|0x08), 0, batch.ErrCorrupt},
		{"no records", makeBatch(t, batch.CodecNone, nil, func(rb *kmsg.RecordBatch) {
			rb.LastOffsetDelta = -1
		}), 0, batch.ErrInvalid},
		{"negative count", makeBatch(t, batch.CodecNone, records(1, 0), func(rb *kmsg.RecordBatch) {
			rb.NumRecords, rb.LastOffsetDelta = -1, -2
		}), 0, batch.ErrInvalid},
		{"delta past count", makeBatch(t, batch.CodecNone, records(3, 0), func(rb *kmsg.RecordBatch) {
			rb.LastOffsetDelta = 3
		}), 0, batch.ErrInvalid},
		{"delta short of count", makeBatch(t, batch.CodecGzip, records(3, 0), func(rb *kmsg.RecordBatch) {
			rb.LastOffsetDelta = 1
		}), 0, batch.ErrInvalid},
		{"codec 5", makeBatch(t, batch.CodecNone, records(2, 0), func(rb *kmsg.RecordBatch) {
			rb.Attributes |= 5
		}), 0, batch.ErrInvalid},
		{"codec 7", makeBatch(t, batch.CodecNone, records(2, 0), func(rb *kmsg.RecordBatch) {
			rb.Attributes |= 7
		}), 0, batch.ErrInvalid},
		{"control batch", makeBatch(t, batch.CodecNone, records(1, 0), func(rb *kmsg.RecordBatch) {
			rb.Attributes |= 0x30
		}), 0, batch.ErrInvalid},
		{"second batch control", concat(good, makeBatch(t, batch.CodecNone, records(1, 0), func(rb *kmsg.RecordBatch) {
			rb.Attributes |= 0x20
		})), 0, batch.ErrInvalid},
		{"delete horizon", makeBatch(t, batch.CodecNone, records(1, 0), func(rb *kmsg.RecordBatch) {
			rb.Attributes |= batch.AttrDeleteHorizon
		}), 0, batch.ErrInvalid},
	}
	sentinels := []error{batch.ErrCorrupt, batch.ErrMagic, batch.ErrTooLarge, batch.ErrInvalid}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dst := make([]batch.Header, 1, 4) // a caller's leftover header
			hs, err := batch.ValidateInto(dst, tt.records, tt.maxBytes)
			if !errors.Is(err, tt.want) {
				t.Fatalf("error = %v, want %v", err, tt.want)
			}
			for _, s := range sentinels {
				if s != tt.want && errors.Is(err, s) {
					t.Errorf("error %v also matches %v", err, s)
				}
			}
			if len(hs) != 1 {
				t.Errorf("ValidateInto returned %d headers on error, want dst's 1", len(hs))
			}
		})
	}
}

func TestValidateIntoDoesNotAllocate(t *testing.T) {
	b := makeBatch(t, batch.CodecZstd, records(10, 1), nil)
	dst := make([]batch.Header, 0, 1)
	allocs := testing.AllocsPerRun(100, func() {
		var err error
		if dst, err = batch.ValidateInto(dst[:0], b, 0); err != nil {
			t.Fatal(err)
		}
	})
	if allocs != 0 {
		t.Fatalf("ValidateInto allocates %v times per call", allocs)
	}
}

func TestSetBaseOffsetAndEpoch(t *testing.T) {
	b := makeBatch(t, batch.CodecLz4, records(4, 1), nil)
	batch.SetBaseOffset(b, 1<<40)
	batch.SetPartitionLeaderEpoch(b, 17)
	// The CRC does not cover either field, so the batch stays valid.
	hs, err := batch.Validate(b, 0)
	if err != nil {
		t.Fatal(err)
	}
	if h := hs[0]; h.BaseOffset != 1<<40 || h.PartitionLeaderEpoch != 17 || h.LastOffset() != 1<<40+3 {
		t.Fatalf("header after patching: %+v", h)
	}
}

func TestSetLogAppendTime(t *testing.T) {
	const appendTime = 5_000_000
	for _, c := range codecs {
		t.Run(c.String(), func(t *testing.T) {
			first := makeBatch(t, c, records(6, 10), nil)
			second := makeBatch(t, c, records(2, 10), nil)
			b := concat(first, second)
			before, err := batch.ParseHeader(b)
			if err != nil {
				t.Fatal(err)
			}

			batch.SetLogAppendTime(b, appendTime)

			hs, err := batch.Validate(b, 0)
			if err != nil {
				t.Fatalf("Validate after SetLogAppendTime: %v", err)
			}
			h := hs[0]
			if !h.LogAppendTime() || h.MaxTimestamp != appendTime {
				t.Fatalf("header %+v: want LogAppendTime with maxTimestamp %d", h, appendTime)
			}
			if h.BaseTimestamp != before.BaseTimestamp || h.Codec() != c {
				t.Fatalf("baseTimestamp or codec changed: %+v, was %+v", h, before)
			}
			if !bytes.Equal(b[len(first):], second) {
				t.Fatal("SetLogAppendTime wrote past the end of its batch")
			}
			// Every record now reads as appended at appendTime.
			off, ts, ok, err := batch.FirstAtOrAfter(b[:len(first)], appendTime, limit)
			if err != nil || !ok || off != 0 || ts != appendTime {
				t.Fatalf("FirstAtOrAfter = %d, %d, %v, %v; want 0, %d, true, nil", off, ts, ok, err, appendTime)
			}
			// Patching again with the same time is a no-op.
			again := bytes.Clone(b)
			batch.SetLogAppendTime(again, appendTime)
			if !bytes.Equal(again, b) {
				t.Fatal("second SetLogAppendTime changed the batch")
			}
		})
	}
}

func TestEach(t *testing.T) {
	bs := [][]byte{
		makeBatch(t, batch.CodecNone, records(1, 0), nil),
		makeBatch(t, batch.CodecGzip, records(3, 0), nil),
		makeBatch(t, batch.CodecZstd, records(2, 0), nil),
	}
	stored := concat(bs...)
	tests := []struct {
		name string
		b    []byte
		stop int // return false after this many; 0 never
		want int
	}{
		{"empty", nil, 0, 0},
		{"all", stored, 0, 3},
		{"short trailing batch", concat(stored, bs[1][:len(bs[1])-1]), 0, 3},
		{"short trailing header", concat(stored, bs[1][:20]), 0, 3},
		{"trailing garbage", concat(stored, []byte{1, 2, 3}), 0, 3},
		{"stop early", stored, 2, 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var got [][]byte
			batch.Each(tt.b, func(h batch.Header, raw []byte) bool {
				if h.Size() != len(raw) || cap(raw) != len(raw) {
					t.Errorf("batch %d: Size %d, len %d, cap %d", len(got), h.Size(), len(raw), cap(raw))
				}
				got = append(got, raw)
				return len(got) != tt.stop
			})
			if len(got) != tt.want {
				t.Fatalf("Each visited %d batches, want %d", len(got), tt.want)
			}
			for i, raw := range got {
				if !bytes.Equal(raw, bs[i]) {
					t.Errorf("batch %d differs", i)
				}
			}
			n := 0
			for range batch.All(tt.b) {
				if n++; n == tt.stop {
					break
				}
			}
			if n != tt.want {
				t.Errorf("All yielded %d batches, want %d", n, tt.want)
			}
		})
	}
}

// sized16K builds an uncompressed batch of exactly 16 KiB.
func sized16K(b *testing.B) []byte {
	const size = 16 << 10
	recs := records(64, 1)
	for {
		raw := makeBatch(b, batch.CodecNone, recs, nil)
		switch d := size - len(raw); {
		case d == 0:
			return raw
		case d > 0:
			recs[0].Value = append(recs[0].Value, bytes.Repeat([]byte{'x'}, d)...)
		default:
			recs[0].Value = recs[0].Value[:len(recs[0].Value)+d]
		}
	}
}

func BenchmarkValidate(b *testing.B) {
	raw := sized16K(b)
	b.Run("Validate", func(b *testing.B) {
		b.SetBytes(int64(len(raw)))
		b.ReportAllocs()
		for b.Loop() {
			if _, err := batch.Validate(raw, 0); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("ValidateInto", func(b *testing.B) {
		b.SetBytes(int64(len(raw)))
		b.ReportAllocs()
		dst := make([]batch.Header, 0, 1)
		for b.Loop() {
			var err error
			if dst, err = batch.ValidateInto(dst[:0], raw, 0); err != nil {
				b.Fatal(err)
			}
		}
	})
}
