package batch_test

import (
	"encoding/binary"
	"errors"
	"hash/crc32"
	"testing"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/eddy-streams/eddy/internal/batch"
	"github.com/eddy-streams/eddy/internal/batchtest"
)

// seeds are valid batches in every codec, alone and back to back, plus the
// shapes the broker produces by patching.
func seeds(f *testing.F) [][]byte {
	var out [][]byte
	for _, c := range codecs {
		out = append(out, makeBatch(f, c, records(3, 7), nil))
	}
	out = append(out,
		concat(out[0], out[4]),
		makeBatch(f, batch.CodecNone, records(1, 0), func(rb *kmsg.RecordBatch) {
			rb.Attributes |= 0x18
			rb.ProducerID, rb.FirstSequence = 3, 1
		}),
	)
	appended := makeBatch(f, batch.CodecLz4, records(2, 1), nil)
	batch.SetLogAppendTime(appended, 123)
	return append(out, appended)
}

func FuzzValidate(f *testing.F) {
	for _, s := range seeds(f) {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		hs, err := batch.Validate(b, 0)
		if err != nil {
			return
		}
		pos := 0
		for i, h := range hs {
			got, err := batch.ParseHeader(b[pos:])
			if err != nil || got != h {
				t.Fatalf("batch %d at %d: ParseHeader = %+v, %v; Validate said %+v", i, pos, got, err, h)
			}
			pos += h.Size()
		}
		if pos != len(b) {
			t.Fatalf("headers cover %d of %d bytes", pos, len(b))
		}
		n := 0
		batch.Each(b, func(h batch.Header, _ []byte) bool {
			if h != hs[n] {
				t.Fatalf("Each batch %d = %+v, Validate said %+v", n, h, hs[n])
			}
			n++
			return true
		})
		if n != len(hs) {
			t.Fatalf("Each saw %d batches, Validate %d", n, len(hs))
		}
		if _, err := batch.Validate(b, len(b)); err != nil {
			t.Fatalf("Validate with maxBytes = len: %v", err)
		}
	})
}

func FuzzFirstAtOrAfter(f *testing.F) {
	for _, s := range seeds(f) {
		f.Add(s, int64(0))
		f.Add(s, int64(1_000_007))
	}
	f.Fuzz(func(t *testing.T, b []byte, ts int64) {
		// Fix the CRC, so that the fuzzer explores decompression and
		// record decoding rather than failing at the checksum.
		if h, err := batch.ParseHeader(b); err == nil && h.Size() <= len(b) && h.Size() > 0 {
			binary.BigEndian.PutUint32(b[17:], crc32.Checksum(b[21:h.Size()], castagnoli))
		}
		_, got, ok, err := batch.FirstAtOrAfter(b, ts, batch.DecompressCeiling)
		if ok && (err != nil || got < ts) {
			t.Fatalf("ok with timestamp %d < %d, err %v", got, ts, err)
		}
	})
}

// FuzzDecompress: whatever a client sends, validation plus bounded
// decompression never panics, fails only with this package's errors, and
// agrees with the record walk: a batch produce lets through (under the
// limit) is one a reader can walk under the same limit, or one whose
// records merely do not frame (which produce leaves to readers).
func FuzzDecompress(f *testing.F) {
	for _, s := range seeds(f) {
		f.Add(s)
	}
	f.Add(batchtest.Bomb(int8(batch.CodecZstd), 1<<20, 1))
	f.Add(batchtest.Bomb(int8(batch.CodecGzip), 1<<20, 1))
	f.Add(batchtest.Bomb(int8(batch.CodecLz4), 1<<20, 1))
	const limit = 64 << 10
	f.Fuzz(func(t *testing.T, b []byte) {
		// Fix the CRC, so that the fuzzer explores the codecs rather
		// than failing at the checksum.
		if h, err := batch.ParseHeader(b); err == nil && h.Size() <= len(b) && h.Size() > 0 {
			binary.BigEndian.PutUint32(b[17:], crc32.Checksum(b[21:h.Size()], castagnoli))
		}
		hs, err := batch.Validate(b, 0)
		if err != nil {
			return
		}
		checkErr := batch.CheckDecompressed(b, hs, limit)
		known := func(err error) bool {
			return err == nil || errors.Is(err, batch.ErrTooLarge) || errors.Is(err, batch.ErrCorrupt) || errors.Is(err, batch.ErrInvalid)
		}
		if !known(checkErr) {
			t.Fatalf("CheckDecompressed: unexpected error %v", checkErr)
		}
		if checkErr == nil {
			// More room never turns a pass into a failure.
			if err := batch.CheckDecompressed(b, hs, 2*limit); err != nil {
				t.Fatalf("passes at %d, fails at %d: %v", limit, 2*limit, err)
			}
		}
		pos := 0
		for _, h := range hs {
			raw := b[pos : pos+h.Size()]
			pos += h.Size()
			n := int32(0)
			err := batch.Records(raw, limit, func(*kmsg.Record) bool { n++; return true })
			if !known(err) {
				t.Fatalf("Records: unexpected error %v", err)
			}
			if n > h.NumRecords {
				t.Fatalf("Records yielded %d records of %d", n, h.NumRecords)
			}
			if checkErr == nil && errors.Is(err, batch.ErrTooLarge) {
				t.Fatalf("produce let through a batch that a reader finds too large: %v", err)
			}
			if _, _, err := batch.OffsetOfMaxTimestamp(raw); !known(err) {
				t.Fatalf("OffsetOfMaxTimestamp: unexpected error %v", err)
			}
		}
	})
}
