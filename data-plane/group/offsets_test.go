package group

import (
	"maps"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

func TestOffsetCommitAndFetch(t *testing.T) {
	t.Parallel()
	bubble(t, scenarioConfig(), func(t *testing.T, c *Coordinator, store *memStore) {
		ctx := testCtx(t)
		ms := formGroup(t, c, "c1", "g", 2, nil)

		// One request, two topics, one partition's metadata too large: one
		// store call with the other three.
		req := commitRequest(ms[0],
			commitTopic("orders", 0, 100, "m0"),
			commitTopic("orders", 1, 200, strings.Repeat("x", 5000)),
			commitTopic("audit", 3, 300, ""),
		)
		req.Topics[0].Partitions = append(req.Topics[0].Partitions, commitTopic("orders", 2, 250, "m2").Partitions...)
		resp := c.OffsetCommit(ctx, "c1", req)
		wantCode(t, "orders/0", resp.Topics[0].Partitions[0].ErrorCode, 0)
		wantCode(t, "orders/2", resp.Topics[0].Partitions[1].ErrorCode, 0)
		wantCode(t, "orders/1", resp.Topics[1].Partitions[0].ErrorCode, kerr.OffsetMetadataTooLarge.Code)
		wantCode(t, "audit/3", resp.Topics[2].Partitions[0].ErrorCode, 0)
		if n := store.count("commit"); n != 1 {
			t.Fatalf("%d store commits for one request, want 1", n)
		}
		if o, ok := store.stored("c1", "g", "orders", 0); !ok || o != (Offset{"orders", 0, 100, 7, "m0"}) {
			t.Fatalf("stored orders/0 = %+v", o)
		}
		if _, ok := store.stored("c1", "g", "orders", 1); ok {
			t.Fatal("a partition with oversized metadata was stored")
		}

		// v1: listed partitions, unknown ones at -1, no leader epoch field.
		v1 := kmsg.NewPtrOffsetFetchRequest()
		v1.Version = 1
		v1.Group = "g"
		v1.Topics = []kmsg.OffsetFetchRequestTopic{{Topic: "orders", Partitions: []int32{0, 1, 2}}, {Topic: "nothing", Partitions: []int32{0}}}
		r1 := c.OffsetFetch(ctx, "c1", v1)
		got := map[string]int64{}
		for _, rt := range r1.Topics {
			for _, rp := range rt.Partitions {
				wantCode(t, "v1 partition", rp.ErrorCode, 0)
				got[rt.Topic+"/"+itoa(rp.Partition)] = rp.Offset
			}
		}
		want := map[string]int64{"orders/0": 100, "orders/1": -1, "orders/2": 250, "nothing/0": -1}
		if !maps.Equal(got, want) {
			t.Fatalf("v1 fetch %v, want %v", got, want)
		}

		// v7 null topics: everything committed, with epochs and metadata.
		v7 := kmsg.NewPtrOffsetFetchRequest()
		v7.Version = 7
		v7.Group = "g"
		r7 := c.OffsetFetch(ctx, "c1", v7)
		wantCode(t, "v7", r7.ErrorCode, 0)
		if len(r7.Topics) != 2 || r7.Topics[0].Topic != "audit" || len(r7.Topics[1].Partitions) != 2 {
			t.Fatalf("v7 all-topics fetch: %+v", r7.Topics)
		}
		if p := r7.Topics[1].Partitions[1]; p.Partition != 2 || p.LeaderEpoch != 7 || *p.Metadata != "m2" {
			t.Fatalf("orders/2 = %+v", p)
		}

		// v8: several groups, each with its own outcome.
		v8 := kmsg.NewPtrOffsetFetchRequest()
		v8.Version = 8
		v8.Groups = []kmsg.OffsetFetchRequestGroup{
			{Group: "g", Topics: []kmsg.OffsetFetchRequestGroupTopic{{Topic: "audit", Partitions: []int32{3}}}},
			{Group: "unknown", Topics: []kmsg.OffsetFetchRequestGroupTopic{{Topic: "audit", Partitions: []int32{3}}}},
			{Group: ""},
		}
		r8 := c.OffsetFetch(ctx, "c1", v8)
		if off := r8.Groups[0].Topics[0].Partitions[0].Offset; off != 300 {
			t.Fatalf("v8 g audit/3 = %d", off)
		}
		if off := r8.Groups[1].Topics[0].Partitions[0].Offset; off != -1 || r8.Groups[1].ErrorCode != 0 {
			t.Fatalf("v8 unknown group: offset %d error %d", off, r8.Groups[1].ErrorCode)
		}
		wantCode(t, "v8 empty group id", r8.Groups[2].ErrorCode, kerr.InvalidGroupID.Code)

		// Offsets are loaded once per group and then served from the cache,
		// which commits keep current.
		loads := store.count("fetch")
		wantCode(t, "commit", ms[1].commit(ctx, "orders", 0, 101), 0)
		if got := fetchAll(t, c, "c1", "g")["orders/0"].Offset; got != 101 {
			t.Fatalf("cached orders/0 = %d after commit, want 101", got)
		}
		fetchAll(t, c, "c1", "g")
		if n := store.count("fetch"); n != loads {
			t.Fatalf("%d store loads after the first, want none", n-loads)
		}
	})
}

func TestOffsetStoreFailures(t *testing.T) {
	t.Parallel()
	bubble(t, scenarioConfig(), func(t *testing.T, c *Coordinator, store *memStore) {
		ctx := testCtx(t)
		wantCode(t, "commit", simpleCommit(ctx, c, "c1", "s", "t", 0, 1), 0)

		store.setFail(errStoreDown)
		req := kmsg.NewPtrOffsetFetchRequest()
		req.Version = 7
		req.Group = "s"
		wantCode(t, "fetch while the store is down", c.OffsetFetch(ctx, "c1", req).ErrorCode, kerr.CoordinatorNotAvailable.Code)
		wantCode(t, "commit while the store is down", simpleCommit(ctx, c, "c1", "s", "t", 0, 2), kerr.CoordinatorNotAvailable.Code)

		// A failed load is not cached; a failed commit does not reach the
		// cache.
		store.setFail(nil)
		if got := fetchAll(t, c, "c1", "s")["t/0"].Offset; got != 1 {
			t.Fatalf("offset %d after a failed commit, want 1", got)
		}
	})
}

// TestConcurrentCommits: commits and fetches racing on one group keep the
// cache equal to the store, and the store never sees two calls for the
// group at once.
func TestConcurrentCommits(t *testing.T) {
	t.Parallel()
	bubble(t, scenarioConfig(), func(t *testing.T, c *Coordinator, store *memStore) {
		ctx := testCtx(t)
		store.setDelay(time.Millisecond)
		var wg sync.WaitGroup
		for w := range 8 {
			wg.Go(func() {
				for i := range 25 {
					if code := simpleCommit(ctx, c, "c1", "s", "t", int32(i%4), int64(w*1000+i)); code != 0 {
						t.Errorf("commit: %s", codeName(code))
					}
					if i%5 == 0 {
						req := kmsg.NewPtrOffsetFetchRequest()
						req.Version = 7
						req.Group = "s"
						if code := c.OffsetFetch(ctx, "c1", req).ErrorCode; code != 0 {
							t.Errorf("fetch: %s", codeName(code))
						}
					}
				}
			})
		}
		wg.Wait()
		if store.overlapped() {
			t.Fatal("store calls for one group overlapped")
		}
		cached := fetchAll(t, c, "c1", "s")
		for p := range int32(4) {
			o, _ := store.stored("c1", "s", "t", p)
			if cached["t/"+itoa(p)].Offset != o.Offset {
				t.Fatalf("partition %d: cache %d, store %d", p, cached["t/"+itoa(p)].Offset, o.Offset)
			}
		}
	})
}

func TestDeleteGroups(t *testing.T) {
	t.Parallel()
	bubble(t, scenarioConfig(), func(t *testing.T, c *Coordinator, store *memStore) {
		ctx := testCtx(t)
		ms := formGroup(t, c, "c1", "consumers", 2, nil)
		wantCode(t, "commit", ms[0].commit(ctx, "t", 0, 5), 0)
		wantCode(t, "simple commit", simpleCommit(ctx, c, "c1", "simple", "t", 0, 5), 0)

		req := kmsg.NewPtrDeleteGroupsRequest()
		req.Version = 3
		req.Groups = []string{"consumers", "simple", "simple", "unknown"}
		resp := c.DeleteGroups(ctx, "c1", req)
		if len(resp.Groups) != 3 {
			t.Fatalf("%d results for 3 distinct groups", len(resp.Groups))
		}
		wantCode(t, "group with members", resp.Groups[0].ErrorCode, kerr.NonEmptyGroup.Code)
		wantCode(t, "simple group", resp.Groups[1].ErrorCode, 0)
		wantCode(t, "unknown group", resp.Groups[2].ErrorCode, kerr.GroupIDNotFound.Code)
		if _, ok := store.stored("c1", "simple", "t", 0); ok {
			t.Fatal("deleted group's offsets are still stored")
		}
		if got := fetchAll(t, c, "c1", "simple"); len(got) != 0 {
			t.Fatalf("deleted group still has offsets %v", got)
		}
		wantCode(t, "describe deleted", describe(t, c, "c1", "simple").ErrorCode, kerr.GroupIDNotFound.Code)

		// Once its members leave, the consumer group can be deleted too, and
		// a group formed under the same id afterwards starts afresh.
		for _, m := range ms {
			wantCode(t, "leave", m.leave(ctx), 0)
		}
		synctest.Wait()
		wantCode(t, "delete emptied group", deleteGroup(ctx, c, "c1", "consumers"), 0)
		wantCode(t, "delete again", deleteGroup(ctx, c, "c1", "consumers"), kerr.GroupIDNotFound.Code)
		again := formGroup(t, c, "c1", "consumers", 1, nil)
		if again[0].generation != 1 {
			t.Fatalf("re-formed group at generation %d, want 1", again[0].generation)
		}
		if got := fetchAll(t, c, "c1", "consumers"); len(got) != 0 {
			t.Fatalf("re-formed group inherited offsets %v", got)
		}
	})
}

func TestListGroups(t *testing.T) {
	t.Parallel()
	bubble(t, scenarioConfig(), func(t *testing.T, c *Coordinator, store *memStore) {
		ctx := testCtx(t)
		formGroup(t, c, "c1", "stable", 1, nil)
		joinGroup(t, c, "c1", "assigning", 1, nil)
		formGroup(t, c, "c2", "elsewhere", 1, nil)
		// A group only the store knows (its coordinator slot moved here).
		if err := store.CommitOffsets(ctx, "c1", "stored", []Offset{{Topic: "t", Offset: 1}}); err != nil {
			t.Fatal(err)
		}

		list := func(version int16, states, types []string) map[string]string {
			req := kmsg.NewPtrListGroupsRequest()
			req.Version = version
			req.StatesFilter = states
			req.TypesFilter = types
			resp := c.ListGroups(ctx, "c1", req)
			wantCode(t, "list", resp.ErrorCode, 0)
			out := map[string]string{}
			for _, g := range resp.Groups {
				out[g.Group] = g.GroupState + "/" + g.ProtocolType
			}
			return out
		}
		for _, tc := range []struct {
			name    string
			version int16
			states  []string
			types   []string
			want    map[string]string
		}{
			{"all", 5, nil, nil, map[string]string{"stable": "Stable/consumer", "assigning": "CompletingRebalance/consumer", "stored": "Empty/"}},
			{"v3 ignores filters", 3, []string{"Stable"}, nil, map[string]string{"stable": "Stable/consumer", "assigning": "CompletingRebalance/consumer", "stored": "Empty/"}},
			{"states filter ignores case", 4, []string{"stable", "EMPTY"}, nil, map[string]string{"stable": "Stable/consumer", "stored": "Empty/"}},
			{"classic type", 5, nil, []string{"Classic"}, map[string]string{"stable": "Stable/consumer", "assigning": "CompletingRebalance/consumer", "stored": "Empty/"}},
			{"consumer type lists nothing", 5, nil, []string{"consumer"}, map[string]string{}},
		} {
			if got := list(tc.version, tc.states, tc.types); !maps.Equal(got, tc.want) {
				t.Errorf("%s: got %v, want %v", tc.name, got, tc.want)
			}
		}

		store.setFail(errStoreDown)
		req := kmsg.NewPtrListGroupsRequest()
		resp := c.ListGroups(ctx, "c1", req)
		wantCode(t, "list with the store down", resp.ErrorCode, kerr.CoordinatorNotAvailable.Code)
		if len(resp.Groups) != 2 {
			t.Fatalf("listed %d in-memory groups with the store down, want 2", len(resp.Groups))
		}
	})
}

func TestDescribeGroups(t *testing.T) {
	t.Parallel()
	bubble(t, scenarioConfig(), func(t *testing.T, c *Coordinator, store *memStore) {
		ctx := testCtx(t)
		ms := formGroup(t, c, "c1", "stable", 2, nil)
		joinGroup(t, c, "c1", "assigning", 1, nil)
		if err := store.CommitOffsets(ctx, "c1", "stored", []Offset{{Topic: "t", Offset: 1}}); err != nil {
			t.Fatal(err)
		}

		req := kmsg.NewPtrDescribeGroupsRequest()
		req.Version = 6
		req.Groups = []string{"stable", "assigning", "stored", "missing"}
		resp := c.DescribeGroups(ctx, "c1", req)
		stable, assigning, stored, missing := resp.Groups[0], resp.Groups[1], resp.Groups[2], resp.Groups[3]

		if stable.State != "Stable" || stable.Protocol != "range" || stable.ProtocolType != "consumer" || len(stable.Members) != 2 {
			t.Fatalf("stable group: %+v", stable)
		}
		byID := map[string]kmsg.DescribeGroupsResponseGroupMember{}
		for _, m := range stable.Members {
			byID[m.MemberID] = m
		}
		for _, m := range ms {
			dm, ok := byID[m.id]
			if !ok {
				t.Fatalf("member %s not described", m.id)
			}
			if dm.ClientID != m.clientID || dm.ClientHost != "/127.0.0.1" || string(dm.ProtocolMetadata) != "meta" || string(dm.MemberAssignment) != "assigned-to-"+m.id {
				t.Fatalf("member described as %+v", dm)
			}
			if !strings.HasPrefix(m.id, m.clientID+"-") {
				t.Fatalf("member id %q does not start with its client id", m.id)
			}
		}
		if assigning.State != "CompletingRebalance" || assigning.Protocol != "" || len(assigning.Members) != 1 || assigning.Members[0].ProtocolMetadata != nil {
			t.Fatalf("assigning group: %+v", assigning)
		}
		if stored.State != "Empty" || stored.ErrorCode != 0 {
			t.Fatalf("stored group: %+v", stored)
		}
		if missing.State != "Dead" || missing.ErrorCode != kerr.GroupIDNotFound.Code || missing.ErrorMessage == nil {
			t.Fatalf("missing group: %+v", missing)
		}
	})
}
