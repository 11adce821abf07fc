package batch

import "encoding/binary"

// SetBaseOffset sets the offset of the first record. The CRC does not cover
// it. b must hold at least a header.
func SetBaseOffset(b []byte, off int64) {
	binary.BigEndian.PutUint64(b[offBaseOffset:], uint64(off))
}

// SetPartitionLeaderEpoch sets the epoch of the leader that appended the
// batch. The CRC does not cover it. b must hold at least a header.
func SetPartitionLeaderEpoch(b []byte, epoch int32) {
	binary.BigEndian.PutUint32(b[offLeaderEpoch:], uint32(epoch))
}

// SetLogAppendTime marks the batch's timestamps as the broker's append time
// ts, for topics with message.timestamp.type=LogAppendTime. As in Kafka, it
// sets only the timestamp-type bit and maxTimestamp: readers take every
// record's timestamp from maxTimestamp when the bit is set, so neither
// baseTimestamp nor the (possibly compressed) records need rewriting. It
// then recomputes the CRC, which covers both. b must start with one complete
// batch, as returned by Validate or Each; bytes after it are left alone.
func SetLogAppendTime(b []byte, ts int64) {
	be := binary.BigEndian
	// Slice first so that a short b panics before anything is written.
	b = b[:int(int32(be.Uint32(b[offLength:])))+lengthOverhead]
	attrs := be.Uint16(b[offAttributes:])
	if attrs&attrLogAppendTime != 0 && int64(be.Uint64(b[offMaxTimestamp:])) == ts {
		return // already so: spare the CRC pass
	}
	be.PutUint16(b[offAttributes:], attrs|attrLogAppendTime)
	be.PutUint64(b[offMaxTimestamp:], uint64(ts))
	be.PutUint32(b[offCRC:], checksum(b))
}
