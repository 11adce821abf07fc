// Package laghistory keeps consumer-group lag over time on the server, so
// a group's lag can be charted beyond the minutes a console page has been
// open: once per Config.Interval a Sampler stores every group's total and
// per-partition lag, computed from its committed offsets and the
// partitions' high watermarks as GET /v1/clusters/{id}/consumer-groups/{g}
// computes it, into group_lag_samples (migration 0025), and deletes
// samples older than Config.Retention in bounded batches.
//
// Bounds: at most Config.MaxGroupsPerCluster groups of a cluster are
// sampled (the first by group id), so a cluster holds at most
// MaxGroupsPerCluster x Retention/Interval rows. Samples are taken at
// instants truncated to the interval and stored idempotently, so any number
// of control planes may run a Sampler; the control plane runs it on the
// replica holding the lease. Run owns no goroutine beyond its caller's and
// returns when ctx ends.
package laghistory

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/spf13/pflag"

	"github.com/eddy-streams/eddy/internal/store"
)

// Config tunes a Sampler.
type Config struct {
	// Interval is how often lag is sampled.
	Interval time.Duration
	// Retention is how long samples are kept.
	Retention time.Duration
	// MaxGroupsPerCluster bounds the groups of one cluster sampled.
	MaxGroupsPerCluster int
}

// DefaultConfig returns the defaults the flags start from: a sample a
// minute kept a week.
func DefaultConfig() Config {
	return Config{Interval: time.Minute, Retention: 7 * 24 * time.Hour, MaxGroupsPerCluster: 1000}
}

// RegisterFlags registers the sampler's flags on fs.
func (c *Config) RegisterFlags(fs *pflag.FlagSet) {
	d := DefaultConfig()
	fs.DurationVar(&c.Interval, "lag-sample-interval", d.Interval, "how often every consumer group's lag is sampled for its lag history")
	fs.DurationVar(&c.Retention, "lag-retention", d.Retention, "how long consumer-group lag samples are kept")
	fs.IntVar(&c.MaxGroupsPerCluster, "lag-max-groups-per-cluster", d.MaxGroupsPerCluster, "most consumer groups of one cluster whose lag is sampled (the first by group id)")
}

// Validate checks the configuration, naming the flag of a bad value.
func (c *Config) Validate() error {
	switch {
	case c.Interval < time.Second:
		return fmt.Errorf("laghistory: --lag-sample-interval must be at least 1s, got %s", c.Interval)
	case c.Retention < c.Interval:
		return fmt.Errorf("laghistory: --lag-retention must be at least --lag-sample-interval, got %s", c.Retention)
	case c.MaxGroupsPerCluster <= 0:
		return fmt.Errorf("laghistory: --lag-max-groups-per-cluster must be positive, got %d", c.MaxGroupsPerCluster)
	}
	return nil
}

// pruneBatch bounds one DELETE of old samples.
const pruneBatch = 10_000

// Sampler samples consumer-group lag into the store.
type Sampler struct {
	cfg Config
	st  *store.Store
	log *slog.Logger

	groups prometheus.Gauge
	errors prometheus.Counter
}

// New makes a Sampler; cfg must have been validated. reg receives its
// metrics (nil: none).
func New(cfg Config, st *store.Store, log *slog.Logger, reg prometheus.Registerer) *Sampler {
	s := &Sampler{cfg: cfg, st: st, log: log.With("component", "laghistory"),
		groups: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "eddy_lag_history_groups_sampled", Help: "Consumer groups whose lag the last lag-history sample stored."}),
		errors: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "eddy_lag_history_errors_total", Help: "Lag-history samples or prunes that failed."}),
	}
	if reg != nil {
		reg.MustRegister(s.groups, s.errors)
	}
	return s
}

// Run samples and prunes every Interval until ctx ends.
func (s *Sampler) Run(ctx context.Context) {
	for {
		s.Sample(ctx, time.Now())
		s.Prune(ctx, time.Now())
		wait := time.Until(time.Now().Truncate(s.cfg.Interval).Add(s.cfg.Interval))
		select {
		case <-ctx.Done():
			return
		case <-time.After(wait):
		}
	}
}

// Sample stores every group's lag at now truncated to the interval.
func (s *Sampler) Sample(ctx context.Context, now time.Time) {
	n, err := s.st.SampleGroupLag(ctx, now.Truncate(s.cfg.Interval), s.cfg.MaxGroupsPerCluster)
	if err != nil {
		if ctx.Err() == nil {
			s.errors.Inc()
			s.log.Warn("sampling consumer-group lag failed", "err", err)
		}
		return
	}
	s.groups.Set(float64(n))
}

// Prune deletes the samples older than the retention, a batch at a time.
func (s *Sampler) Prune(ctx context.Context, now time.Time) {
	before := now.Add(-s.cfg.Retention)
	for ctx.Err() == nil {
		n, err := s.st.PruneGroupLag(ctx, before, pruneBatch)
		if err != nil {
			if ctx.Err() == nil {
				s.errors.Inc()
				s.log.Warn("pruning consumer-group lag samples failed", "err", err)
			}
			return
		}
		if n < pruneBatch {
			return
		}
	}
}
