// Package batch validates and patches Kafka record batches (magic 2) as raw
// bytes.
//
// The broker keeps a batch as the producer sent it, from produce to fetch:
// it validates it once ([Validate]), patches the few fields the broker owns
// ([SetBaseOffset], [SetPartitionLeaderEpoch], [SetLogAppendTime]), stores it
// and serves the same bytes. Nothing on that path decodes individual records;
// only the admin path ([FirstAtOrAfter], for ListOffsets by timestamp) does.
//
// A batch is a 61-byte header followed by its records, all big-endian:
//
//	0            8        12       16      17        21
//	+------------+--------+--------+-------+---------+
//	| baseOffset | length | leader | magic | crc     |
//	| int64      | int32  | epoch  | int8  | uint32  |
//	+------------+--------+--------+-------+---------+
//	                      |<------ length bytes ...
//
//	21      23        27        35        43       51      53      57      61
//	+-------+---------+---------+---------+--------+-------+-------+-------+------------+
//	| attrs | lastOff | baseTs  | maxTs   | prodID | prod  | base  | count | records    |
//	| int16 | Delta   | int64   | int64   | int64  | epoch | seq   | int32 | (maybe     |
//	|       | int32   |         |         |        | int16 | int32 |       | compressed)|
//	+-------+---------+---------+---------+--------+-------+-------+-------+------------+
//	|<------------------- crc: CRC-32C (Castagnoli) over [21, end) -------------------->|
//	                                     ... length bytes, to the end of the batch ---->|
//
// length counts every byte after itself, so a batch is length+12 bytes long.
// baseOffset and partitionLeaderEpoch lie outside the CRC so that the broker
// can assign them without recomputing it.
//
// attrs bits 0-2 hold the [Codec]; bit 3 is the timestamp type (1 =
// LogAppendTime); bit 4 marks a transactional batch; bit 5 a control batch.
//
// Every function is safe to call concurrently on distinct byte slices; the
// Set functions write to their argument, so callers must not share a batch
// being patched.
package batch

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"math"
	"strconv"
)

// HeaderSize is the size of a record batch header: the offset of the first
// record.
const HeaderSize = 61

// Field offsets within the header.
const (
	offBaseOffset      = 0
	offLength          = 8
	offLeaderEpoch     = 12
	offMagic           = 16
	offCRC             = 17
	offAttributes      = 21
	offLastOffsetDelta = 23
	offBaseTimestamp   = 27
	offMaxTimestamp    = 35
	offProducerID      = 43
	offProducerEpoch   = 51
	offBaseSequence    = 53
	offNumRecords      = 57

	// lengthOverhead is what the length field does not count: baseOffset
	// and the length itself.
	lengthOverhead = offLeaderEpoch
	// minLength is the smallest length that still covers a full header.
	minLength = HeaderSize - lengthOverhead
)

// Attribute bits.
const (
	attrCodecMask     = 0x07
	attrLogAppendTime = 0x08
	attrTransactional = 0x10
	attrControl       = 0x20
	// AttrDeleteHorizon marks a batch whose BaseTimestamp is its delete
	// horizon (KIP-534), set by compaction.
	AttrDeleteHorizon = 0x40
)

// Magic is the only record batch format this package understands.
const Magic = 2

// Errors returned by this package. They are wrapped with detail; test for
// them with errors.Is. The broker maps each to the Kafka error code named.
var (
	// ErrCorrupt means the bytes are not a well-formed batch: truncated, a
	// length that disagrees with the data, or a CRC mismatch.
	// Kafka: CORRUPT_MESSAGE (2).
	ErrCorrupt = errors.New("batch: corrupt")

	// ErrMagic means a batch is not magic 2 (a pre-0.11 message set or
	// garbage). Kafka: UNSUPPORTED_FOR_MESSAGE_FORMAT (43).
	ErrMagic = errors.New("batch: unsupported magic")

	// ErrTooLarge means the records exceed the caller's limit.
	// Kafka: MESSAGE_TOO_LARGE (10).
	ErrTooLarge = errors.New("batch: too large")

	// ErrInvalid means a well-formed batch that a client may not send:
	// empty input, a bad record count or lastOffsetDelta, an unknown codec,
	// or a control batch. Kafka: INVALID_RECORD (87).
	ErrInvalid = errors.New("batch: invalid record")
)

// castagnoli is read-only after init; hash/crc32 uses the SSE4.2 / ARMv8
// CRC instructions for this table.
var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// Codec is the compression codec of a batch, bits 0-2 of its attributes.
type Codec int8

// The codecs Kafka defines; 5-7 are invalid.
const (
	CodecNone Codec = iota
	CodecGzip
	CodecSnappy
	CodecLz4
	CodecZstd
)

var codecNames = [...]string{"none", "gzip", "snappy", "lz4", "zstd"}

// String returns the codec's Kafka name, or "codec(N)" for an unknown one.
func (c Codec) String() string {
	if c >= 0 && int(c) < len(codecNames) {
		return codecNames[c]
	}
	return "codec(" + strconv.Itoa(int(c)) + ")"
}

// Valid reports whether c is one of the codecs Kafka defines.
func (c Codec) Valid() bool { return c >= CodecNone && c <= CodecZstd }

// Header is the decoded fixed-size header of a batch.
type Header struct {
	BaseOffset           int64
	Length               int32 // bytes after this field: Size() - 12
	PartitionLeaderEpoch int32
	Magic                int8
	CRC                  uint32
	Attributes           int16
	LastOffsetDelta      int32
	BaseTimestamp        int64
	MaxTimestamp         int64
	ProducerID           int64
	ProducerEpoch        int16
	BaseSequence         int32
	NumRecords           int32
}

// Size is the size in bytes of the whole batch, header included.
func (h Header) Size() int { return int(h.Length) + lengthOverhead }

// LastOffset is the offset of the last record in the batch.
func (h Header) LastOffset() int64 { return h.BaseOffset + int64(h.LastOffsetDelta) }

// Codec is the compression codec of the records.
func (h Header) Codec() Codec { return Codec(h.Attributes & attrCodecMask) }

// LogAppendTime reports whether record timestamps are the broker's append
// time (MaxTimestamp) rather than the producer's create time.
func (h Header) LogAppendTime() bool { return h.Attributes&attrLogAppendTime != 0 }

// Transactional reports whether the batch is part of a transaction.
func (h Header) Transactional() bool { return h.Attributes&attrTransactional != 0 }

// Control reports whether the batch holds control records (transaction
// markers), which only the broker writes.
func (h Header) Control() bool { return h.Attributes&attrControl != 0 }

// DeleteHorizon returns the batch's delete horizon (Unix ms), if
// compaction set one (KIP-534): the BaseTimestamp then holds it, and the
// records' timestamp deltas count from it.
func (h Header) DeleteHorizon() (int64, bool) {
	return h.BaseTimestamp, h.Attributes&AttrDeleteHorizon != 0
}

// Idempotent reports whether the batch carries a producer ID.
func (h Header) Idempotent() bool { return h.ProducerID >= 0 }

// LastSequence is the sequence number of the last record. Sequences wrap
// from math.MaxInt32 to 0, as in Kafka, so a long-lived idempotent producer
// never goes negative. A batch without sequences (BaseSequence -1) has
// LastSequence -1.
func (h Header) LastSequence() int32 {
	if h.BaseSequence == -1 {
		return -1
	}
	s := int64(h.BaseSequence) + int64(h.LastOffsetDelta)
	if s > math.MaxInt32 {
		s -= math.MaxInt32 + 1
	}
	return int32(s)
}

// ParseHeader reads the header of the batch at the start of b. It checks
// what it needs to trust the header — enough bytes, magic 2 and a length
// that covers a header — but neither the CRC nor that b holds the whole
// batch.
func ParseHeader(b []byte) (Header, error) {
	// Look at the magic before insisting on a full header: a short legacy
	// message set should report as the wrong format, not as truncated.
	if len(b) <= offMagic {
		return Header{}, fmt.Errorf("%w: header truncated at %d bytes", ErrCorrupt, len(b))
	}
	if m := int8(b[offMagic]); m != Magic {
		return Header{}, fmt.Errorf("%w: magic %d", ErrMagic, m)
	}
	if len(b) < HeaderSize {
		return Header{}, fmt.Errorf("%w: header truncated at %d bytes", ErrCorrupt, len(b))
	}
	be := binary.BigEndian
	h := Header{
		BaseOffset:           int64(be.Uint64(b[offBaseOffset:])),
		Length:               int32(be.Uint32(b[offLength:])),
		PartitionLeaderEpoch: int32(be.Uint32(b[offLeaderEpoch:])),
		Magic:                int8(b[offMagic]),
		CRC:                  be.Uint32(b[offCRC:]),
		Attributes:           int16(be.Uint16(b[offAttributes:])),
		LastOffsetDelta:      int32(be.Uint32(b[offLastOffsetDelta:])),
		BaseTimestamp:        int64(be.Uint64(b[offBaseTimestamp:])),
		MaxTimestamp:         int64(be.Uint64(b[offMaxTimestamp:])),
		ProducerID:           int64(be.Uint64(b[offProducerID:])),
		ProducerEpoch:        int16(be.Uint16(b[offProducerEpoch:])),
		BaseSequence:         int32(be.Uint32(b[offBaseSequence:])),
		NumRecords:           int32(be.Uint32(b[offNumRecords:])),
	}
	if h.Length < minLength {
		return Header{}, fmt.Errorf("%w: length %d shorter than a header", ErrCorrupt, h.Length)
	}
	return h, nil
}

// checksum computes the CRC a batch should carry; b must be exactly one
// batch.
func checksum(b []byte) uint32 {
	return crc32.Checksum(b[offAttributes:], castagnoli)
}
