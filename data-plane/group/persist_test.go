package group

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"maps"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// stateStore is memStore plus an in-memory StateStore shared by several
// coordinators, as Postgres is shared by brokers. It can fail writes or
// refuse them (as if the slot had moved).
type stateStore struct {
	*memStore
	smu     sync.Mutex
	states  map[[2]string][]byte
	saves   int
	failErr error
	refuse  bool
}

func newStateStore() *stateStore {
	return &stateStore{memStore: newMemStore(), states: map[[2]string][]byte{}}
}

func (s *stateStore) SaveGroups(ctx context.Context, states []GroupState) ([]bool, error) {
	s.smu.Lock()
	defer s.smu.Unlock()
	if s.failErr != nil {
		return nil, s.failErr
	}
	refused := make([]bool, len(states))
	for i, st := range states {
		if s.refuse {
			refused[i] = true
			continue
		}
		k := [2]string{st.Cluster, st.Group}
		if st.Data == nil {
			delete(s.states, k)
		} else {
			s.states[k] = append([]byte(nil), st.Data...)
		}
	}
	s.saves++
	return refused, nil
}

func (s *stateStore) read(context.Context) ([]GroupState, error) {
	s.smu.Lock()
	defer s.smu.Unlock()
	var out []GroupState
	for k, d := range s.states {
		out = append(out, GroupState{Cluster: k[0], Group: k[1], Data: d})
	}
	return out, nil
}

func (s *stateStore) get(cluster, group string) (stored, bool) {
	s.smu.Lock()
	defer s.smu.Unlock()
	d, ok := s.states[[2]string{cluster, group}]
	var st stored
	if ok {
		if err := json.Unmarshal(d, &st); err != nil {
			panic(err)
		}
	}
	return st, ok
}

func (s *stateStore) setSaveFail(err error) {
	s.smu.Lock()
	defer s.smu.Unlock()
	s.failErr = err
}

func all(string, string) bool { return true }

// failover starts a second coordinator on st and loads every group into
// it, as a broker that gains the slots does; the first one is left as it
// is (a SIGKILLed broker does not clean up).
func failover(t *testing.T, cfg Config, st *stateStore) *Coordinator {
	t.Helper()
	c := New(cfg, st, slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelWarn})))
	t.Cleanup(c.Close)
	if err := c.Load(t.Context(), all, st.read); err != nil {
		t.Fatal(err)
	}
	return c
}

// TestClassicGroupSurvivesFailover: a Stable classic group resumes on a
// new coordinator with its generation, members and assignments: members
// heartbeat and commit as before, and a newcomer starts an ordinary
// rebalance that every old member is told about.
func TestClassicGroupSurvivesFailover(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		st := newStateStore()
		cfg := scenarioConfig()
		c1 := New(cfg, st, nil)
		defer c1.Close()
		ctx := testCtx(t)
		ms := formGroup(t, c1, "c1", "g", 3, nil)
		gen := ms[0].generation
		synctest.Wait()
		s, ok := st.get("c1", "g")
		if !ok || s.Generation != gen || len(s.Members) != 3 {
			t.Fatalf("stored %+v, want generation %d with 3 members", s, gen)
		}

		c2 := failover(t, cfg, st)
		for _, m := range ms {
			m.c = c2
		}
		if !allCodes(heartbeatAll(ctx, ms), 0) {
			t.Fatal("members of a loaded Stable group could not heartbeat")
		}
		for _, m := range ms {
			wantCode(t, "commit after failover", m.commit(ctx, "t", 0, 7), 0)
			wantCode(t, "sync after failover", m.sync(ctx).ErrorCode, 0)
			if want := "assigned-to-" + m.id; m.assignment != want {
				t.Fatalf("assignment after failover %q, want %q", m.assignment, want)
			}
		}
		d := describe(t, c2, "c1", "g")
		if d.State != "Stable" || len(d.Members) != 3 {
			t.Fatalf("loaded group is %s with %d members", d.State, len(d.Members))
		}

		// A newcomer starts a rebalance; the old members are told to
		// rejoin, and the next generation follows the stored one.
		newcomer := newConsumer(c2, "c1", "g", "client-3")
		joined := background(func() { wantCode(t, "newcomer join", newcomer.join(ctx).ErrorCode, 0) })
		eventually(t, time.Second, "REBALANCE_IN_PROGRESS", func() bool {
			return allCodes(heartbeatAll(ctx, ms), kerr.RebalanceInProgress.Code)
		})
		all := append(ms, newcomer)
		parallel(ms, func(_ int, m *consumer) { m.join(ctx) })
		joined()
		syncAll(t, all)
		if all[0].generation != gen+1 {
			t.Fatalf("generation after failover and rebalance %d, want %d", all[0].generation, gen+1)
		}
		synctest.Wait()
		if s, _ := st.get("c1", "g"); s.Generation != gen+1 || len(s.Members) != 4 {
			t.Fatalf("stored generation %d with %d members, want %d with 4", s.Generation, len(s.Members), gen+1)
		}
	})
}

// TestAssignmentIsWrittenBeforeItIsHandedOut: while the leader's
// assignment cannot be written, no member receives it; the SyncGroups fail
// and the group rebalances, and forms once writes work again.
func TestAssignmentIsWrittenBeforeItIsHandedOut(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		st := newStateStore()
		c := New(scenarioConfig(), st, nil)
		defer c.Close()
		ctx := testCtx(t)
		ms := joinGroup(t, c, "c1", "g", 2, nil)
		st.setSaveFail(errors.New("postgres is down"))
		// Followers sync first and park, then the leader: a follower that
		// came only after the failed write would rightly be told
		// REBALANCE_IN_PROGRESS instead.
		codes := make([]int16, len(ms))
		var followers []func()
		for i, m := range ms {
			if !m.isLeader() {
				followers = append(followers, background(func() { codes[i] = m.sync(ctx).ErrorCode }))
			}
		}
		synctest.Wait()
		for i, m := range ms {
			if m.isLeader() {
				codes[i] = m.sync(ctx).ErrorCode
			}
		}
		for _, wait := range followers {
			wait()
		}
		for i, code := range codes {
			if code == 0 {
				t.Fatalf("member %d got an assignment that was never written", i)
			}
			wantCode(t, "sync while writes fail", code, kerr.CoordinatorNotAvailable.Code)
		}
		if _, ok := st.get("c1", "g"); ok {
			t.Fatal("a state was stored while writes failed")
		}
		if d := describe(t, c, "c1", "g"); d.State != "PreparingRebalance" {
			t.Fatalf("state %s after a failed write, want PreparingRebalance", d.State)
		}
		st.setSaveFail(nil)
		rejoinAll(t, ms)
		synctest.Wait()
		if s, ok := st.get("c1", "g"); !ok || s.Generation != ms[0].generation {
			t.Fatalf("stored %+v after recovery, want generation %d", s, ms[0].generation)
		}
	})
}

// TestEmptyAndDeletedGroupsArePersisted: a group whose members all left
// is stored Empty with its generation, which a new coordinator continues;
// a deleted group's state is removed.
func TestEmptyAndDeletedGroupsArePersisted(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		st := newStateStore()
		cfg := scenarioConfig()
		c1 := New(cfg, st, nil)
		defer c1.Close()
		ctx := testCtx(t)
		ms := formGroup(t, c1, "c1", "g", 2, nil)
		for _, m := range ms {
			wantCode(t, "leave", m.leave(ctx), 0)
		}
		synctest.Wait()
		s, ok := st.get("c1", "g")
		if !ok || len(s.Members) != 0 || s.Generation != ms[0].generation+1 {
			t.Fatalf("stored %+v, want an Empty group at generation %d", s, ms[0].generation+1)
		}
		c2 := failover(t, cfg, st)
		if d := describe(t, c2, "c1", "g"); d.State != "Empty" || d.ProtocolType != "consumer" {
			t.Fatalf("loaded group is %s (%q), want an Empty consumer group", d.State, d.ProtocolType)
		}
		m := newConsumer(c2, "c1", "g", "again")
		wantCode(t, "join", m.join(ctx).ErrorCode, 0)
		if m.generation != s.Generation+1 {
			t.Fatalf("generation %d on the new coordinator, want %d", m.generation, s.Generation+1)
		}
		wantCode(t, "leave", m.leave(ctx), 0)

		req := kmsg.NewPtrDeleteGroupsRequest()
		req.Version = 2
		req.Groups = []string{"g"}
		if code := c2.DeleteGroups(ctx, "c1", req).Groups[0].ErrorCode; code != 0 {
			t.Fatalf("delete: %v", codeName(code))
		}
		synctest.Wait()
		if s, ok := st.get("c1", "g"); ok {
			t.Fatalf("deleted group still stored: %+v", s)
		}
	})
}

// TestConsumerGroupSurvivesFailover: a KIP-848 group resumes on a new
// coordinator: members keep their epochs and partitions and are neither
// fenced nor unknown; a newcomer gets partitions only once their owners
// let go of them.
func TestConsumerGroupSurvivesFailover(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		st := newStateStore()
		cfg := testConfig()
		c1 := New(cfg, st, nil)
		defer c1.Close()
		ctx := testCtx(t)
		ms := []*cgMember{{id: "a"}, {id: "b"}}
		for range 4 {
			for _, m := range ms {
				m.heartbeat(t, ctx, c1, "")
			}
		}
		before := map[string]map[int32]bool{}
		for _, m := range ms {
			before[m.id] = maps.Clone(m.owned)
			if len(m.owned) != 3 {
				t.Fatalf("member %s owns %v before the failover, want 3 partitions", m.id, m.owned)
			}
		}

		c2 := failover(t, cfg, st)
		for _, m := range ms {
			epoch := m.epoch
			m.heartbeat(t, ctx, c2, "") // fails the test on any error
			if m.epoch != epoch || !maps.Equal(m.owned, before[m.id]) {
				t.Fatalf("member %s after failover: epoch %d owning %v, want %d owning %v", m.id, m.epoch, m.owned, epoch, before[m.id])
			}
		}
		c := &cgMember{id: "c"}
		owner := map[int32]string{}
		for range 6 {
			for _, m := range append(ms, c) {
				m.heartbeat(t, ctx, c2, "")
			}
			clear(owner)
			for _, m := range append(ms, c) {
				for p := range m.owned {
					if o, dup := owner[p]; dup {
						t.Fatalf("partition %d owned by %s and %s", p, o, m.id)
					}
					owner[p] = m.id
				}
			}
		}
		if len(c.owned) != 2 || len(owner) != 6 {
			t.Fatalf("after the newcomer: %v, want 2 partitions each", owner)
		}
	})
}

// TestRefusedWritesFailTheHeartbeat: a KIP-848 change this coordinator may
// no longer write (its slot moved) is answered NOT_COORDINATOR.
func TestRefusedWritesFailTheHeartbeat(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		st := newStateStore()
		st.refuse = true
		c := New(testConfig(), st, nil)
		defer c.Close()
		req := kmsg.NewPtrConsumerGroupHeartbeatRequest()
		req.Group, req.MemberID = "g", "a"
		req.RebalanceTimeoutMillis = 30000
		req.SubscribedTopicNames = []string{"t"}
		resp := c.ConsumerGroupHeartbeat(testCtx(t), "c1", req, Topics{Lookup: lookupT})
		wantCode(t, "join whose write is refused", resp.ErrorCode, kerr.NotCoordinator.Code)
	})
}
