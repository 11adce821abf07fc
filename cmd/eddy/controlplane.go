package main

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"time"

	"github.com/eddy-streams/eddy/api"
	"github.com/eddy-streams/eddy/control-plane/autoscale"
	"github.com/eddy-streams/eddy/control-plane/cluster"
	"github.com/eddy-streams/eddy/control-plane/identity"
	"github.com/eddy-streams/eddy/control-plane/laghistory"
	"github.com/eddy-streams/eddy/control-plane/lease"
	"github.com/eddy-streams/eddy/control-plane/ledger"
	"github.com/eddy-streams/eddy/control-plane/placement"
	"github.com/eddy-streams/eddy/control-plane/scaler"
	"github.com/eddy-streams/eddy/internal/seal"
	"github.com/eddy-streams/eddy/internal/service"
	"github.com/eddy-streams/eddy/internal/store"
	"github.com/eddy-streams/eddy/migrations"
	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
)

// controlPlaneConfig is eddy control-plane's configuration: that of its
// loops, the REST API and the autoscaler.
type controlPlaneConfig struct {
	databaseURL string
	metrics     string
	migrate     bool
	// secrets is the key-encryption key that seals the secrets stored in
	// Postgres (signing keys, webhook secrets); Validate hands it to the
	// parts that store or read them.
	secrets   seal.Config
	placement placement.Config
	ledger    ledger.Config
	// lagHistory samples consumer-group lag for its history.
	lagHistory laghistory.Config
	// lease elects the replica that runs the singleton loops.
	lease lease.Config
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

// defaultControlPlaneConfig is eddy control-plane's configuration without
// flags (eddy dev runs the control plane with it).
func defaultControlPlaneConfig() controlPlaneConfig {
	var c controlPlaneConfig
	c.RegisterFlags(pflag.NewFlagSet("defaults", pflag.ContinueOnError))
	return c
}

// registerAutoscale registers the autoscaler's flags (shared with eddy dev).
func (c *controlPlaneConfig) registerAutoscale(fs *pflag.FlagSet) {
	fs.BoolVar(&c.autoscale, "autoscale", false, "size the broker pool to its load (see --autoscale-*)")
	c.autoscaleLoop.RegisterFlags(fs)
}

// RegisterFlags registers every flag of eddy control-plane by delegating to
// the parts' RegisterFlags.
func (c *controlPlaneConfig) RegisterFlags(fs *pflag.FlagSet) {
	fs.StringVar(&c.databaseURL, "database-url", "", "Postgres URL")
	fs.StringVar(&c.metrics, "metrics-listen", "", "address for /metrics and the /livez and /readyz probes (empty: off)")
	fs.BoolVar(&c.migrate, "migrate", true, "apply the schema at start")
	c.secrets.RegisterFlags(fs)
	c.placement.RegisterFlags(fs)
	c.lease.RegisterFlags(fs)
	c.registerAutoscale(fs)
	fs.StringVar(&c.scalerKind, "autoscale-scaler", "kubernetes", "how the autoscaler changes the pool: kubernetes (eddy dev --autoscale runs local processes)")
	c.kubernetes.RegisterFlags(fs)
	// The API is off unless --api-listen is given: several control planes
	// (and test stacks) may share a machine, and only one can have a fixed port.
	c.api.RegisterFlags(fs)
	c.ledger.RegisterFlags(fs)
	c.lagHistory.RegisterFlags(fs)
}

// Validate checks the parts that will run: the API only with --api-listen,
// the autoscaler only with --autoscale.
func (c *controlPlaneConfig) Validate() error {
	if c.databaseURL == "" {
		return errors.New("--database-url (or EDDY_DATABASE_URL) is required")
	}
	if err := c.secrets.Validate(); err != nil {
		return err
	}
	if err := c.placement.Validate(); err != nil {
		return err
	}
	if err := c.ledger.Validate(); err != nil {
		return err
	}
	if err := c.lease.Validate(); err != nil {
		return err
	}
	if err := c.lagHistory.Validate(); err != nil {
		return err
	}
	// One policy guards webhook URLs at registration (API) and delivery.
	c.api.Webhooks = c.ledger.Webhooks
	// The API seals what it creates with the KEK; the ledger opens it.
	c.api.Secrets, c.ledger.Secrets = c.secrets.Sealer(), c.secrets.Sealer()
	if c.api.Listen != "" {
		if err := c.api.Validate(); err != nil {
			return err
		}
	}
	if !c.autoscale {
		return nil
	}
	if err := c.autoscaleLoop.Validate(); err != nil {
		return err
	}
	if c.scaler != nil {
		return nil
	}
	if c.scalerKind != "kubernetes" {
		return fmt.Errorf("--autoscale-scaler %q: eddy control-plane scales a Kubernetes workload (kubernetes); eddy dev --autoscale scales local processes", c.scalerKind)
	}
	return c.kubernetes.Validate()
}

func newControlPlaneCmd() *cobra.Command {
	var cfg controlPlaneConfig
	cmd := &cobra.Command{
		Use: "control-plane", Example: "  EDDY_ADMIN_TOKEN=... eddy control-plane --database-url postgres://... --api-listen :8080 --kafka-bootstrap kafka.eddy.example:9092",
		Short: "Run the control plane (placement, broker liveness, cluster provisioning, billing, REST API)",
		RunE: func(cmd *cobra.Command, _ []string) error {
			return runControlPlane(cmd.Context(), cfg, slog.Default())
		},
	}
	cfg.RegisterFlags(cmd.Flags())
	return cmd
}

// runControlPlane runs until ctx ends and returns nil after a clean stop.
func runControlPlane(ctx context.Context, cfg controlPlaneConfig, log *slog.Logger) error {
	if err := cfg.Validate(); err != nil {
		return err
	}
	sc := cfg.scaler
	if cfg.autoscale {
		if sc == nil {
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
	st, err := store.Open(ctx, cfg.databaseURL, 0)
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

	issuer := identity.New(cfg.api.IdentityConfig(), st)
	if !cfg.secrets.Sealer().Keyed() {
		log.Warn("--insecure-plaintext-secrets: signing keys and webhook secrets are stored unsealed (development only)")
	}

	// Started in this order, stopped in reverse: the REST API first, the
	// metrics server last. A failure of any (say the REST port is taken)
	// stops them all and is returned.
	l := service.List{Log: log}
	addMetrics(&l, cfg.metrics, reg, false, func(ctx context.Context) error {
		if st.Ping(ctx) != nil {
			return errors.New("the database does not answer")
		}
		return nil
	})
	// Rows stored in plain before sealing existed are sealed before the
	// parts that read them start.
	l.Add("sealed secrets", service.Basic{Starting: func(ctx context.Context) error {
		keys, err := issuer.SealStored(ctx)
		if err != nil {
			return err
		}
		hooks, err := books.SealStored(ctx)
		if err != nil {
			return err
		}
		if keys+hooks > 0 {
			log.Info("sealed secrets stored in plain", "signing_keys", keys, "webhook_secrets", hooks, "kek", cfg.secrets.Sealer().ID())
		}
		return nil
	}})
	// The singleton loops run on the replica that holds the lease, one
	// List per term; every replica provisions (one idempotent UPDATE) and
	// serves the REST API.
	var scale *autoscale.Loop
	if cfg.autoscale {
		scale = autoscale.NewLoop(cfg.autoscaleLoop, st, sc, base, reg)
	}
	lagSampler := laghistory.New(cfg.lagHistory, st, log, reg)
	elector := lease.New(cfg.lease, st, leaseName, leaseHolder(), log, reg)
	l.Add("leader", service.Func(func(ctx context.Context) error {
		return elector.Run(ctx, func(ctx context.Context) error {
			term := service.List{Log: log}
			term.Add("ledger", service.Loop(books.Run))
			term.Add("placement", loop)
			term.Add("lag history", service.Loop(lagSampler.Run))
			if scale != nil {
				term.Add("autoscaler", scale)
			}
			return term.Run(ctx)
		})
	}))
	l.Add("provisioner", service.Loop(cluster.NewProvisioner(st, time.Second, log).Run))
	if cfg.api.Listen != "" {
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

// leaseName names the control plane's lease row.
const leaseName = "control-plane"

// leaseHolder names this process among the replicas: the host (a pod's
// name) and a random part, so a restarted process is a new holder.
func leaseHolder() string {
	host, err := os.Hostname()
	if err != nil {
		host = "unknown"
	}
	return host + "/" + rand.Text()[:8]
}
