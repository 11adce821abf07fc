// Package object defines the format of the objects that a flush writes to
// the bucket: one object holds record batches of many partitions.
//
// Readers locate a partition's batches by the byte ranges recorded in
// Postgres and fetch them with GetRange, so they never need an object's own
// index. The index makes every object self-describing anyway, for
// consistency checks and for rebuilding metadata from the bucket alone.
//
//	+------------+---------+---------+-----+-------------+-------+--------+
//	| "EDDYOBJ1" | chunk 0 | chunk 1 | ... | chunk N-1   | index | footer |
//	+------------+---------+---------+-----+-------------+-------+--------+
//	 HeaderSize                                                   FooterSize
//
// A chunk is raw Kafka record batches of one partition, back to back,
// exactly as produced; they carry their own CRCs, so the format adds none
// over chunk data. Chunks follow each other with no gaps, in the order they
// were added; a partition may have several chunks.
//
//	index  = count uint32, then count entries of EntrySize bytes:
//	+-------------+------------+-----------+----------+--------+--------------+
//	| partitionID | baseOffset | endOffset | position | length | maxTimestamp |
//	| int64       | int64      | int64     | int64    | uint32 | int64        |
//	+-------------+------------+-----------+----------+--------+--------------+
//
//	footer (FooterSize bytes)
//	+---------------+-------------+---------------+------------+
//	| indexPosition | indexLength | crc32c(index) | "EDDYOBJ1" |
//	| uint64        | uint32      | uint32        | 8 bytes    |
//	+---------------+-------------+---------------+------------+
//
// All integers are big-endian, as in Kafka. endOffset is exclusive: the
// chunk holds offsets [baseOffset, endOffset). position is the chunk's byte
// offset from the start of the object; maxTimestamp is the largest record
// timestamp in the chunk, in Unix milliseconds. crc32c uses the Castagnoli
// polynomial and covers the index only (count and entries).
//
// A reader that knows the object's size reads the index with two ranged
// GETs: the footer, then the index and footer together:
//
//	foot, err := b.GetRange(ctx, key, size-object.FooterSize, object.FooterSize)
//	pos, n, err := object.ParseFooter(foot)
//	tail, err := b.GetRange(ctx, key, pos, int64(n)+object.FooterSize)
//	chunks, err := object.ReadIndex(tail)
//
// Reading any larger suffix of the object first (say the last 64 KiB) and
// passing it to ReadIndex saves the second request when the index fits.
//
// Parsing checks everything it can: the magic, the index checksum, and that
// the chunks tile the object exactly from HeaderSize to the index. The
// parsers accept arbitrary input without panicking.
package object

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"math"
	"slices"
)

// Sizes of the fixed parts of the format, in bytes.
// They are untyped so they mix with int and int64 arithmetic.
const (
	Magic      = "EDDYOBJ1"
	HeaderSize = 8             // Magic
	EntrySize  = 5*8 + 4       // five int64 and a uint32
	FooterSize = 8 + 4 + 4 + 8 // position, length, crc, Magic

	// MaxChunkLen is the largest chunk the index can describe.
	MaxChunkLen = math.MaxUint32
)

var (
	// ErrCorrupt means the bytes are not a well-formed object (or a
	// well-formed object's tail).
	ErrCorrupt = errors.New("object: corrupt")
	// ErrShortTail means ReadIndex was given a suffix of the object too short
	// to hold the index; ParseFooter tells how much is needed.
	ErrShortTail = errors.New("object: tail too short to hold the index")
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// Chunk describes one chunk of an object.
type Chunk struct {
	PartitionID int64
	BaseOffset  int64 // first offset in the chunk
	EndOffset   int64 // one past the last offset in the chunk
	// Position and Length locate the chunk in the object: GetRange(key,
	// Position, Length) returns its record batches.
	Position     int64
	Length       int64
	MaxTimestamp int64 // Unix milliseconds
}

// Builder assembles an object in one growing buffer. The zero value is
// ready to use. A Builder is not safe for concurrent use.
type Builder struct {
	buf    []byte
	chunks []Chunk
}

// Grow makes room for n more bytes, to save reallocations when the flush
// knows its size up front. Growing by the chunk data plus the index and
// footer (EntrySize per chunk + 4 + FooterSize) makes the whole object one
// allocation.
func (b *Builder) Grow(n int) {
	if len(b.buf) == 0 {
		b.buf = append(make([]byte, 0, HeaderSize+n), Magic...)
		return
	}
	b.buf = slices.Grow(b.buf, n)
}

func (b *Builder) start() {
	if len(b.buf) == 0 {
		b.buf = append(b.buf, Magic...)
	}
}

// Add appends a chunk made of the concatenation of data, copying each
// slice once, and returns its description. Chunks must hold at least one
// offset and one byte, and at most MaxChunkLen bytes; anything else is a
// bug in the caller, and Add panics.
func (b *Builder) Add(partitionID, baseOffset, endOffset, maxTimestamp int64, data ...[]byte) Chunk {
	var n int64
	for _, d := range data {
		n += int64(len(d))
	}
	if baseOffset < 0 || endOffset <= baseOffset {
		panic(fmt.Sprintf("object: chunk offsets [%d, %d) are empty or negative", baseOffset, endOffset))
	}
	if n == 0 || n > MaxChunkLen {
		panic(fmt.Sprintf("object: chunk of %d bytes, want 1 to %d", n, int64(MaxChunkLen)))
	}
	// Doubling when full, not growing by n: chunks added one by one
	// without a Grow up front would otherwise copy the buffer at every
	// few chunks (slices.Grow adds only about a quarter to a large one).
	if free := cap(b.buf) - len(b.buf); int64(free) < n {
		b.Grow(max(int(n), cap(b.buf)))
	}
	c := Chunk{
		PartitionID:  partitionID,
		BaseOffset:   baseOffset,
		EndOffset:    endOffset,
		Position:     int64(len(b.buf)),
		Length:       n,
		MaxTimestamp: maxTimestamp,
	}
	for _, d := range data {
		b.buf = append(b.buf, d...)
	}
	b.chunks = append(b.chunks, c)
	return c
}

// SizeOf is the size of an object of chunks chunks holding dataBytes of
// record batches in all: what to Grow an empty Builder by to build it in
// one allocation.
func SizeOf(chunks int, dataBytes int64) int {
	return HeaderSize + int(dataBytes) + 4 + chunks*EntrySize + FooterSize
}

// Size returns the size of the object Finish would return now.
func (b *Builder) Size() int {
	return max(len(b.buf), HeaderSize) + 4 + len(b.chunks)*EntrySize + FooterSize
}

// Len returns the number of chunks added since the last Finish.
func (b *Builder) Len() int { return len(b.chunks) }

// Finish appends the index and footer and returns the object and its
// chunks, both now owned by the caller. The Builder is left empty, ready
// for the next object; it does not reuse the returned memory.
func (b *Builder) Finish() ([]byte, []Chunk) {
	b.start()
	buf, chunks := b.buf, b.chunks
	b.buf, b.chunks = nil, nil

	indexPos := len(buf)
	indexLen := 4 + len(chunks)*EntrySize
	if need := indexLen + FooterSize; cap(buf)-len(buf) < need {
		nb := make([]byte, len(buf), len(buf)+need)
		copy(nb, buf)
		buf = nb
	}
	buf = binary.BigEndian.AppendUint32(buf, uint32(len(chunks)))
	for _, c := range chunks {
		buf = binary.BigEndian.AppendUint64(buf, uint64(c.PartitionID))
		buf = binary.BigEndian.AppendUint64(buf, uint64(c.BaseOffset))
		buf = binary.BigEndian.AppendUint64(buf, uint64(c.EndOffset))
		buf = binary.BigEndian.AppendUint64(buf, uint64(c.Position))
		buf = binary.BigEndian.AppendUint32(buf, uint32(c.Length))
		buf = binary.BigEndian.AppendUint64(buf, uint64(c.MaxTimestamp))
	}
	crc := crc32.Checksum(buf[indexPos:], castagnoli)
	buf = binary.BigEndian.AppendUint64(buf, uint64(indexPos))
	buf = binary.BigEndian.AppendUint32(buf, uint32(indexLen))
	buf = binary.BigEndian.AppendUint32(buf, crc)
	buf = append(buf, Magic...)
	return buf, chunks
}

// ParseFooter decodes the footer in the last FooterSize bytes of b and
// returns where the index starts in the object and how long it is.
func ParseFooter(b []byte) (indexPos int64, indexLen int, err error) {
	if len(b) < FooterSize {
		return 0, 0, fmt.Errorf("%w: %d bytes cannot hold a %d-byte footer", ErrCorrupt, len(b), FooterSize)
	}
	f := b[len(b)-FooterSize:]
	if string(f[16:]) != Magic {
		return 0, 0, fmt.Errorf("%w: footer magic %q", ErrCorrupt, f[16:])
	}
	pos := binary.BigEndian.Uint64(f[0:8])
	n := binary.BigEndian.Uint32(f[8:12])
	if pos < uint64(HeaderSize) || pos > math.MaxInt64-uint64(n)-uint64(FooterSize) {
		return 0, 0, fmt.Errorf("%w: index position %d", ErrCorrupt, pos)
	}
	if n < 4 || (n-4)%EntrySize != 0 || uint64(n) > math.MaxInt {
		return 0, 0, fmt.Errorf("%w: index length %d", ErrCorrupt, n)
	}
	return int64(pos), int(n), nil
}

// ReadIndex decodes the index from tail, any suffix of an object that holds
// at least the index and the footer. If tail is too short it returns an
// error wrapping ErrShortTail.
func ReadIndex(tail []byte) ([]Chunk, error) {
	pos, n, err := ParseFooter(tail)
	if err != nil {
		return nil, err
	}
	if len(tail)-FooterSize < n {
		return nil, fmt.Errorf("%w: have %d bytes, need %d", ErrShortTail, len(tail), n+FooterSize)
	}
	end := len(tail) - FooterSize
	return decodeIndex(tail[end-n:end], binary.BigEndian.Uint32(tail[end+12:]), pos)
}

// ParseIndex decodes the index of obj, a whole object, and checks that it
// describes obj exactly.
func ParseIndex(obj []byte) ([]Chunk, error) {
	if len(obj) < HeaderSize || string(obj[:HeaderSize]) != Magic {
		return nil, fmt.Errorf("%w: no %q header", ErrCorrupt, Magic)
	}
	pos, n, err := ParseFooter(obj)
	if err != nil {
		return nil, err
	}
	if pos+int64(n)+int64(FooterSize) != int64(len(obj)) {
		return nil, fmt.Errorf("%w: index at %d+%d does not end where the %d-byte object's footer starts", ErrCorrupt, pos, n, len(obj))
	}
	return decodeIndex(obj[pos:pos+int64(n)], binary.BigEndian.Uint32(obj[len(obj)-12:]), pos)
}

// decodeIndex decodes and checks index, which started at indexPos in its
// object and should have checksum crc.
func decodeIndex(index []byte, crc uint32, indexPos int64) ([]Chunk, error) {
	if got := crc32.Checksum(index, castagnoli); got != crc {
		return nil, fmt.Errorf("%w: index checksum %08x, footer says %08x", ErrCorrupt, got, crc)
	}
	count := binary.BigEndian.Uint32(index)
	if uint64(len(index)) != 4+uint64(count)*EntrySize {
		return nil, fmt.Errorf("%w: %d index entries in %d bytes", ErrCorrupt, count, len(index))
	}
	chunks := make([]Chunk, count)
	next := int64(HeaderSize) // where the next chunk must start
	for i := range chunks {
		e := index[4+i*EntrySize:]
		c := Chunk{
			PartitionID:  int64(binary.BigEndian.Uint64(e[0:])),
			BaseOffset:   int64(binary.BigEndian.Uint64(e[8:])),
			EndOffset:    int64(binary.BigEndian.Uint64(e[16:])),
			Position:     int64(binary.BigEndian.Uint64(e[24:])),
			Length:       int64(binary.BigEndian.Uint32(e[32:])),
			MaxTimestamp: int64(binary.BigEndian.Uint64(e[36:])),
		}
		switch {
		case c.BaseOffset < 0 || c.EndOffset <= c.BaseOffset:
			return nil, fmt.Errorf("%w: chunk %d has offsets [%d, %d)", ErrCorrupt, i, c.BaseOffset, c.EndOffset)
		case c.Position != next:
			return nil, fmt.Errorf("%w: chunk %d at byte %d, want %d", ErrCorrupt, i, c.Position, next)
		case c.Length == 0:
			return nil, fmt.Errorf("%w: chunk %d is empty", ErrCorrupt, i)
		case c.Length > indexPos-next:
			return nil, fmt.Errorf("%w: chunk %d of %d bytes at byte %d overlaps the index at %d", ErrCorrupt, i, c.Length, c.Position, indexPos)
		}
		next += c.Length
		chunks[i] = c
	}
	if next != indexPos {
		return nil, fmt.Errorf("%w: chunks end at byte %d, index starts at %d", ErrCorrupt, next, indexPos)
	}
	return chunks, nil
}
