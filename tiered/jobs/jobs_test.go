package jobs_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/eddy-streams/eddy/internal/pgtest"
	"github.com/eddy-streams/eddy/internal/poll"
	"github.com/eddy-streams/eddy/internal/store"
	"github.com/eddy-streams/eddy/internal/tieredtest"
	"github.com/eddy-streams/eddy/tiered/jobs"
	"github.com/prometheus/client_golang/prometheus"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

// Several runners racing for the same jobs run each one exactly once per
// period: the claim is FOR UPDATE SKIP LOCKED.
func TestEveryJobRunsOnceAcrossWorkers(t *testing.T) {
	ctx := context.Background()
	e := tieredtest.New(t)
	const n = 20
	var (
		mu   sync.Mutex
		runs = map[string]int{}
		busy atomic.Int32
		peak atomic.Int32
	)
	h := func(ctx context.Context, key string) error {
		cur := busy.Add(1)
		for {
			p := peak.Load()
			if cur <= p || peak.CompareAndSwap(p, cur) {
				break
			}
		}
		time.Sleep(5 * time.Millisecond)
		busy.Add(-1)
		mu.Lock()
		runs[key]++
		mu.Unlock()
		return nil
	}
	for i := range n {
		if err := e.St.EnsureJob(ctx, "test", fmt.Sprint(i), time.Hour); err != nil {
			t.Fatal(err)
		}
	}
	var wg sync.WaitGroup
	for range 4 {
		r, err := jobs.New(runnerConfig(10*time.Second), e.St, e.Log, nil)
		if err != nil {
			t.Fatal(err)
		}
		r.Handle("test", h)
		wg.Go(func() {
			for {
				ran, err := r.RunOnce(ctx)
				if err != nil {
					t.Error(err)
					return
				}
				if !ran {
					return
				}
			}
		})
	}
	wg.Wait()
	if len(runs) != n {
		t.Fatalf("%d jobs ran, want %d", len(runs), n)
	}
	for k, c := range runs {
		if c != 1 {
			t.Errorf("job %s ran %d times", k, c)
		}
	}
	if peak.Load() < 2 {
		t.Logf("jobs never overlapped (peak %d); the machine may be loaded", peak.Load())
	}
}

// A worker that dies holding a job leaves a lease that expires; another
// worker then claims and runs the job.
func TestDeadWorkersJobIsTakenOver(t *testing.T) {
	ctx := context.Background()
	e := tieredtest.New(t)
	if err := e.St.EnsureJob(ctx, "test", "k", time.Hour); err != nil {
		t.Fatal(err)
	}
	const lease = 500 * time.Millisecond
	// The "dead" worker: claims and never renews nor finishes. Its lease
	// runs from when Postgres took the claim, which is after claimed and
	// may be well before ClaimJob returns on a busy machine.
	claimed := time.Now()
	if _, ok, err := e.St.ClaimJob(ctx, "dead", []string{"test"}, lease); err != nil || !ok {
		t.Fatalf("claim: %v %v", ok, err)
	}
	var ran atomic.Int32
	r, err := jobs.New(runnerConfig(time.Second), e.St, e.Log, nil)
	if err != nil {
		t.Fatal(err)
	}
	r.Handle("test", func(context.Context, string) error { ran.Add(1); return nil })
	for ran.Load() == 0 {
		ok, err := r.RunOnce(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if ok && time.Since(claimed) < lease {
			t.Fatal("job taken over before the dead worker's lease expired")
		}
		if time.Since(claimed) > 30*time.Second {
			t.Fatal("job never taken over")
		}
		time.Sleep(50 * time.Millisecond)
	}
	// The dead worker's late finish is refused.
	if mine, _, err := e.St.FinishJob(ctx, jobsJob("test", "k"), "dead", nil, store.JobRetry{After: time.Second}); err != nil || mine {
		t.Fatalf("late finish by the dead worker: mine=%v err=%v", mine, err)
	}
	// Done, and not due again for an hour.
	if ok, err := r.RunOnce(ctx); err != nil || ok {
		t.Fatalf("job ran again: %v %v", ok, err)
	}
}

// A failing job is retried after the retry delay, not the full period.
func TestFailedJobIsRetried(t *testing.T) {
	ctx := context.Background()
	e := tieredtest.New(t)
	if err := e.St.EnsureJob(ctx, "test", "k", time.Hour); err != nil {
		t.Fatal(err)
	}
	cfg := runnerConfig(time.Second)
	cfg.Retry = 100 * time.Millisecond
	r, err := jobs.New(cfg, e.St, e.Log, nil)
	if err != nil {
		t.Fatal(err)
	}
	var calls atomic.Int32
	r.Handle("test", func(context.Context, string) error {
		if calls.Add(1) == 1 {
			return errors.New("boom")
		}
		panic("and again")
	})
	deadline := time.Now().Add(30 * time.Second)
	for calls.Load() < 2 && time.Now().Before(deadline) {
		if _, err := r.RunOnce(ctx); err != nil {
			t.Fatal(err)
		}
		time.Sleep(20 * time.Millisecond)
	}
	if calls.Load() < 2 {
		t.Fatal("failed job was not retried")
	}
}

// A handler that panics does not take the process down: the panic is
// counted and recorded as a failure of the job, whose attempts grow.
func TestPanickingJobIsAFailure(t *testing.T) {
	ctx := context.Background()
	e := tieredtest.New(t)
	if err := e.St.EnsureJob(ctx, "test", "k", time.Hour); err != nil {
		t.Fatal(err)
	}
	cfg := runnerConfig(time.Second)
	cfg.Retry = 50 * time.Millisecond
	r, reg := newRunner(t, e, cfg)
	var calls atomic.Int32
	r.Handle("test", func(context.Context, string) error {
		calls.Add(1)
		var m map[string]int
		m["poison"]++ // a nil map: a runtime panic, as a bug on bad data gives
		return nil
	})
	runUntil(t, r, func() bool { return calls.Load() == 2 })
	wantMetric(t, reg, "eddy_jobs_panics_total", 2)
	wantMetric(t, reg, "eddy_jobs_total", 2)
	// Two failed attempts, and the probe's claim makes the third.
	if a := attempts(t, e.St, "test", "k"); a != 3 {
		t.Errorf("attempts after two panics: %d, want 3", a)
	}
}

// A job that keeps failing is quarantined after QuarantineAfter attempts:
// not claimed again until QuarantineFor has passed, then tried once more;
// a success ends the count.
func TestFailingJobIsQuarantined(t *testing.T) {
	ctx := context.Background()
	e := tieredtest.New(t)
	// A period shorter than the quarantine: the quarantine wins.
	if err := e.St.EnsureJob(ctx, "test", "k", 500*time.Millisecond); err != nil {
		t.Fatal(err)
	}
	cfg := runnerConfig(time.Second)
	cfg.Retry, cfg.QuarantineAfter, cfg.QuarantineFor = 20*time.Millisecond, 3, 2*time.Second
	r, reg := newRunner(t, e, cfg)
	var calls, fail atomic.Int32
	fail.Store(1)
	r.Handle("test", func(context.Context, string) error {
		calls.Add(1)
		if fail.Load() == 1 {
			return errors.New("poison object")
		}
		return nil
	})
	runUntil(t, r, func() bool { return calls.Load() == 3 })
	quarantinedAt := time.Now()
	wantMetric(t, reg, "eddy_jobs_quarantines_total", 1)
	wantMetric(t, reg, "eddy_jobs_quarantined", 1)
	// Not claimed while quarantined (checked over well under its 2 s).
	notClaimedUntil(t, r, quarantinedAt.Add(700*time.Millisecond))
	// Tried again after the quarantine; failing, it is quarantined again.
	runUntil(t, r, func() bool { return calls.Load() == 4 })
	if d := time.Since(quarantinedAt); d < cfg.QuarantineFor-100*time.Millisecond {
		t.Errorf("quarantined job ran again after %s, want %s", d, cfg.QuarantineFor)
	}
	wantMetric(t, reg, "eddy_jobs_quarantines_total", 2)
	// A success resets the attempts and the gauge.
	fail.Store(0)
	runUntil(t, r, func() bool { return calls.Load() == 5 })
	wantMetric(t, reg, "eddy_jobs_quarantined", 0)
	if a := attempts(t, e.St, "test", "k"); a != 1 {
		t.Errorf("attempts after a success: %d, want 1 (the probe's claim)", a)
	}
}

// A job whose workers keep dying holding it (a crash no recover catches)
// is quarantined instead of claimed by the next worker.
func TestJobThatKillsItsWorkersIsQuarantined(t *testing.T) {
	ctx := context.Background()
	e := tieredtest.New(t)
	if err := e.St.EnsureJob(ctx, "test", "k", time.Hour); err != nil {
		t.Fatal(err)
	}
	const lease = 100 * time.Millisecond
	for _, dead := range []string{"dead1", "dead2"} {
		poll.Until(t, 10*time.Second, dead+"'s claim", func() error {
			_, ok, err := e.St.ClaimJob(ctx, dead, []string{"test"}, lease)
			if err == nil && !ok {
				err = errors.New("not claimable yet")
			}
			return err
		})
	}
	cfg := runnerConfig(time.Second)
	cfg.QuarantineAfter, cfg.QuarantineFor = 2, 2*time.Second
	r, reg := newRunner(t, e, cfg)
	var calls atomic.Int32
	r.Handle("test", func(context.Context, string) error { calls.Add(1); return nil })
	poll.Until(t, 10*time.Second, "the quarantine", func() error {
		if _, err := r.RunOnce(ctx); err != nil {
			return err
		}
		if metric(t, reg, "eddy_jobs_quarantines_total") != 1 {
			return errors.New("not quarantined")
		}
		return nil
	})
	quarantinedAt := time.Now()
	notClaimedUntil(t, r, quarantinedAt.Add(700*time.Millisecond))
	if calls.Load() != 0 {
		t.Fatal("the handler ran while the job was quarantined")
	}
	runUntil(t, r, func() bool { return calls.Load() == 1 })
}

// A worker that stops hands its job back without counting the attempt,
// so rolling restarts never quarantine a job.
func TestStoppedWorkerDoesNotCountAnAttempt(t *testing.T) {
	ctx := context.Background()
	e := tieredtest.New(t)
	if err := e.St.EnsureJob(ctx, "test", "k", time.Hour); err != nil {
		t.Fatal(err)
	}
	cfg := runnerConfig(time.Second)
	cfg.QuarantineAfter = 1
	r, err := jobs.New(cfg, e.St, e.Log, nil)
	if err != nil {
		t.Fatal(err)
	}
	started := make(chan struct{})
	r.Handle("test", func(ctx context.Context, _ string) error {
		close(started)
		<-ctx.Done()
		return ctx.Err()
	})
	rctx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { _, err := r.RunOnce(rctx); done <- err }()
	<-started
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	// Due at once, and the probe's claim is the first counted attempt.
	if a := attempts(t, e.St, "test", "k"); a != 1 {
		t.Errorf("attempts after a handback: %d, want 1", a)
	}
}

// newRunner returns a runner on e's store with its own registry.
func newRunner(t *testing.T, e *tieredtest.Env, cfg jobs.Config) (*jobs.Runner, *prometheus.Registry) {
	t.Helper()
	reg := prometheus.NewRegistry()
	r, err := jobs.New(cfg, e.St, e.Log, reg)
	if err != nil {
		t.Fatal(err)
	}
	return r, reg
}

// notClaimedUntil checks that r finds no due job until the deadline.
func notClaimedUntil(t *testing.T, r *jobs.Runner, deadline time.Time) {
	t.Helper()
	for time.Now().Before(deadline) {
		if ran, err := r.RunOnce(context.Background()); err != nil || ran {
			t.Fatalf("quarantined job claimed: ran=%v err=%v", ran, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// runUntil runs r's due jobs until cond holds.
func runUntil(t *testing.T, r *jobs.Runner, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not reached in 30s")
		}
		ran, err := r.RunOnce(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		if !ran {
			time.Sleep(10 * time.Millisecond)
		}
	}
}

// attempts claims the job (kind, key) as a probe worker once it is due, which counts
// one attempt, returns its attempts and hands it back uncounted.
func attempts(t *testing.T, st *store.Store, kind, key string) int {
	t.Helper()
	ctx := context.Background()
	var j store.Job
	poll.Until(t, 10*time.Second, "the job due", func() (err error) {
		var ok bool
		if j, ok, err = st.ClaimJob(ctx, "probe", []string{kind}, time.Minute); err == nil && !ok {
			err = errors.New("not due")
		}
		return err
	})
	if j.Key != key {
		t.Fatalf("probe claimed %s/%s, want key %s", j.Kind, j.Key, key)
	}
	if _, err := st.ReleaseJob(ctx, j, "probe"); err != nil {
		t.Fatal(err)
	}
	return j.Attempts
}

// wantMetric checks the sum of a metric family's series.
func wantMetric(t *testing.T, reg *prometheus.Registry, name string, want float64) {
	t.Helper()
	if got := metric(t, reg, name); got != want {
		t.Errorf("%s = %v, want %v", name, got, want)
	}
}

// metric sums the series of a metric family gathered from reg.
func metric(t *testing.T, reg *prometheus.Registry, name string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var sum float64
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			sum += m.GetCounter().GetValue() + m.GetGauge().GetValue()
		}
	}
	return sum
}

func jobsJob(kind, key string) store.Job { return store.Job{Kind: kind, Key: key} }

// runnerConfig is jobs.DefaultConfig with one worker and the given lease.
func runnerConfig(lease time.Duration) jobs.Config {
	cfg := jobs.DefaultConfig()
	cfg.Workers, cfg.Lease = 1, lease
	return cfg
}
