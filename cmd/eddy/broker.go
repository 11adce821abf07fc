package main

import (
	"context"
	"errors"
	"log/slog"
	"os"
	"path/filepath"

	"github.com/eddy-streams/eddy/data-plane/broker"
	"github.com/eddy-streams/eddy/internal/service"
	"github.com/eddy-streams/eddy/internal/store"
	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
)

// defaultDataDir is where a broker keeps its WAL, metering spool, read
// cache and (with --objstore fs) its objects unless told otherwise.
const defaultDataDir = "./data"

// brokerConfig is eddy broker's configuration: the broker's own (with its
// parts'), its object store's and its share of tiered storage.
type brokerConfig struct {
	broker.Config
	databaseURL string
	dataDir     string
	metrics     string
	objstore    objstoreConfig
	tiered      tieredConfig
}

// RegisterFlags registers every flag of eddy broker by delegating to the
// parts' RegisterFlags.
func (c *brokerConfig) RegisterFlags(fs *pflag.FlagSet) {
	c.Config.RegisterFlags(fs)
	c.objstore.RegisterFlags(fs)
	c.tiered.RegisterFlags(fs)
	fs.StringVar(&c.databaseURL, "database-url", "", "Postgres URL")
	fs.StringVar(&c.dataDir, "data-dir", defaultDataDir, "local directory for the WAL (and the fs object store)")
	fs.StringVar(&c.metrics, "metrics-listen", "", "address for /metrics (empty: off)")
}

// Validate checks every part, after putting the directories not given
// under --data-dir.
func (c *brokerConfig) Validate() error {
	if c.databaseURL == "" {
		return errors.New("--database-url (or EDDY_DATABASE_URL) is required")
	}
	if c.Leader.WALDir == "" {
		c.Leader.WALDir = filepath.Join(c.dataDir, "wal")
	}
	if c.Metering.Dir == "" {
		c.Metering.Dir = filepath.Join(c.dataDir, "metering")
	}
	if c.tiered.cache.Dir == "" {
		c.tiered.cache.Dir = filepath.Join(c.dataDir, "cache")
	}
	if err := c.Config.Validate(); err != nil {
		return err
	}
	if err := c.objstore.Validate(); err != nil {
		return err
	}
	return c.tiered.Validate()
}

func newBrokerCmd() *cobra.Command {
	var cfg brokerConfig
	cmd := &cobra.Command{
		Use:   "broker",
		Short: "Run one Kafka-protocol broker",
		RunE: func(cmd *cobra.Command, _ []string) error {
			return runBroker(cmd.Context(), cfg, slog.Default())
		},
	}
	cfg.RegisterFlags(cmd.Flags())
	return cmd
}

func runBroker(ctx context.Context, cfg brokerConfig, log *slog.Logger) error {
	if err := cfg.Validate(); err != nil {
		return err
	}
	if err := os.MkdirAll(cfg.dataDir, 0o755); err != nil {
		return err
	}
	reg := newRegistry()
	bkt, err := cfg.objstore.open(ctx, cfg.dataDir, reg)
	if err != nil {
		return err
	}
	st, err := store.Open(ctx, cfg.databaseURL, 16)
	if err != nil {
		return err
	}
	defer st.Close()
	readCache, runner, err := openTiered(cfg.tiered, cfg.ID, st, bkt, log, reg)
	if err != nil {
		return err
	}
	defer readCache.Close()
	cfg.Leader.Remote = readCache
	srv, err := broker.New(cfg.Config, st, bkt, log, reg)
	if err != nil {
		return err
	}
	// Stopped in reverse: the tiered jobs first (a job in flight is handed
	// back at once), then the broker drains, the metrics server last.
	l := service.List{Log: log}
	addMetrics(&l, cfg.metrics, reg)
	l.Add("broker", service.Func(func(ctx context.Context) error {
		if err := srv.Run(ctx); !errors.Is(err, broker.ErrServerClosed) {
			return err
		}
		return nil
	}))
	l.Add("tiered jobs", runner)
	return l.Run(ctx)
}
