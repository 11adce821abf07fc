// Package gc deletes objects that no index row references, never one that
// is referenced and never before in-flight readers are done with it
// (DESIGN.md invariant 5).
//
// A pass has two steps, each one statement in Postgres:
//
//  1. mark: objects older than Grace that no index row references get
//     objects.unreferenced_at = now();
//  2. sweep: objects marked more than Grace ago that still no index row
//     references lose their objects row; then their blobs are deleted.
//
// A reader that looked up an index row just before retention or
// compaction removed it has at least Grace (between the mark and the
// sweep) to finish its GET. The sweep re-checks references in the same
// statement that deletes the row, and references are only ever created to
// new objects (store package doc), so a crash anywhere leaves at worst a
// blob without a row: SweepOrphans, a bucket listing, deletes blobs that
// have no objects row and are older than OrphanAge (which must exceed the
// longest a flush can take between its PUT and its commit).
package gc

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/eddy-streams/eddy/internal/store"
	"github.com/eddy-streams/eddy/tiered/bucket"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/spf13/pflag"
)

// Prefixes are the bucket prefixes Eddy writes objects under (flushes and
// compacted segments); SweepOrphans lists only these.
var Prefixes = []string{"data/", "seg/"}

// Config tunes the collector.
type Config struct {
	// Grace is how long an object stays after it was first seen
	// unreferenced (and the least age of an object to be marked).
	Grace time.Duration
	// OrphanAge is the least age of a blob without an objects row before
	// SweepOrphans deletes it.
	OrphanAge time.Duration
	// Batch is how many objects one sweep statement deletes.
	Batch int
}

// DefaultConfig returns the defaults the flags start from.
func DefaultConfig() Config {
	return Config{Grace: 5 * time.Minute, OrphanAge: time.Hour, Batch: 1000}
}

// RegisterFlags registers the collector's flags with the defaults of
// DefaultConfig.
func (c *Config) RegisterFlags(fs *pflag.FlagSet) {
	d := DefaultConfig()
	fs.DurationVar(&c.Grace, "gc-grace", d.Grace, "how long unreferenced objects stay for readers in flight")
	fs.DurationVar(&c.OrphanAge, "gc-orphan-age", d.OrphanAge, "least age of a bucket object without an objects row before it is deleted")
	fs.IntVar(&c.Batch, "gc-batch", d.Batch, "objects deleted per sweep statement")
}

// Validate checks the configuration, naming the flag of a bad value.
func (c *Config) Validate() error {
	if c.Grace < 0 || c.OrphanAge < 0 {
		return errors.New("gc: --gc-grace and --gc-orphan-age must not be negative")
	}
	if c.OrphanAge < c.Grace {
		return fmt.Errorf("gc: --gc-orphan-age (%s) must be at least --gc-grace (%s)", c.OrphanAge, c.Grace)
	}
	if c.Batch <= 0 {
		return fmt.Errorf("gc: --gc-batch must be positive, got %d", c.Batch)
	}
	return nil
}

// Collector deletes unreferenced objects.
type Collector struct {
	cfg Config
	st  *store.Store
	b   bucket.Bucket
	log *slog.Logger

	deleted      *prometheus.CounterVec
	deletedBytes prometheus.Counter
}

// New returns a Collector; reg may be nil.
func New(cfg Config, st *store.Store, b bucket.Bucket, log *slog.Logger, reg prometheus.Registerer) (*Collector, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	c := &Collector{cfg: cfg, st: st, b: b, log: log,
		deleted: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "eddy_gc_deleted_objects_total", Help: "Objects deleted by garbage collection (reason: unreferenced, orphan)."},
			[]string{"reason"}),
		deletedBytes: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "eddy_gc_deleted_bytes_total", Help: "Bytes of unreferenced objects deleted."}),
	}
	if reg != nil {
		reg.MustRegister(c.deleted, c.deletedBytes)
	}
	return c, nil
}

// Result says what a pass did.
type Result struct {
	Marked       int64
	Deleted      int
	DeletedBytes int64
}

// Collect marks unreferenced objects and deletes those marked more than
// Grace ago.
func (c *Collector) Collect(ctx context.Context) (Result, error) {
	var res Result
	var err error
	if res.Marked, err = c.st.MarkUnreferenced(ctx, c.cfg.Grace); err != nil {
		return res, err
	}
	for {
		objs, err := c.st.SweepUnreferenced(ctx, c.cfg.Grace, c.cfg.Batch)
		if err != nil {
			return res, err
		}
		// The rows are gone: from here a failure leaves orphans, which
		// SweepOrphans removes; nothing references these keys any more.
		for _, o := range objs {
			if err := c.b.Delete(ctx, o.Key); err != nil {
				return res, fmt.Errorf("gc: delete %s (now an orphan): %w", o.Key, err)
			}
			res.Deleted++
			res.DeletedBytes += o.Size
			c.deleted.WithLabelValues("unreferenced").Inc()
			c.deletedBytes.Add(float64(o.Size))
		}
		if len(objs) < c.cfg.Batch {
			break
		}
	}
	if res.Deleted > 0 || res.Marked > 0 {
		c.log.Info("garbage collection", "marked", res.Marked, "deleted", res.Deleted, "bytes", res.DeletedBytes)
	}
	return res, nil
}

// SweepOrphans lists the bucket and deletes blobs older than OrphanAge
// that have no objects row. It returns how many it deleted.
func (c *Collector) SweepOrphans(ctx context.Context) (int, error) {
	deleted := 0
	cutoff := time.Now().Add(-c.cfg.OrphanAge)
	var page []string
	flush := func() error {
		if len(page) == 0 {
			return nil
		}
		known, err := c.st.KnownObjects(ctx, page)
		if err != nil {
			return err
		}
		for _, k := range page {
			if known[k] {
				continue
			}
			if err := c.b.Delete(ctx, k); err != nil {
				return fmt.Errorf("gc: delete orphan %s: %w", k, err)
			}
			deleted++
			c.deleted.WithLabelValues("orphan").Inc()
		}
		page = page[:0]
		return nil
	}
	for _, prefix := range Prefixes {
		err := c.b.List(ctx, prefix, func(o bucket.Object) error {
			if !o.Modified.Before(cutoff) {
				return nil
			}
			page = append(page, o.Key)
			if len(page) >= c.cfg.Batch {
				return flush()
			}
			return nil
		})
		if err != nil {
			return deleted, err
		}
		if err := flush(); err != nil {
			return deleted, err
		}
	}
	if deleted > 0 {
		c.log.Info("deleted orphaned objects", "count", deleted)
	}
	return deleted, nil
}
