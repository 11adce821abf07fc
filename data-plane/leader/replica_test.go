package leader_test

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"slices"
	"testing"
	"time"

	"github.com/eddy-streams/eddy/data-plane/leader"
	"github.com/eddy-streams/eddy/internal/batch"
	"github.com/eddy-streams/eddy/internal/tieredtest"
	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
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

// replicaReadBytes is eddy_replica_read_bytes_total, all sources.
func replicaReadBytes(t *testing.T, reg *prometheus.Registry) float64 {
	return counterValue(t, reg, "eddy_replica_read_bytes_total")
}

// TestReplicaTail: the consumers of a zone reading the head of a
// partition share one read of it (the replica's tail), and a reader far
// behind does not displace it.
func TestReplicaTail(t *testing.T) {
	ctx := context.Background()
	e := setup(t)
	m1, p1 := e.lead(t, 1, 1)
	reg := prometheus.NewRegistry()
	cfg := leader.DefaultConfig()
	cfg.BrokerID, cfg.WALDir, cfg.ReplicaInterval = 2, e.dir+"/wal-replica", time.Nanosecond
	m2, err := leader.Open(cfg, e.st, e.objs, slog.New(slog.NewTextHandler(io.Discard, nil)), reg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m2.Close() })

	for range 2 {
		appendBatch(t, p1, recordBatch(3, -1, -1))
		if err := m1.Flush(ctx); err != nil {
			t.Fatal(err)
		}
	}
	// The first reader reads from Postgres, the next ones from the tail.
	for i := range 3 {
		r, err := m2.ReadReplica(ctx, e.pid, 3, 1<<20, false)
		if err != nil || records(t, r.Records) != 3 {
			t.Fatalf("reader %d at 3: %d records, %v", i, records(t, r.Records), err)
		}
	}
	read := replicaReadBytes(t, reg)
	if read == 0 {
		t.Fatal("nothing counted as read")
	}
	// A reader far behind reads [0, 3) from Postgres; the head stays.
	if r, err := m2.ReadReplica(ctx, e.pid, 0, 1, false); err != nil || records(t, r.Records) != 3 {
		t.Fatalf("reader at 0: %d records, %v", records(t, r.Records), err)
	}
	behind := replicaReadBytes(t, reg)
	if behind != 2*read {
		t.Fatalf("read %v bytes for the first head reader, %v after the one behind: want it read once more", read, behind)
	}
	appendBatch(t, p1, recordBatch(2, -1, -1))
	if err := m1.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	// The head reader goes on at 6 (read once, appended to the tail); a
	// slower one at 3 then finds [3, 8) in the tail.
	if r, err := m2.ReadReplica(ctx, e.pid, 6, 1<<20, false); err != nil || records(t, r.Records) != 2 || r.HighWatermark != 8 {
		t.Fatalf("reader at 6: %d records, hw %d, %v", records(t, r.Records), r.HighWatermark, err)
	}
	if r, err := m2.ReadReplica(ctx, e.pid, 3, 1<<20, false); err != nil || records(t, r.Records) != 5 {
		t.Fatalf("reader at 3: %d records, %v; want [3, 8)", records(t, r.Records), err)
	}
	if got := replicaReadBytes(t, reg); got >= behind+read {
		t.Fatalf("the new batch and the head were read %v bytes more, want only the new batch once (< %v)", got-behind, read)
	}
}

// counterValue is the sum of counter name's values in reg over the label
// sets that have every label=value pair of labels (none: all of them).
func counterValue(t *testing.T, reg *prometheus.Registry, name string, labels ...string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	sum := 0.0
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
	metrics:
		for _, m := range mf.GetMetric() {
			for i := 0; i+1 < len(labels); i += 2 {
				if !slices.ContainsFunc(m.GetLabel(), func(l *dto.LabelPair) bool {
					return l.GetName() == labels[i] && l.GetValue() == labels[i+1]
				}) {
					continue metrics
				}
			}
			sum += m.GetCounter().GetValue()
		}
	}
	return sum
}

// TestRefreshReplicas: the committed offsets of a fetch's partitions are
// read in one query, and the reads that follow ask Postgres nothing more.
func TestRefreshReplicas(t *testing.T) {
	ctx := context.Background()
	te := tieredtest.New(t, tieredtest.Topic{Name: "t", Partitions: 3})
	ids := te.Parts["t"]
	reg := prometheus.NewRegistry()
	cfg := leader.DefaultConfig()
	cfg.BrokerID, cfg.WALDir, cfg.ReplicaInterval = 2, te.Dir+"/wal-replica", time.Hour
	m, err := leader.Open(cfg, te.St, te.FS, slog.New(slog.NewTextHandler(io.Discard, nil)), reg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m.Close() })
	if err := m.RefreshReplicas(ctx, ids); err != nil {
		t.Fatal(err)
	}
	for _, id := range ids {
		if r, err := m.ReadReplica(ctx, id, 0, 1<<20, false); err != nil || r.HighWatermark != 0 {
			t.Fatalf("partition %d: hw %d, %v", id, r.HighWatermark, err)
		}
	}
	if n := counterValue(t, reg, "eddy_replica_offset_reads_total"); n != 1 {
		t.Fatalf("%v offsets queries for %d partitions, want 1", n, len(ids))
	}
}
