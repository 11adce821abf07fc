package store_test

import (
	"errors"
	"testing"
	"time"

	"github.com/eddy-streams/eddy/internal/store"
	"github.com/jackc/pgx/v5"
)

// TestSharePartitionFences: a share-partition's state is written only by
// its partition's leader at its leader epoch, and only at the state epoch
// it was loaded at; an operator's reset or deletion bumps that epoch.
func TestSharePartitionFences(t *testing.T) {
	ctx, st, url := commitDB(t)
	part := ledPartition(t, ctx, st, "jobs")
	row := func(leaderEpoch, stateEpoch int32, start int64) store.SharePartitionState {
		return store.SharePartitionState{ClusterID: "vc1", Group: "g", PartitionID: part.ID,
			LeaderEpoch: leaderEpoch, StateEpoch: stateEpoch, Start: start, State: []byte{byte(start)}}
	}
	save := func(broker int32, r store.SharePartitionState) error {
		return st.SaveSharePartitions(ctx, broker, []store.SharePartitionState{r})
	}
	load := func() ([]byte, int32) {
		t.Helper()
		got, err := st.LoadSharePartition(ctx, "vc1", "g", part.ID)
		if err != nil {
			t.Fatal(err)
		}
		return got.State, got.StateEpoch
	}

	if b, e := load(); b != nil || e != 0 {
		t.Fatalf("before any write: %v at state epoch %d", b, e)
	}
	if err := save(1, row(part.LeaderEpoch, 0, 3)); err != nil {
		t.Fatal(err)
	}
	for name, err := range map[string]error{
		"an old leader epoch": save(1, row(part.LeaderEpoch-1, 0, 4)),
		"another broker":      save(2, row(part.LeaderEpoch, 0, 4)),
		"a state epoch ahead": save(1, row(part.LeaderEpoch, 1, 4)),
	} {
		if !errors.Is(err, store.ErrFenced) {
			t.Errorf("a write with %s: %v, want ErrFenced", name, err)
		}
	}
	if b, _ := load(); len(b) != 1 || b[0] != 3 {
		t.Fatalf("stored %v after refused writes, want the first write's", b)
	}

	// A reset: the leader's next write at the old state epoch fails.
	if err := st.ResetSharePartitions(ctx, []store.SharePartitionState{{ClusterID: "vc1", Group: "g", PartitionID: part.ID, Start: 7}}); err != nil {
		t.Fatal(err)
	}
	if err := save(1, row(part.LeaderEpoch, 0, 5)); !errors.Is(err, store.ErrFenced) {
		t.Fatalf("a write at the state epoch before the reset: %v", err)
	}
	got, err := st.LoadSharePartition(ctx, "vc1", "g", part.ID)
	if err != nil || got.State != nil || got.Start != 7 || got.StateEpoch != 1 {
		t.Fatalf("after the reset: %+v %v, want start 7 without state at state epoch 1", got, err)
	}
	if err := save(1, row(part.LeaderEpoch, 1, 8)); err != nil {
		t.Fatal(err)
	}
	offs, err := st.ShareOffsets(ctx, "vc1", "g")
	if err != nil || len(offs) != 1 || offs[0].Start != 8 || offs[0].Topic != "jobs" {
		t.Fatalf("share offsets %+v %v", offs, err)
	}
	// The metrics' listing: only the leader's rows, without the state.
	if led, err := st.LedShareOffsets(ctx, 1); err != nil || len(led) != 1 || led[0].Start != 8 || led[0].State != nil || led[0].Group != "g" {
		t.Fatalf("share offsets led by broker 1: %+v %v", led, err)
	}
	if led, err := st.LedShareOffsets(ctx, 2); err != nil || len(led) != 0 {
		t.Fatalf("share offsets led by broker 2: %+v %v", led, err)
	}

	// A deletion leaves a tombstone, so the epoch survives.
	if err := st.ResetSharePartitions(ctx, []store.SharePartitionState{{ClusterID: "vc1", Group: "g", PartitionID: part.ID, Start: -1}}); err != nil {
		t.Fatal(err)
	}
	if b, e := load(); b != nil || e != 2 {
		t.Fatalf("after the deletion: %v at state epoch %d", b, e)
	}
	if err := save(1, row(part.LeaderEpoch, 1, 9)); !errors.Is(err, store.ErrFenced) {
		t.Fatalf("a write of the deleted state: %v", err)
	}
	groups, err := st.ShareGroups(ctx, "vc1")
	if err != nil || len(groups) != 0 {
		t.Fatalf("share groups after the deletion: %v %v", groups, err)
	}

	// A reset committing between the fence check and the upsert: the
	// upsert's WHERE skips the row, and the write must fail as fenced
	// rather than report a success that wrote nothing.
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	tx, err := conn.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback(ctx)
	if _, err := tx.Exec(ctx, `SELECT 1 FROM share_partitions WHERE cluster_id = 'vc1' AND group_id = 'g' AND partition_id = $1 FOR UPDATE`, part.ID); err != nil {
		t.Fatal(err)
	}
	saved := make(chan error, 1)
	go func() { saved <- save(1, row(part.LeaderEpoch, 2, 10)) }()
	time.Sleep(300 * time.Millisecond) // the save passes its check and waits for the row lock
	if _, err := tx.Exec(ctx, `UPDATE share_partitions SET state_epoch = state_epoch + 1 WHERE cluster_id = 'vc1' AND group_id = 'g' AND partition_id = $1`, part.ID); err != nil {
		t.Fatal(err)
	}
	if err := tx.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	if err := <-saved; !errors.Is(err, store.ErrFenced) {
		t.Fatalf("a write that a concurrent reset fenced: %v, want ErrFenced", err)
	}
	// A cluster that does not exist (deleted): nothing is written either.
	missing := row(part.LeaderEpoch, 0, 11)
	missing.ClusterID = "gone"
	if err := save(1, missing); !errors.Is(err, store.ErrFenced) {
		t.Fatalf("a write for a missing cluster: %v, want ErrFenced", err)
	}
}
