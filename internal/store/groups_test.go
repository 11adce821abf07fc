package store_test

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"sync"
	"testing"
	"time"

	"github.com/eddy-streams/eddy/internal/pgtest"
	"github.com/eddy-streams/eddy/internal/store"
)

// commitDB is a migrated database with clusters vc1 and vc2, broker 1
// registered and leading slot 1 at epoch 5 and slot 2 at epoch 3.
func commitDB(t *testing.T) (context.Context, *store.Store, string) {
	t.Helper()
	url := pgtest.URL(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	t.Cleanup(cancel)
	st, err := store.Open(ctx, url, 8)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(st.Close)
	for _, vc := range []string{"vc1", "vc2"} {
		if err := st.EnsureCluster(ctx, vc, vc); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := st.Register(ctx, 1, "127.0.0.1", 9092, "", time.Minute); err != nil {
		t.Fatal(err)
	}
	for _, f := range []store.SlotFence{slot1, slot2} {
		if err := st.AssignSlots(ctx, f.BrokerID, f.LeaderEpoch, f.Slot); err != nil {
			t.Fatal(err)
		}
	}
	return ctx, st, url
}

var (
	slot1 = store.SlotFence{Slot: 1, BrokerID: 1, LeaderEpoch: 5}
	slot2 = store.SlotFence{Slot: 2, BrokerID: 1, LeaderEpoch: 3}
)

func offs(topic string, pairs ...int64) []store.GroupOffset {
	var out []store.GroupOffset
	for i := 0; i+1 < len(pairs); i += 2 {
		out = append(out, store.GroupOffset{Topic: topic, Partition: int32(pairs[i]), Offset: pairs[i+1], LeaderEpoch: -1,
			Metadata: fmt.Sprintf("m%d", pairs[i+1])})
	}
	return out
}

// stored returns a group's offsets as "topic/partition" -> offset, checking
// each carries the metadata offs gives it.
func stored(t *testing.T, ctx context.Context, st *store.Store, cluster, group string) map[string]int64 {
	t.Helper()
	got, err := st.FetchOffsets(ctx, cluster, group)
	if err != nil {
		t.Fatal(err)
	}
	m := map[string]int64{}
	for _, o := range got {
		if want := fmt.Sprintf("m%d", o.Offset); o.Metadata != want {
			t.Fatalf("%s/%s %s/%d: metadata %q, want %q", cluster, group, o.Topic, o.Partition, o.Metadata, want)
		}
		m[fmt.Sprintf("%s/%d", o.Topic, o.Partition)] = o.Offset
	}
	return m
}

// TestCommitOffsetsBatchOutcomes: one statement carries commits of several
// clusters and slots; those whose fence no longer holds, whose cluster is
// gone or whose text Postgres cannot store get their own error and write
// nothing, and the others land.
func TestCommitOffsetsBatchOutcomes(t *testing.T) {
	ctx, st, _ := commitDB(t)
	batch := []store.OffsetCommit{
		{ClusterID: "vc1", Group: "ok1", Fence: slot1, Offsets: offs("t", 0, 10, 1, 11)},
		{ClusterID: "vc1", Group: "old-epoch", Fence: store.SlotFence{Slot: 1, BrokerID: 1, LeaderEpoch: 4}, Offsets: offs("t", 0, 20)},
		{ClusterID: "vc2", Group: "ok2", Fence: slot2, Offsets: offs("t", 0, 30)},
		{ClusterID: "vc2", Group: "other-broker", Fence: store.SlotFence{Slot: 2, BrokerID: 2, LeaderEpoch: 3}, Offsets: offs("t", 0, 40)},
		{ClusterID: "vc2", Group: "unled-slot", Fence: store.SlotFence{Slot: 3, BrokerID: 1, LeaderEpoch: 0}, Offsets: offs("t", 0, 45)},
		{ClusterID: "vc-gone", Group: "g", Fence: slot1, Offsets: offs("t", 0, 50)},
		{ClusterID: "vc1", Group: "bad-text", Fence: slot1, Offsets: []store.GroupOffset{{Topic: "t", Offset: 60, Metadata: "\xff\x00"}}},
		{ClusterID: "vc1", Group: "empty", Fence: slot1},
		{ClusterID: "vc1", Group: "ok3", Fence: slot1, Offsets: offs("u", 7, 70)},
	}
	outcomes, err := st.CommitOffsetsBatch(ctx, batch)
	if err != nil {
		t.Fatal(err)
	}
	want := []error{nil, store.ErrFenced, nil, store.ErrFenced, store.ErrFenced, store.ErrNotFound, store.ErrInvalid, nil, nil}
	if len(outcomes) != len(want) {
		t.Fatalf("%d outcomes for %d commits", len(outcomes), len(want))
	}
	for i, w := range want {
		if (w == nil) != (outcomes[i] == nil) || (w != nil && !errors.Is(outcomes[i], w)) {
			t.Errorf("commit %d (%s/%s): %v, want %v", i, batch[i].ClusterID, batch[i].Group, outcomes[i], w)
		}
	}
	for _, c := range []struct {
		cluster, group string
		want           map[string]int64
	}{
		{"vc1", "ok1", map[string]int64{"t/0": 10, "t/1": 11}},
		{"vc2", "ok2", map[string]int64{"t/0": 30}},
		{"vc1", "ok3", map[string]int64{"u/7": 70}},
		{"vc1", "old-epoch", map[string]int64{}},
		{"vc2", "other-broker", map[string]int64{}},
		{"vc2", "unled-slot", map[string]int64{}},
		{"vc1", "bad-text", map[string]int64{}},
	} {
		got := stored(t, ctx, st, c.cluster, c.group)
		if fmt.Sprint(got) != fmt.Sprint(c.want) {
			t.Errorf("%s/%s stored %v, want %v", c.cluster, c.group, got, c.want)
		}
	}

	// A batch of nothing but refused commits is no statement error either.
	outcomes, err = st.CommitOffsetsBatch(ctx, batch[1:2])
	if err != nil || !errors.Is(outcomes[0], store.ErrFenced) {
		t.Fatalf("lone fenced commit: %v, %v", outcomes, err)
	}
}

// TestCommitOffsetsBatchDuplicates: the same group and partition named
// twice in a batch (in two commits, or twice in one) ends at the last value
// in batch order, and updates an existing row.
func TestCommitOffsetsBatchDuplicates(t *testing.T) {
	ctx, st, _ := commitDB(t)
	if _, err := st.CommitOffsetsBatch(ctx, []store.OffsetCommit{
		{ClusterID: "vc1", Group: "g", Fence: slot1, Offsets: offs("t", 0, 1, 1, 1)},
	}); err != nil {
		t.Fatal(err)
	}
	outcomes, err := st.CommitOffsetsBatch(ctx, []store.OffsetCommit{
		{ClusterID: "vc1", Group: "g", Fence: slot1, Offsets: offs("t", 0, 5, 1, 6, 0, 7)},
		{ClusterID: "vc1", Group: "g", Fence: slot1, Offsets: offs("t", 1, 8, 2, 9)},
		{ClusterID: "vc2", Group: "g", Fence: slot2, Offsets: offs("t", 0, 100)}, // same names, other cluster
		{ClusterID: "vc1", Group: "g", Fence: slot1, Offsets: offs("t", 2, 10)},
	})
	if err != nil {
		t.Fatal(err)
	}
	for i, o := range outcomes {
		if o != nil {
			t.Fatalf("commit %d: %v", i, o)
		}
	}
	if got, want := fmt.Sprint(stored(t, ctx, st, "vc1", "g")), fmt.Sprint(map[string]int64{"t/0": 7, "t/1": 8, "t/2": 10}); got != want {
		t.Fatalf("vc1/g stored %s, want %s", got, want)
	}
	if got, want := fmt.Sprint(stored(t, ctx, st, "vc2", "g")), fmt.Sprint(map[string]int64{"t/0": 100}); got != want {
		t.Fatalf("vc2/g stored %s, want %s", got, want)
	}
}

// TestCommitOffsetsBatchSlotMove: a batch in flight while one of its slots
// moves waits for the move, then writes the commits of the other slot and
// fences those of the moved one: it never lands behind the new leader.
func TestCommitOffsetsBatchSlotMove(t *testing.T) {
	ctx, st, url := commitDB(t)
	move, err := st.BeginSlotMove(ctx, slot1.Slot, 6)
	if err != nil {
		t.Fatal(err)
	}
	defer move.Rollback(context.Background())
	type result struct {
		outcomes []error
		err      error
	}
	done := make(chan result, 1)
	go func() {
		o, err := st.CommitOffsetsBatch(ctx, []store.OffsetCommit{
			{ClusterID: "vc1", Group: "moving", Fence: slot1, Offsets: offs("t", 0, 1)},
			{ClusterID: "vc1", Group: "staying", Fence: slot2, Offsets: offs("t", 0, 2)},
		})
		done <- result{o, err}
	}()
	waiting := pgtest.LockWatch(t, url, "coordinator_slots")
	for !waiting(ctx) {
		select {
		case r := <-done:
			t.Fatalf("the batch did not wait for the slot move: %v %v", r.outcomes, r.err)
		case <-ctx.Done():
			t.Fatal("the batch never waited for the slot move")
		case <-time.After(20 * time.Millisecond):
		}
	}
	if err := move.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	r := <-done
	if r.err != nil {
		t.Fatal(r.err)
	}
	if !errors.Is(r.outcomes[0], store.ErrFenced) || r.outcomes[1] != nil {
		t.Fatalf("outcomes %v, want [ErrFenced <nil>]", r.outcomes)
	}
	if got := stored(t, ctx, st, "vc1", "moving"); len(got) != 0 {
		t.Fatalf("fenced commit landed: %v", got)
	}
	if got := stored(t, ctx, st, "vc1", "staying"); got["t/0"] != 2 {
		t.Fatalf("unfenced commit lost: %v", got)
	}
}

// TestCommitOffsetsBatchConcurrent: batches from many goroutines (as from
// several brokers) over overlapping groups and partitions, in random
// orders, neither deadlock nor fail, and each goroutine's own partitions
// end at its last commit.
func TestCommitOffsetsBatchConcurrent(t *testing.T) {
	ctx, st, _ := commitDB(t)
	const writers, rounds = 8, 40
	var wg sync.WaitGroup
	errs := make(chan error, writers)
	for w := range writers {
		wg.Go(func() {
			for r := range rounds {
				off := int64(r + 1)
				var batch []store.OffsetCommit
				for _, g := range rand.Perm(4) {
					parts := rand.Perm(8)
					var os []store.GroupOffset
					for _, p := range parts {
						os = append(os, offs("shared", int64(p), off)...)
					}
					batch = append(batch, store.OffsetCommit{ClusterID: "vc1", Group: fmt.Sprintf("shared-%d", g), Fence: slot1, Offsets: os})
				}
				batch = append(batch, store.OffsetCommit{ClusterID: "vc2", Group: fmt.Sprintf("own-%d", w), Fence: slot2, Offsets: offs("t", 0, off, 1, off)})
				rand.Shuffle(len(batch), func(i, j int) { batch[i], batch[j] = batch[j], batch[i] })
				outcomes, err := st.CommitOffsetsBatch(ctx, batch)
				if err == nil {
					err = errors.Join(outcomes...)
				}
				if err != nil {
					errs <- fmt.Errorf("writer %d round %d: %w", w, r, err)
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	for w := range writers {
		got := stored(t, ctx, st, "vc2", fmt.Sprintf("own-%d", w))
		if got["t/0"] != rounds || got["t/1"] != rounds {
			t.Errorf("writer %d: stored %v, want %d", w, got, rounds)
		}
	}
	for g := range 4 {
		if got := stored(t, ctx, st, "vc1", fmt.Sprintf("shared-%d", g)); len(got) != 8 {
			t.Errorf("shared-%d: %d partitions stored, want 8", g, len(got))
		}
	}
}
