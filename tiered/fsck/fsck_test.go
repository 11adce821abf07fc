package fsck_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/eddy-streams/eddy/internal/batchtest"
	"github.com/eddy-streams/eddy/internal/pgtest"
	"github.com/eddy-streams/eddy/internal/store"
	"github.com/eddy-streams/eddy/internal/tieredtest"
	"github.com/eddy-streams/eddy/tiered/fsck"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

// The checker finds referenced objects that are missing or too short,
// and blobs the index does not know.
func TestCheckFindsDamage(t *testing.T) {
	ctx := context.Background()
	e := tieredtest.New(t, tieredtest.Topic{Name: "t", Partitions: 2})
	m := e.Manager(t, nil, nil)
	for range 3 {
		for _, p := range e.Parts["t"] {
			tieredtest.Append(t, m, p, tieredtest.Batch(2, []byte("k"), 50, 1))
		}
		if err := m.Flush(ctx); err != nil {
			t.Fatal(err)
		}
	}
	rep, err := fsck.Check(ctx, e.St, e.Bucket, 0)
	if err != nil {
		t.Fatal(err)
	}
	if !rep.Clean() || rep.Objects != 3 || rep.Referenced != 3 || rep.IndexRows != 6 {
		t.Fatalf("healthy store: %+v", rep)
	}
	segs, err := e.St.Segments(ctx, e.Parts["t"][0], -1, 10)
	if err != nil {
		t.Fatal(err)
	}
	// Damage: lose one object, truncate another, drop in a stranger.
	if err := e.Bucket.Delete(ctx, segs[0].ObjectKey); err != nil {
		t.Fatal(err)
	}
	data, err := e.Bucket.Get(ctx, segs[1].ObjectKey)
	if err != nil {
		t.Fatal(err)
	}
	if err := e.Bucket.Put(ctx, segs[1].ObjectKey, data[:segs[1].Position+1]); err != nil {
		t.Fatal(err)
	}
	if err := e.Bucket.Put(ctx, "data/stranger.obj", []byte("x")); err != nil {
		t.Fatal(err)
	}
	rep, err = fsck.Check(ctx, e.St, e.Bucket, 0)
	if err != nil {
		t.Fatal(err)
	}
	var out strings.Builder
	rep.Print(&out)
	t.Logf("report:\n%s", out.String())
	if rep.OK() || len(rep.Missing) != 1 || rep.Missing[0].Key != segs[0].ObjectKey ||
		len(rep.Short) != 1 || rep.Short[0].Key != segs[1].ObjectKey ||
		len(rep.Orphans) != 1 || rep.Orphans[0].Key != "data/stranger.obj" {
		t.Fatalf("damage not found: %+v", rep)
	}
	if !strings.Contains(out.String(), "INCONSISTENT") {
		t.Fatal("report does not say INCONSISTENT")
	}
	// Young blobs are not called orphans: a flush may be between its PUT
	// and its commit.
	if rep, _ := fsck.Check(ctx, e.St, e.Bucket, time.Hour); len(rep.Orphans) != 0 {
		t.Fatalf("young blob reported as an orphan: %+v", rep.Orphans)
	}
}

// An aborted transaction whose marker is not in the log (above the high
// watermark, or not a marker of its producer where the index points) is
// damage: read_committed clients would drop its producer's later batches.
func TestCheckFindsAbortedTxnsWithoutMarker(t *testing.T) {
	ctx := context.Background()
	e := tieredtest.New(t, tieredtest.Topic{Name: "t", Partitions: 1})
	pid := e.Parts["t"][0]
	m := e.Manager(t, nil, nil)
	e.AppendTxn(t, m, pid, batchtest.Build(batchtest.Spec{N: 2, Key: []byte("k"), Value: []byte("v"),
		Timestamp: 1000, ProducerID: 100, Transactional: true})) // 0-1
	e.EndTxn(t, m, 100, false)                                               // 2
	tieredtest.Append(t, m, pid, tieredtest.Batch(2, []byte("k"), 10, 1000)) // 3-4
	if err := m.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	if rep, err := fsck.Check(ctx, e.St, e.Bucket, 0); err != nil || !rep.Clean() {
		t.Fatalf("healthy store: %v %+v", err, rep)
	}
	for _, a := range []store.AbortedTxn{
		{ProducerID: 100, FirstOffset: 0, LastOffset: 1}, // data, not a marker
		{ProducerID: 200, FirstOffset: 3, LastOffset: 4}, // not this producer's
		{ProducerID: 100, FirstOffset: 3, LastOffset: 9}, // above the high watermark
	} {
		if err := e.St.PutAbortedTxnForTest(ctx, pid, a); err != nil {
			t.Fatal(err)
		}
	}
	rep, err := fsck.Check(ctx, e.St, e.Bucket, 0)
	if err != nil {
		t.Fatal(err)
	}
	var out strings.Builder
	rep.Print(&out)
	t.Logf("report:\n%s", out.String())
	if rep.OK() || len(rep.Aborted) != 3 || !strings.Contains(out.String(), "INCONSISTENT") {
		t.Fatalf("aborted transactions without markers not found: %+v", rep)
	}
}
