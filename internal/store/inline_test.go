package store_test

import (
	"bytes"
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/eddy-streams/eddy/internal/store"
)

// ledPartition creates a one-partition topic of vc1 led by broker 1 and
// returns the partition.
func ledPartition(t *testing.T, ctx context.Context, st *store.Store, topic string) store.Partition {
	t.Helper()
	if _, _, err := st.CreateTopic(ctx, store.AnyOrg, "vc1", topic, 1, nil); err != nil {
		t.Fatal(err)
	}
	if _, _, err := st.PlaceRound(ctx, func(bs []store.BrokerLoad, items []store.Item) []store.Assignment {
		var out []store.Assignment
		for _, it := range items {
			out = append(out, store.Assignment{Item: it, Broker: 1})
		}
		return out
	}); err != nil {
		t.Fatal(err)
	}
	md, err := st.Snapshot(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, tp := range md.Topics {
		if tp.Name == topic && tp.Partitions[0].LeaderID == 1 {
			return tp.Partitions[0]
		}
	}
	t.Fatalf("topic %s not led by broker 1", topic)
	return store.Partition{}
}

// commitInline commits n inline rows of 10 offsets each after the high
// watermark, and returns their bytes by base offset.
func commitInline(t *testing.T, ctx context.Context, st *store.Store, part store.Partition, from int64, n int) map[int64][]byte {
	t.Helper()
	out := map[int64][]byte{}
	for i := range n {
		base := from + int64(10*i)
		data := []byte(fmt.Sprintf("batches %d-%d", base, base+9))
		done, err := st.Commit(ctx, 1, "", 0, []store.CommitPart{{PartitionID: part.ID, LeaderEpoch: part.LeaderEpoch,
			BaseOffset: base, EndOffset: base + 10, MaxTimestamp: base, Data: data}})
		if err != nil {
			t.Fatal(err)
		}
		if !done[part.ID] {
			t.Fatalf("inline commit at %d fenced", base)
		}
		out[base] = data
	}
	return out
}

// movesOf places rows back to back in an object, as the uploader does.
func movesOf(rows []store.InlineBatch) []store.InlineMove {
	var (
		out []store.InlineMove
		pos int64 = 8
	)
	for _, r := range rows {
		out = append(out, store.InlineMove{PartitionID: r.PartitionID, BaseOffset: r.BaseOffset, EndOffset: r.EndOffset,
			MaxTimestamp: r.MaxTimestamp, Position: pos, Length: r.Length})
		pos += int64(r.Length)
	}
	return out
}

// An inline commit moves the high watermark and stores the bytes with no
// object; reads are bounded; LoadPartition counts what waits; a fenced
// writer stores nothing.
func TestInlineCommitAndRead(t *testing.T) {
	ctx, st, _ := commitDB(t)
	part := ledPartition(t, ctx, st, "inline")
	want := commitInline(t, ctx, st, part, 0, 3)

	ps, err := st.LoadPartition(ctx, part.ID, time.Time{})
	if err != nil {
		t.Fatal(err)
	}
	var total int64
	for _, d := range want {
		total += int64(len(d))
	}
	if ps.HighWatermark != 30 || ps.InlineBytes != total {
		t.Fatalf("after 3 inline commits: hw %d inline bytes %d, want 30 and %d", ps.HighWatermark, ps.InlineBytes, total)
	}
	refs, err := st.ObjectRefs(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(refs) != 0 {
		t.Fatalf("inline commits registered objects: %+v", refs)
	}
	rows, err := st.ReadInline(ctx, part.ID, 15, 1)
	if err != nil {
		t.Fatal(err)
	}
	if len(rows) != 1 || rows[0].BaseOffset != 10 || !bytes.Equal(rows[0].Data, want[10]) {
		t.Fatalf("read from 15 with 1 byte: %+v, want the row at 10 alone", rows)
	}
	rows, err = st.ReadInline(ctx, part.ID, 0, 1<<20)
	if err != nil {
		t.Fatal(err)
	}
	if len(rows) != 3 {
		t.Fatalf("read from 0: %d rows, want 3", len(rows))
	}

	// A writer at an older epoch is fenced and leaves no row.
	done, err := st.Commit(ctx, 1, "", 0, []store.CommitPart{{PartitionID: part.ID, LeaderEpoch: part.LeaderEpoch - 1,
		BaseOffset: 30, EndOffset: 40, Data: []byte("stale")}})
	if err != nil {
		t.Fatal(err)
	}
	if done[part.ID] {
		t.Fatal("a commit at a stale epoch succeeded")
	}
	if rows, _ := st.ReadInline(ctx, part.ID, 30, 1<<20); len(rows) != 0 {
		t.Fatalf("the fenced commit left rows: %+v", rows)
	}
}

// InlineToMove lists rows without their bytes (their lengths only);
// FillInline reads the bytes of those that have none, and leaves a row
// deleted meanwhile without.
func TestInlineToMoveAndFill(t *testing.T) {
	ctx, st, _ := commitDB(t)
	part := ledPartition(t, ctx, st, "fill")
	want := commitInline(t, ctx, st, part, 0, 4)

	rows, more, err := st.InlineToMove(ctx, []int64{part.ID}, 1<<20)
	if err != nil {
		t.Fatal(err)
	}
	if len(rows) != 4 || more {
		t.Fatalf("InlineToMove: %d rows (more %v), want 4", len(rows), more)
	}
	for _, r := range rows {
		if r.Data != nil || int(r.Length) != len(want[r.BaseOffset]) {
			t.Fatalf("row %d: %d bytes listed, data %q; want %d bytes and no data", r.BaseOffset, r.Length, r.Data, len(want[r.BaseOffset]))
		}
	}
	// The uploader had row 10 in memory; row 0 goes (DeleteRecords).
	rows[1].Data = []byte("from memory")
	if _, err := st.AdvanceLogStart(ctx, part.ID, 10); err != nil {
		t.Fatal(err)
	}
	if err := st.FillInline(ctx, rows); err != nil {
		t.Fatal(err)
	}
	if rows[0].Data != nil {
		t.Fatalf("row 0 was deleted, yet FillInline gave it %q", rows[0].Data)
	}
	if string(rows[1].Data) != "from memory" {
		t.Fatalf("FillInline replaced the data the row had: %q", rows[1].Data)
	}
	for _, r := range rows[2:] {
		if !bytes.Equal(r.Data, want[r.BaseOffset]) {
			t.Fatalf("row %d: FillInline read %q, want %q", r.BaseOffset, r.Data, want[r.BaseOffset])
		}
	}
}

// Uploaders racing over the same inline rows (a deposed leader's and its
// successor's) move each row exactly once: the index ends with one row per
// offset range, nothing inline, and the loser's object unreferenced.
func TestMoveInlineRace(t *testing.T) {
	ctx, st, _ := commitDB(t)
	part := ledPartition(t, ctx, st, "race")
	commitInline(t, ctx, st, part, 0, 20)

	rows, more, err := st.InlineToMove(ctx, []int64{part.ID}, 1<<20)
	if err != nil {
		t.Fatal(err)
	}
	if len(rows) != 20 || more {
		t.Fatalf("InlineToMove: %d rows (more %v), want 20", len(rows), more)
	}
	moves := movesOf(rows)
	// The second uploader read the rows before the first moved them; it
	// also covers only half of them, as a smaller read would.
	var (
		wg    sync.WaitGroup
		moved [2]int
		errs  [2]error
	)
	for i, ms := range [][]store.InlineMove{moves, moves[:10]} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			moved[i], errs[i] = st.MoveInline(ctx, int32(i+1), fmt.Sprintf("data/race-%d.obj", i), 1000, ms)
		}()
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	if moved[0]+moved[1] != 20 {
		t.Fatalf("uploaders moved %d and %d rows, want 20 in all", moved[0], moved[1])
	}
	if left, _ := st.ReadInline(ctx, part.ID, 0, 1<<20); len(left) != 0 {
		t.Fatalf("%d inline rows left after the moves", len(left))
	}
	segs, err := st.Segments(ctx, part.ID, 0, 100)
	if err != nil {
		t.Fatal(err)
	}
	next := int64(0)
	for _, s := range segs {
		if s.BaseOffset != next {
			t.Fatalf("index rows %+v: gap or overlap at %d", segs, next)
		}
		next = s.EndOffset
	}
	if next != 200 {
		t.Fatalf("index rows end at %d, want 200", next)
	}
	if moved[0] == 20 && len(segs) != 1 {
		t.Fatalf("one uploader moved every row into one object as %d index rows, want 1 (one per contiguous run)", len(segs))
	}
	refs, err := st.ObjectRefs(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range refs {
		i := 0
		if r.Key == "data/race-1.obj" {
			i = 1
		}
		if (r.Rows > 0) != (moved[i] > 0) || !r.Registered {
			t.Fatalf("object %+v after uploader %d moved %d rows", r, i, moved[i])
		}
	}

	// Once retention or DeleteRecords dropped rows, a late uploader
	// indexes none of them.
	commitInline(t, ctx, st, part, 200, 2)
	late, _, err := st.InlineToMove(ctx, []int64{part.ID}, 1<<20)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := st.AdvanceLogStart(ctx, part.ID, 210); err != nil {
		t.Fatal(err)
	}
	n, err := st.MoveInline(ctx, 1, "data/late.obj", 1000, movesOf(late))
	if err != nil {
		t.Fatal(err)
	}
	if n != 1 {
		t.Fatalf("late uploader moved %d rows, want 1 (the row at 210; the one below the log start is gone)", n)
	}
	segs, err = st.Segments(ctx, part.ID, 0, 100)
	if err != nil {
		t.Fatal(err)
	}
	if len(segs) != 1 || segs[0].BaseOffset != 210 || segs[0].EndOffset != 220 {
		t.Fatalf("index after DeleteRecords to 210 and the late move: %+v, want [210, 220) alone", segs)
	}
}

// Retention never drops an index row above inline rows: the log start
// would pass data still inline.
func TestRetentionStopsAtInline(t *testing.T) {
	ctx, st, _ := commitDB(t)
	part := ledPartition(t, ctx, st, "retain")
	// [0,10) in an object, [10,20) inline, [20,30) in an object.
	for _, r := range []struct {
		base   int64
		inline bool
	}{{0, false}, {10, true}, {20, false}} {
		key, data := fmt.Sprintf("data/r%d.obj", r.base), []byte(nil)
		if r.inline {
			key, data = "", []byte("inline")
		}
		done, err := st.Commit(ctx, 1, key, 100, []store.CommitPart{{PartitionID: part.ID, LeaderEpoch: part.LeaderEpoch,
			BaseOffset: r.base, EndOffset: r.base + 10, Position: 8, Length: 10, MaxTimestamp: 1, Data: data}})
		if err != nil || !done[part.ID] {
			t.Fatalf("commit at %d: %v %v", r.base, done, err)
		}
	}
	ctx2, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	start, dropped, err := st.ApplyRetention(ctx2, part.ID, 1000, -1)
	if err != nil {
		t.Fatal(err)
	}
	if start != 10 || dropped != 1 {
		t.Fatalf("retention of everything: log start %d after %d rows, want 10 after 1", start, dropped)
	}
}
