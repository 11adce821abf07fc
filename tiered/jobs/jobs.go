// Package jobs runs recurring background work (retention, compaction,
// garbage collection) claimed from the Postgres jobs table, so any number
// of workers, in any processes, share it and no job runs twice at once.
//
// A job is a row (kind, key) with a period. A worker claims the most
// overdue job nobody holds with SELECT ... FOR UPDATE SKIP LOCKED and
// takes a lease on it; while the handler runs the worker renews the lease
// every Lease/3. A worker that dies stops renewing, its lease expires and
// another worker claims the job. A worker that loses its lease (it was
// paused longer than the lease) has its handler's context cancelled and
// its finish refused, so handlers must be safe to run again from the start
// — every handler in tiered/ is: each of its steps is one transaction
// whose effect a rerun recognises.
//
// A handler that panics does not take the process down: the runner
// recovers the panic, logs it with its stack, counts it and records it as
// a failure of the job. A job that fails (or panics, or whose worker died
// holding it) QuarantineAfter times in a row is quarantined: it is not
// claimed again for QuarantineFor, so that a poison object or partition
// costs one attempt per quarantine period instead of one per retry, and a
// job that crashes a process does not walk the pool. A panic in a
// goroutine the handler started cannot be recovered here.
//
// Runner.Run owns its worker goroutines and returns after they stop.
package jobs

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"runtime/debug"
	"sync"
	"time"

	"github.com/eddy-streams/eddy/internal/store"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/spf13/pflag"
)

// Config tunes a Runner.
type Config struct {
	// Workers is how many jobs this process runs at once (0: no worker).
	Workers int
	// Lease is how long a claimed job stays reserved without renewal; a
	// dead worker's job is picked up again this long after it died.
	Lease time.Duration
	// Poll is how often an idle worker looks for due jobs.
	Poll time.Duration
	// Retry is the longest a failed job waits before it runs again.
	Retry time.Duration
	// QuarantineAfter is how many consecutive failed attempts quarantine
	// a job (attempts count from its last success; a panic and a worker
	// that died holding the job count as failures, a worker that stops
	// and hands the job back does not).
	QuarantineAfter int
	// QuarantineFor is how long a quarantined job waits before it runs
	// again, whatever its period; each failure after that quarantines it
	// again, a success ends the quarantine.
	QuarantineFor time.Duration
}

// DefaultConfig returns the defaults the flags start from.
func DefaultConfig() Config {
	return Config{Workers: 1, Lease: 30 * time.Second, Poll: time.Second, Retry: 10 * time.Second,
		QuarantineAfter: 10, QuarantineFor: time.Hour}
}

// RegisterFlags registers the runner's flags with the defaults of
// DefaultConfig.
func (c *Config) RegisterFlags(fs *pflag.FlagSet) {
	d := DefaultConfig()
	fs.IntVar(&c.Workers, "jobs-workers", d.Workers, "background jobs (retention, compaction, gc) this process runs at once; 0 runs none")
	fs.DurationVar(&c.Lease, "jobs-lease", d.Lease, "how long a claimed job stays reserved without renewal")
	fs.DurationVar(&c.Poll, "jobs-poll", d.Poll, "how often an idle worker looks for due jobs")
	fs.DurationVar(&c.Retry, "jobs-retry", d.Retry, "longest a failed job waits before it runs again")
	fs.IntVar(&c.QuarantineAfter, "jobs-quarantine-after", d.QuarantineAfter, "consecutive failures (panics and crashed workers included) after which a job is quarantined")
	fs.DurationVar(&c.QuarantineFor, "jobs-quarantine-for", d.QuarantineFor, "how long a quarantined job waits before it is tried again")
}

// Validate checks the configuration, naming the flag of a bad value.
func (c *Config) Validate() error {
	switch {
	case c.Workers < 0:
		return fmt.Errorf("jobs: --jobs-workers must be >= 0, got %d", c.Workers)
	case c.Lease < 30*time.Millisecond:
		return fmt.Errorf("jobs: --jobs-lease %s is too short (at least 30ms)", c.Lease)
	case c.Poll <= 0:
		return fmt.Errorf("jobs: --jobs-poll must be positive, got %s", c.Poll)
	case c.Retry <= 0:
		return fmt.Errorf("jobs: --jobs-retry must be positive, got %s", c.Retry)
	case c.QuarantineAfter < 1:
		return fmt.Errorf("jobs: --jobs-quarantine-after must be >= 1, got %d", c.QuarantineAfter)
	case c.QuarantineFor <= 0:
		return fmt.Errorf("jobs: --jobs-quarantine-for must be positive, got %s", c.QuarantineFor)
	}
	return nil
}

// Handler runs one job. key is the job's key. ctx ends when the runner
// stops or the worker loses its lease.
type Handler func(ctx context.Context, key string) error

// ErrLeaseLost is the cause of a handler's context cancellation when the
// worker lost its lease.
var ErrLeaseLost = errors.New("jobs: lease lost")

type schedule struct {
	kind, key string
	every     time.Duration
}

// Runner claims and runs jobs. Register handlers and schedules before Run.
type Runner struct {
	cfg         Config
	st          *store.Store
	log         *slog.Logger
	owner       string
	handlers    map[string]Handler
	kinds       []string
	sched       []schedule
	runs        *prometheus.CounterVec
	seconds     *prometheus.HistogramVec
	panics      *prometheus.CounterVec
	quarantines *prometheus.CounterVec
	quarantined prometheus.Gauge
}

// New returns a Runner; reg may be nil.
func New(cfg Config, st *store.Store, log *slog.Logger, reg prometheus.Registerer) (*Runner, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	var id [4]byte
	_, _ = rand.Read(id[:])
	host, _ := os.Hostname()
	r := &Runner{
		cfg: cfg, st: st, log: log,
		owner:    fmt.Sprintf("%s/%d/%s", host, os.Getpid(), hex.EncodeToString(id[:])),
		handlers: map[string]Handler{},
		runs: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "eddy_jobs_total", Help: "Background job runs by kind and outcome (ok, error, lease_lost)."},
			[]string{"kind", "outcome"}),
		seconds: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "eddy_job_seconds", Help: "Background job run time by kind.",
			Buckets: prometheus.ExponentialBuckets(0.001, 4, 10)}, []string{"kind"}),
		panics: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "eddy_jobs_panics_total", Help: "Background job handlers that panicked (recovered, counted as failures), by kind."},
			[]string{"kind"}),
		quarantines: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "eddy_jobs_quarantines_total", Help: "Background jobs quarantined after --jobs-quarantine-after consecutive failures, by kind."},
			[]string{"kind"}),
		quarantined: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "eddy_jobs_quarantined", Help: "Background jobs quarantined now, across the pool, as this process last counted them (after each job it ran)."}),
	}
	if reg != nil {
		reg.MustRegister(r.runs, r.seconds, r.panics, r.quarantines, r.quarantined)
	}
	return r, nil
}

// Owner is the name this runner's leases carry.
func (r *Runner) Owner() string { return r.owner }

// Handle registers the handler of a kind of job.
func (r *Runner) Handle(kind string, h Handler) {
	if _, ok := r.handlers[kind]; !ok {
		r.kinds = append(r.kinds, kind)
	}
	r.handlers[kind] = h
}

// Schedule makes Run ensure that the job (kind, key) exists and recurs
// every period. Any number of processes may schedule the same job: there
// is one row.
func (r *Runner) Schedule(kind, key string, every time.Duration) {
	r.sched = append(r.sched, schedule{kind, key, every})
}

// Run ensures the scheduled jobs exist, then runs cfg.Workers workers
// until ctx ends, and returns once they have stopped (a handler in flight
// sees its context cancelled and its job is handed back, due at once).
func (r *Runner) Run(ctx context.Context) error {
	for _, s := range r.sched {
		for {
			err := r.st.EnsureJob(ctx, s.kind, s.key, s.every)
			if err == nil {
				break
			}
			if ctx.Err() != nil {
				return nil
			}
			r.log.Warn("cannot schedule job; retrying", "kind", s.kind, "key", s.key, "err", err)
			select {
			case <-ctx.Done():
				return nil
			case <-time.After(r.cfg.Poll):
			}
		}
	}
	if r.cfg.Workers == 0 || len(r.kinds) == 0 {
		<-ctx.Done()
		return nil
	}
	var wg sync.WaitGroup
	for range r.cfg.Workers {
		wg.Go(func() { r.work(ctx) })
	}
	wg.Wait()
	return nil
}

func (r *Runner) work(ctx context.Context) {
	for ctx.Err() == nil {
		ran, err := r.RunOnce(ctx)
		if err != nil && ctx.Err() == nil {
			r.log.Warn("job claim failed", "err", err)
		}
		if ran {
			continue // more may be due
		}
		select {
		case <-ctx.Done():
		case <-time.After(r.cfg.Poll):
		}
	}
}

// RunOnce claims one due job and runs it. ran is false if none was due.
// The returned error is about claiming or finishing, not the job's own
// failure (which is logged, counted and recorded in the job's row).
func (r *Runner) RunOnce(ctx context.Context) (ran bool, err error) {
	if err := r.quarantineAbandoned(ctx); err != nil {
		return false, err
	}
	j, ok, err := r.st.ClaimJob(ctx, r.owner, r.kinds, r.cfg.Lease)
	if err != nil || !ok {
		return false, err
	}
	start := time.Now()
	jctx, cancel := context.WithCancelCause(ctx)
	renewDone := make(chan struct{})
	go func() {
		defer close(renewDone)
		t := time.NewTicker(r.cfg.Lease / 3)
		defer t.Stop()
		for {
			select {
			case <-jctx.Done():
				return
			case <-t.C:
			}
			ok, err := r.st.ExtendLease(jctx, j, r.owner, r.cfg.Lease)
			if err == nil && !ok {
				cancel(ErrLeaseLost)
				return
			}
		}
	}()
	jobErr := r.run(jctx, j)
	lost := errors.Is(context.Cause(jctx), ErrLeaseLost)
	cancel(nil)
	<-renewDone
	r.seconds.WithLabelValues(j.Kind).Observe(time.Since(start).Seconds())
	if ctx.Err() != nil {
		// Shutting down: hand the job back at once rather than leave the
		// lease to lapse.
		fctx, fcancel := context.WithTimeout(context.WithoutCancel(ctx), 2*time.Second)
		defer fcancel()
		r.st.ReleaseJob(fctx, j, r.owner)
		return true, nil
	}
	if lost {
		r.runs.WithLabelValues(j.Kind, "lease_lost").Inc()
		r.log.Warn("job lease lost", "kind", j.Kind, "key", j.Key)
		return true, nil
	}
	outcome := "ok"
	if jobErr != nil {
		outcome = "error"
		r.log.Warn("job failed", "kind", j.Kind, "key", j.Key, "attempt", j.Attempts, "err", jobErr)
	}
	r.runs.WithLabelValues(j.Kind, outcome).Inc()
	fctx, fcancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer fcancel()
	mine, quarantined, err := r.st.FinishJob(fctx, j, r.owner, jobErr, r.retry())
	if err != nil {
		return true, err
	}
	if !mine {
		r.log.Warn("job finished after its lease was lost", "kind", j.Kind, "key", j.Key)
	}
	if quarantined {
		r.quarantine(j, jobErr)
	}
	// One count per job run keeps the gauge as fresh as this process's
	// view of the jobs, at the cost of one scan of a small table.
	if n, err := r.st.QuarantinedJobs(fctx, r.cfg.QuarantineAfter); err == nil {
		r.quarantined.Set(float64(n))
	}
	return true, nil
}

func (r *Runner) retry() store.JobRetry {
	return store.JobRetry{After: r.cfg.Retry, QuarantineAfter: r.cfg.QuarantineAfter, QuarantineFor: r.cfg.QuarantineFor}
}

// quarantineAbandoned quarantines the jobs whose workers kept dying
// holding them: such a job never reaches FinishJob, so it is caught when
// the next worker would claim it.
func (r *Runner) quarantineAbandoned(ctx context.Context) error {
	js, err := r.st.QuarantineAbandonedJobs(ctx, r.kinds, r.retry())
	for _, j := range js {
		r.quarantine(j, store.ErrJobAbandoned)
	}
	return err
}

func (r *Runner) quarantine(j store.Job, last error) {
	r.quarantines.WithLabelValues(j.Kind).Inc()
	r.log.Warn("job quarantined", "kind", j.Kind, "key", j.Key, "attempts", j.Attempts,
		"for", r.cfg.QuarantineFor, "err", last)
}

func (r *Runner) run(ctx context.Context, j store.Job) (err error) {
	defer func() {
		if p := recover(); p != nil {
			r.panics.WithLabelValues(j.Kind).Inc()
			r.log.Error("job panicked", "kind", j.Kind, "key", j.Key, "attempt", j.Attempts,
				"panic", fmt.Sprint(p), "stack", string(debug.Stack()))
			err = fmt.Errorf("jobs: %s/%s panicked: %v", j.Kind, j.Key, p)
		}
	}()
	h := r.handlers[j.Kind]
	if h == nil {
		return fmt.Errorf("jobs: no handler for kind %q", j.Kind)
	}
	return h(ctx, j.Key)
}
