package leader_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/eddy-streams/eddy/data-plane/leader"
	"github.com/eddy-streams/eddy/internal/batch"
	"github.com/eddy-streams/eddy/internal/batchtest"
	"github.com/eddy-streams/eddy/internal/store"
)

// txnBatch builds a transactional batch of n records of producerID at
// epoch 0 starting at sequence seq.
func txnBatch(n int, producerID int64, seq int32) []byte {
	return batchtest.Build(batchtest.Spec{N: n, Key: []byte("k"), Value: []byte("t"), Timestamp: 1000, ProducerID: producerID, Sequence: seq, Transactional: true})
}

// appendTxn appends a transactional batch as the broker does once the
// producer's transaction was checked in Postgres.
func appendTxn(t *testing.T, p *leader.Partition, raw []byte) leader.AppendResult {
	t.Helper()
	h, _ := batch.ParseHeader(raw)
	g, _ := p.TxnCheck(h.ProducerID, h.ProducerEpoch)
	return appendWith(t, raw, func(hdrs []batch.Header) (leader.AppendResult, error) {
		return p.AppendTxn(raw, hdrs, false, g)
	})
}

// controlBatches counts the markers in the committed log of p.
func controlBatches(t *testing.T, p *leader.Partition) int {
	t.Helper()
	_, hw := p.Offsets()
	n := 0
	for off := int64(0); off < hw; {
		r, err := p.Read(context.Background(), off, 1<<20)
		if err != nil {
			t.Fatal(err)
		}
		for h := range batch.All(r.Records) {
			if h.Control() {
				n++
			}
			off = h.LastOffset() + 1
		}
	}
	return n
}

// An open transaction holds the last stable offset; its abort marker is
// written through the write path, and the commit that makes it durable
// moves the LSO, deletes the queued row and records the aborted
// transaction, which read_committed reads then carry.
func TestTransactionMarker(t *testing.T) {
	ctx := context.Background()
	e := setup(t)
	m, p := e.lead(t, 1, 1)

	// Not checked against its transaction: refused.
	raw := txnBatch(3, 100, 0)
	hdrs, _ := batch.Validate(raw, 0)
	if _, err := p.Append(raw, hdrs, false); !errors.Is(err, leader.ErrInvalidTxnState) {
		t.Fatalf("unchecked transactional batch: %v, want ErrInvalidTxnState", err)
	}
	appendTxn(t, p, txnBatch(3, 100, 0))      // offsets 0-2, the transaction
	appendBatch(t, p, recordBatch(2, -1, -1)) // 3-4, plain
	if _, needed := p.TxnCheck(100, 0); needed {
		t.Fatal("a producer with an open transaction needs no further check")
	}
	if err := m.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	if _, hw := p.Offsets(); hw != 5 || p.LastStable() != 0 {
		t.Fatalf("hw %d, LSO %d; want 5 and 0", hw, p.LastStable())
	}
	if r, err := p.ReadCommitted(ctx, 0, 1<<20); err != nil || len(r.Records) != 0 || r.LastStable != 0 {
		t.Fatalf("read_committed below an open transaction: %d bytes, LSO %d, %v", len(r.Records), r.LastStable, err)
	}

	if err := e.st.OpenTxnForTest(ctx, "vc-t", "tx", 100, 0, e.pid); err != nil {
		t.Fatal(err)
	}
	if err := e.st.EndTxnForTest(ctx, "vc-t", "tx", false, 0); err != nil {
		t.Fatal(err)
	}
	if err := m.SweepMarkers(ctx); err != nil {
		t.Fatal(err)
	}
	if err := m.SweepMarkers(ctx); err != nil { // picked up once
		t.Fatal(err)
	}
	if p.LastStable() != 0 {
		t.Fatalf("LSO %d before the marker is committed, want 0", p.LastStable())
	}
	if err := m.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	if _, hw := p.Offsets(); hw != 6 || p.LastStable() != 6 {
		t.Fatalf("after the marker: hw %d, LSO %d; want 6 and 6", hw, p.LastStable())
	}
	r, err := p.ReadCommitted(ctx, 0, 1<<20)
	if err != nil {
		t.Fatal(err)
	}
	want := []store.AbortedTxn{{ProducerID: 100, FirstOffset: 0, LastOffset: 5}}
	if len(r.Aborted) != 1 || r.Aborted[0] != want[0] || endOffset(r.Records) != 6 {
		t.Fatalf("read_committed: aborted %v, records up to %d; want %v up to 6", r.Aborted, endOffset(r.Records), want)
	}
	if n := controlBatches(t, p); n != 1 {
		t.Fatalf("%d markers in the log, want 1", n)
	}
	if q, err := e.st.PendingMarkers(ctx, []int64{e.pid}); err != nil || len(q) != 0 {
		t.Fatalf("queued markers after the commit: %v, %v", q, err)
	}
	if got, err := e.st.AbortedTxns(ctx, e.pid, 0, -1, 0); err != nil || len(got) != 1 || got[0] != want[0] {
		t.Fatalf("aborted_txns %v, %v; want %v", got, err, want)
	}
	// The producer's next transaction must be checked again.
	if _, needed := p.TxnCheck(100, 0); !needed {
		t.Fatal("after the marker the producer's next transaction needs a check")
	}
	// A new leader learns the producer state and the aborted transactions.
	st, err := e.st.LoadPartition(ctx, e.pid, time.Time{})
	if err != nil || len(st.Producers) != 1 || st.Producers[0].TxnFirstOffset != -1 {
		t.Fatalf("stored producers %+v, %v", st.Producers, err)
	}
}

func endOffset(b []byte) int64 {
	end := int64(-1)
	for h := range batch.All(b) {
		end = h.LastOffset() + 1
	}
	return end
}

// A marker picked up by a leader that is deposed before its commit is
// written by the next leader, once; one committed before the move is not
// written again.
func TestMarkerWrittenOnceAcrossLeaders(t *testing.T) {
	ctx := context.Background()
	e := setup(t)
	m1, p1 := e.lead(t, 1, 1)

	// Transaction A: its abort marker is committed by broker 1.
	appendTxn(t, p1, txnBatch(2, 100, 0))
	if err := e.st.OpenTxnForTest(ctx, "vc-t", "a", 100, 0, e.pid); err != nil {
		t.Fatal(err)
	}
	if err := m1.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	if err := e.st.EndTxnForTest(ctx, "vc-t", "a", false, 0); err != nil {
		t.Fatal(err)
	}
	if err := m1.SweepMarkers(ctx); err != nil {
		t.Fatal(err)
	}
	if err := m1.Flush(ctx); err != nil {
		t.Fatal(err)
	}

	// Transaction B: broker 1 picks its commit marker up, then loses the
	// partition before flushing it.
	appendTxn(t, p1, txnBatch(2, 200, 0))
	if err := e.st.OpenTxnForTest(ctx, "vc-t", "b", 200, 0, e.pid); err != nil {
		t.Fatal(err)
	}
	if err := m1.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	if err := e.st.EndTxnForTest(ctx, "vc-t", "b", true, 0); err != nil {
		t.Fatal(err)
	}
	if err := m1.SweepMarkers(ctx); err != nil {
		t.Fatal(err)
	}
	e.moveToBroker2(t)
	if err := m1.Flush(ctx); err != nil { // fenced: the partition is dropped
		t.Fatal(err)
	}
	if !p1.Lost() {
		t.Fatal("broker 1 still leads after its fenced commit")
	}

	m2, p2 := e.lead(t, 2, 2)                    // writes B's marker
	if err := m2.SweepMarkers(ctx); err != nil { // nothing new
		t.Fatal(err)
	}
	if err := m2.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	// A's data and marker, B's data and marker.
	if _, hw := p2.Offsets(); hw != 6 || p2.LastStable() != 6 {
		t.Fatalf("hw %d, LSO %d; want 6 and 6", hw, p2.LastStable())
	}
	if n := controlBatches(t, p2); n != 2 {
		t.Fatalf("%d markers in the log, want 2 (each written once)", n)
	}
	if q, err := e.st.PendingMarkers(ctx, []int64{e.pid}); err != nil || len(q) != 0 {
		t.Fatalf("queued markers: %v, %v", q, err)
	}
	r, err := p2.ReadCommitted(ctx, 0, 1<<20)
	if err != nil {
		t.Fatal(err)
	}
	if want := (store.AbortedTxn{ProducerID: 100, FirstOffset: 0, LastOffset: 2}); len(r.Aborted) != 1 || r.Aborted[0] != want {
		t.Fatalf("aborted %v, want [%v]", r.Aborted, want)
	}
}
