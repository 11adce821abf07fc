package group

import (
	"context"
	"log/slog"
	"slices"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// Scenario tests drive several simulated members through the protocol
// concurrently. They run in a synctest bubble: time is fake and only
// advances when every goroutine is blocked, so session, rebalance and delay
// deadlines fire exactly and instantly, and the bubble fails the test if the
// coordinator leaves a goroutine behind after Close.

func bubble(t *testing.T, cfg Config, f func(t *testing.T, c *Coordinator, store *memStore)) {
	t.Helper()
	synctest.Test(t, func(t *testing.T) {
		// Group state is persisted, as in production: every scenario
		// also runs the write-before-handing-out path.
		store := newStateStore()
		c := New(cfg, store, slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelWarn})))
		defer c.Close()
		f(t, c, store.memStore)
	})
}

// background runs fn on a goroutine; the returned function waits for it.
func background(fn func()) (wait func()) {
	done := make(chan struct{})
	go func() {
		defer close(done)
		fn()
	}()
	return func() { <-done }
}

func heartbeatAll(ctx context.Context, ms []*consumer) []int16 {
	codes := make([]int16, len(ms))
	for i, m := range ms {
		codes[i] = m.heartbeat(ctx)
	}
	return codes
}

func allCodes(codes []int16, want int16) bool {
	return !slices.ContainsFunc(codes, func(c int16) bool { return c != want })
}

func scenarioConfig() Config {
	cfg := testConfig()
	cfg.InitialRebalanceDelay = 100 * time.Millisecond
	return cfg
}

// TestRebalanceLifecycle walks a group through growth, a follower's harmless
// rejoin, a leader's rejoin and a departure.
func TestRebalanceLifecycle(t *testing.T) {
	t.Parallel()
	bubble(t, scenarioConfig(), func(t *testing.T, c *Coordinator, _ *memStore) {
		ctx := testCtx(t)
		ms := formGroup(t, c, "c1", "g", 3, nil)
		gen := ms[0].generation
		if gen != 1 {
			t.Fatalf("first generation is %d, want 1", gen)
		}
		if !allCodes(heartbeatAll(ctx, ms), 0) {
			t.Fatal("heartbeats of a stable group failed")
		}
		for _, m := range ms {
			wantCode(t, "commit", m.commit(ctx, "t", 0, 1), 0)
		}

		// A follower rejoining with the same metadata (as cooperative
		// clients do) learns the generation again; nobody else notices.
		f := follower(&fixture{ms: ms})
		resp := f.join(ctx)
		wantCode(t, "follower rejoin", resp.ErrorCode, 0)
		if resp.Generation != gen || len(resp.Members) != 0 {
			t.Fatalf("follower rejoin: generation %d with %d members, want %d with none", resp.Generation, len(resp.Members), gen)
		}
		wantCode(t, "follower sync after rejoin", f.sync(ctx).ErrorCode, 0)
		if !allCodes(heartbeatAll(ctx, ms), 0) {
			t.Fatal("a follower's rejoin disturbed the group")
		}

		// A fourth member joins: the others are told to rejoin.
		newcomer := newConsumer(c, "c1", "g", "client-3")
		var newcomerCode int16
		joined := background(func() { newcomerCode = newcomer.join(ctx).ErrorCode })
		eventually(t, time.Second, "REBALANCE_IN_PROGRESS", func() bool {
			return allCodes(heartbeatAll(ctx, ms), kerr.RebalanceInProgress.Code)
		})
		if st := describe(t, c, "c1", "g").State; st != "PreparingRebalance" {
			t.Fatalf("state %s during the join phase", st)
		}
		// Commits from the previous generation are still accepted.
		wantCode(t, "commit while rebalancing", ms[0].commit(ctx, "t", 0, 2), 0)
		codes := make([]int16, len(ms))
		parallel(ms, func(i int, m *consumer) { codes[i] = m.join(ctx).ErrorCode })
		joined()
		wantCode(t, "newcomer join", newcomerCode, 0)
		if !allCodes(codes, 0) {
			t.Fatalf("rejoin codes %v", codes)
		}
		ms = append(ms, newcomer)
		syncAll(t, ms)
		if ms[0].generation != gen+1 {
			t.Fatalf("generation %d after growth, want %d", ms[0].generation, gen+1)
		}

		// The leader rejoining forces a rebalance (it may have seen topic
		// metadata change).
		var leader *consumer
		for _, m := range ms {
			if m.isLeader() {
				leader = m
			}
		}
		var leaderCode int16
		leaderJoined := background(func() { leaderCode = leader.join(ctx).ErrorCode })
		eventually(t, time.Second, "REBALANCE_IN_PROGRESS after the leader rejoined", func() bool {
			for _, m := range ms {
				if m != leader && m.heartbeat(ctx) != kerr.RebalanceInProgress.Code {
					return false
				}
			}
			return true
		})
		others := slices.DeleteFunc(slices.Clone(ms), func(m *consumer) bool { return m == leader })
		parallel(others, func(_ int, m *consumer) { m.join(ctx) })
		leaderJoined()
		wantCode(t, "leader rejoin", leaderCode, 0)
		syncAll(t, ms)
		if ms[0].generation != gen+2 {
			t.Fatalf("generation %d after the leader's rejoin, want %d", ms[0].generation, gen+2)
		}

		// A member leaves: the rest rebalance without it.
		leaving := ms[1]
		wantCode(t, "leave", leaving.leave(ctx), 0)
		ms = slices.DeleteFunc(ms, func(m *consumer) bool { return m == leaving })
		if !allCodes(heartbeatAll(ctx, ms), kerr.RebalanceInProgress.Code) {
			t.Fatal("departure did not start a rebalance")
		}
		rejoinAll(t, ms)
		if got := len(describe(t, c, "c1", "g").Members); got != 3 {
			t.Fatalf("%d members after a departure, want 3", got)
		}
		wantCode(t, "heartbeat of the departed", leaving.heartbeat(ctx), kerr.UnknownMemberID.Code)

		// Everyone leaves: the group is Empty but keeps its offsets.
		for _, m := range ms {
			wantCode(t, "leave", m.leave(ctx), 0)
		}
		synctest.Wait()
		d := describe(t, c, "c1", "g")
		if d.State != "Empty" || len(d.Members) != 0 || d.ProtocolType != "consumer" {
			t.Fatalf("after everyone left: state %s, protocol type %q, %d members", d.State, d.ProtocolType, len(d.Members))
		}
		if got := fetchAll(t, c, "c1", "g")["t/0"].Offset; got != 2 {
			t.Fatalf("committed offset %d after everyone left, want 2", got)
		}
	})
}

// TestSessionExpiry: a member that stops heartbeating is removed after its
// session timeout and the others rebalance without it.
func TestSessionExpiry(t *testing.T) {
	t.Parallel()
	bubble(t, scenarioConfig(), func(t *testing.T, c *Coordinator, _ *memStore) {
		ctx := testCtx(t)
		ms := formGroup(t, c, "c1", "g", 3, func(_ int, m *consumer) {
			m.session = 300 * time.Millisecond
		})
		alive, silent := ms[:2], ms[2]
		start := time.Now()
		// The live members heartbeat every 100ms until told to rejoin.
		for !allCodes(heartbeatAll(ctx, alive), kerr.RebalanceInProgress.Code) {
			time.Sleep(100 * time.Millisecond)
			if time.Since(start) > 2*time.Second {
				t.Fatal("silent member never expired")
			}
		}
		if elapsed := time.Since(start); elapsed < 300*time.Millisecond {
			t.Fatalf("member expired after %v, before its 300ms session", elapsed)
		}
		rejoinAll(t, alive)
		if n := len(describe(t, c, "c1", "g").Members); n != 2 {
			t.Fatalf("%d members after expiry, want 2", n)
		}
		wantCode(t, "heartbeat of the expired member", silent.heartbeat(ctx), kerr.UnknownMemberID.Code)
	})
}

// TestRebalanceTimeout: members that do not rejoin within the rebalance
// timeout (the largest of the members') are dropped and the join phase
// completes without them.
func TestRebalanceTimeout(t *testing.T) {
	t.Parallel()
	bubble(t, scenarioConfig(), func(t *testing.T, c *Coordinator, _ *memStore) {
		ctx := testCtx(t)
		ms := formGroup(t, c, "c1", "g", 3, func(i int, m *consumer) {
			m.session = 10 * time.Second
			m.rebalance = time.Duration(i+1) * 100 * time.Millisecond // group: 300ms
		})
		// The leader rejoins, which starts a rebalance; one follower
		// follows, the other does not.
		leader, followers := ms[0], []*consumer{ms[1], ms[2]}
		for i, m := range ms {
			if m.isLeader() {
				leader, followers = m, slices.Delete(slices.Clone(ms), i, i+1)
			}
		}
		start := time.Now()
		var leaderCode int16
		waitLeader := background(func() { leaderCode = leader.join(ctx).ErrorCode })
		synctest.Wait()
		wantCode(t, "follower rejoin", followers[0].join(ctx).ErrorCode, 0)
		waitLeader()
		wantCode(t, "leader rejoin", leaderCode, 0)
		if elapsed := time.Since(start); elapsed != 300*time.Millisecond {
			t.Fatalf("join phase took %v, want the 300ms rebalance timeout", elapsed)
		}
		syncAll(t, []*consumer{leader, followers[0]})
		wantCode(t, "heartbeat of the laggard", followers[1].heartbeat(ctx), kerr.UnknownMemberID.Code)
	})
}

// TestSyncTimeout: a member that never sends SyncGroup after the join phase
// is removed after the rebalance timeout, and the group rebalances.
func TestSyncTimeout(t *testing.T) {
	t.Parallel()
	bubble(t, scenarioConfig(), func(t *testing.T, c *Coordinator, _ *memStore) {
		ctx := testCtx(t)
		ms := joinGroup(t, c, "c1", "g", 2, func(_ int, m *consumer) {
			m.rebalance = 200 * time.Millisecond
		})
		leader, lazy := ms[0], ms[1]
		if !leader.isLeader() {
			leader, lazy = lazy, leader
		}
		wantCode(t, "leader sync", leader.sync(ctx).ErrorCode, 0)
		wantCode(t, "leader heartbeat", leader.heartbeat(ctx), 0)
		time.Sleep(200 * time.Millisecond)
		synctest.Wait()
		wantCode(t, "leader heartbeat after the sync timeout", leader.heartbeat(ctx), kerr.RebalanceInProgress.Code)
		wantCode(t, "lazy member's sync", lazy.sync(ctx).ErrorCode, kerr.UnknownMemberID.Code)
		rejoinAll(t, []*consumer{leader})
	})
}

// TestInitialRebalanceDelay: the first rebalance of an empty group waits
// for the delay, extended by a delay for each member arriving meanwhile.
func TestInitialRebalanceDelay(t *testing.T) {
	t.Parallel()
	cfg := testConfig()
	cfg.InitialRebalanceDelay = 200 * time.Millisecond
	bubble(t, cfg, func(t *testing.T, c *Coordinator, _ *memStore) {
		ctx := testCtx(t)
		start := time.Now()
		first := newConsumer(c, "c1", "g", "first")
		second := newConsumer(c, "c1", "g", "second")
		var (
			firstCode int16
			firstDone time.Duration
		)
		waitFirst := background(func() {
			firstCode = first.join(ctx).ErrorCode
			firstDone = time.Since(start)
		})
		time.Sleep(100 * time.Millisecond)
		wantCode(t, "second join", second.join(ctx).ErrorCode, 0)
		waitFirst()
		wantCode(t, "first join", firstCode, 0)
		// 200ms delay, extended once by 200ms for the second member.
		if firstDone != 400*time.Millisecond {
			t.Fatalf("join phase ended after %v, want 400ms", firstDone)
		}
		syncAll(t, []*consumer{first, second})

		// Once the group has had a generation, an Empty group's rebalance
		// still waits one delay but is not extended.
		for _, m := range []*consumer{first, second} {
			wantCode(t, "leave", m.leave(ctx), 0)
		}
		// Emptying the group took a generation (2).
		start = time.Now()
		third := newConsumer(c, "c1", "g", "third")
		fourth := newConsumer(c, "c1", "g", "fourth")
		var thirdCode int16
		waitThird := background(func() { thirdCode = third.join(ctx).ErrorCode })
		time.Sleep(100 * time.Millisecond)
		wantCode(t, "fourth join", fourth.join(ctx).ErrorCode, 0)
		waitThird()
		wantCode(t, "third join", thirdCode, 0)
		if elapsed := time.Since(start); elapsed != 200*time.Millisecond {
			t.Fatalf("rejoin of an empty group took %v, want 200ms", elapsed)
		}
		if third.generation != 3 {
			t.Fatalf("generation %d, want 3", third.generation)
		}
	})
}

// TestStaticMembership: a restarted static member takes over its
// predecessor's identity and assignment without a rebalance, and the
// predecessor is fenced.
func TestStaticMembership(t *testing.T) {
	t.Parallel()
	static := func(i int, m *consumer) {
		inst := "inst-" + itoa(int32(i))
		m.instance = &inst
		m.session = 10 * time.Second
	}

	t.Run("follower replaced without rebalance", func(t *testing.T) {
		bubble(t, scenarioConfig(), func(t *testing.T, c *Coordinator, _ *memStore) {
			ctx := testCtx(t)
			ms := formGroup(t, c, "c1", "g", 3, static)
			old := follower(&fixture{ms: ms})
			restarted := newConsumer(c, "c1", "g", "restarted")
			restarted.instance = old.instance

			resp := restarted.joinOnce(ctx)
			wantCode(t, "restarted join", resp.ErrorCode, 0)
			if resp.MemberID == old.id || resp.Generation != old.generation || resp.SkipAssignment || len(resp.Members) != 0 {
				t.Fatalf("restarted join: member %s generation %d skip %v members %d", resp.MemberID, resp.Generation, resp.SkipAssignment, len(resp.Members))
			}
			wantCode(t, "restarted sync", restarted.sync(ctx).ErrorCode, 0)
			if want := "assigned-to-" + old.id; restarted.assignment != want {
				t.Fatalf("restarted member got %q, want its predecessor's %q", restarted.assignment, want)
			}
			others := slices.DeleteFunc(slices.Clone(ms), func(m *consumer) bool { return m == old })
			if !allCodes(heartbeatAll(ctx, others), 0) {
				t.Fatal("replacing a static member disturbed the group")
			}
			wantCode(t, "predecessor heartbeat", old.heartbeat(ctx), kerr.FencedInstanceID.Code)
			wantCode(t, "predecessor commit", old.commit(ctx, "t", 0, 1), kerr.FencedInstanceID.Code)
			wantCode(t, "successor commit", restarted.commit(ctx, "t", 0, 1), 0)
		})
	})

	t.Run("leader replaced", func(t *testing.T) {
		for _, tc := range []struct {
			name       string
			version    int16
			wantSkip   bool
			wantLeader func(old, restarted string) string
		}{
			{"v9 skips assignment", 9, true, func(_, restarted string) string { return restarted }},
			{"v5 names the old leader", 5, false, func(old, _ string) string { return old }},
		} {
			t.Run(tc.name, func(t *testing.T) {
				bubble(t, scenarioConfig(), func(t *testing.T, c *Coordinator, _ *memStore) {
					ctx := testCtx(t)
					ms := formGroup(t, c, "c1", "g", 2, static)
					old := ms[0]
					if !old.isLeader() {
						old = ms[1]
					}
					restarted := newConsumer(c, "c1", "g", "restarted")
					restarted.instance = old.instance
					restarted.version = tc.version
					resp := restarted.joinOnce(ctx)
					wantCode(t, "restarted leader join", resp.ErrorCode, 0)
					if resp.SkipAssignment != tc.wantSkip || resp.LeaderID != tc.wantLeader(old.id, resp.MemberID) {
						t.Fatalf("skip %v leader %s; old id %s, new id %s", resp.SkipAssignment, resp.LeaderID, old.id, resp.MemberID)
					}
					if tc.wantSkip && len(resp.Members) != 2 {
						t.Fatalf("v9 static leader got %d members, want 2", len(resp.Members))
					}
					if resp.Generation != old.generation {
						t.Fatalf("generation moved from %d to %d", old.generation, resp.Generation)
					}
				})
			})
		}
	})

	t.Run("changed protocol rebalances", func(t *testing.T) {
		bubble(t, scenarioConfig(), func(t *testing.T, c *Coordinator, _ *memStore) {
			ctx := testCtx(t)
			ms := formGroup(t, c, "c1", "g", 1, static)
			restarted := newConsumer(c, "c1", "g", "restarted")
			restarted.instance = ms[0].instance
			restarted.protocols = protocols("sticky", "s", "range", "r")
			resp := restarted.joinOnce(ctx)
			wantCode(t, "join", resp.ErrorCode, 0)
			if resp.Generation != ms[0].generation+1 || *resp.Protocol != "sticky" {
				t.Fatalf("generation %d protocol %s, want %d sticky", resp.Generation, *resp.Protocol, ms[0].generation+1)
			}
		})
	})

	t.Run("parked predecessor is fenced", func(t *testing.T) {
		bubble(t, scenarioConfig(), func(t *testing.T, c *Coordinator, _ *memStore) {
			ctx := testCtx(t)
			ms := formGroup(t, c, "c1", "g", 3, static)
			var leader *consumer
			var followers []*consumer
			for _, m := range ms {
				if m.isLeader() {
					leader = m
				} else {
					followers = append(followers, m)
				}
			}
			// The leader rejoins, starting a rebalance, and one follower
			// parks its rejoin; then that follower's instance restarts.
			var leaderCode, parkedCode, successorCode int16
			waitLeader := background(func() { leaderCode = leader.joinOnce(ctx).ErrorCode })
			synctest.Wait()
			waitParked := background(func() { parkedCode = followers[0].joinOnce(ctx).ErrorCode })
			synctest.Wait()
			restarted := newConsumer(c, "c1", "g", "restarted")
			restarted.instance = followers[0].instance
			waitSuccessor := background(func() { successorCode = restarted.joinOnce(ctx).ErrorCode })
			synctest.Wait()
			waitParked()
			wantCode(t, "parked predecessor", parkedCode, kerr.FencedInstanceID.Code)
			wantCode(t, "last member rejoin", followers[1].joinOnce(ctx).ErrorCode, 0)
			waitLeader()
			waitSuccessor()
			wantCode(t, "leader rejoin", leaderCode, 0)
			wantCode(t, "successor join", successorCode, 0)
			syncAll(t, []*consumer{leader, restarted, followers[1]})
		})
	})
}

// TestJoinContextCancel: a parked JoinGroup returns when its ctx ends, and
// the withdrawn member is dropped at the end of the join phase.
func TestJoinContextCancel(t *testing.T) {
	t.Parallel()
	bubble(t, testConfig(), func(t *testing.T, c *Coordinator, _ *memStore) {
		ctx := testCtx(t)
		ms := formGroup(t, c, "c1", "g", 1, func(_ int, m *consumer) { m.rebalance = 300 * time.Millisecond })

		newcomer := newConsumer(c, "c1", "g", "newcomer")
		newcomer.rebalance = 300 * time.Millisecond
		wantCode(t, "first join", newcomer.joinOnce(ctx).ErrorCode, kerr.MemberIDRequired.Code)
		jctx, cancel := context.WithCancel(ctx)
		var code int16
		waitJoin := background(func() { code = newcomer.joinOnce(jctx).ErrorCode })
		synctest.Wait()
		cancel()
		waitJoin()
		wantCode(t, "cancelled join", code, kerr.CoordinatorNotAvailable.Code)

		start := time.Now()
		wantCode(t, "rejoin", ms[0].join(ctx).ErrorCode, 0)
		if elapsed := time.Since(start); elapsed != 300*time.Millisecond {
			t.Fatalf("join phase took %v, want the 300ms rebalance timeout", elapsed)
		}
		if n := len(describe(t, c, "c1", "g").Members); n != 1 {
			t.Fatalf("%d members, want the withdrawn one dropped", n)
		}
	})
}

// TestCloseFailsParkedRequests: Close answers parked JoinGroup and SyncGroup
// requests and later calls with COORDINATOR_NOT_AVAILABLE; the bubble checks
// that no goroutine is left.
func TestCloseFailsParkedRequests(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		c := New(scenarioConfig(), newMemStore(), nil)
		ctx := testCtx(t)
		ms := joinGroup(t, c, "c1", "g", 2, nil)
		f := follower(&fixture{ms: ms})
		var syncCode, joinCode int16
		waitSync := background(func() { syncCode = f.sync(ctx).ErrorCode })
		newcomer := newConsumer(c, "c1", "g2", "newcomer")
		newcomer.version = 3 // no MEMBER_ID_REQUIRED: parks in the initial delay
		waitJoin := background(func() { joinCode = newcomer.joinOnce(ctx).ErrorCode })
		synctest.Wait()

		c.Close()
		waitSync()
		waitJoin()
		wantCode(t, "parked sync", syncCode, kerr.CoordinatorNotAvailable.Code)
		wantCode(t, "parked join", joinCode, kerr.CoordinatorNotAvailable.Code)
		wantCode(t, "heartbeat after close", ms[0].heartbeat(ctx), kerr.CoordinatorNotAvailable.Code)
		wantCode(t, "commit after close", ms[0].commit(ctx, "t", 0, 1), kerr.CoordinatorNotAvailable.Code)
		c.Close() // idempotent
	})
}

// TestForget: forgetting a group answers its parked requests with
// NOT_COORDINATOR and drops its state, including cached offsets; other
// groups are untouched.
func TestForget(t *testing.T) {
	t.Parallel()
	bubble(t, scenarioConfig(), func(t *testing.T, c *Coordinator, store *memStore) {
		ctx := testCtx(t)
		ms := joinGroup(t, c, "c1", "moving", 2, nil)
		stay := formGroup(t, c, "c1", "staying", 1, nil)
		wantCode(t, "simple commit", simpleCommit(ctx, c, "c1", "moving-offsets", "t", 0, 5), 0)
		fetchAll(t, c, "c1", "moving-offsets")
		fetches := store.count("fetch")

		f := follower(&fixture{ms: ms})
		var code int16
		waitSync := background(func() { code = f.sync(ctx).ErrorCode })
		synctest.Wait()
		c.Forget(func(cluster, group string) bool { return cluster == "c1" && group != "staying" })
		waitSync()
		wantCode(t, "parked sync", code, kerr.NotCoordinator.Code)
		wantCode(t, "heartbeat of a forgotten member", ms[0].heartbeat(ctx), kerr.UnknownMemberID.Code)
		wantCode(t, "heartbeat of another group", stay[0].heartbeat(ctx), 0)

		offs := fetchAll(t, c, "c1", "moving-offsets")
		if offs["t/0"].Offset != 5 {
			t.Fatalf("offsets after Forget: %v", offs)
		}
		if store.count("fetch") != fetches+1 {
			t.Fatal("Forget did not drop the offset cache")
		}
	})
}

// TestVirtualClusters: one group id in two clusters names two groups.
func TestVirtualClusters(t *testing.T) {
	t.Parallel()
	bubble(t, scenarioConfig(), func(t *testing.T, c *Coordinator, _ *memStore) {
		ctx := testCtx(t)
		a := formGroup(t, c, "tenant-a", "g", 2, nil)
		b := formGroup(t, c, "tenant-b", "g", 1, nil)
		if n := len(describe(t, c, "tenant-a", "g").Members); n != 2 {
			t.Fatalf("tenant-a has %d members", n)
		}
		if n := len(describe(t, c, "tenant-b", "g").Members); n != 1 {
			t.Fatalf("tenant-b has %d members", n)
		}
		wantCode(t, "cross-cluster heartbeat", c.Heartbeat(ctx, "tenant-b", heartbeatRequest(a[0])).ErrorCode, kerr.UnknownMemberID.Code)
		wantCode(t, "commit a", a[0].commit(ctx, "t", 0, 11), 0)
		wantCode(t, "commit b", b[0].commit(ctx, "t", 0, 22), 0)
		if got := fetchAll(t, c, "tenant-a", "g")["t/0"].Offset; got != 11 {
			t.Fatalf("tenant-a offset %d", got)
		}
		if got := fetchAll(t, c, "tenant-b", "g")["t/0"].Offset; got != 22 {
			t.Fatalf("tenant-b offset %d", got)
		}
	})
}

func heartbeatRequest(m *consumer) *kmsg.HeartbeatRequest {
	req := kmsg.NewPtrHeartbeatRequest()
	req.Version = 4
	req.Group = m.group
	req.Generation = m.generation
	req.MemberID = m.id
	return req
}

// TestProtocolSelection: the protocol every member supports wins by the
// members' first choices.
func TestProtocolSelection(t *testing.T) {
	t.Parallel()
	bubble(t, scenarioConfig(), func(t *testing.T, c *Coordinator, _ *memStore) {
		prefs := [][]string{
			{"sticky", "s", "range", "r", "roundrobin", "rr"},
			{"range", "r", "sticky", "s"},
			{"range", "r", "sticky", "s", "roundrobin", "rr"},
		}
		ms := joinGroup(t, c, "c1", "g", 3, func(i int, m *consumer) { m.protocols = protocols(prefs[i]...) })
		for _, m := range ms {
			if m.isLeader() {
				for _, jm := range m.members {
					if string(jm.ProtocolMetadata) != "r" {
						t.Fatalf("leader got %q metadata, want range's", jm.ProtocolMetadata)
					}
				}
			}
		}
		// consumer.sync names its first protocol; name the selected one.
		for _, m := range ms {
			m.protocols = protocols("range", "r")
		}
		syncAll(t, ms)
		if d := describe(t, c, "c1", "g"); d.Protocol != "range" {
			t.Fatalf("protocol %q, want range", d.Protocol)
		}
	})
}

// TestChurn runs consumers that behave like clients (join, sync, heartbeat,
// rejoin when told to) while others come, leave, or crash, and checks that
// the group converges on the survivors, each holding its assignment of the
// final generation.
func TestChurn(t *testing.T) {
	t.Parallel()
	bubble(t, scenarioConfig(), func(t *testing.T, c *Coordinator, _ *memStore) {
		ctx, cancel := context.WithCancel(testCtx(t))
		type view struct {
			id         string
			generation int32
			assignment string
		}
		var (
			mu    sync.Mutex
			views = map[string]view{} // client id → last completed rebalance
		)
		forever := time.Hour
		plans := []struct {
			start, life time.Duration
			crash       bool // stop heartbeating instead of leaving
		}{
			{0, forever, false},
			{0, forever, false},
			{0, forever, false},
			{0, time.Second, false},
			{500 * time.Millisecond, 1500 * time.Millisecond, false},
			{300 * time.Millisecond, time.Second, true},
			{1200 * time.Millisecond, forever, false},
		}
		var wg sync.WaitGroup
		for i, p := range plans {
			m := newConsumer(c, "c1", "g", "client-"+itoa(int32(i)))
			m.session = 300 * time.Millisecond
			m.rebalance = 500 * time.Millisecond
			wg.Go(func() {
				time.Sleep(p.start)
				end := time.Now().Add(p.life)
				for ctx.Err() == nil && time.Now().Before(end) {
					switch m.join(ctx).ErrorCode {
					case 0:
					case kerr.UnknownMemberID.Code:
						m.id = ""
						continue
					default:
						time.Sleep(10 * time.Millisecond)
						continue
					}
					switch m.sync(ctx).ErrorCode {
					case 0:
						mu.Lock()
						views[m.clientID] = view{m.id, m.generation, m.assignment}
						mu.Unlock()
					case kerr.UnknownMemberID.Code:
						m.id = ""
						continue
					default:
						continue
					}
					for ctx.Err() == nil && time.Now().Before(end) {
						time.Sleep(100 * time.Millisecond)
						if code := m.heartbeat(ctx); code != 0 {
							if code == kerr.UnknownMemberID.Code {
								m.id = ""
							}
							break
						}
					}
				}
				if !p.crash && ctx.Err() == nil {
					m.leave(ctx)
				}
			})
		}

		time.Sleep(5 * time.Second)
		d := describe(t, c, "c1", "g")
		mu.Lock()
		survivors := map[string]view{}
		for i, p := range plans {
			if p.life == forever {
				survivors["client-"+itoa(int32(i))] = views["client-"+itoa(int32(i))]
			}
		}
		mu.Unlock()
		cancel()
		wg.Wait()

		if d.State != "Stable" || len(d.Members) != len(survivors) {
			t.Fatalf("group %s with %d members, want Stable with %d", d.State, len(d.Members), len(survivors))
		}
		var generation int32 = -1
		for _, dm := range d.Members {
			v, ok := survivors[dm.ClientID]
			if !ok || v.id != dm.MemberID {
				t.Fatalf("member %s (%s) is not a survivor's current id", dm.MemberID, dm.ClientID)
			}
			if generation == -1 {
				generation = v.generation
			}
			if v.generation != generation || v.assignment != "assigned-to-"+v.id || string(dm.MemberAssignment) != v.assignment {
				t.Fatalf("survivor %s: generation %d (group's %d), assignment %q", dm.ClientID, v.generation, generation, v.assignment)
			}
		}
	})
}

// leaderAndFollowers splits ms by role.
func leaderAndFollowers(ms []*consumer) (*consumer, []*consumer) {
	var leader *consumer
	var followers []*consumer
	for _, m := range ms {
		if m.isLeader() {
			leader = m
		} else {
			followers = append(followers, m)
		}
	}
	return leader, followers
}

// TestSyncPhase covers the window between the join phase and the leader's
// SyncGroup.
func TestSyncPhase(t *testing.T) {
	t.Parallel()

	t.Run("repeated join returns the same generation", func(t *testing.T) {
		bubble(t, scenarioConfig(), func(t *testing.T, c *Coordinator, _ *memStore) {
			ctx := testCtx(t)
			ms := joinGroup(t, c, "c1", "g", 2, nil)
			leader, followers := leaderAndFollowers(ms)
			gen := leader.generation
			wantCode(t, "follower join again", followers[0].join(ctx).ErrorCode, 0)
			if resp := leader.join(ctx); resp.ErrorCode != 0 || resp.Generation != gen || len(resp.Members) != 2 {
				t.Fatalf("leader join again: %s generation %d members %d", codeName(resp.ErrorCode), resp.Generation, len(resp.Members))
			}
			syncAll(t, ms)
		})
	})

	t.Run("rebalance fails parked syncs", func(t *testing.T) {
		bubble(t, scenarioConfig(), func(t *testing.T, c *Coordinator, _ *memStore) {
			ctx := testCtx(t)
			ms := joinGroup(t, c, "c1", "g", 2, nil)
			_, followers := leaderAndFollowers(ms)
			var code int16
			waitSync := background(func() { code = followers[0].sync(ctx).ErrorCode })
			synctest.Wait()
			newcomer := newConsumer(c, "c1", "g", "newcomer")
			var newcomerCode int16
			waitNew := background(func() { newcomerCode = newcomer.join(ctx).ErrorCode })
			waitSync()
			wantCode(t, "parked sync", code, kerr.RebalanceInProgress.Code)
			codes := make([]int16, 2)
			parallel(ms, func(i int, m *consumer) { codes[i] = m.join(ctx).ErrorCode })
			waitNew()
			if !allCodes(append(codes, newcomerCode), 0) {
				t.Fatalf("rejoin codes %v, newcomer %s", codes, codeName(newcomerCode))
			}
			syncAll(t, append(ms, newcomer))
		})
	})

	t.Run("cancelled sync can be repeated", func(t *testing.T) {
		bubble(t, scenarioConfig(), func(t *testing.T, c *Coordinator, _ *memStore) {
			ctx := testCtx(t)
			ms := joinGroup(t, c, "c1", "g", 2, nil)
			leader, followers := leaderAndFollowers(ms)
			sctx, cancel := context.WithCancel(ctx)
			var code int16
			waitSync := background(func() { code = followers[0].sync(sctx).ErrorCode })
			synctest.Wait()
			cancel()
			waitSync()
			wantCode(t, "cancelled sync", code, kerr.CoordinatorNotAvailable.Code)
			wantCode(t, "leader sync", leader.sync(ctx).ErrorCode, 0)
			wantCode(t, "follower sync again", followers[0].sync(ctx).ErrorCode, 0)
			if followers[0].assignment != "assigned-to-"+followers[0].id {
				t.Fatalf("follower assignment %q", followers[0].assignment)
			}
		})
	})
}

// TestLeaderDoesNotRejoin: when the leader misses a join phase another
// member that rejoined leads the next generation. A dynamic leader is
// dropped; a static one keeps its place (and is expired by its session).
func TestLeaderDoesNotRejoin(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name          string
		static        bool
		wantMembers   int
		wantHeartbeat int16
	}{
		{"dynamic", false, 2, kerr.UnknownMemberID.Code},
		{"static", true, 3, kerr.IllegalGeneration.Code},
	} {
		t.Run(tc.name, func(t *testing.T) {
			bubble(t, scenarioConfig(), func(t *testing.T, c *Coordinator, _ *memStore) {
				ctx := testCtx(t)
				ms := formGroup(t, c, "c1", "g", 3, func(i int, m *consumer) {
					m.session = 10 * time.Second
					if tc.static {
						inst := "inst-" + itoa(int32(i))
						m.instance = &inst
					}
				})
				leader, followers := leaderAndFollowers(ms)
				// A follower's new metadata starts a rebalance; the leader
				// sleeps through it.
				followers[0].protocols = protocols("range", "new-meta")
				var code int16
				waitChanged := background(func() { code = followers[0].join(ctx).ErrorCode })
				synctest.Wait()
				wantCode(t, "other follower heartbeat", followers[1].heartbeat(ctx), kerr.RebalanceInProgress.Code)
				wantCode(t, "other follower rejoin", followers[1].join(ctx).ErrorCode, 0)
				waitChanged()
				wantCode(t, "changed follower rejoin", code, 0)
				newLeader, _ := leaderAndFollowers(followers)
				if newLeader == nil {
					t.Fatal("no member that rejoined was elected leader")
				}
				if len(newLeader.members) != tc.wantMembers {
					t.Fatalf("new leader got %d members, want %d", len(newLeader.members), tc.wantMembers)
				}
				wantCode(t, "old leader heartbeat", leader.heartbeat(ctx), tc.wantHeartbeat)
			})
		})
	}
}

// TestParkedMemberOutlivesSession: a member parked in JoinGroup cannot
// heartbeat, so its session does not expire while it waits.
func TestParkedMemberOutlivesSession(t *testing.T) {
	t.Parallel()
	bubble(t, scenarioConfig(), func(t *testing.T, c *Coordinator, _ *memStore) {
		ctx := testCtx(t)
		ms := formGroup(t, c, "c1", "g", 2, func(_ int, m *consumer) {
			m.session = 200 * time.Millisecond
			m.rebalance = time.Second
		})
		leader, followers := leaderAndFollowers(ms)
		start := time.Now()
		var code int16
		waitLeader := background(func() { code = leader.join(ctx).ErrorCode })
		synctest.Wait()
		// The follower heartbeats through the rebalance without rejoining.
		for time.Since(start) < 900*time.Millisecond {
			wantCode(t, "follower heartbeat", followers[0].heartbeat(ctx), kerr.RebalanceInProgress.Code)
			time.Sleep(100 * time.Millisecond)
		}
		waitLeader()
		wantCode(t, "leader rejoin", code, 0)
		if elapsed := time.Since(start); elapsed != time.Second {
			t.Fatalf("join phase took %v, want the 1s rebalance timeout", elapsed)
		}
		if len(leader.members) != 1 {
			t.Fatalf("generation has %d members, want the parked leader alone", len(leader.members))
		}
	})
}

// TestPendingMemberIDs: ids handed out with MEMBER_ID_REQUIRED hold a join
// phase open until used, left or expired.
func TestPendingMemberIDs(t *testing.T) {
	t.Parallel()
	bubble(t, scenarioConfig(), func(t *testing.T, c *Coordinator, _ *memStore) {
		ctx := testCtx(t)
		ms := formGroup(t, c, "c1", "g", 1, nil)

		// An unused id expires after the session timeout it asked for.
		idle := newConsumer(c, "c1", "g", "idle")
		idle.session = 200 * time.Millisecond
		wantCode(t, "idle first join", idle.joinOnce(ctx).ErrorCode, kerr.MemberIDRequired.Code)
		start := time.Now()
		wantCode(t, "leader rejoin", ms[0].join(ctx).ErrorCode, 0)
		if elapsed := time.Since(start); elapsed != 200*time.Millisecond {
			t.Fatalf("join phase took %v, want the pending id's 200ms session", elapsed)
		}
		wantCode(t, "join with the expired id", idle.joinOnce(ctx).ErrorCode, kerr.UnknownMemberID.Code)
		syncAll(t, ms)

		// Leaving with a pending id releases it at once.
		quitter := newConsumer(c, "c1", "g", "quitter")
		wantCode(t, "quitter first join", quitter.joinOnce(ctx).ErrorCode, kerr.MemberIDRequired.Code)
		var leaderCode int16
		waitLeader := background(func() { leaderCode = ms[0].join(ctx).ErrorCode })
		synctest.Wait()
		start = time.Now()
		wantCode(t, "pending leave", quitter.leave(ctx), 0)
		waitLeader()
		wantCode(t, "leader rejoin", leaderCode, 0)
		if elapsed := time.Since(start); elapsed != 0 {
			t.Fatalf("join phase ended %v after the pending id left", elapsed)
		}
	})
}
