package batch

import (
	"encoding/binary"
	"fmt"

	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// decompressor pools its decoders and is safe for concurrent use, so one
// serves every caller.
var decompressor = kgo.DefaultDecompressor()

// FirstAtOrAfter finds the first record in the batch raw whose timestamp is
// at least ts and returns its offset and timestamp; ok is false if there is
// none. It is for ListOffsets by timestamp, the one place the broker reads
// records, and costs a CRC pass, a decompression and a decode: callers
// scanning many batches should skip those whose MaxTimestamp < ts by header
// first, as Kafka does.
//
// Like Kafka, it trusts maxTimestamp as an upper bound, and in a
// LogAppendTime batch gives every record the batch's maxTimestamp. It finds
// offsets from each record's offset delta rather than its position, so
// batches thinned by compaction are answered correctly.
//
// Errors are ErrCorrupt for bytes that do not decode (CRC, decompression,
// record framing) and ErrInvalid for an unknown codec. Decompression is
// bounded only by kgo's default limit, math.MaxInt32 bytes.
func FirstAtOrAfter(raw []byte, ts int64) (offset int64, timestamp int64, ok bool, err error) {
	h, err := ParseHeader(raw)
	if err != nil {
		return 0, 0, false, err
	}
	if int64(h.Length)+lengthOverhead > int64(len(raw)) {
		return 0, 0, false, fmt.Errorf("%w: length %d runs past the %d bytes given", ErrCorrupt, h.Length, len(raw)-lengthOverhead)
	}
	raw = raw[:h.Size()]
	// The records were stored unread; check them before decompressing so
	// that rot on disk reports as corruption, not as a decoder's confusion.
	if sum := checksum(raw); sum != h.CRC {
		return 0, 0, false, fmt.Errorf("%w: crc %#08x, computed %#08x", ErrCorrupt, h.CRC, sum)
	}
	if h.MaxTimestamp < ts || h.NumRecords <= 0 {
		return 0, 0, false, nil
	}
	codec := h.Codec()
	if !codec.Valid() {
		return 0, 0, false, fmt.Errorf("%w: unknown %v", ErrInvalid, codec)
	}
	data, err := decompressor.Decompress(raw[HeaderSize:], kgo.CompressionCodecType(codec))
	if err != nil {
		return 0, 0, false, fmt.Errorf("%w: %v records: %w", ErrCorrupt, codec, err)
	}

	// One Record is reused across the batch: its header slice is kept, and
	// the unsafe read aliases keys and values into data instead of copying.
	var rec kmsg.Record
	for i := range h.NumRecords {
		// A record is its varint length, then that many bytes.
		length, n := binary.Varint(data)
		if n <= 0 || length < 0 || length > int64(len(data)-n) {
			return 0, 0, false, fmt.Errorf("%w: record %d of %d: bad length", ErrCorrupt, i, h.NumRecords)
		}
		end := n + int(length)
		if err := rec.UnsafeReadFrom(data[:end]); err != nil {
			return 0, 0, false, fmt.Errorf("%w: record %d of %d: %w", ErrCorrupt, i, h.NumRecords, err)
		}
		t := h.MaxTimestamp
		if !h.LogAppendTime() {
			t = h.BaseTimestamp + rec.TimestampDelta64
		}
		if t >= ts {
			return h.BaseOffset + int64(rec.OffsetDelta), t, true, nil
		}
		data = data[end:]
	}
	return 0, 0, false, nil
}
