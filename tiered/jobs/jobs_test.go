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
	"github.com/eddy-streams/eddy/internal/store"
	"github.com/eddy-streams/eddy/internal/tieredtest"
	"github.com/eddy-streams/eddy/tiered/jobs"
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
	if mine, err := e.St.FinishJob(ctx, jobsJob("test", "k"), "dead", nil, time.Second); err != nil || mine {
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

func jobsJob(kind, key string) store.Job { return store.Job{Kind: kind, Key: key} }

// runnerConfig is jobs.DefaultConfig with one worker and the given lease.
func runnerConfig(lease time.Duration) jobs.Config {
	cfg := jobs.DefaultConfig()
	cfg.Workers, cfg.Lease = 1, lease
	return cfg
}
