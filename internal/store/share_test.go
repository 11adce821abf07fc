package store_test

import (
	"errors"
	"testing"

	"github.com/eddy-streams/eddy/internal/store"
)

// TestSharePartitionFences: a share-partition's state is written only by
// its partition's leader at its leader epoch, and only at the state epoch
// it was loaded at; an operator's reset or deletion bumps that epoch.
func TestSharePartitionFences(t *testing.T) {
	ctx, st, _ := commitDB(t)
	if _, _, err := st.CreateTopic(ctx, store.AnyOrg, "vc1", "jobs", 1, nil); err != nil {
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
	var part store.Partition
	for _, tp := range md.Topics {
		if tp.Name == "jobs" {
			part = tp.Partitions[0]
		}
	}
	if part.LeaderID != 1 {
		t.Fatalf("partition %+v not led by broker 1", part)
	}
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
}
