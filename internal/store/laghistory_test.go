package store_test

import (
	"context"
	"testing"
	"time"

	"github.com/eddy-streams/eddy/internal/limits"
	"github.com/eddy-streams/eddy/internal/store"
)

// TestGroupLagHistory samples two groups' lag, reads one group's history
// (and nothing through another organisation), caps the groups sampled per
// cluster, and prunes old samples in batches.
func TestGroupLagHistory(t *testing.T) {
	ctx, st, _ := commitDB(t)
	org, _, _, err := st.CreateOrg(ctx, "lag", []byte("h1"), nil)
	if err != nil {
		t.Fatal(err)
	}
	other, _, _, err := st.CreateOrg(ctx, "other", []byte("h2"), nil)
	if err != nil {
		t.Fatal(err)
	}
	cl, err := st.CreateCluster(ctx, org.ID, "c", limits.Limits{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := st.CreateTopic(ctx, org.ID, cl.ID, "orders", 2, nil); err != nil {
		t.Fatal(err)
	}
	for p, hw := range []int64{10, 7} {
		if err := st.SetHighWatermarkForTest(ctx, cl.ID, "orders", int32(p), hw); err != nil {
			t.Fatal(err)
		}
	}
	// app lags 6 and 0; batch lags 10 on partition 0 only; a committed
	// offset of a topic that is gone lags 0.
	if err := st.CommitOffsets(ctx, cl.ID, "app", slot1, append(offs("orders", 0, 4, 1, 7), offs("gone", 0, 3)...)); err != nil {
		t.Fatal(err)
	}
	if err := st.CommitOffsets(ctx, cl.ID, "batch", slot1, offs("orders", 0, 0)); err != nil {
		t.Fatal(err)
	}
	t0 := time.Now().Add(-time.Hour).Truncate(time.Second)
	for i, at := range []time.Time{t0, t0.Add(time.Minute), t0.Add(2 * time.Minute)} {
		n, err := st.SampleGroupLag(ctx, at, 10)
		if err != nil || n != 2 {
			t.Fatalf("sample %d: %d groups, %v", i, n, err)
		}
	}
	// The same instant again adds nothing.
	if n, err := st.SampleGroupLag(ctx, t0, 10); err != nil || n != 0 {
		t.Errorf("a repeated sample stored %d groups (%v)", n, err)
	}
	h, err := history(ctx, st, org.ID, cl.ID, "app", t0.Add(-time.Second), 100)
	if err != nil || len(h) != 3 {
		t.Fatalf("history: %d samples, %v", len(h), err)
	}
	want := []store.PartitionLag{{Topic: "gone", Partition: 0, Lag: 0}, {Topic: "orders", Partition: 0, Lag: 6}, {Topic: "orders", Partition: 1, Lag: 0}}
	if s := h[0]; !s.At.Equal(t0) || s.TotalLag != 6 || len(s.Partitions) != len(want) {
		t.Fatalf("first sample: %+v", s)
	}
	for i, p := range h[0].Partitions {
		if p != want[i] {
			t.Errorf("partition %d: %+v, want %+v", i, p, want[i])
		}
	}
	// since is exclusive and limit takes the oldest after it.
	if h, err := history(ctx, st, org.ID, cl.ID, "app", t0, 1); err != nil || len(h) != 1 || !h[0].At.Equal(t0.Add(time.Minute)) {
		t.Errorf("after t0, limit 1: %+v %v", h, err)
	}
	if _, err := history(ctx, st, other.ID, cl.ID, "app", time.Time{}, 100); err == nil {
		t.Error("another organisation read the history")
	}
	// A cap of one group a cluster samples app only.
	if n, err := st.SampleGroupLag(ctx, t0.Add(3*time.Minute), 1); err != nil || n != 1 {
		t.Errorf("capped sample: %d groups, %v", n, err)
	}
	if h, err := history(ctx, st, org.ID, cl.ID, "batch", time.Time{}, 100); err != nil || len(h) != 3 || h[0].TotalLag != 10 {
		t.Errorf("batch history after the capped sample: %+v %v", h, err)
	}
	// A page ends before the sample that would pass its points (app has
	// three partition lags in each of its four samples), the first always
	// in it.
	for _, tc := range []struct{ points, samples int }{{1, 1}, {5, 1}, {6, 2}, {9, 3}, {12, 4}} {
		h, more, err := st.GroupLagHistory(ctx, org.ID, cl.ID, "app", t0.Add(-time.Second), 100, tc.points)
		if err != nil || len(h) != tc.samples || more != (tc.samples < 4) {
			t.Errorf("at most %d points: %d samples, more %v (%v), want %d", tc.points, len(h), more, err, tc.samples)
		}
	}
	// Pruning deletes what is older than the cut, a batch at a time.
	cut := t0.Add(90 * time.Second) // 4 rows before: app and batch at t0 and t0+1m
	var batches []int64
	for {
		n, err := st.PruneGroupLag(ctx, cut, 3)
		if err != nil {
			t.Fatal(err)
		}
		batches = append(batches, n)
		if n < 3 {
			break
		}
	}
	if len(batches) != 2 || batches[0] != 3 || batches[1] != 1 {
		t.Errorf("prune batches %v, want [3 1]", batches)
	}
	if h, err := history(ctx, st, org.ID, cl.ID, "app", time.Time{}, 100); err != nil || len(h) != 2 || !h[0].At.Equal(t0.Add(2*time.Minute)) {
		t.Errorf("app history after pruning: %+v %v", h, err)
	}
}

// TestGroupLagSampleBounded: a sample reads, of a cluster with many
// groups, the rows of the groups it samples and not the others, and caps
// each cluster on its own.
func TestGroupLagSampleBounded(t *testing.T) {
	ctx, st, _ := commitDB(t)
	const groups, capped = 5000, 10
	if err := st.FillGroupOffsets(ctx, "vc1", groups); err != nil {
		t.Fatal(err)
	}
	if err := st.CommitOffsets(ctx, "vc2", "small", slot1, offs("t", 0, 0)); err != nil {
		t.Fatal(err)
	}
	read, plan, err := st.ExplainSampleGroupLag(ctx, time.Now(), capped)
	if err != nil {
		t.Fatal(err)
	}
	// The first capped groups (one row each), the next row that ends the
	// walk, and the same again joined: a few times the cap, not 5000.
	if read > 4*capped {
		t.Errorf("sampling %d groups a cluster read %d rows of group_offsets (of %d); plan:\n%s", capped, read, groups+1, plan)
	}
	if n, err := st.SampleGroupLag(ctx, time.Now(), capped); err != nil || n != capped+1 {
		t.Errorf("sampled %d groups (%v), want %d of vc1 and 1 of vc2", n, err, capped+1)
	}
}

// history is GroupLagHistory without its bound on points.
func history(ctx context.Context, st *store.Store, orgID, clusterID, group string, since time.Time, limit int) ([]store.LagSample, error) {
	h, _, err := st.GroupLagHistory(ctx, orgID, clusterID, group, since, limit, 1<<30)
	return h, err
}
