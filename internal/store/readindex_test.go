package store_test

import (
	"context"
	"strings"
	"testing"

	"github.com/eddy-streams/eddy/internal/pgtest"
	"github.com/eddy-streams/eddy/internal/store"
	"github.com/eddy-streams/eddy/migrations"
)

// A consumer reading a partition with a long index costs Postgres the
// rows it reads, not the rows before them: ReadIndex's query is two
// ranges of the primary key wherever the reader is, and the rows it
// returns start at the one holding its offset.
func TestReadIndexIsBoundedByItsRows(t *testing.T) {
	ctx := context.Background()
	url := pgtest.URL(t)
	if _, err := migrations.Apply(ctx, url); err != nil {
		t.Fatal(err)
	}
	st, err := store.Open(ctx, url, 2)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	if err := st.EnsureCluster(ctx, "vc-a", "a"); err != nil {
		t.Fatal(err)
	}
	if _, _, err := st.CreateTopic(ctx, store.AnyOrg, "vc-a", "long", 1, nil); err != nil {
		t.Fatal(err)
	}
	md, err := st.Snapshot(ctx)
	if err != nil {
		t.Fatal(err)
	}
	pid := md.Topics[0].Partitions[0].ID
	const rows = 50000
	if err := st.FillIndex(ctx, pid, 0, rows); err != nil {
		t.Fatal(err)
	}

	var head int64
	for _, from := range []int64{0, rows / 2, rows - 10} {
		_, segs, err := st.ReadIndex(ctx, pid, from, 8)
		if err != nil {
			t.Fatal(err)
		}
		if want := min(8, rows-from); int64(len(segs)) != want || segs[0].BaseOffset != from {
			t.Fatalf("from %d: %d rows starting at %d, want %d from %d", from, len(segs), segs[0].BaseOffset, want, from)
		}
		plan, buffers, err := st.ExplainReadIndex(ctx, pid, from, 8)
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("from %d: %d buffers\n%s", from, buffers, plan)
		if strings.Contains(plan, "Seq Scan on segments") {
			t.Errorf("from %d: a sequential scan of the index", from)
		}
		if from == 0 {
			head = buffers
			continue
		}
		// The head and the tail cost alike; walking the rows before the
		// tail would touch hundreds of pages.
		if buffers > head+10 {
			t.Errorf("from %d: %d buffers, against %d at the head", from, buffers, head)
		}
	}
}
