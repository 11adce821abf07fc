package batch

import (
	"fmt"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// FirstAtOrAfter finds the first record in the batch raw whose timestamp is
// at least ts and returns its offset and timestamp; ok is false if there is
// none. It is for ListOffsets by timestamp, and costs a CRC pass and a walk
// of the records, decompressed as they are read (Records) up to limit
// bytes: callers scanning many batches should skip those whose
// MaxTimestamp < ts by header first, as Kafka does.
//
// Like Kafka, it trusts maxTimestamp as an upper bound, and in a
// LogAppendTime batch gives every record the batch's maxTimestamp. It finds offsets
// from each record's offset delta rather than its position, so batches
// thinned by compaction are answered correctly.
//
// Errors are ErrCorrupt for bytes that do not decode (CRC, decompression,
// record framing), ErrTooLarge for records that decompress past limit and
// ErrInvalid for an unknown codec.
func FirstAtOrAfter(raw []byte, ts int64, limit int) (offset int64, timestamp int64, ok bool, err error) {
	h, err := checked(raw)
	if err != nil {
		return 0, 0, false, err
	}
	if h.MaxTimestamp < ts || h.NumRecords <= 0 {
		return 0, 0, false, nil
	}
	if !h.Codec().Valid() {
		return 0, 0, false, fmt.Errorf("%w: unknown %v", ErrInvalid, h.Codec())
	}
	err = Records(raw, limit, func(rec *kmsg.Record) bool {
		t := h.MaxTimestamp
		if !h.LogAppendTime() {
			t = h.BaseTimestamp + rec.TimestampDelta64
		}
		if t >= ts {
			offset, timestamp, ok = h.BaseOffset+int64(rec.OffsetDelta), t, true
			return false
		}
		return true
	})
	if err != nil {
		return 0, 0, false, err
	}
	return offset, timestamp, ok, nil
}

// OffsetOfMaxTimestamp returns the offset of the first record of the batch
// raw that carries the batch's MaxTimestamp, for ListOffsets with
// timestamp -3, without decompressing anything.
//
// Kafka (3.8 on, since KAFKA-16310) finds the batch by its header, then
// iterates its records, decompressing them, for the first one whose
// timestamp equals the batch's maxTimestamp. This answers the same for an
// uncompressed batch (its records walked in place) and, for a compressed
// one, from the header: exactly for a LogAppendTime batch (every record has
// the batch's timestamp), a single record, or a batch whose first record is
// the latest (baseTimestamp = maxTimestamp), and otherwise with the batch's
// base offset, the earliest the record can be, so a consumer that seeks
// there reads it. exact reports which. (Compaction writes the batches it
// thins uncompressed, so a compressed batch's base offset is a record's.)
func OffsetOfMaxTimestamp(raw []byte) (offset int64, exact bool, err error) {
	h, err := checked(raw)
	if err != nil {
		return 0, false, err
	}
	if h.Codec() != CodecNone {
		exact = h.LogAppendTime() || h.NumRecords == 1 || h.BaseTimestamp == h.MaxTimestamp
		return h.BaseOffset, exact, nil
	}
	offset = h.BaseOffset
	err = Records(raw, 0, func(rec *kmsg.Record) bool {
		if h.LogAppendTime() || h.BaseTimestamp+rec.TimestampDelta64 == h.MaxTimestamp {
			offset, exact = h.BaseOffset+int64(rec.OffsetDelta), true
			return false
		}
		return true
	})
	if err != nil {
		return 0, false, err
	}
	return offset, exact, nil
}

// checked parses the header of raw, checks that raw holds the whole batch
// and its CRC: the records were stored unread, so rot on disk reports as
// corruption rather than as a decoder's confusion.
func checked(raw []byte) (Header, error) {
	h, err := ParseHeader(raw)
	if err != nil {
		return Header{}, err
	}
	if int64(h.Length)+lengthOverhead > int64(len(raw)) {
		return Header{}, fmt.Errorf("%w: length %d runs past the %d bytes given", ErrCorrupt, h.Length, len(raw)-lengthOverhead)
	}
	if sum := checksum(raw[:h.Size()]); sum != h.CRC {
		return Header{}, fmt.Errorf("%w: crc %#08x, computed %#08x", ErrCorrupt, h.CRC, sum)
	}
	return h, nil
}
