package broker

import (
	"testing"

	"github.com/eddy-streams/eddy/internal/store"
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
