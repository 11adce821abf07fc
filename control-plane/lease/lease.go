// Package lease elects the one control-plane replica that runs the
// singleton loops (placement and the rebalancer, the autoscaler, the
// ledger) through a lease row in Postgres (internal/store's leases).
//
// An Elector campaigns until its ctx ends. Holding the lease, it runs a
// term: the caller's function, with a context that carries the lease
// (store.WithLease, so the term's fenced writes commit only while the term
// lasts) and ends when the term does. It renews every Config.Renew; the
// term ends at once
//
//   - when Postgres says the term is over (expired, or another holder), or
//   - when TTL-Renew has passed since the last renewal that succeeded was
//     sent, whatever the reason (Postgres unreachable, this process paused),
//
// and Run waits for the term's function to return before it campaigns
// again. Postgres computes the expiry from its own clock when it receives
// the renewal, after this process sent it, so the local deadline comes
// at least Renew before anyone else can acquire the lease: the term's
// loops have that long to stop. A write that is still in flight after
// that (a process paused for longer) is fenced by the epoch instead.
//
// Only the clean shutdown releases the lease (so a rolling restart of the
// control plane hands over at once rather than after the TTL); a crash
// leaves it to expire.
package lease

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/spf13/pflag"

	"github.com/eddy-streams/eddy/internal/store"
)

// Config tunes an Elector.
type Config struct {
	// TTL is how long a term lasts without a renewal: after a leader
	// dies, the singleton loops resume elsewhere within TTL plus one
	// Renew (the other replicas retry acquiring every Renew).
	TTL time.Duration
	// Renew is how often the holder renews, and the others try to
	// acquire. The holder stops its loops when TTL-Renew passed without a
	// successful renewal, so TTL must leave room for at least two
	// renewals: TTL >= 3*Renew.
	Renew time.Duration
}

// DefaultConfig returns the defaults the flags start from.
func DefaultConfig() Config {
	return Config{TTL: 10 * time.Second, Renew: 2 * time.Second}
}

// RegisterFlags registers --lease-ttl and --lease-renew with the defaults
// of DefaultConfig.
func (c *Config) RegisterFlags(fs *pflag.FlagSet) {
	d := DefaultConfig()
	fs.DurationVar(&c.TTL, "lease-ttl", d.TTL, "how long the control plane's leader lease lasts without renewal: the bound on a failover of the singleton loops (placement, autoscaler, ledger)")
	fs.DurationVar(&c.Renew, "lease-renew", d.Renew, "how often the leader renews its lease and the other replicas try to take it; at most a third of --lease-ttl")
}

// Validate checks the bounds documented on Config.
func (c Config) Validate() error {
	switch {
	case c.Renew <= 0:
		return fmt.Errorf("lease: --lease-renew must be positive, got %s", c.Renew)
	case c.TTL < 3*c.Renew:
		return fmt.Errorf("lease: --lease-ttl (%s) must be at least 3 times --lease-renew (%s)", c.TTL, c.Renew)
	}
	return nil
}

// Store is the part of internal/store an Elector uses.
type Store interface {
	AcquireLease(ctx context.Context, name, holder string, ttl time.Duration) (store.Lease, bool, error)
	RenewLease(ctx context.Context, l store.Lease, ttl time.Duration) error
	ReleaseLease(ctx context.Context, l store.Lease) error
}

// Elector campaigns for one lease on behalf of one holder.
type Elector struct {
	cfg          Config
	st           Store
	name, holder string
	log          *slog.Logger
	leader       prometheus.Gauge
	transitions  *prometheus.CounterVec
}

// New returns an Elector for the lease name, held as holder (unique per
// process: a restarted process is a new holder); reg may be nil. New
// panics if cfg does not Validate: a wiring error cmd/eddy reports first.
func New(cfg Config, st Store, name, holder string, log *slog.Logger, reg prometheus.Registerer) *Elector {
	if err := cfg.Validate(); err != nil {
		panic(err)
	}
	e := &Elector{
		cfg: cfg, st: st, name: name, holder: holder,
		log: log.With("lease", name, "holder", holder),
		leader: prometheus.NewGauge(prometheus.GaugeOpts{Name: "eddy_controlplane_leader",
			Help: "1 while this control plane holds the lease and runs the singleton loops."}),
		transitions: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "eddy_controlplane_lease_transitions_total",
			Help: "Terms begun (to=leader) and ended (to=follower) by this control plane."}, []string{"to"}),
	}
	e.transitions.WithLabelValues("leader")
	e.transitions.WithLabelValues("follower")
	if reg != nil {
		reg.MustRegister(e.leader, e.transitions)
	}
	return e
}

// errTermEnded is what Run returns when a term's function returned while
// the term lasted: a singleton stopped on its own, which stops the process
// as it would without a lease.
var errTermEnded = errors.New("lease: the singleton loops stopped while leading")

// Run campaigns until ctx ends, running term for each term won (see the
// package doc). It returns nil once ctx ended and the last term's function
// returned, or the error of a term's function that returned while its term
// lasted (errTermEnded if that was nil).
func (e *Elector) Run(ctx context.Context, term func(ctx context.Context) error) error {
	for {
		sent := time.Now()
		actx, cancel := context.WithTimeout(ctx, e.cfg.Renew)
		l, ok, err := e.st.AcquireLease(actx, e.name, e.holder, e.cfg.TTL)
		cancel()
		switch {
		case err != nil && ctx.Err() == nil:
			e.log.Warn("lease: acquiring failed", "err", err)
		case ok:
			if err := e.hold(ctx, l, sent, term); err != nil {
				return err
			}
		}
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(e.cfg.Renew):
		}
	}
}

// hold runs one term: term's function, renewals, and the end of both.
func (e *Elector) hold(ctx context.Context, l store.Lease, sent time.Time, term func(context.Context) error) error {
	deadline := sent.Add(e.cfg.TTL - e.cfg.Renew)
	tctx, stop := context.WithCancel(store.WithLease(ctx, l))
	defer stop()
	done := make(chan error, 1)
	go func() { done <- term(tctx) }()
	e.leader.Set(1)
	e.transitions.WithLabelValues("leader").Inc()
	e.log.Info("lease acquired: running the singleton loops", "epoch", l.Epoch)

	renew := time.NewTicker(e.cfg.Renew)
	defer renew.Stop()
	expire := time.NewTimer(time.Until(deadline))
	defer expire.Stop()
	var (
		why     string
		failure error
		ended   bool
	)
	for why == "" {
		select {
		case <-ctx.Done():
			why = "shutting down"
		case err := <-done:
			ended, why = true, "the singleton loops stopped"
			failure = err
			if failure == nil {
				failure = errTermEnded
			}
		case <-expire.C:
			why = "no renewal within the TTL's margin"
		case <-renew.C:
			at := time.Now()
			rctx, cancel := context.WithDeadline(ctx, deadline)
			err := e.st.RenewLease(rctx, l, e.cfg.TTL)
			cancel()
			switch {
			case err == nil:
				deadline = at.Add(e.cfg.TTL - e.cfg.Renew)
				expire.Reset(time.Until(deadline))
			case errors.Is(err, store.ErrNotLeader):
				why = "the lease was lost"
			case ctx.Err() == nil:
				e.log.Warn("lease: renewal failed; retrying", "err", err, "stop_in", time.Until(deadline).Round(time.Millisecond))
			}
		}
	}
	// Stop first, then say so: the gauge reads 0 only once the loops have
	// returned.
	stop()
	if !ended {
		if err := <-done; err != nil && !errors.Is(err, context.Canceled) {
			e.log.Warn("lease: the singleton loops stopped with an error", "err", err)
		}
	}
	e.leader.Set(0)
	e.transitions.WithLabelValues("follower").Inc()
	e.log.Info("lease term over: the singleton loops stopped", "epoch", l.Epoch, "reason", why)
	// The release is worth trying until the term would expire anyway
	// (deadline leaves a Renew of margin before it): it ends the term only
	// if it is still this one's (store.ReleaseLease), and on a loaded
	// machine one Renew was too short for it (the lease then lasted its
	// TTL after a clean stop).
	if expiry := deadline.Add(e.cfg.Renew); (ctx.Err() != nil || ended) && time.Now().Before(expiry) {
		rctx, cancel := context.WithDeadline(context.WithoutCancel(ctx), expiry)
		if err := e.st.ReleaseLease(rctx, l); err != nil {
			e.log.Warn("lease: release failed; it expires on its own", "err", err)
		}
		cancel()
	}
	if ended && ctx.Err() == nil {
		return failure
	}
	return nil
}
