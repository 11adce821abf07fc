package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"time"

	"github.com/eddy-streams/eddy/api"
	"github.com/eddy-streams/eddy/control-plane/autoscale"
	"github.com/eddy-streams/eddy/control-plane/cluster"
	"github.com/eddy-streams/eddy/control-plane/identity"
	"github.com/eddy-streams/eddy/control-plane/ledger"
	"github.com/eddy-streams/eddy/control-plane/placement"
	"github.com/eddy-streams/eddy/control-plane/scaler"
	cpstore "github.com/eddy-streams/eddy/control-plane/store"
	"github.com/eddy-streams/eddy/internal/service"
	"github.com/eddy-streams/eddy/migrations"
	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
)

type controlPlaneConfig struct {
	databaseURL string
	metrics     string
	migrate     bool
	placement   placement.Config
	ledger      ledger.Config
	// api is the REST API; it is off while api.Listen is empty.
	api api.Config
	// autoscale runs the autoscaler with scaler (eddy dev's local
	// processes), or else with the scaler scalerKind names.
	autoscale     bool
	autoscaleLoop autoscale.LoopConfig
	scalerKind    string
	kubernetes    scaler.KubernetesConfig
	scaler        autoscale.Scaler
}

// registerAutoscale registers the autoscaler's flags (shared with eddy dev).
func (c *controlPlaneConfig) registerAutoscale(fs *pflag.FlagSet) {
	fs.BoolVar(&c.autoscale, "autoscale", false, "size the broker pool to its load (see --autoscale-*)")
	c.autoscaleLoop = autoscale.DefaultLoopConfig()
	c.autoscaleLoop.RegisterFlags(fs)
}

func (c *controlPlaneConfig) register(cmd *cobra.Command) {
	cmd.Flags().StringVar(&c.databaseURL, "database-url", "", "Postgres URL")
	cmd.Flags().StringVar(&c.metrics, "metrics-listen", "", "address for /metrics (empty: off)")
	cmd.Flags().BoolVar(&c.migrate, "migrate", true, "apply the schema at start")
	cmd.Flags().DurationVar(&c.placement.Interval, "placement-interval", 500*time.Millisecond, "placement round period (also bounds how long a dead broker's partitions stay unled after its session expires)")
	cmd.Flags().DurationVar(&c.placement.RebalanceInterval, "rebalance-interval", 0, "how often partitions are rebalanced by measured load and draining brokers emptied, with graceful moves (0: off)")
	cmd.Flags().DurationVar(&c.placement.MoveTimeout, "move-timeout", 15*time.Second, "how long a leader has to hand a moving partition off before the move is forced")
	cmd.Flags().IntVar(&c.placement.MaxMoves, "max-moves", 8, "most partition moves the rebalancer starts per round")
	c.registerAutoscale(cmd.Flags())
	cmd.Flags().StringVar(&c.scalerKind, "autoscale-scaler", "kubernetes", "how the autoscaler changes the pool: kubernetes (eddy dev --autoscale runs local processes)")
	cmd.Flags().StringVar(&c.kubernetes.APIServer, "k8s-api-server", "", "Kubernetes API server URL (default: in-cluster)")
	cmd.Flags().StringVar(&c.kubernetes.Namespace, "k8s-namespace", "", "namespace of the brokers' workload")
	cmd.Flags().StringVar(&c.kubernetes.Kind, "k8s-kind", "statefulsets", "the brokers' workload kind: statefulsets (broker id = ordinal+1) or deployments")
	cmd.Flags().StringVar(&c.kubernetes.Name, "k8s-name", "", "name of the brokers' StatefulSet or Deployment")
	cmd.Flags().StringVar(&c.kubernetes.TokenFile, "k8s-token-file", "", "bearer token file (default in a cluster: the pod's service-account token)")
	cmd.Flags().StringVar(&c.kubernetes.CAFile, "k8s-ca-file", "", "CA certificate of the API server (default in a cluster: the service account's)")
	// The API is off unless --api-listen is given: several control planes
	// (and test stacks) may share a machine, and only one can have a fixed port.
	c.api.RegisterFlags(cmd.Flags())
	c.ledger.RegisterFlags(cmd.Flags())
}

func newControlPlaneCmd() *cobra.Command {
	var cfg controlPlaneConfig
	cmd := &cobra.Command{
		Use:   "control-plane",
		Short: "Run the control plane (placement, broker liveness, cluster provisioning, billing, REST API)",
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
	if err := cfg.ledger.Validate(); err != nil {
		return err
	}
	// One policy guards webhook URLs at registration (API) and delivery.
	cfg.api.Webhooks = cfg.ledger.Webhooks
	if cfg.api.Listen != "" {
		if err := cfg.api.Validate(); err != nil {
			return err
		}
	}
	sc := cfg.scaler
	if cfg.autoscale {
		if err := cfg.autoscaleLoop.Validate(); err != nil {
			return err
		}
		if sc == nil {
			if cfg.scalerKind != "kubernetes" {
				return fmt.Errorf("--autoscale-scaler %q: eddy control-plane scales a Kubernetes workload (kubernetes); eddy dev --autoscale scales local processes", cfg.scalerKind)
			}
			k, err := scaler.NewKubernetes(cfg.kubernetes, nil)
			if err != nil {
				return err
			}
			sc = k
		}
		// New brokers get partitions, and draining ones lose theirs,
		// only through the rebalancer.
		if cfg.placement.RebalanceInterval <= 0 {
			cfg.placement.RebalanceInterval = 5 * time.Second
			log.Info("--autoscale turns the rebalancer on", "rebalance_interval", cfg.placement.RebalanceInterval)
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
	base := log
	log = log.With("component", "control-plane")
	loop := placement.New(cfg.placement, st, log, reg)
	books, err := ledger.New(cfg.ledger, st, log, reg)
	if err != nil {
		return err
	}

	// Started in this order, stopped in reverse: the REST API first, the
	// metrics server last. A failure of any (say the REST port is taken)
	// stops them all and is returned.
	l := service.List{Log: log}
	addMetrics(&l, cfg.metrics, reg)
	l.Add("ledger", service.Loop(books.Run))
	l.Add("placement", loop)
	l.Add("provisioner", service.Loop(cluster.NewProvisioner(st, time.Second, log).Run))
	if cfg.autoscale {
		l.Add("autoscaler", autoscale.NewLoop(cfg.autoscaleLoop, st, sc, base, reg))
	}
	if cfg.api.Listen != "" {
		issuer := identity.New(cfg.api.IdentityConfig(), st)
		srv := api.New(cfg.api, st, issuer, base, reg)
		l.Add("signing keys", service.Basic{Starting: issuer.Ensure})
		l.Add("api upkeep", service.Loop(srv.Run))
		l.Add("rest api", service.Basic{
			Starting: func(context.Context) error {
				log.Info("REST API listening", "addr", cfg.api.Listen, "public_url", cfg.api.PublicURL,
					"operator_token", cfg.api.AdminToken != "")
				return nil
			},
			Running: func(ctx context.Context) error {
				return srv.Serve(ctx, &http.Server{Addr: cfg.api.Listen}, 10*time.Second)
			},
		})
	}
	l.Add("announce", service.Basic{Starting: func(context.Context) error {
		log.Info("control plane running")
		return nil
	}})
	if err := l.Run(ctx); err != nil {
		return err
	}
	log.Info("control plane stopped")
	return nil
}
