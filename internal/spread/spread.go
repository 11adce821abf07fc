// Package spread holds the one rule by which work is spread over brokers:
// each item to the broker that is not draining and has the fewest items of
// its kind. The control plane's placement rounds use it, and so does a
// broker that hands its partitions off as it stops (a controlled
// shutdown), so both spread the same way.
package spread

import (
	"cmp"
	"slices"

	"github.com/eddy-streams/eddy/internal/store"
)

// Evenly spreads unassigned items over the brokers that are not draining,
// always to the one with the fewest items of that kind (partitions and
// coordinator slots are balanced separately; ties go to the lowest id), so
// counts stay within one of each other. It returns nothing when no broker
// can take work.
func Evenly(brokers []store.BrokerLoad, unassigned []store.Item) []store.Assignment {
	var live []store.BrokerLoad
	for _, b := range brokers {
		if !b.Draining {
			live = append(live, b)
		}
	}
	if len(live) == 0 {
		return nil
	}
	out := make([]store.Assignment, 0, len(unassigned))
	for _, it := range unassigned {
		count := func(b store.BrokerLoad) int {
			if it.Kind == store.KindSlot {
				return b.Slots
			}
			return b.Partitions
		}
		i := 0
		for j := range live {
			if count(live[j]) < count(live[i]) {
				i = j
			}
		}
		if it.Kind == store.KindSlot {
			live[i].Slots++
		} else {
			live[i].Partitions++
		}
		out = append(out, store.Assignment{Item: it, Broker: live[i].ID})
	}
	slices.SortFunc(out, func(a, b store.Assignment) int { return cmp.Compare(a.Item.ID, b.Item.ID) })
	return out
}
