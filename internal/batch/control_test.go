package batch_test

import (
	"errors"
	"testing"

	"github.com/eddy-streams/eddy/internal/batch"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// A marker is a well-formed control batch that clients decode as Kafka's,
// that produce refuses and WAL replay accepts.
func TestControlBatch(t *testing.T) {
	for _, commit := range []bool{false, true} {
		raw := batch.Control(42, 7, commit, 3, 1234)
		if _, err := batch.Validate(raw, 0); !errors.Is(err, batch.ErrInvalid) {
			t.Fatalf("Validate of a marker: %v, want ErrInvalid", err)
		}
		hdrs, err := batch.ValidateWritten(raw)
		if err != nil {
			t.Fatal(err)
		}
		h := hdrs[0]
		if !h.Control() || !h.Transactional() || h.ProducerID != 42 || h.ProducerEpoch != 7 || h.NumRecords != 1 || h.MaxTimestamp != 1234 {
			t.Fatalf("header %+v", h)
		}
		gotCommit, coord, err := batch.ParseControl(raw)
		if err != nil || gotCommit != commit || coord != 3 {
			t.Fatalf("ParseControl = %v, %d, %v; want %v, 3", gotCommit, coord, err, commit)
		}
		// As a client reads it.
		var b kmsg.RecordBatch
		if err := b.ReadFrom(raw); err != nil {
			t.Fatal(err)
		}
		var rec kmsg.Record
		if err := rec.ReadFrom(b.Records); err != nil {
			t.Fatal(err)
		}
		key := kmsg.NewControlRecordKey()
		if err := key.ReadFrom(rec.Key); err != nil {
			t.Fatal(err)
		}
		if want := map[bool]kmsg.ControlRecordKeyType{false: 0, true: 1}[commit]; key.Type != want {
			t.Fatalf("control key type %v, want %v", key.Type, want)
		}
	}
}
