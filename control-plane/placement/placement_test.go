package placement

import (
	"testing"

	"github.com/eddy-streams/eddy/internal/store"
)

func TestAssign(t *testing.T) {
	for _, tc := range []struct {
		name    string
		brokers []store.BrokerLoad
		items   []store.Item
		want    map[int32]int
	}{
		{"no brokers", nil, []store.Item{{ID: 1}}, map[int32]int{}},
		{"even spread", []store.BrokerLoad{{ID: 1}, {ID: 2}, {ID: 3}},
			[]store.Item{{ID: 1}, {ID: 2}, {ID: 3}, {ID: 4}, {ID: 5}, {ID: 6}}, map[int32]int{1: 2, 2: 2, 3: 2}},
		{"fill the emptiest first", []store.BrokerLoad{{ID: 1, Partitions: 4}, {ID: 2}},
			[]store.Item{{ID: 1}, {ID: 2}, {ID: 3}}, map[int32]int{2: 3}},
		{"slots do not crowd out partitions", []store.BrokerLoad{{ID: 1, Slots: 64}, {ID: 2}},
			[]store.Item{{ID: 1}, {ID: 2}}, map[int32]int{1: 1, 2: 1}},
		{"draining brokers take nothing", []store.BrokerLoad{{ID: 1, Draining: true}, {ID: 2, Partitions: 10}},
			[]store.Item{{ID: 1}}, map[int32]int{2: 1}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := map[int32]int{}
			for _, a := range Assign(tc.brokers, tc.items) {
				got[a.Broker]++
			}
			if len(got) != len(tc.want) {
				t.Fatalf("got %v, want %v", got, tc.want)
			}
			for b, n := range tc.want {
				if got[b] != n {
					t.Fatalf("got %v, want %v", got, tc.want)
				}
			}
		})
	}
}
