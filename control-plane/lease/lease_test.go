package lease

import (
	"context"
	"log/slog"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/eddy-streams/eddy/internal/pgtest"
	"github.com/eddy-streams/eddy/internal/poll"
	"github.com/eddy-streams/eddy/internal/store"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

var testCfg = Config{TTL: 900 * time.Millisecond, Renew: 150 * time.Millisecond}

// gated is a store whose lease calls a test can hold up, either like a
// network partition (calls wait for their ctx to end) or like a paused
// process (calls wait until the test resumes them, whatever their ctx).
type gated struct {
	*store.Store
	partitioned atomic.Bool
	mu          sync.Mutex
	paused      chan struct{} // non-nil: calls wait for it to close
}

func (g *gated) wait(ctx context.Context) error {
	if g.partitioned.Load() {
		<-ctx.Done()
		return ctx.Err()
	}
	g.mu.Lock()
	p := g.paused
	g.mu.Unlock()
	if p != nil {
		<-p
	}
	return nil
}

func (g *gated) AcquireLease(ctx context.Context, name, holder string, ttl time.Duration) (store.Lease, bool, error) {
	if err := g.wait(ctx); err != nil {
		return store.Lease{}, false, err
	}
	return g.Store.AcquireLease(ctx, name, holder, ttl)
}

func (g *gated) RenewLease(ctx context.Context, l store.Lease, ttl time.Duration) error {
	if err := g.wait(ctx); err != nil {
		return err
	}
	return g.Store.RenewLease(ctx, l, ttl)
}

// replica is one Elector running, with the times its terms began and ended.
type replica struct {
	e      *Elector
	st     *gated
	cancel context.CancelFunc
	done   chan error

	mu     sync.Mutex
	starts []time.Time
	ends   []time.Time
	// placed holds the times fenced placement rounds that succeeded were
	// begun.
	placed []time.Time
}

func startReplica(t *testing.T, st *store.Store, holder string) *replica {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	r := &replica{st: &gated{Store: st}, cancel: cancel, done: make(chan error, 1)}
	r.e = New(testCfg, r.st, "control-plane", holder, slog.New(slog.DiscardHandler), nil)
	go func() {
		r.done <- r.e.Run(ctx, func(ctx context.Context) error {
			r.mu.Lock()
			r.starts = append(r.starts, time.Now())
			r.mu.Unlock()
			defer func() {
				r.mu.Lock()
				r.ends = append(r.ends, time.Now())
				r.mu.Unlock()
			}()
			// The singleton's work: a fenced write every few ms.
			for ctx.Err() == nil {
				at := time.Now()
				_, _, err := st.PlaceRound(ctx, func([]store.BrokerLoad, []store.Item) []store.Assignment { return nil })
				if err == nil {
					r.mu.Lock()
					r.placed = append(r.placed, at)
					r.mu.Unlock()
				}
				time.Sleep(5 * time.Millisecond)
			}
			return nil
		})
	}()
	t.Cleanup(func() { r.stop(t) })
	return r
}

// stop ends the replica's Run and checks it returned nil.
func (r *replica) stop(t *testing.T) {
	t.Helper()
	r.cancel()
	r.st.partitioned.Store(false)
	r.resume()
	if err, ok := <-r.done; ok {
		close(r.done)
		if err != nil {
			t.Errorf("Run: %v", err)
		}
	}
}

func (r *replica) pause() {
	r.st.mu.Lock()
	r.st.paused = make(chan struct{})
	r.st.mu.Unlock()
}

func (r *replica) resume() {
	r.st.mu.Lock()
	if r.st.paused != nil {
		close(r.st.paused)
		r.st.paused = nil
	}
	r.st.mu.Unlock()
}

func (r *replica) leading() bool { return testutil.ToFloat64(r.e.leader) == 1 }

func (r *replica) terms() (starts, ends, placed []time.Time) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]time.Time(nil), r.starts...), append([]time.Time(nil), r.ends...), append([]time.Time(nil), r.placed...)
}

func open(t *testing.T) *store.Store {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	st, err := store.Open(ctx, pgtest.URL(t), 8)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(st.Close)
	return st
}

// TestTakeoverAfterPartition: a leader cut off from Postgres stops its
// loops before its lease expires, the other replica takes over only
// after that, and the first, reconnected, stays a follower; a clean stop
// of the leader hands the lease over without waiting for the TTL.
func TestTakeoverAfterPartition(t *testing.T) {
	st := open(t)
	a := startReplica(t, st, "a")
	poll.Until(t, 10*time.Second, "a leads", poll.True(func() bool { return a.leading() }))
	b := startReplica(t, st, "b")
	time.Sleep(3 * testCfg.Renew)
	if b.leading() {
		t.Fatal("two replicas lead")
	}

	a.st.partitioned.Store(true)
	poll.Until(t, 10*time.Second, "b takes over", poll.True(func() bool { return b.leading() }))
	aStarts, aEnds, _ := a.terms()
	bStarts, _, _ := b.terms()
	if len(aStarts) != 1 || len(aEnds) != 1 || len(bStarts) != 1 {
		t.Fatalf("terms: a began %d, ended %d; b began %d", len(aStarts), len(aEnds), len(bStarts))
	}
	if !aEnds[0].Before(bStarts[0]) {
		t.Fatalf("a's loops stopped at %v, after b's began at %v", aEnds[0], bStarts[0])
	}
	if a.leading() {
		t.Fatal("a's gauge says it leads")
	}
	a.st.partitioned.Store(false)
	time.Sleep(3 * testCfg.Renew)
	if a.leading() || !b.leading() {
		t.Fatalf("after a reconnected: a leads %v, b leads %v", a.leading(), b.leading())
	}

	// A clean stop releases the lease: once b has stopped, the lease's
	// term is over (or a already holds it), without waiting for the TTL.
	// Checked in the lease row rather than by the handover's duration,
	// which a busy machine stretches past the TTL all the same.
	stopped := time.Now()
	b.stop(t)
	if l, held, err := st.LeaseHolder(context.Background(), "control-plane"); err != nil {
		t.Fatal(err)
	} else if held && l.Holder == "b" {
		t.Fatalf("b stopped cleanly %s ago and still holds the lease (term %d): it was not released", time.Since(stopped), l.Epoch)
	}
	poll.Until(t, 10*time.Second, "a takes over after b's clean stop", poll.True(func() bool { return a.leading() }))
	t.Logf("a took over %s after b's clean stop (TTL %s)", time.Since(stopped), testCfg.TTL)
	if got := testutil.ToFloat64(a.e.transitions.WithLabelValues("leader")); got != 2 {
		t.Fatalf("a's terms begun: %v, want 2", got)
	}
}

// TestPausedLeaderIsFenced: a leader paused (its renewal stuck, its loops
// still running) past its lease's expiry, when the other replica took over,
// makes no write after the takeover: its fenced writes fail, and once it
// resumes its renewal fails and its loops stop.
func TestPausedLeaderIsFenced(t *testing.T) {
	st := open(t)
	a := startReplica(t, st, "a")
	poll.Until(t, 10*time.Second, "a leads", poll.True(func() bool { return a.leading() }))
	b := startReplica(t, st, "b")

	a.pause()
	poll.Until(t, 10*time.Second, "b takes over", poll.True(func() bool { return b.leading() }))
	time.Sleep(3 * testCfg.Renew)
	if !a.leading() {
		t.Fatal("a stopped leading while paused (the test must hold its renewal)")
	}
	a.resume()
	poll.Until(t, 10*time.Second, "a stops", poll.True(func() bool { return !a.leading() }))

	bStarts, _, _ := b.terms()
	_, aEnds, aPlaced := a.terms()
	if len(aEnds) != 1 {
		t.Fatalf("a's terms ended: %d, want 1", len(aEnds))
	}
	for _, at := range aPlaced {
		if at.After(bStarts[0]) {
			t.Fatalf("a placed (a round begun at %v) after b took over at %v", at, bStarts[0])
		}
	}
	if len(aPlaced) == 0 {
		t.Fatal("a never placed: the test shows nothing")
	}
	if !b.leading() {
		t.Fatal("b lost the lease")
	}
}

// TestConfigValidate names the bounds of the flags.
func TestConfigValidate(t *testing.T) {
	for _, tc := range []struct {
		name string
		cfg  Config
		ok   bool
	}{
		{"defaults", Config{TTL: 10 * time.Second, Renew: 2 * time.Second}, true},
		{"three renewals", Config{TTL: 3 * time.Second, Renew: time.Second}, true},
		{"too few renewals", Config{TTL: 5 * time.Second, Renew: 2 * time.Second}, false},
		{"no renewal", Config{TTL: 5 * time.Second}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if err := tc.cfg.Validate(); (err == nil) != tc.ok {
				t.Fatalf("Validate: %v, want ok=%v", err, tc.ok)
			}
		})
	}
}
