package batch_test

import (
	"bytes"
	"errors"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/eddy-streams/eddy/internal/batch"
	"github.com/eddy-streams/eddy/internal/batchtest"
	"github.com/eddy-streams/eddy/internal/racebuild"
)

// limit is the decompression limit of a topic with the default
// max.message.bytes.
var limit = batch.DecompressLimit(1048588)

func TestDecompressLimit(t *testing.T) {
	tests := []struct {
		name string
		mmb  int64
		want int
	}{
		{"default", 1048588, 1048588 * batch.DecompressRatio},
		{"small", 1000, 1000 * batch.DecompressRatio},
		{"zero means the ceiling", 0, batch.DecompressCeiling},
		{"at the ceiling", batch.DecompressCeiling / batch.DecompressRatio, batch.DecompressCeiling},
		{"above the ceiling", 1<<31 - 1, batch.DecompressCeiling},
	}
	for _, tt := range tests {
		if got := batch.DecompressLimit(tt.mmb); got != tt.want {
			t.Errorf("%s: DecompressLimit(%d) = %d, want %d", tt.name, tt.mmb, got, tt.want)
		}
	}
}

// At exactly the limit a batch passes, one byte under it fails with
// ErrTooLarge, for every codec and for both the counting check (produce)
// and the record walk (readers).
func TestDecompressAtLimit(t *testing.T) {
	recs := records(50, 3)
	size := len(encodeRecords(recs))
	for _, c := range codecs[1:] {
		t.Run(c.String(), func(t *testing.T) {
			b := makeBatch(t, c, recs, nil)
			if err := check(b, size); err != nil {
				t.Fatalf("CheckDecompressed at the limit (%d): %v", size, err)
			}
			if err := check(b, size-1); !errors.Is(err, batch.ErrTooLarge) {
				t.Fatalf("CheckDecompressed one under (%d): %v, want ErrTooLarge", size-1, err)
			}
			n := 0
			if err := batch.Records(b, size, func(*kmsg.Record) bool { n++; return true }); err != nil || n != len(recs) {
				t.Fatalf("Records at the limit: %d records, %v", n, err)
			}
			if err := batch.Records(b, size-1, func(*kmsg.Record) bool { return true }); !errors.Is(err, batch.ErrTooLarge) {
				t.Fatalf("Records one under: %v, want ErrTooLarge", err)
			}
		})
	}
	// Uncompressed records are already in memory: nothing to bound.
	b := makeBatch(t, batch.CodecNone, recs, nil)
	if err := check(b, 1); err != nil {
		t.Fatalf("CheckDecompressed of an uncompressed batch: %v", err)
	}
}

// Records yields the records kmsg decodes, in every codec.
func TestRecordsAgreeWithKmsg(t *testing.T) {
	recs := records(20, 5)
	for _, c := range codecs {
		t.Run(c.String(), func(t *testing.T) {
			var got []kmsg.Record
			err := batch.Records(makeBatch(t, c, recs, nil), limit, func(r *kmsg.Record) bool {
				r2 := *r
				r2.Key, r2.Value = bytes.Clone(r.Key), bytes.Clone(r.Value)
				got = append(got, r2)
				return true
			})
			if err != nil {
				t.Fatal(err)
			}
			if len(got) != len(recs) {
				t.Fatalf("%d records, want %d", len(got), len(recs))
			}
			for i := range recs {
				if got[i].OffsetDelta != recs[i].OffsetDelta || !bytes.Equal(got[i].Key, recs[i].Key) ||
					!bytes.Equal(got[i].Value, recs[i].Value) || len(got[i].Headers) != len(recs[i].Headers) {
					t.Fatalf("record %d = %+v, want %+v", i, got[i], recs[i])
				}
			}
		})
	}
}

func TestDecompressCorrupt(t *testing.T) {
	recs := records(50, 3)
	for _, c := range codecs[1:] {
		good := makeBatch(t, c, recs, nil)
		payload := good[batch.HeaderSize:]
		tests := []struct {
			name    string
			payload []byte
		}{
			{"truncated", payload[:len(payload)/2]},
			{"garbage", bytes.Repeat([]byte{0xff}, 64)},
		}
		for _, tt := range tests {
			t.Run(c.String()+"/"+tt.name, func(t *testing.T) {
				b := makeBatch(t, c, recs, nil)[:batch.HeaderSize]
				b = recrc(withUint32(append(b, tt.payload...), 8, uint32(batch.HeaderSize-12+len(tt.payload))))
				if err := check(b, limit); !errors.Is(err, batch.ErrCorrupt) {
					t.Errorf("CheckDecompressed: %v, want ErrCorrupt", err)
				}
				if err := batch.Records(b, limit, func(*kmsg.Record) bool { return true }); !errors.Is(err, batch.ErrCorrupt) {
					t.Errorf("Records: %v, want ErrCorrupt", err)
				}
			})
		}
	}
}

// bombs are built once per test binary: the gzip one takes a few seconds.
var bombs = map[batch.Codec][]byte{}

func bomb(t testing.TB, c batch.Codec) []byte {
	t.Helper()
	if b, ok := bombs[c]; ok {
		return b
	}
	size := int64(1 << 30)
	if c == batch.CodecLz4 {
		size = 240 << 20 // lz4 compresses at most about 1:250
	}
	start := time.Now()
	b := batchtest.Bomb(int8(c), size, 1_000_000)
	t.Logf("%v bomb: %d bytes decompressing to %d, built in %v", c, len(b), size, time.Since(start))
	if len(b) > 1<<20 {
		t.Fatalf("%v bomb is %d bytes, want at most 1 MiB", c, len(b))
	}
	bombs[c] = b
	return b
}

// A bomb fails with ErrTooLarge after at most the limit's worth of work,
// and without allocating it.
func TestDecompressBomb(t *testing.T) {
	for _, c := range []batch.Codec{batch.CodecGzip, batch.CodecLz4, batch.CodecZstd} {
		t.Run(c.String(), func(t *testing.T) {
			b := bomb(t, c)
			if _, err := batch.Validate(b, 1048588); err != nil {
				t.Fatalf("the bomb should pass the raw checks: %v", err)
			}
			allocs := batchtest.AllocatedBy(func() {
				if err := check(b, limit); !errors.Is(err, batch.ErrTooLarge) {
					t.Errorf("CheckDecompressed: %v, want ErrTooLarge", err)
				}
				if err := batch.Records(b, limit, func(*kmsg.Record) bool { return true }); !errors.Is(err, batch.ErrTooLarge) {
					t.Errorf("Records: %v, want ErrTooLarge", err)
				}
				if _, _, _, err := batch.FirstAtOrAfter(b, 0, limit); !errors.Is(err, batch.ErrTooLarge) {
					t.Errorf("FirstAtOrAfter: %v, want ErrTooLarge", err)
				}
				if off, _, err := batch.OffsetOfMaxTimestamp(b); err != nil || off != 0 {
					t.Errorf("OffsetOfMaxTimestamp = %d, %v; want 0 from the header", off, err)
				}
			})
			t.Logf("allocated %d KiB", allocs>>10)
			bound := uint64(16 << 20)
			if racebuild.Enabled {
				// Each of the four walks may build a decoder of its own
				// (an 8 MiB zstd window): still far from the 1 GiB.
				bound = 64 << 20
			}
			if allocs > bound {
				t.Fatalf("allocated %d MiB for a bomb, want at most %d", allocs>>20, bound>>20)
			}
		})
	}
}

// check is CheckDecompressed of one batch.
func check(b []byte, limit int) error {
	h, err := batch.ParseHeader(b)
	if err != nil {
		return err
	}
	return batch.CheckDecompressed(b, []batch.Header{h}, limit)
}

// BenchmarkProduceCheck measures what produce's checks cost per batch as
// sent: "validate" is the raw-bytes validation alone (before bounded
// decompression), "validate+decompress" adds CheckDecompressed, as produce
// now runs it. MB/s are of the batch's (compressed) bytes, as produce sees
// them; decompressed-MB/s of its records.
//
//	go test -run '^$' -bench ProduceCheck ./internal/batch
func BenchmarkProduceCheck(b *testing.B) {
	recs := records(1000, 1) // about 600 KiB of records before compression
	size := float64(len(encodeRecords(recs)))
	for _, c := range codecs {
		raw := makeBatch(b, c, recs, nil)
		b.Run(c.String()+"/validate", func(b *testing.B) {
			b.SetBytes(int64(len(raw)))
			b.ReportAllocs()
			for b.Loop() {
				if _, err := batch.Validate(raw, 0); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run(c.String()+"/validate+decompress", func(b *testing.B) {
			b.SetBytes(int64(len(raw)))
			b.ReportAllocs()
			for b.Loop() {
				hdrs, err := batch.Validate(raw, 0)
				if err == nil {
					err = batch.CheckDecompressed(raw, hdrs, limit)
				}
				if err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(size*float64(b.N)/b.Elapsed().Seconds()/1e6, "decompressed-MB/s")
		})
	}
}
