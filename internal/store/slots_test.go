package store_test

import (
	"errors"
	"testing"
	"time"

	"github.com/eddy-streams/eddy/internal/store"
)

// TestMoveSlots: moving a broker's coordinator slots hands each to the
// other broker at its next epoch, so commits under the old fence are
// refused and commits under the new one land; a slot move rolled back
// changes nothing.
func TestMoveSlots(t *testing.T) {
	ctx, st, _ := commitDB(t)
	if _, err := st.Register(ctx, 2, "127.0.0.1", 9093, "", time.Minute); err != nil {
		t.Fatal(err)
	}
	hold, err := st.BeginSlotMove(ctx, slot1.Slot, 9)
	if err != nil {
		t.Fatal(err)
	}
	if err := hold.Rollback(ctx); err != nil {
		t.Fatal(err)
	}
	n, err := st.MoveSlots(ctx, 1, 2)
	if err != nil || n != 2 {
		t.Fatalf("moved %d slots (%v), want 2", n, err)
	}
	moved1 := store.SlotFence{Slot: slot1.Slot, BrokerID: 2, LeaderEpoch: slot1.LeaderEpoch + 1}
	moved2 := store.SlotFence{Slot: slot2.Slot, BrokerID: 2, LeaderEpoch: slot2.LeaderEpoch + 1}
	outcomes, err := st.CommitOffsetsBatch(ctx, []store.OffsetCommit{
		{ClusterID: "vc1", Group: "old1", Fence: slot1, Offsets: offs("t", 0, 1)},
		{ClusterID: "vc1", Group: "old2", Fence: slot2, Offsets: offs("t", 0, 2)},
		{ClusterID: "vc1", Group: "new1", Fence: moved1, Offsets: offs("t", 0, 3)},
		{ClusterID: "vc1", Group: "new2", Fence: moved2, Offsets: offs("t", 0, 4)},
	})
	if err != nil {
		t.Fatal(err)
	}
	if !errors.Is(outcomes[0], store.ErrFenced) || !errors.Is(outcomes[1], store.ErrFenced) || outcomes[2] != nil || outcomes[3] != nil {
		t.Fatalf("outcomes %v, want [ErrFenced ErrFenced <nil> <nil>]", outcomes)
	}
	if _, err := st.BeginSlotMove(ctx, 999, 1); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("move of a slot that does not exist: %v, want ErrNotFound", err)
	}
}

// TestCommittedTransactions: the count grows with committed transactions.
func TestCommittedTransactions(t *testing.T) {
	ctx, st, _ := commitDB(t)
	before, err := st.CommittedTransactions(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for range 3 {
		if err := st.EnsureCluster(ctx, "vc1", "vc1"); err != nil {
			t.Fatal(err)
		}
	}
	// Statistics reach pg_stat_database asynchronously.
	deadline := time.Now().Add(30 * time.Second)
	for {
		after, err := st.CommittedTransactions(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if after >= before+3 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("committed transactions went from %d to %d after 3 commits", before, after)
		}
		time.Sleep(100 * time.Millisecond)
	}
}
