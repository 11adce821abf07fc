package broker_test

import (
	"context"
	"fmt"
	"slices"
	"testing"

	"github.com/eddy-streams/eddy/internal/pgtest"
	"github.com/eddy-streams/eddy/internal/stack"
	"github.com/twmb/franz-go/pkg/kgo"
)

// Read cold (a broker whose memory cache keeps one flush, so reads from
// the start go through the index and object storage), a committed, an
// aborted and a committed transaction: a read_committed franz-go consumer
// gets the committed records only, as the cold path stops at the last
// stable offset and carries the aborted transactions; a read_uncommitted
// one gets all of them.
func TestTxnReadCold(t *testing.T) {
	s := stack.Start(t, stack.Options{DatabaseURL: pgtest.URL(t), BrokerArgs: []string{"--cache-bytes=1"}})
	cl := newClient(t, s, kgo.TransactionalID("cold"), kgo.DefaultProduceTopic("cold"))
	createTopic(t, cl, "cold", 1, nil)
	ctx := context.Background()
	var committed, all []string
	for i, commit := range []bool{true, false, true} {
		if err := cl.BeginTransaction(); err != nil {
			t.Fatal(err)
		}
		for j := range 5 {
			v := fmt.Sprintf("t%d-%d", i, j)
			// One produce per flush: many pieces, and the memory cache
			// keeps only the last.
			if err := cl.ProduceSync(ctx, &kgo.Record{Value: []byte(v)}).FirstErr(); err != nil {
				t.Fatal(err)
			}
			all = append(all, v)
			if commit {
				committed = append(committed, v)
			}
		}
		if err := cl.EndTransaction(ctx, kgo.TransactionEndTry(commit)); err != nil {
			t.Fatal(err)
		}
	}
	for _, tc := range []struct {
		level kgo.IsolationLevel
		want  []string
	}{{kgo.ReadCommitted(), committed}, {kgo.ReadUncommitted(), all}} {
		var got []string
		for _, r := range readTopic(t, s, "cold", tc.level, len(tc.want)) {
			got = append(got, string(r.Value))
		}
		if !slices.Equal(got, tc.want) {
			t.Errorf("%v read cold:\n got %v\nwant %v", tc.level, got, tc.want)
		}
	}
}
