package batch

import (
	"encoding/binary"
	"fmt"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// Control returns a transaction marker: a control batch (attributes:
// transactional and control) of producerID at epoch holding one record
// whose key is a kmsg.ControlRecordKey (commit or abort) and whose value
// a kmsg.EndTxnMarker carrying coordinatorEpoch, at timestamp ts. Its base
// offset and partition leader epoch are left for the writer to set, like a
// produced batch's.
func Control(producerID int64, epoch int16, commit bool, coordinatorEpoch int32, ts int64) []byte {
	key := kmsg.NewControlRecordKey()
	key.Type = kmsg.ControlRecordKeyTypeAbort
	if commit {
		key.Type = kmsg.ControlRecordKeyTypeCommit
	}
	val := kmsg.NewEndTxnMarker()
	val.CoordinatorEpoch = coordinatorEpoch
	rec := kmsg.Record{Key: key.AppendTo(nil), Value: val.AppendTo(nil)}
	// Length counts what follows it; a zero length encodes in one byte.
	rec.Length = int32(len(rec.AppendTo(nil)) - 1)
	b := kmsg.RecordBatch{
		PartitionLeaderEpoch: -1, Magic: Magic, Attributes: attrTransactional | attrControl,
		FirstTimestamp: ts, MaxTimestamp: ts,
		ProducerID: producerID, ProducerEpoch: epoch, FirstSequence: -1,
		NumRecords: 1, Records: rec.AppendTo(nil),
	}
	raw := b.AppendTo(nil)
	binary.BigEndian.PutUint32(raw[offLength:], uint32(len(raw)-lengthOverhead))
	binary.BigEndian.PutUint32(raw[offCRC:], checksum(raw))
	return raw
}

// ParseControl reads the marker in a control batch written by Control.
func ParseControl(raw []byte) (commit bool, coordinatorEpoch int32, err error) {
	var b kmsg.RecordBatch
	if err := b.ReadFrom(raw); err != nil {
		return false, 0, fmt.Errorf("%w: control batch: %v", ErrCorrupt, err)
	}
	if b.Attributes&attrControl == 0 || b.NumRecords != 1 || b.Attributes&attrCodecMask != 0 {
		return false, 0, fmt.Errorf("%w: not an uncompressed one-record control batch", ErrInvalid)
	}
	var rec kmsg.Record
	if err := rec.ReadFrom(b.Records); err != nil {
		return false, 0, fmt.Errorf("%w: control record: %v", ErrCorrupt, err)
	}
	key, val := kmsg.NewControlRecordKey(), kmsg.NewEndTxnMarker()
	if err := key.ReadFrom(rec.Key); err != nil {
		return false, 0, fmt.Errorf("%w: control record key: %v", ErrCorrupt, err)
	}
	if err := val.ReadFrom(rec.Value); err != nil {
		return false, 0, fmt.Errorf("%w: end transaction marker: %v", ErrCorrupt, err)
	}
	switch key.Type {
	case kmsg.ControlRecordKeyTypeAbort, kmsg.ControlRecordKeyTypeCommit:
		return key.Type == kmsg.ControlRecordKeyTypeCommit, val.CoordinatorEpoch, nil
	}
	return false, 0, fmt.Errorf("%w: control record type %d", ErrInvalid, key.Type)
}
