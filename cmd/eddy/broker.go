package main

import (
	"context"
	"errors"
	"log/slog"
	"os"
	"path/filepath"

	"github.com/eddy-streams/eddy/data-plane/broker"
	"github.com/eddy-streams/eddy/data-plane/store"
	"github.com/eddy-streams/eddy/internal/service"
	"github.com/spf13/cobra"
)

type brokerConfig struct {
	broker.Config
	databaseURL string
	dataDir     string
	metrics     string
	objstore    objstoreConfig
	tiered      tieredConfig
}

func (c *brokerConfig) register(cmd *cobra.Command) {
	fs := cmd.Flags()
	c.Config.RegisterFlags(fs)
	c.objstore.registerFlags(fs)
	c.tiered.registerFlags(fs)
	fs.StringVar(&c.databaseURL, "database-url", "", "Postgres URL")
	fs.StringVar(&c.dataDir, "data-dir", "./data", "local directory for the WAL (and the fs object store)")
	fs.StringVar(&c.metrics, "metrics-listen", "", "address for /metrics (empty: off)")
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
	cfg.register(cmd)
	return cmd
}

func runBroker(ctx context.Context, cfg brokerConfig, log *slog.Logger) error {
	if cfg.databaseURL == "" {
		return errors.New("--database-url (or EDDY_DATABASE_URL) is required")
	}
	if cfg.Leader.WALDir == "" {
		cfg.Leader.WALDir = filepath.Join(cfg.dataDir, "wal")
	}
	if cfg.Metering.Dir == "" {
		cfg.Metering.Dir = filepath.Join(cfg.dataDir, "metering")
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
	readCache, runner, err := openTiered(cfg.tiered, cfg.ID, cfg.dataDir, st, bkt, log, reg)
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
