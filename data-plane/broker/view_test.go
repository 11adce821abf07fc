package broker

import (
	"context"
	"testing"
	"time"

	"github.com/eddy-streams/eddy/internal/poll"
	"github.com/eddy-streams/eddy/internal/store"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

// TestMetadataLeaderNeverEmpty: Metadata names the live leader, else the
// live target of a move, else a serving broker (never a draining or dead
// one); -1 only when no broker serves.
func TestMetadataLeaderNeverEmpty(t *testing.T) {
	md := &store.Metadata{
		Brokers: []store.Broker{{ID: 1}, {ID: 2, Draining: true}, {ID: 4}},
		Topics: []store.Topic{{ClusterID: "vc", Name: "t", Partitions: []store.Partition{
			{ID: 10, LeaderID: 2, MovingTo: -1},  // led by a draining broker: still its leader
			{ID: 11, LeaderID: 3, MovingTo: 4},   // dead leader, live target
			{ID: 12, LeaderID: 3, MovingTo: 2},   // dead leader, draining target
			{ID: 13, LeaderID: -1, MovingTo: -1}, // never placed
		}}},
	}
	v := newView(md)
	ps := md.Topics[0].Partitions
	for i, want := range []int32{2, 4, -2, -2} {
		got := v.metadataLeader(&ps[i])
		switch {
		case want == -2 && got != 1 && got != 4:
			t.Errorf("partition %d: leader %d, want a serving broker (1 or 4)", ps[i].ID, got)
		case want != -2 && got != want:
			t.Errorf("partition %d: leader %d, want %d", ps[i].ID, got, want)
		}
	}
	if a, b := v.metadataLeader(&ps[2]), v.metadataLeader(&ps[2]); a != b {
		t.Errorf("stand-in leader changes between calls: %d, %d", a, b)
	}
	none := newView(&store.Metadata{Brokers: []store.Broker{{ID: 2, Draining: true}}, Topics: md.Topics})
	if got := none.metadataLeader(&ps[3]); got != -1 {
		t.Errorf("no serving broker: leader %d, want -1", got)
	}
}

// An idle broker does not re-read the routing view at every
// --metadata-interval (what that costs Postgres would grow with the
// partitions): it checks the live brokers and re-reads the view when a
// NOTIFY announces a change (a new topic here) or when a broker's session
// expires, which nothing announces.
func TestIdleBrokerReadsTheViewOnChangesOnly(t *testing.T) {
	r := startRig(t, rigOptions{config: func(c *Config) { c.MetadataInterval = 20 * time.Millisecond }})
	ctx := context.Background()
	st := r.s.store
	reloads := func() float64 { return testutil.ToFloat64(r.s.met.reloads) }

	before := reloads()
	time.Sleep(time.Second) // 50 intervals
	if n := reloads() - before; n > 2 {
		t.Errorf("idle for 50 metadata intervals: %v reloads, want at most 2", n)
	}

	if _, _, err := st.CreateTopic(ctx, store.AnyOrg, "vc-dev", "announced", 1, nil); err != nil {
		t.Fatal(err)
	}
	poll.Until(t, 5*time.Second, "the new topic in the view", poll.True(func() bool {
		return r.s.view.Load().topic("vc-dev", "announced") != nil
	}))

	// A broker whose session ends without a word.
	if _, err := st.Register(ctx, 77, "127.0.0.1", 1, "", 500*time.Millisecond); err != nil {
		t.Fatal(err)
	}
	has77 := func() bool { _, ok := r.s.view.Load().byBroker[77]; return ok }
	poll.Until(t, 5*time.Second, "broker 77 in the view", poll.True(has77))
	poll.Until(t, 5*time.Second, "broker 77 gone from the view", poll.True(func() bool { return !has77() }))
}
