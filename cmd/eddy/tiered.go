package main

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/eddy-streams/eddy/internal/store"
	"github.com/eddy-streams/eddy/tiered/bucket"
	"github.com/eddy-streams/eddy/tiered/cache"
	"github.com/eddy-streams/eddy/tiered/compact"
	"github.com/eddy-streams/eddy/tiered/gc"
	"github.com/eddy-streams/eddy/tiered/jobs"
	"github.com/eddy-streams/eddy/tiered/retention"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/spf13/pflag"
)

// tieredConfig configures a broker's share of tiered storage: the read
// cache in front of the bucket and the background jobs (retention,
// compaction, garbage collection) its workers claim from Postgres.
type tieredConfig struct {
	cache   cache.Config
	jobs    jobs.Config
	gc      gc.Config
	compact compact.Config

	retentionEvery time.Duration
	compactEvery   time.Duration
	gcEvery        time.Duration
	orphansEvery   time.Duration
	shards         int
}

// RegisterFlags registers the cache's, the job runner's, the collector's
// and compaction's flags, and the job intervals.
func (c *tieredConfig) RegisterFlags(fs *pflag.FlagSet) {
	c.cache.RegisterFlags(fs)
	c.jobs.RegisterFlags(fs)
	c.gc.RegisterFlags(fs)
	c.compact.RegisterFlags(fs)
	fs.DurationVar(&c.retentionEvery, "retention-interval", 30*time.Second, "how often retention.ms and retention.bytes are enforced")
	fs.DurationVar(&c.compactEvery, "compact-interval", 30*time.Second, "how often per-flush pieces are compacted")
	fs.DurationVar(&c.gcEvery, "gc-interval", time.Minute, "how often unreferenced objects are collected")
	fs.DurationVar(&c.orphansEvery, "gc-orphans-interval", time.Hour, "how often the bucket is listed for orphaned objects")
	fs.IntVar(&c.shards, "jobs-shards", 4, "retention and compaction jobs per kind, each over a share of the partitions (keep it equal on every broker)")
}

// Validate checks the job intervals and every part (the cache needs its
// directory by now).
func (c *tieredConfig) Validate() error {
	switch {
	case c.retentionEvery <= 0:
		return fmt.Errorf("tiered: --retention-interval must be positive, got %s", c.retentionEvery)
	case c.compactEvery <= 0:
		return fmt.Errorf("tiered: --compact-interval must be positive, got %s", c.compactEvery)
	case c.gcEvery <= 0:
		return fmt.Errorf("tiered: --gc-interval must be positive, got %s", c.gcEvery)
	case c.orphansEvery <= 0:
		return fmt.Errorf("tiered: --gc-orphans-interval must be positive, got %s", c.orphansEvery)
	case c.shards <= 0:
		return fmt.Errorf("tiered: --jobs-shards must be positive, got %d", c.shards)
	}
	if err := c.cache.Validate(); err != nil {
		return err
	}
	if err := c.jobs.Validate(); err != nil {
		return err
	}
	if err := c.gc.Validate(); err != nil {
		return err
	}
	return c.compact.Validate()
}

// Job kinds, as stored in the jobs table.
const (
	jobRetention = "retention"
	jobCompact   = "compact"
	jobGC        = "gc"
	jobOrphans   = "gc-orphans"
)

// openTiered opens the read cache and prepares the job runner; cfg must
// have been validated. The caller closes the cache after the runner and
// the broker stopped.
func openTiered(cfg tieredConfig, brokerID int32, st *store.Store, bkt bucket.Bucket,
	log *slog.Logger, reg prometheus.Registerer) (*cache.Cache, *jobs.Runner, error) {
	runner, err := jobs.New(cfg.jobs, st, log, reg)
	if err != nil {
		return nil, nil, err
	}
	col, err := gc.New(cfg.gc, st, bkt, log, reg)
	if err != nil {
		return nil, nil, err
	}
	cmp, err := compact.New(cfg.compact, st, bkt, brokerID, log, reg)
	if err != nil {
		return nil, nil, err
	}
	ret := retention.New(st, log, reg)
	runner.Handle(jobRetention, func(ctx context.Context, key string) error {
		sh, err := parseShard(key)
		if err != nil {
			return err
		}
		_, err = ret.Enforce(ctx, sh)
		return err
	})
	runner.Handle(jobCompact, func(ctx context.Context, key string) error {
		sh, err := parseShard(key)
		if err != nil {
			return err
		}
		_, err = cmp.Compact(ctx, sh)
		return err
	})
	runner.Handle(jobGC, func(ctx context.Context, _ string) error { _, err := col.Collect(ctx); return err })
	runner.Handle(jobOrphans, func(ctx context.Context, _ string) error { _, err := col.SweepOrphans(ctx); return err })
	// Retention and compaction are split into shards of partitions, so
	// that several workers share them.
	for i := range cfg.shards {
		key := fmt.Sprintf("%d/%d", i, cfg.shards)
		runner.Schedule(jobRetention, key, cfg.retentionEvery)
		runner.Schedule(jobCompact, key, cfg.compactEvery)
	}
	runner.Schedule(jobGC, "objects", cfg.gcEvery)
	runner.Schedule(jobOrphans, "bucket", cfg.orphansEvery)

	c, err := cache.Open(cfg.cache, bkt, reg)
	if err != nil {
		return nil, nil, err
	}
	return c, runner, nil
}

// parseShard parses a job key "i/n".
func parseShard(key string) (store.Shard, error) {
	var sh store.Shard
	if _, err := fmt.Sscanf(key, "%d/%d", &sh.Index, &sh.Of); err != nil || sh.Of <= 0 || sh.Index < 0 || sh.Index >= sh.Of {
		return sh, fmt.Errorf("tiered: bad shard job key %q", key)
	}
	return sh, nil
}
