package retention_test

import (
	"context"
	"log/slog"
	"slices"
	"testing"
	"time"

	"github.com/eddy-streams/eddy/internal/batchtest"
	"github.com/eddy-streams/eddy/internal/pgtest"
	"github.com/eddy-streams/eddy/internal/store"
	"github.com/eddy-streams/eddy/internal/tieredtest"
	"github.com/eddy-streams/eddy/tiered/retention"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

// The aborted transactions whose marker falls below the log start go with
// the log: when DeleteRecords moves it and when retention does, in the
// same Postgres transaction.
func TestAbortedTxnsGoBelowLogStart(t *testing.T) {
	ctx := context.Background()
	e := tieredtest.New(t, tieredtest.Topic{Name: "t", Partitions: 1})
	pid := e.Parts["t"][0]
	m := e.Manager(t, nil, nil)
	for _, producerID := range []int64{100, 200} { // 0-1 and marker 2; 3-4 and marker 5
		e.AppendTxn(t, m, pid, batchtest.Build(batchtest.Spec{N: 2, Key: []byte("k"), Value: []byte("v"),
			Timestamp: 1000, ProducerID: producerID, Transactional: true}))
		e.EndTxn(t, m, producerID, false)
		if err := m.Flush(ctx); err != nil {
			t.Fatal(err)
		}
	}
	aborted := func() []store.AbortedTxn {
		t.Helper()
		got, err := e.St.AbortedTxns(ctx, pid, 0, -1, 0)
		if err != nil {
			t.Fatal(err)
		}
		return got
	}
	second := store.AbortedTxn{ProducerID: 200, FirstOffset: 3, LastOffset: 5}
	if got := aborted(); !slices.Equal(got, []store.AbortedTxn{{ProducerID: 100, FirstOffset: 0, LastOffset: 2}, second}) {
		t.Fatalf("aborted_txns %v before any deletion", got)
	}

	// DeleteRecords to 3: the first transaction's marker is below it.
	if start, err := e.St.AdvanceLogStart(ctx, pid, 3); err != nil || start != 3 {
		t.Fatalf("delete records: %d, %v", start, err)
	}
	if got := aborted(); !slices.Equal(got, []store.AbortedTxn{second}) {
		t.Fatalf("aborted_txns %v after DeleteRecords to 3, want %v", got, second)
	}

	// Retention (seven days by default) a year on drops every row.
	en := retention.New(e.St, slog.New(slog.DiscardHandler), nil)
	en.Now = func() time.Time { return time.Now().AddDate(1, 0, 0) }
	res, err := en.Enforce(ctx, store.Shard{})
	if err != nil || res.Partitions != 1 {
		t.Fatalf("retention: %+v, %v", res, err)
	}
	if got := aborted(); len(got) != 0 {
		t.Fatalf("aborted_txns %v after retention dropped the whole log, want none", got)
	}
}
