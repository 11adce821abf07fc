package group

import (
	"cmp"
	"slices"
)

// assignor computes a KIP-848 group's target assignment: member id →
// partitions. Every subscribed partition of a resolved topic goes to
// exactly one member subscribed to its topic.
type assignor func(cg *consumerGroup) map[string]tpSet

func assignorByName(name string) assignor {
	switch name {
	case "uniform":
		return uniformAssign
	case "range":
		return rangeAssign
	}
	return nil
}

// sortedMembers returns the group's member ids in order.
func sortedMembers(cg *consumerGroup) []*cmember {
	ms := make([]*cmember, 0, len(cg.members))
	for _, m := range cg.members {
		ms = append(ms, m)
	}
	slices.SortFunc(ms, func(a, b *cmember) int { return cmp.Compare(a.id, b.id) })
	return ms
}

// rangeAssign is Kafka's range assignor: per topic, the subscribed members
// in id order get consecutive ranges, the first ones one partition more.
func rangeAssign(cg *consumerGroup) map[string]tpSet {
	out := make(map[string]tpSet, len(cg.members))
	ms := sortedMembers(cg)
	for _, m := range ms {
		out[m.id] = tpSet{}
	}
	for name, ti := range cg.topics {
		var subs []*cmember
		for _, m := range ms {
			if _, ok := slices.BinarySearch(m.subscribed, name); ok {
				subs = append(subs, m)
			}
		}
		if len(subs) == 0 {
			continue
		}
		n := int(ti.Partitions)
		per, extra := n/len(subs), n%len(subs)
		p := 0
		for i, m := range subs {
			cnt := per
			if i < extra {
				cnt++
			}
			for j := 0; j < cnt; j++ {
				out[m.id][tp{ti.ID, int32(p)}] = struct{}{}
				p++
			}
		}
	}
	return out
}

// uniformAssign balances partitions over the members, keeping each
// partition with its previous target owner while that owner is below its
// fair share (sticky), and giving the rest to the least-loaded subscribed
// member.
func uniformAssign(cg *consumerGroup) map[string]tpSet {
	out := make(map[string]tpSet, len(cg.members))
	ms := sortedMembers(cg)
	for _, m := range ms {
		out[m.id] = tpSet{}
	}
	if len(ms) == 0 {
		return out
	}
	subscribed := func(m *cmember, name string) bool {
		_, ok := slices.BinarySearch(m.subscribed, name)
		return ok
	}
	type part struct {
		tp
		name string
	}
	var all []part
	names := make([]string, 0, len(cg.topics))
	for name := range cg.topics {
		names = append(names, name)
	}
	slices.Sort(names)
	for _, name := range names {
		ti := cg.topics[name]
		for p := int32(0); p < ti.Partitions; p++ {
			all = append(all, part{tp{ti.ID, p}, name})
		}
	}
	quota := (len(all) + len(ms) - 1) / len(ms)

	// Stickiness: previous owners keep what they may, up to the quota.
	prev := map[tp]string{}
	for id, s := range cg.target {
		for k := range s {
			prev[k] = id
		}
	}
	var rest []part
	for _, p := range all {
		if id, ok := prev[p.tp]; ok {
			if m := cg.members[id]; m != nil && subscribed(m, p.name) && len(out[id]) < quota {
				out[id][p.tp] = struct{}{}
				continue
			}
		}
		rest = append(rest, p)
	}
	for _, p := range rest {
		var best *cmember
		for _, m := range ms {
			if subscribed(m, p.name) && (best == nil || len(out[m.id]) < len(out[best.id])) {
				best = m
			}
		}
		if best != nil {
			out[best.id][p.tp] = struct{}{}
		}
	}
	return out
}
