package share

import "sort"

// assign is the share-group assignor ("simple"): subs[i] are member i's
// subscribed topics (members in a stable order). Every partition of a
// subscribed topic goes to at least one subscriber and every subscriber
// gets at least one partition of its topics: with fewer members than
// partitions each partition has one member, round robin; with more, the
// partitions are shared, each read by about members/partitions of them.
// The result is deterministic, so a recomputation without a change moves
// nothing.
func assign(subs [][]string, topics map[string]Topic) []map[[16]byte][]int32 {
	out := make([]map[[16]byte][]int32, len(subs))
	for i := range out {
		out[i] = make(map[[16]byte][]int32)
	}
	names := make([]string, 0, len(topics))
	for n := range topics {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, name := range names {
		t := topics[name]
		var who []int
		for i, s := range subs {
			if k := sort.SearchStrings(s, name); k < len(s) && s[k] == name {
				who = append(who, i)
			}
		}
		if len(who) == 0 || t.Partitions <= 0 {
			continue
		}
		n := max(len(who), int(t.Partitions))
		for j := range n {
			m := who[j%len(who)]
			p := int32(j % int(t.Partitions))
			out[m][t.ID] = append(out[m][t.ID], p)
		}
	}
	for _, a := range out {
		for id, ps := range a {
			sort.Slice(ps, func(i, j int) bool { return ps[i] < ps[j] })
			a[id] = ps
		}
	}
	return out
}
