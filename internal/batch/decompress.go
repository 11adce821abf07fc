package batch

// Bounded decompression.
//
// A compressed batch says nothing trustworthy about how large its records
// are once decompressed: 200 KB of zstd can hold a gigabyte of zeros. So
// nothing here decompresses a batch whole. The records are streamed
// through the codec's own streaming decoder (pooled, one per call at a
// time) under an output limit, and a batch whose records would exceed it
// fails with ErrTooLarge after at most limit bytes of work:
//
//	raw[HeaderSize:] ─► codec decoder ─► limit (ErrTooLarge past it) ─► window ─► record
//
// Callers that only walk records (produce's check, ListOffsets by
// timestamp, compaction's key scan) hold one window: O(largest record),
// not O(batch). Snappy is the exception: Kafka frames it the xerial way,
// blocks whose decoded length is declared up front, which the library
// decodes only into a buffer it is given; that buffer is bounded by the
// limit, so snappy costs O(limit) at worst.

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"slices"
	"sync"

	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/snappy/xerial"
	"github.com/klauspost/compress/zstd"
	"github.com/pierrec/lz4/v4"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// Decompression bounds: see DecompressLimit.
const (
	// DecompressRatio is how many times max.message.bytes a batch's
	// records may take once decompressed. Real producers stay far below:
	// kgo bounds a batch's uncompressed size by its max bytes, the Java
	// producer estimates its batch.size on compressed bytes with a ratio
	// it learns, and text compresses 5-10x.
	DecompressRatio = 32
	// DecompressCeiling bounds the limit whatever max.message.bytes says
	// (it may be set up to 2 GiB, or to 0 for "no limit").
	DecompressCeiling = 256 << 20
	// zstdMaxWindow bounds the history a zstd frame may ask the decoder
	// to keep. Level 19 and below use at most 8 MiB; a frame asking for
	// more is refused as corrupt rather than allocated.
	zstdMaxWindow = 8 << 20
)

// DecompressLimit is the most bytes the records of one compressed batch
// may decompress to in a topic whose max.message.bytes is maxMessageBytes:
// DecompressRatio times it, at most DecompressCeiling (also when it is 0,
// which Kafka reads as unlimited).
//
// Apache Kafka has no such limit (it streams any batch at produce, but
// decompresses it whole when it must rewrite it); where a rebuilt batch
// exceeds max.message.bytes its log answers RecordTooLargeException, that
// is MESSAGE_TOO_LARGE, which is what ErrTooLarge maps to.
func DecompressLimit(maxMessageBytes int64) int {
	if maxMessageBytes <= 0 || maxMessageBytes > DecompressCeiling/DecompressRatio {
		return DecompressCeiling
	}
	return int(maxMessageBytes * DecompressRatio)
}

// decoders pool the streaming decoders, which each keep their window and
// tables between uses. A zstd decoder with concurrency 1 decodes on the
// caller's goroutine, so a pooled one owns no goroutine.
var (
	zstdPool = sync.Pool{New: func() any {
		d, err := zstd.NewReader(nil, zstd.WithDecoderConcurrency(1), zstd.WithDecoderLowmem(true),
			zstd.WithDecoderMaxWindow(zstdMaxWindow))
		if err != nil {
			panic(err) // only for invalid options
		}
		return d
	}}
	gzipPool   = sync.Pool{New: func() any { return new(gzip.Reader) }}
	lz4Pool    = sync.Pool{New: func() any { return lz4.NewReader(nil) }}
	windowPool = sync.Pool{New: func() any { return &window{r: bufio.NewReaderSize(nil, windowSize)} }}
)

// window is what a walk holds: the decompressed stream's read buffer and
// the current record.
type window struct {
	r   *bufio.Reader
	rec []byte
}

const (
	// windowSize is the read buffer of a walk.
	windowSize = 64 << 10
	// keepRecordBuf is the largest record buffer put back in the pool;
	// a larger one (a record of megabytes) is left to the collector.
	keepRecordBuf = 1 << 20
)

func getWindow(r io.Reader, limit int) *window {
	w := windowPool.Get().(*window)
	w.r.Reset(&limited{r: r, n: int64(limit)})
	return w
}

func (w *window) release() {
	w.r.Reset(nil)
	if cap(w.rec) > keepRecordBuf {
		w.rec = nil
	}
	windowPool.Put(w)
}

// limited fails with ErrTooLarge once more than n bytes were read from r.
type limited struct {
	r io.Reader
	n int64 // bytes still allowed
}

func (l *limited) Read(p []byte) (int, error) {
	if l.n < 0 {
		return 0, errOverLimit
	}
	// Ask for one byte past the limit, so that exactly-at-limit output
	// ends cleanly and one byte more is seen.
	if int64(len(p)) > l.n+1 {
		p = p[:l.n+1]
	}
	n, err := l.r.Read(p)
	l.n -= int64(n)
	if l.n < 0 {
		return n, errOverLimit
	}
	return n, err
}

// errOverLimit is limited's error, told apart from the codec's own
// errors (which mean corrupt input) by identity.
var errOverLimit = errors.New("over the limit")

// openCodec returns a reader of src decompressed with c, which must be a
// compressed codec, and a function that returns its decoder to the pool.
func openCodec(c Codec, src []byte) (io.Reader, func(), error) {
	switch c {
	case CodecZstd:
		d := zstdPool.Get().(*zstd.Decoder)
		// A *bytes.Reader, not a *bytes.Buffer: given something with
		// Bytes(), the decoder decodes it whole up front.
		if err := d.Reset(bytes.NewReader(src)); err != nil {
			zstdPool.Put(d)
			return nil, nil, err
		}
		return d, func() { _ = d.Reset(nil); zstdPool.Put(d) }, nil
	case CodecGzip:
		z := gzipPool.Get().(*gzip.Reader)
		if err := z.Reset(bytes.NewReader(src)); err != nil {
			gzipPool.Put(z)
			return nil, nil, err
		}
		return z, func() { gzipPool.Put(z) }, nil
	case CodecLz4:
		z := lz4Pool.Get().(*lz4.Reader)
		z.Reset(bytes.NewReader(src))
		return z, func() { z.Reset(nil); lz4Pool.Put(z) }, nil
	}
	return nil, nil, fmt.Errorf("%w: unknown %v", ErrInvalid, c)
}

// snappyDecode decodes snappy records (xerial-framed or a bare block, as
// kgo and the Java client write them) into a buffer of at most limit
// bytes. The library decodes only into a buffer that is large enough, and
// checks each block's declared length before decoding it, so a too small
// buffer costs a failed attempt, not a decode: start small, double up to
// the limit.
func snappyDecode(dst, src []byte, limit int) ([]byte, error) {
	size := min(limit, max(4*len(src), windowSize, cap(dst)))
	for {
		if cap(dst) < size {
			dst = make([]byte, 0, size)
		}
		out, err := xerial.DecodeCapped(dst[:0:size], src) // never more than size, whatever dst holds
		switch {
		case err == nil:
			return out, nil
		case !errors.Is(err, xerial.ErrDstTooSmall):
			return nil, fmt.Errorf("%w: snappy records: %w", ErrCorrupt, err)
		case size >= limit:
			return nil, fmt.Errorf("%w: snappy records decompress to more than %d bytes", ErrTooLarge, limit)
		}
		size = min(limit, 2*size)
	}
}

// CheckDecompressed decompresses the records of each compressed batch in
// records (batches back to back with their headers hdrs, as Validate
// returned them) into nothing, and fails with ErrTooLarge if one batch's
// records take more than limit bytes, or ErrCorrupt if they do not
// decompress. Uncompressed batches pass without work: their records are no
// larger than records. It is produce's check, so it looks at nothing but
// the byte count: record framing is left to readers, as before.
func CheckDecompressed(records []byte, hdrs []Header, limit int) error {
	pos := 0
	for i, h := range hdrs {
		raw := records[pos : pos+h.Size()]
		pos += h.Size()
		if h.Codec() == CodecNone {
			continue
		}
		if err := checkOne(h.Codec(), raw[HeaderSize:], limit); err != nil {
			return fmt.Errorf("%w (batch %d, limit %d bytes)", err, i, limit)
		}
	}
	return nil
}

// snappyBufs keeps produce's snappy check from allocating its output
// buffer per batch: it only counts the bytes, so one buffer serves the
// next batch. Buffers over maxPooledSnappy are left to the collector.
var snappyBufs = sync.Pool{New: func() any { return new([]byte) }}

const maxPooledSnappy = 8 << 20

func checkOne(c Codec, src []byte, limit int) error {
	if c == CodecSnappy {
		bp := snappyBufs.Get().(*[]byte)
		out, err := snappyDecode(*bp, src, limit)
		if cap(out) <= maxPooledSnappy {
			*bp = out[:0]
			snappyBufs.Put(bp)
		}
		return err
	}
	r, release, err := openCodec(c, src)
	if err != nil {
		return wrapCodecErr(c, err)
	}
	defer release()
	w := getWindow(r, limit)
	defer w.release()
	if _, err := w.r.Discard(int(^uint(0) >> 1)); err != nil && err != io.EOF {
		return wrapCodecErr(c, err)
	}
	return nil
}

func wrapCodecErr(c Codec, err error) error {
	switch {
	case errors.Is(err, errOverLimit):
		return fmt.Errorf("%w: %v records decompress past the limit", ErrTooLarge, c)
	case errors.Is(err, ErrInvalid), errors.Is(err, ErrCorrupt):
		return err
	}
	return fmt.Errorf("%w: %v records: %w", ErrCorrupt, c, err)
}

// Records calls fn with each record of the batch raw (one complete batch,
// as Each yields it), in order, until fn returns false. The record aliases
// a window that the next record overwrites: fn must copy what it keeps.
// The records are decompressed as they are read, up to limit bytes:
// beyond it Records fails with ErrTooLarge (a record longer than what the
// limit leaves is not buffered: the rest of the stream is drained to tell
// a record too large from a length that lies); records that do not
// decompress or decode fail with ErrCorrupt. Records does not check the
// CRC.
func Records(raw []byte, limit int, fn func(rec *kmsg.Record) bool) error {
	h, err := ParseHeader(raw)
	if err != nil {
		return err
	}
	if int64(h.Length)+lengthOverhead > int64(len(raw)) {
		return fmt.Errorf("%w: length %d runs past the %d bytes given", ErrCorrupt, h.Length, len(raw)-lengthOverhead)
	}
	src := raw[HeaderSize:h.Size()]
	switch c := h.Codec(); c {
	case CodecNone:
		return recordsIn(src, h.NumRecords, fn)
	case CodecSnappy:
		data, err := snappyDecode(nil, src, limit)
		if err != nil {
			return err
		}
		return recordsIn(data, h.NumRecords, fn)
	default:
		r, release, err := openCodec(c, src)
		if err != nil {
			return wrapCodecErr(c, err)
		}
		defer release()
		w := getWindow(r, limit)
		defer w.release()
		if err := recordsFrom(w, limit, h.NumRecords, fn); err != nil {
			return wrapCodecErr(c, err)
		}
		return nil
	}
}

// recordsIn walks n records laid out in data.
func recordsIn(data []byte, n int32, fn func(*kmsg.Record) bool) error {
	var rec kmsg.Record
	for i := range n {
		length, k := binary.Varint(data)
		if k <= 0 || length < 0 || length > int64(len(data)-k) {
			return fmt.Errorf("%w: record %d of %d: bad length", ErrCorrupt, i, n)
		}
		end := k + int(length)
		if err := rec.UnsafeReadFrom(data[:end]); err != nil {
			return fmt.Errorf("%w: record %d of %d: %w", ErrCorrupt, i, n, err)
		}
		if !fn(&rec) {
			return nil
		}
		data = data[end:]
	}
	return nil
}

// recordsFrom walks n records read from w, whose reader stops at limit
// bytes, copying each (kmsg parses a record with its length prefix) into
// the window's record buffer.
func recordsFrom(w *window, limit int, n int32, fn func(*kmsg.Record) bool) error {
	var (
		rec  kmsg.Record
		read int64 // bytes consumed so far
	)
	for i := range n {
		length, err := binary.ReadVarint(w.r)
		if err != nil {
			return readErr(err, i, n)
		}
		if length < 0 {
			return fmt.Errorf("%w: record %d of %d: negative length", ErrCorrupt, i, n)
		}
		w.rec = binary.AppendVarint(w.rec[:0], length)
		k := int64(len(w.rec))
		if read+k+length > int64(limit) {
			// Reading it would cross the limit. Whether it is too
			// large or lies about its length, only the stream can
			// tell: drain it, within the limit, without keeping it.
			if _, err := w.r.Discard(int(^uint(0) >> 1)); err != nil && err != io.EOF {
				return readErr(err, i, n)
			}
			return fmt.Errorf("%w: record %d of %d claims %d bytes, more than the records hold", ErrCorrupt, i, n, length)
		}
		w.rec = slices.Grow(w.rec, int(length))[:k+length]
		if _, err := io.ReadFull(w.r, w.rec[k:]); err != nil {
			return readErr(err, i, n)
		}
		read += k + length
		if err := rec.UnsafeReadFrom(w.rec); err != nil {
			return fmt.Errorf("%w: record %d of %d: %w", ErrCorrupt, i, n, err)
		}
		if !fn(&rec) {
			return nil
		}
	}
	return nil
}

func readErr(err error, i, n int32) error {
	if errors.Is(err, errOverLimit) {
		return err
	}
	if err == io.EOF {
		err = io.ErrUnexpectedEOF
	}
	return fmt.Errorf("%w: record %d of %d: %w", ErrCorrupt, i, n, err)
}
