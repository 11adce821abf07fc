// Package batchtest builds valid Kafka record batches (magic 2, correct
// length and CRC-32C) for tests that feed the broker or the partition
// engine directly.
package batchtest

import (
	"encoding/binary"
	"hash/crc32"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// Spec describes a batch of N records that all have Key and Value and the
// timestamp Timestamp (ms). ProducerID < 0 makes a non-idempotent batch;
// otherwise the batch carries ProducerID, epoch 0 and first sequence
// Sequence.
type Spec struct {
	N          int
	Key, Value []byte
	Timestamp  int64
	ProducerID int64
	Sequence   int32
}

// Build returns the batch's bytes.
func Build(s Spec) []byte {
	var recs []byte
	for i := range s.N {
		r := kmsg.Record{OffsetDelta: int32(i), Key: s.Key, Value: s.Value}
		r.Length = int32(len(r.AppendTo(nil)) - 1)
		recs = r.AppendTo(recs)
	}
	b := kmsg.RecordBatch{
		PartitionLeaderEpoch: -1, Magic: 2, LastOffsetDelta: int32(s.N - 1),
		FirstTimestamp: s.Timestamp, MaxTimestamp: s.Timestamp,
		ProducerID: s.ProducerID, FirstSequence: s.Sequence, NumRecords: int32(s.N), Records: recs,
	}
	if s.ProducerID < 0 {
		b.ProducerID, b.ProducerEpoch, b.FirstSequence = -1, -1, -1
	}
	raw := b.AppendTo(nil)
	binary.BigEndian.PutUint32(raw[8:], uint32(len(raw)-12))
	binary.BigEndian.PutUint32(raw[17:], crc32.Checksum(raw[21:], crc32.MakeTable(crc32.Castagnoli)))
	return raw
}
