package compact

import (
	"encoding/binary"
	"hash/crc32"
	"testing"

	"github.com/eddy-streams/eddy/internal/batch"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// Stamping a delete horizon re-counts every record's timestamp delta from
// it, each record's length following its delta's size, and the records'
// timestamps do not change.
func TestReencodeStampsHorizon(t *testing.T) {
	const base = 1_700_000_000_000
	deltas := []int64{0, 1, 63, 64, -65, 1 << 40}
	var recs []byte
	for i, d := range deltas {
		r := kmsg.Record{OffsetDelta: int32(i), TimestampDelta64: d, TimestampDelta: int32(d), Key: []byte{'k', byte(i)}, Value: []byte("v")}
		r.Length = int32(len(r.AppendTo(nil)) - 1)
		recs = r.AppendTo(recs)
	}
	rb := kmsg.RecordBatch{PartitionLeaderEpoch: -1, Magic: 2, LastOffsetDelta: int32(len(deltas) - 1),
		FirstTimestamp: base, MaxTimestamp: base + 1<<40, ProducerID: -1, ProducerEpoch: -1, FirstSequence: -1,
		NumRecords: int32(len(deltas)), Records: recs}
	raw := rb.AppendTo(nil)
	binary.BigEndian.PutUint32(raw[8:], uint32(len(raw)-12))
	binary.BigEndian.PutUint32(raw[17:], crc32.Checksum(raw[21:], castagnoli))
	p := &keyPass{limit: 1 << 20}
	for _, horizon := range []int64{base, base + 1, base + 1<<41} {
		out, err := p.rebatch(raw, recs, int32(len(deltas)), horizon)
		if err != nil {
			t.Fatal(err)
		}
		var i int
		err = batch.Records(out, 1<<20, func(r *kmsg.Record) bool {
			if got, want := horizon+r.TimestampDelta64, base+deltas[i]; got != want {
				t.Errorf("horizon %d: record %d at %d, want %d", horizon, i, got, want)
			}
			c := *r
			if n := int32(len(c.AppendTo(nil))) - int32(len(binary.AppendVarint(nil, int64(r.Length)))); n != r.Length {
				t.Errorf("horizon %d: record %d has length %d, takes %d", horizon, i, r.Length, n)
			}
			i++
			return true
		})
		if err != nil || i != len(deltas) {
			t.Fatalf("horizon %d: %d records, %v", horizon, i, err)
		}
	}
}
