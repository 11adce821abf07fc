package leader_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/eddy-streams/eddy/data-plane/leader"
	"github.com/eddy-streams/eddy/internal/batch"
)

// records counts the records of a run of whole batches.
func records(t *testing.T, b []byte) int {
	t.Helper()
	n := 0
	batch.Each(b, func(h batch.Header, _ []byte) bool { n += int(h.LastOffsetDelta) + 1; return true })
	return n
}

// TestReplicaReadsOnlyCommitted: a broker that does not lead a partition
// serves what its leader committed in Postgres, inline or uploaded, and
// nothing the leader only holds in its WAL and memory (acks=1 data); an
// offset past the committed high watermark is out of range there.
func TestReplicaReadsOnlyCommitted(t *testing.T) {
	ctx := context.Background()
	e := setup(t)
	m1, p1 := e.lead(t, 1, 1)
	// Every replica read asks Postgres: what it answers does not depend
	// on how old its last reading is.
	m2 := e.managerWith(t, 2, func(c *leader.Config) { c.ReplicaInterval = time.Nanosecond })
	t.Cleanup(func() { m2.Close() })

	r, err := m2.ReadReplica(ctx, e.pid, 0, 1<<20, false)
	if err != nil || len(r.Records) != 0 || r.HighWatermark != 0 {
		t.Fatalf("empty partition: %d bytes, hw %d, %v", len(r.Records), r.HighWatermark, err)
	}
	appendBatch(t, p1, recordBatch(3, -1, -1))
	if err := m1.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	// Accepted, not flushed: acks=1 data.
	appendBatch(t, p1, recordBatch(2, -1, -1))

	for _, committed := range []bool{false, true} {
		r, err = m2.ReadReplica(ctx, e.pid, 0, 1<<20, committed)
		if err != nil || records(t, r.Records) != 3 || r.HighWatermark != 3 || r.LastStable != 3 {
			t.Fatalf("read_committed %v: %d records, hw %d, lso %d, %v; want the 3 committed", committed, records(t, r.Records), r.HighWatermark, r.LastStable, err)
		}
	}
	if r, err = m2.ReadReplica(ctx, e.pid, 3, 1<<20, false); err != nil || len(r.Records) != 0 {
		t.Fatalf("read at the committed high watermark: %d bytes, %v", len(r.Records), err)
	}
	if _, err = m2.ReadReplica(ctx, e.pid, 4, 1<<20, false); !errors.Is(err, leader.ErrOffsetOutOfRange) {
		t.Fatalf("read past the committed high watermark (inside the leader's uncommitted batch): %v, want out of range", err)
	}

	if err := m1.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	if r, err = m2.ReadReplica(ctx, e.pid, 3, 1<<20, false); err != nil || records(t, r.Records) != 2 || r.HighWatermark != 5 {
		t.Fatalf("after the flush: %d records, hw %d, %v; want 2 records, hw 5", records(t, r.Records), r.HighWatermark, err)
	}
}

// TestReplicaWatch: a long poll on a partition read here without being
// led here is woken by the replica poller once the leader commits, and
// then reads what was committed.
func TestReplicaWatch(t *testing.T) {
	ctx := context.Background()
	e := setup(t)
	m1, p1 := e.lead(t, 1, 1)
	m2 := e.manager(t, 2)
	runCtx, stop := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() { m2.Run(runCtx); close(done) }()
	t.Cleanup(func() { stop(); <-done; m2.Close() })

	if _, err := m2.ReadReplica(ctx, e.pid, 0, 1<<20, false); err != nil {
		t.Fatal(err)
	}
	ch := make(chan struct{}, 1)
	unwatch := m2.WatchReplica(e.pid, ch)
	defer unwatch()
	appendBatch(t, p1, recordBatch(3, -1, -1)) // not committed: no wake-up for it
	if err := m1.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	select {
	case <-ch:
	case <-time.After(30 * time.Second):
		t.Fatal("the watch was not woken by the commit")
	}
	r, err := m2.ReadReplica(ctx, e.pid, 0, 1<<20, false)
	if err != nil || records(t, r.Records) != 3 {
		t.Fatalf("after the wake-up: %d records, %v", records(t, r.Records), err)
	}
}
