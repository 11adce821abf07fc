package placement

import (
	"math/rand/v2"
	"testing"
	"time"

	"github.com/eddy-streams/eddy/internal/store"
)

func parts(ws ...float64) map[int64]float64 {
	m := map[int64]float64{}
	for i, w := range ws {
		m[int64(i+1)] = w
	}
	return m
}

func TestRebalance(t *testing.T) {
	t.Run("a new broker gets its share of an idle pool", func(t *testing.T) {
		moves, _ := Rebalance([]Node{{ID: 1, Partitions: parts(0, 0, 0, 0, 0, 0)}, {ID: 2, Partitions: map[int64]float64{}}}, 10)
		if len(moves) != 3 {
			t.Fatalf("moves %v, want 3 to broker 2", moves)
		}
		for _, m := range moves {
			if m.To != 2 {
				t.Fatalf("moves %v", moves)
			}
		}
	})
	t.Run("by load, not count", func(t *testing.T) {
		// Broker 1 has one hot partition and a cold one; broker 2 four
		// cold ones. Counts are unequal, load is not: the hot partition
		// alone is most of the pool's load, so moving it would not help.
		a := map[int64]float64{1: 1e6, 2: 10}
		b := map[int64]float64{3: 10, 4: 10, 5: 10, 6: 10}
		moves, _ := Rebalance([]Node{{ID: 1, Partitions: a}, {ID: 2, Partitions: b}}, 10)
		for _, m := range moves {
			if m.PartitionID == 1 {
				t.Fatalf("moved the hot partition: %v", moves)
			}
		}
		// Two hot partitions on one broker, none on the other: one moves.
		moves, _ = Rebalance([]Node{{ID: 1, Partitions: map[int64]float64{1: 1e6, 2: 1e6, 3: 10}}, {ID: 2, Partitions: map[int64]float64{4: 10}}}, 10)
		if len(moves) != 1 || moves[0].To != 2 || moves[0].PartitionID == 3 {
			t.Fatalf("moves %v, want one hot partition to broker 2", moves)
		}
	})
	t.Run("draining brokers are emptied", func(t *testing.T) {
		moves, slots := Rebalance([]Node{
			{ID: 1, Partitions: parts(5, 5)},
			{ID: 2, Partitions: parts(5, 5)},
			{ID: 3, Draining: true, Partitions: map[int64]float64{10: 5, 11: 5, 12: 5}, Slots: []int32{7, 8}},
		}, 10)
		from3 := 0
		for _, m := range moves {
			if m.To == 3 {
				t.Fatalf("moved to a draining broker: %v", moves)
			}
			if m.PartitionID >= 10 {
				from3++
			}
		}
		if from3 != 3 || len(slots) != 2 {
			t.Fatalf("moves %v slots %v: want all 3 partitions and 2 slots of broker 3", moves, slots)
		}
	})
	t.Run("balanced pools stay put; pending moves wait", func(t *testing.T) {
		if moves, slots := Rebalance([]Node{{ID: 1, Partitions: parts(5, 5), Slots: []int32{1}}, {ID: 2, Partitions: map[int64]float64{3: 5, 4: 6}, Slots: []int32{2}}}, 10); len(moves)+len(slots) != 0 {
			t.Fatalf("moves %v slots %v in a balanced pool", moves, slots)
		}
		if moves, _ := Rebalance([]Node{{ID: 1, Partitions: parts(0, 0, 0, 0), Moving: 1}, {ID: 2, Partitions: map[int64]float64{}}}, 10); len(moves) != 0 {
			t.Fatalf("planned %v while a move is pending", moves)
		}
	})
	t.Run("slots by count", func(t *testing.T) {
		_, slots := Rebalance([]Node{{ID: 1, Slots: []int32{0, 1, 2, 3, 4, 5}}, {ID: 2}}, 10)
		if len(slots) != 3 {
			t.Fatalf("released %v, want 3", slots)
		}
	})
	t.Run("no broker both gives and receives in a round", func(t *testing.T) {
		// Random pools: a swap (A->B and B->A, or A->B->C) in one round
		// is churn, whatever the loads.
		r := rand.New(rand.NewPCG(1, 2))
		for range 2000 {
			var nodes []Node
			id := int64(0)
			for b := range 2 + r.IntN(4) {
				n := Node{ID: int32(b + 1), Partitions: map[int64]float64{}, Draining: r.IntN(6) == 0}
				for range r.IntN(8) {
					id++
					n.Partitions[id] = float64(r.IntN(4)) * r.Float64() * 1e5
				}
				nodes = append(nodes, n)
			}
			owner := map[int64]int32{}
			for _, n := range nodes {
				for p := range n.Partitions {
					owner[p] = n.ID
				}
			}
			moves, _ := Rebalance(nodes, 8)
			gave, got := map[int32]bool{}, map[int32]bool{}
			for _, m := range moves {
				gave[owner[m.PartitionID]], got[m.To] = true, true
			}
			for b := range gave {
				if got[b] {
					t.Fatalf("broker %d gives and receives in one round: %v", b, moves)
				}
			}
		}
	})
}

// TestRebalanceSettling: a broker that restarted lately gets no partitions
// while it settles, except a draining broker's when no other broker can
// take them; and a restart is a new session of an id seen before.
func TestRebalanceSettling(t *testing.T) {
	t.Run("no balancing moves to a settling broker", func(t *testing.T) {
		moves, _ := Rebalance([]Node{{ID: 1, Partitions: parts(0, 0, 0, 0, 0, 0)}, {ID: 2, Settling: true, Partitions: map[int64]float64{}}}, 10)
		if len(moves) != 0 {
			t.Fatalf("moves %v, want none while broker 2 settles", moves)
		}
	})
	t.Run("a draining broker's partitions prefer settled brokers", func(t *testing.T) {
		moves, _ := Rebalance([]Node{
			{ID: 1, Settling: true, Partitions: map[int64]float64{}},
			{ID: 2, Partitions: parts(5, 5)},
			{ID: 3, Draining: true, Partitions: map[int64]float64{10: 5, 11: 5, 12: 5}},
		}, 10)
		if len(moves) != 3 {
			t.Fatalf("moves %v, want broker 3's three", moves)
		}
		for _, m := range moves {
			if m.To != 2 {
				t.Fatalf("moves %v, want all to broker 2 (1 settles)", moves)
			}
		}
	})
	t.Run("or settling ones when none has settled", func(t *testing.T) {
		moves, _ := Rebalance([]Node{
			{ID: 1, Settling: true, Partitions: map[int64]float64{}},
			{ID: 3, Draining: true, Partitions: map[int64]float64{10: 5, 11: 5}},
		}, 10)
		if len(moves) != 2 || moves[0].To != 1 || moves[1].To != 1 {
			t.Fatalf("moves %v, want both to broker 1", moves)
		}
	})
	t.Run("a restart is a new session of a known id", func(t *testing.T) {
		ss := sessions{}
		t0 := time.Now()
		if ss.settling(store.PoolBroker{ID: 1, SessionEpoch: 3}, t0, time.Minute) {
			t.Fatal("a broker first seen settles: nothing says it restarted")
		}
		if ss.settling(store.PoolBroker{ID: 1, SessionEpoch: 3}, t0.Add(time.Second), time.Minute) {
			t.Fatal("the same session settles")
		}
		if !ss.settling(store.PoolBroker{ID: 1, SessionEpoch: 4}, t0.Add(2*time.Second), time.Minute) {
			t.Fatal("a new session of a known id does not settle")
		}
		if !ss.settling(store.PoolBroker{ID: 1, SessionEpoch: 4}, t0.Add(61*time.Second), time.Minute) {
			t.Fatal("settled before a minute had passed since the restart")
		}
		if ss.settling(store.PoolBroker{ID: 1, SessionEpoch: 4}, t0.Add(63*time.Second), time.Minute) {
			t.Fatal("still settling a minute after the restart")
		}
	})
}
