package main

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"sync"
	"time"

	"github.com/eddy-streams/eddy/api"
	"github.com/eddy-streams/eddy/control-plane/cluster"
	"github.com/eddy-streams/eddy/control-plane/identity"
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
	// api is the REST API; it is off while api.Listen is empty.
	api api.Config
}

func (c *controlPlaneConfig) register(cmd *cobra.Command) {
	cmd.Flags().StringVar(&c.databaseURL, "database-url", "", "Postgres URL")
	cmd.Flags().StringVar(&c.metrics, "metrics-listen", "", "address for /metrics (empty: off)")
	cmd.Flags().BoolVar(&c.migrate, "migrate", true, "apply the schema at start")
	cmd.Flags().DurationVar(&c.placement.Interval, "placement-interval", 500*time.Millisecond, "placement round period (also bounds how long a dead broker's partitions stay unled after its session expires)")
	cmd.Flags().DurationVar(&c.placement.RebalanceInterval, "rebalance-interval", 0, "how often partitions are rebalanced by measured load and draining brokers emptied, with graceful moves (0: off)")
	cmd.Flags().DurationVar(&c.placement.MoveTimeout, "move-timeout", 15*time.Second, "how long a leader has to hand a moving partition off before the move is forced")
	cmd.Flags().IntVar(&c.placement.MaxMoves, "max-moves", 8, "most partition moves the rebalancer starts per round")
	// The API is off unless --api-listen is given: several control planes
	// (and test stacks) may share a machine, and only one can have a fixed port.
	c.api.RegisterFlags(cmd.Flags())
}

func newControlPlaneCmd() *cobra.Command {
	var cfg controlPlaneConfig
	cmd := &cobra.Command{
		Use:   "control-plane",
		Short: "Run the control plane (placement, broker liveness, cluster provisioning, REST API)",
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
	if cfg.api.Listen != "" {
		if err := cfg.api.Validate(); err != nil {
			return err
		}
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
	base := log
	log = log.With("component", "control-plane")

	var wg sync.WaitGroup
	defer wg.Wait()
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	loop := placement.New(cfg.placement, st, log, reg)
	wg.Add(2)
	go func() { defer wg.Done(); loop.Run(ctx) }()
	go func() { defer wg.Done(); cluster.NewProvisioner(st, time.Second, log).Run(ctx) }()

	var apiErr chan error
	if cfg.api.Listen != "" {
		issuer := identity.New(cfg.api.IdentityConfig(), st)
		if err := issuer.Ensure(ctx); err != nil {
			return err
		}
		srv := api.New(cfg.api, st, issuer, base, reg)
		apiErr = make(chan error, 1)
		wg.Add(2)
		go func() { defer wg.Done(); srv.Run(ctx) }()
		go func() {
			defer wg.Done()
			apiErr <- srv.Serve(ctx, &http.Server{Addr: cfg.api.Listen}, 10*time.Second)
		}()
		log.Info("REST API listening", "addr", cfg.api.Listen, "public_url", cfg.api.PublicURL,
			"operator_token", cfg.api.AdminToken != "")
	}
	log.Info("control plane running")
	select {
	case <-ctx.Done():
	case err := <-apiErr:
		if err != nil && !errors.Is(err, http.ErrServerClosed) {
			log.Error("REST API stopped", "err", err)
			cancel()
			wg.Wait()
			return err
		}
	}
	cancel()
	wg.Wait()
	log.Info("control plane stopped")
	return nil
}
