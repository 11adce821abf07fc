package main

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"time"

	"github.com/eddy-streams/eddy/control-plane/placement"
	cpstore "github.com/eddy-streams/eddy/control-plane/store"
	"github.com/eddy-streams/eddy/migrations"
	"github.com/spf13/cobra"
)

type controlPlaneConfig struct {
	databaseURL string
	metrics     string
	migrate     bool
	placement   placement.Config
}

func (c *controlPlaneConfig) register(cmd *cobra.Command) {
	cmd.Flags().StringVar(&c.databaseURL, "database-url", "", "Postgres URL")
	cmd.Flags().StringVar(&c.metrics, "metrics-listen", "", "address for /metrics (empty: off)")
	cmd.Flags().BoolVar(&c.migrate, "migrate", true, "apply the schema at start")
	cmd.Flags().DurationVar(&c.placement.Interval, "placement-interval", 500*time.Millisecond, "placement round period (also bounds how long a dead broker's partitions stay unled after its session expires)")
}

func newControlPlaneCmd() *cobra.Command {
	var cfg controlPlaneConfig
	cmd := &cobra.Command{
		Use:   "control-plane",
		Short: "Run the control plane (placement and broker liveness)",
		RunE: func(cmd *cobra.Command, _ []string) error {
			return runControlPlane(cmd.Context(), cfg, slog.Default())
		},
	}
	cfg.register(cmd)
	return cmd
}

// runControlPlane runs until ctx ends and returns nil after a clean stop.
func runControlPlane(ctx context.Context, cfg controlPlaneConfig, log *slog.Logger) error {
	if cfg.databaseURL == "" {
		return errors.New("--database-url (or EDDY_DATABASE_URL) is required")
	}
	if cfg.migrate {
		if _, err := migrations.Apply(ctx, cfg.databaseURL); err != nil {
			return err
		}
	}
	st, err := cpstore.Open(ctx, cfg.databaseURL)
	if err != nil {
		return err
	}
	defer st.Close()
	reg := newRegistry()
	waitMetrics, err := serveMetrics(ctx, cfg.metrics, reg)
	if err != nil {
		return err
	}
	defer waitMetrics()
	log = log.With("component", "control-plane")
	loop := placement.New(cfg.placement, st, log, reg)
	var wg sync.WaitGroup
	wg.Add(1)
	go func() { defer wg.Done(); loop.Run(ctx) }()
	log.Info("control plane running")
	<-ctx.Done()
	wg.Wait()
	log.Info("control plane stopped")
	return nil
}
