package group

import "testing"

func testGroup(members map[string][]string, topics ...TopicInfo) *consumerGroup {
	cg := newConsumerGroup()
	for _, ti := range topics {
		cg.topics[ti.Name] = ti
	}
	for id, subs := range members {
		cg.members[id] = &cmember{id: id, subscribed: subs}
	}
	return cg
}

// TestAssignors: every subscribed partition is assigned exactly once, to a
// member subscribed to its topic, and the load is balanced.
func TestAssignors(t *testing.T) {
	a := TopicInfo{ID: [16]byte{1}, Name: "a", Partitions: 7}
	b := TopicInfo{ID: [16]byte{2}, Name: "b", Partitions: 3}
	for _, tc := range []struct {
		name    string
		members map[string][]string
		maxLoad int
	}{
		{"one member", map[string][]string{"m1": {"a", "b"}}, 10},
		{"three alike", map[string][]string{"m1": {"a", "b"}, "m2": {"a", "b"}, "m3": {"a", "b"}}, 4},
		{"mixed", map[string][]string{"m1": {"a"}, "m2": {"a", "b"}, "m3": {"b"}}, 5},
	} {
		for _, name := range []string{"uniform", "range"} {
			t.Run(tc.name+"/"+name, func(t *testing.T) {
				cg := testGroup(tc.members, a, b)
				out := assignorByName(name)(cg)
				seen := map[tp]string{}
				for id, s := range out {
					if name == "uniform" && len(s) > tc.maxLoad {
						t.Errorf("%s has %d partitions, more than %d", id, len(s), tc.maxLoad)
					}
					for k := range s {
						if o, dup := seen[k]; dup {
							t.Fatalf("partition %v assigned to %s and %s", k, o, id)
						}
						seen[k] = id
						topic := "b"
						if k.topic == a.ID {
							topic = "a"
						}
						ok := false
						for _, s := range tc.members[id] {
							ok = ok || s == topic
						}
						if !ok {
							t.Fatalf("%s got a partition of %s without subscribing", id, topic)
						}
					}
				}
				if len(seen) != 10 {
					t.Fatalf("%d partitions assigned, want 10", len(seen))
				}
			})
		}
	}
}

// TestUniformSticky: when a member joins, the others keep what they can.
func TestUniformSticky(t *testing.T) {
	a := TopicInfo{ID: [16]byte{1}, Name: "a", Partitions: 12}
	cg := testGroup(map[string][]string{"m1": {"a"}, "m2": {"a"}}, a)
	cg.target = uniformAssign(cg)
	before := map[string]tpSet{"m1": cg.target["m1"].clone(), "m2": cg.target["m2"].clone()}
	cg.members["m3"] = &cmember{id: "m3", subscribed: []string{"a"}}
	after := uniformAssign(cg)
	for _, id := range []string{"m1", "m2"} {
		moved := 0
		for k := range after[id] {
			if _, ok := before[id][k]; !ok {
				moved++
			}
		}
		if len(after[id]) != 4 || moved != 0 {
			t.Fatalf("%s: %d partitions, %d of them new; want 4 it already had", id, len(after[id]), moved)
		}
	}
	if len(after["m3"]) != 4 {
		t.Fatalf("m3 got %d partitions, want 4", len(after["m3"]))
	}
}
