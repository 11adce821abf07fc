package broker_test

import (
	"context"
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/eddy-streams/eddy/internal/pgtest"
	"github.com/eddy-streams/eddy/internal/stack"
	"github.com/eddy-streams/eddy/internal/store"
)

// slotStore opens the store on a fresh database with cluster
// vc1 and broker 1, which leads the given coordinator slots at epoch 5. It
// also returns the database URL.
func slotStore(t *testing.T, slots ...int32) (context.Context, *store.Store, string) {
	t.Helper()
	url := pgtest.URL(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	t.Cleanup(cancel)
	st, err := store.Open(ctx, url, 4)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(st.Close)
	if err := st.EnsureCluster(ctx, "vc1", "vc1"); err != nil {
		t.Fatal(err)
	}
	if _, err := st.Register(ctx, 1, "127.0.0.1", 9092, "", time.Minute); err != nil {
		t.Fatal(err)
	}
	if err := st.AssignSlots(ctx, 1, 5, slots...); err != nil {
		t.Fatal(err)
	}
	return ctx, st, url
}

// TestGroupCommitFencedBySlot: an offset commit carries the coordinator
// slot's leader epoch. A commit under an old epoch fails with ErrFenced,
// and a commit in flight while the slot moves either lands before the move
// or fails: it never lands after it.
func TestGroupCommitFencedBySlot(t *testing.T) {
	ctx, st, url := slotStore(t, 7)
	commit := func(epoch int32, offset int64) error {
		return st.CommitOffsets(ctx, "vc1", "g", store.SlotFence{Slot: 7, BrokerID: 1, LeaderEpoch: epoch},
			[]store.GroupOffset{{Topic: "t", Partition: 0, Offset: offset, LeaderEpoch: -1, Metadata: "m"}})
	}
	stored := func() int64 {
		offs, err := st.FetchOffsets(ctx, "vc1", "g")
		if err != nil || len(offs) != 1 {
			t.Fatalf("fetch: %v %v", offs, err)
		}
		if offs[0].Metadata != "m" {
			t.Fatalf("metadata %q lost", offs[0].Metadata)
		}
		return offs[0].Offset
	}
	if err := commit(5, 10); err != nil {
		t.Fatal(err)
	}
	if err := commit(4, 11); !errors.Is(err, store.ErrFenced) {
		t.Fatalf("commit under an old epoch: %v, want ErrFenced", err)
	}
	if err := commit(5, 12); err != nil {
		t.Fatal(err)
	}
	if got := stored(); got != 12 {
		t.Fatalf("stored offset %d, want 12", got)
	}

	// The slot moves while a commit is in flight: the commit waits for the
	// move and then fails.
	move, err := st.BeginSlotMove(ctx, 7, 6)
	if err != nil {
		t.Fatal(err)
	}
	defer move.Rollback(context.Background())
	done := make(chan error, 1)
	go func() { done <- commit(5, 13) }()
	waiting := pgtest.LockWatch(t, url, "coordinator_slots")
	if !stack.WaitFor(ctx, func() bool { return waiting(ctx) }) {
		t.Fatal("the commit never waited for the slot move")
	}
	if err := move.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	if err := <-done; !errors.Is(err, store.ErrFenced) {
		t.Fatalf("commit in flight across a slot move: %v, want ErrFenced", err)
	}
	if got := stored(); got != 12 {
		t.Fatalf("stored offset %d after a fenced commit, want 12", got)
	}
}

// TestGroupStateFencedBySlot: group state is written row by row under the
// slot fence: a row under an old epoch is refused while the others of the
// same statement are written, a row of a cluster that no longer exists is
// dropped, and a nil state deletes.
func TestGroupStateFencedBySlot(t *testing.T) {
	ctx, st, _ := slotStore(t, 7, 8)
	f := func(slot, epoch int32) store.SlotFence {
		return store.SlotFence{Slot: slot, BrokerID: 1, LeaderEpoch: epoch}
	}
	refused, err := st.SaveGroupStates(ctx, []store.GroupStateWrite{
		{ClusterID: "vc1", Group: "a", Fence: f(7, 5), State: []byte(`{"generation": 3}`)},
		{ClusterID: "vc1", Group: "b", Fence: f(7, 4), State: []byte(`{"generation": 9}`)},
		// States are bytes: a NUL escape (which jsonb refuses) is kept.
		{ClusterID: "vc1", Group: "c", Fence: f(8, 5), State: []byte(`{"client_id": "\u0000"}`)},
		{ClusterID: "gone", Group: "d", Fence: f(8, 5), State: []byte(`{"generation": 1}`)},
		// A group id Postgres text cannot hold is not stored, and does
		// not fail the others.
		{ClusterID: "vc1", Group: "nul\x00", Fence: f(8, 5), State: []byte(`{}`)},
	})
	if err != nil {
		t.Fatal(err)
	}
	if want := []bool{false, true, false, false, false}; !slices.Equal(refused, want) {
		t.Fatalf("refused %v, want %v", refused, want)
	}
	load := func(slots ...int32) map[string]string {
		rows, err := st.LoadGroupStates(ctx, slots)
		if err != nil {
			t.Fatal(err)
		}
		out := map[string]string{}
		for _, r := range rows {
			out[r.ClusterID+"/"+r.Group] = string(r.State)
		}
		return out
	}
	if got := load(7); len(got) != 1 || got["vc1/a"] != `{"generation": 3}` {
		t.Fatalf("slot 7 holds %v, want only vc1/a", got)
	}
	if got := load(7, 8); len(got) != 2 || got["vc1/c"] != `{"client_id": "\u0000"}` {
		t.Fatalf("slots 7 and 8 hold %v, want vc1/a and vc1/c", got)
	}
	refused, err = st.SaveGroupStates(ctx, []store.GroupStateWrite{
		{ClusterID: "vc1", Group: "a", Fence: f(7, 5)}, // tombstone
		{ClusterID: "vc1", Group: "c", Fence: f(8, 4)}, // stale tombstone
	})
	if err != nil || !slices.Equal(refused, []bool{false, true}) {
		t.Fatalf("tombstones: refused %v, err %v", refused, err)
	}
	if got := load(7, 8); len(got) != 1 || got["vc1/c"] == "" {
		t.Fatalf("after the tombstones: %v, want only vc1/c", got)
	}
}
